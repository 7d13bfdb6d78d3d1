//! `start`, `stop`, `restart`, `kill`: the desired state is stored first (the panel owns
//! it), then the agent is asked to act and its answer recorded.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use shardlyn_proto::agent_api as api;
use shardlyn_proto::instance::{
    CommandRequest, DesiredState, InstanceStatus, PowerAction, PowerRequest,
};

use super::sync;
use crate::authz::{Authorized, perm};
use crate::error::{AppError, AppJson, AppResult};
use crate::instances::{Instance, store};
use crate::state::AppState;
use crate::tunnel::AgentConn;

/// The live tunnel of the instance's node (held here or by another replica), or 409
/// `NODE_OFFLINE` ([`crate::tunnel::Tunnels::route`]).
///
/// # Errors
/// 409 when the node's agent is not connected.
pub async fn connected(state: &AppState, node_id: &str) -> AppResult<Arc<AgentConn>> {
    state.tunnels.route(node_id).await
}

/// Longest console command, in bytes (the console socket and schedules alike).
pub const MAX_COMMAND: usize = 4096;

/// Writes one command line to the server's stdin through its agent.
///
/// # Errors
/// 413 over [`MAX_COMMAND`]; 409 when the node is offline or the server not running.
pub async fn send_command(state: &AppState, instance: &Instance, command: &str) -> AppResult<()> {
    if command.len() > MAX_COMMAND {
        return Err(AppError::PayloadTooLarge);
    }
    let body = CommandRequest {
        command: command.to_owned(),
    };
    connected(state, &instance.node_id)
        .await?
        .request::<api::InstanceCommand>(&instance.id.as_str(), &(), &body)
        .await?;
    Ok(())
}

/// Applies `action` to `instance`: stores the desired state, asks the agent, records the
/// state it reports. An agent that does not know the instance yet gets its spec first.
///
/// # Errors
/// 409 `SERVER_SUSPENDED` for a start or restart of a server suspended for non-payment
/// (every start path comes here); 409 when the node is offline or the agent refuses the
/// transition.
pub async fn act(
    state: &AppState,
    instance: &Instance,
    action: PowerAction,
) -> AppResult<InstanceStatus> {
    if matches!(action, PowerAction::Start | PowerAction::Restart) {
        crate::billing::dunning::refuse_if_suspended(state, &instance.id).await?;
    }
    let conn = connected(state, &instance.node_id).await?;
    let desired = match action {
        PowerAction::Start | PowerAction::Restart => DesiredState::Running,
        PowerAction::Stop | PowerAction::Kill => DesiredState::Stopped,
    };
    store::set_desired(&state.db.pool, &instance.id, desired).await?;
    let id = instance.id.as_str();
    let body = PowerRequest { action };
    let answer = match conn.request::<api::InstancePower>(&id, &(), &body).await {
        Err(AppError::NotFound(_)) => {
            sync::push_instance(state, instance).await?;
            conn.request::<api::InstancePower>(&id, &(), &body).await?
        }
        other => other?,
    };
    record(state, instance, answer).await
}

/// Records the state a node answered with (unless newer is known).
async fn record(
    state: &AppState,
    instance: &Instance,
    status: InstanceStatus,
) -> AppResult<InstanceStatus> {
    sync::record_state(
        state,
        &instance.node_id,
        &instance.id,
        status.state,
        status.state_version,
    )
    .await?;
    Ok(status)
}

async fn power(
    state: &AppState,
    instance: Instance,
    action: PowerAction,
) -> AppResult<(StatusCode, AppJson<Value>)> {
    crate::migrations::guard(state, &instance.id).await?;
    let status = act(state, &instance, action).await?;
    Ok((
        StatusCode::ACCEPTED,
        AppJson(json!({
            "id": instance.id,
            "action": action.as_str(),
            "state": status.state,
            "desired_state": status.desired,
        })),
    ))
}

/// `POST /v1/instances/{id}/start`.
pub async fn start(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesPower>,
) -> AppResult<(StatusCode, AppJson<Value>)> {
    power(&state, instance, PowerAction::Start).await
}

/// `POST /v1/instances/{id}/stop`.
pub async fn stop(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesPower>,
) -> AppResult<(StatusCode, AppJson<Value>)> {
    power(&state, instance, PowerAction::Stop).await
}

/// `POST /v1/instances/{id}/restart`.
pub async fn restart(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesPower>,
) -> AppResult<(StatusCode, AppJson<Value>)> {
    power(&state, instance, PowerAction::Restart).await
}

/// `POST /v1/instances/{id}/kill`.
pub async fn kill(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesPower>,
) -> AppResult<(StatusCode, AppJson<Value>)> {
    power(&state, instance, PowerAction::Kill).await
}

/// `POST /v1/instances/{id}/reinstall`: runs the egg's install script again over the
/// existing files (the server must be stopped; not while suspended for non-payment).
pub async fn reinstall(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesUpdate>,
) -> AppResult<(StatusCode, AppJson<Value>)> {
    crate::billing::dunning::refuse_if_suspended(&state, &instance.id).await?;
    let conn = connected(&state, &instance.node_id).await?;
    let id = instance.id.as_str();
    let answer = match conn.request::<api::InstanceInstall>(&id, &(), &()).await {
        Err(AppError::NotFound(_)) => {
            sync::push_instance(&state, &instance).await?;
            conn.request::<api::InstanceInstall>(&id, &(), &()).await?
        }
        other => other?,
    };
    let status = record(&state, &instance, answer).await?;
    Ok((
        StatusCode::ACCEPTED,
        AppJson(json!({"id": instance.id, "state": status.state})),
    ))
}
