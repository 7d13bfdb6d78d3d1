//! Keeps each agent's instance specs in step with the panel: specs are pushed on create,
//! update and every tunnel connect; the agent's state changes come back on its
//! `/v1/events` stream and are recorded.
//!
//! Trust boundary: an agent speaks only for its own node. Every state report (events,
//! power and spec answers) goes through [`record_state`], which records it only for an
//! instance placed on the reporting node and refuses versions from the far future
//! ([`store::MAX_STATE_VERSION_AHEAD_US`]); anything else is dropped with a warning.

use std::sync::Arc;

use http_body_util::BodyExt;
use shardlyn_proto::instance::{InstanceSpec, InstanceState, InstanceStatus, StateEvent};

use crate::error::{AppError, AppResult};
use crate::events::{Event, EventData};
use crate::instances::{Instance, spec, store};
use crate::state::AppState;
use crate::tunnel::AgentConn;
use shardlyn_proto::agent_api as api;

/// Sends `spec` to its node. `Ok(None)` when the node is not connected: the spec is
/// pushed again when its agent connects.
///
/// # Errors
/// The agent refused the spec or the tunnel failed mid-request.
pub async fn push(
    state: &AppState,
    node_id: &str,
    spec: &InstanceSpec,
) -> AppResult<Option<InstanceStatus>> {
    let Some(conn) = state.tunnels.find(node_id).await else {
        return Ok(None);
    };
    let status = conn
        .request::<api::InstancePut>(&spec.id.as_str(), &(), spec)
        .await?;
    Ok(Some(status))
}

/// Builds and pushes the spec of a stored instance, recording the state the agent reports.
///
/// # Errors
/// As [`push`].
pub async fn push_instance(state: &AppState, instance: &Instance) -> AppResult<()> {
    let spec = spec::build_spec(state, instance).await?;
    if let Some(status) = push(state, &instance.node_id, &spec).await? {
        record(state, instance, &status).await?;
    }
    Ok(())
}

/// Removes an instance (container and files) from its node. `Ok(false)` when the node
/// is not connected.
///
/// # Errors
/// The tunnel failed mid-request.
pub async fn remove(state: &AppState, node_id: &str, instance_id: &str) -> AppResult<bool> {
    let Some(conn) = state.tunnels.find(node_id).await else {
        return Ok(false);
    };
    match conn
        .request::<api::InstanceDelete>(&instance_id, &(), &())
        .await
    {
        Ok(_) | Err(AppError::NotFound(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

async fn record(state: &AppState, instance: &Instance, status: &InstanceStatus) -> AppResult<()> {
    record_state(
        state,
        &instance.node_id,
        &instance.id,
        status.state,
        status.state_version,
    )
    .await?;
    if status.installed {
        store::mark_installed(&state.db.pool, &instance.id, crate::db::now_ms()).await?;
    }
    Ok(())
}

/// Records the state `node_id`'s agent reported for `instance_id` (unless a newer one is
/// recorded) and publishes it on the event bus. A version more than [`store::MAX_STATE_VERSION_AHEAD_US`] ahead of the
/// panel's clock is refused and logged. Whether the report was accepted (an accepted
/// report older than the recorded one changes nothing).
///
/// # Errors
/// Database failures.
pub async fn record_state(
    state: &AppState,
    node_id: &str,
    instance_id: &str,
    reported: InstanceState,
    version: u64,
) -> AppResult<bool> {
    let bound = store::max_state_version();
    if version > bound {
        tracing::warn!(
            node.id = %node_id,
            instance.id = %instance_id,
            state.version = version,
            state.version_bound = bound,
            "refusing a state report from the future: is the node's clock wrong?"
        );
        return Ok(false);
    }
    if let Some(org_id) =
        store::set_state(&state.db.pool, instance_id, node_id, reported, version).await?
    {
        state
            .events
            .publish(Event::now(
                org_id,
                EventData::InstanceState {
                    instance_id: instance_id.to_owned(),
                    node_id: node_id.to_owned(),
                    state: reported,
                },
            ))
            .await;
    }
    Ok(true)
}

/// Runs for the life of one tunnel connection: pushes every spec of the node, then
/// records the state changes (and backup reports, SFTP logins) the agent streams until
/// the tunnel closes.
pub async fn on_connect(state: AppState, conn: Arc<AgentConn>) {
    let node_id = conn.node_id.clone();
    match store::list_for_node(&state.db.pool, &node_id).await {
        Ok(instances) => {
            for instance in &instances {
                if let Err(e) = push_instance(&state, instance).await {
                    tracing::warn!(instance.id = %instance.id, error = %e, "pushing instance spec");
                }
            }
        }
        Err(e) => tracing::warn!(node.id = %node_id, error = %e, "listing the node's instances"),
    }
    forget_moved_away(&state, &conn).await;
    let response = match conn.stream::<api::Events>(&(), &()).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(node.id = %node_id, error = %e, "agent event stream unavailable");
            return;
        }
    };
    // Reports from now on arrive on the stream; backups that ended before it opened are
    // asked about once.
    {
        let (state, conn) = (state.clone(), conn.clone());
        tokio::spawn(async move { crate::backups::progress::reconcile(&state, &conn).await });
    }
    let mut body = response.into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            if crate::sftp::dispatch(&state, &conn, &line)
                || crate::backups::progress::dispatch(&state, &conn, &line).await
            {
                continue;
            }
            match serde_json::from_slice::<StateEvent>(&line) {
                Ok(event) => apply(&state, &node_id, &event).await,
                Err(e) => tracing::debug!(error = %e, "skipping an unreadable agent event"),
            }
        }
    }
}

/// Removes from a node that connects the servers that moved away while it was offline
/// (rebuilt elsewhere from a backup, or switched before it could forget them), so a
/// server never runs on two nodes. A server being moved to this node is left alone.
async fn forget_moved_away(state: &AppState, conn: &AgentConn) {
    let node_id = conn.node_id.as_str();
    let Ok(running) = conn.request::<api::Instances>(&(), &(), &()).await else {
        return;
    };
    for status in running {
        let Ok(Some(row)) = store::find(&state.db.pool, &status.id).await else {
            continue;
        };
        if row.node_id == node_id {
            continue;
        }
        let incoming = matches!(
            crate::migrations::store::open_for(&state.db.pool, &row.id).await,
            Ok(Some(m)) if m.target_node_id == node_id
        );
        if incoming {
            continue;
        }
        tracing::info!(node.id = %node_id, instance.id = %row.id, instance.node_id = %row.node_id, "the node still had a server that moved away: removing it there");
        if let Err(e) = conn
            .request::<api::InstanceDelete>(&row.id.as_str(), &(), &())
            .await
        {
            tracing::warn!(instance.id = %row.id, error = %e, "removing a server that moved away");
        }
    }
}

/// Records one state event of `node_id`'s agent; an event about an instance of another
/// node is dropped and logged.
async fn apply(state: &AppState, node_id: &str, event: &StateEvent) {
    let pool = &state.db.pool;
    let result = async {
        let before = store::find(pool, &event.instance).await?;
        let Some(before) = before else {
            return Ok::<(), AppError>(());
        };
        if before.node_id != node_id {
            tracing::warn!(
                node.id = %node_id,
                instance.id = %event.instance,
                instance.node_id = %before.node_id,
                "dropping a state report about another node's instance"
            );
            return Ok(());
        }
        if !record_state(state, node_id, &event.instance, event.state, event.version).await? {
            return Ok(());
        }
        if let Some(desired) = event.desired {
            store::set_desired(pool, &event.instance, desired).await?;
        }
        crate::alerts::evaluate::on_instance_state(state, &before, event.state, event.desired)
            .await;
        let installed = matches!(
            event.state,
            InstanceState::Offline | InstanceState::Starting | InstanceState::Running
        );
        if installed && before.installed_at.is_none() {
            store::mark_installed(pool, &event.instance, event.at).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(instance.id = %event.instance, error = %e, "recording an agent event");
    }
}
