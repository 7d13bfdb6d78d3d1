//! Node-wide actions that involve instances: drain, and killing a process on the node.

use axum::extract::State;
use serde::Serialize;
use shardlyn_proto::instance::{InstanceState, PowerAction};
use shardlyn_proto::inventory::KillProcessRequest;

use super::power::{act, connected};
use crate::authz::{Authorized, perm};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::instances::store;
use crate::nodes::store::Node;
use crate::state::AppState;

/// An instance a drain stopped, with the state its node reported.
#[derive(Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct DrainStopped {
    pub id: String,
    pub state: InstanceState,
}

/// An instance a drain could not stop, and why.
#[derive(Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct DrainFailed {
    pub id: String,
    pub error: String,
}

/// The outcome of a drain.
#[derive(Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct DrainReport {
    pub node_id: String,
    /// Always true: the node is cordoned first.
    pub cordoned: bool,
    /// How many instances the node had.
    pub instances: usize,
    pub stopped: Vec<DrainStopped>,
    pub failed: Vec<DrainFailed>,
}

/// A signal sent to a process of the node.
#[derive(Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ProcessKilled {
    pub pid: u32,
    pub signal: String,
}

/// `POST /v1/nodes/{id}/drain`: cordons the node and stops every instance on it. The
/// answer lists what was stopped and what could not be (migration comes later).
pub async fn drain(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
) -> AppResult<AppJson<DrainReport>> {
    crate::nodes::store::set_cordoned(&state.db.pool, &node.id, true).await?;
    let instances = store::list_for_node(&state.db.pool, &node.id).await?;
    let mut stopped = Vec::new();
    let mut failed = Vec::new();
    for instance in &instances {
        match act(&state, instance, PowerAction::Stop).await {
            Ok(status) => stopped.push(DrainStopped {
                id: instance.id.clone(),
                state: status.state,
            }),
            Err(e) => failed.push(DrainFailed {
                id: instance.id.clone(),
                error: e.to_string(),
            }),
        }
    }
    Ok(AppJson(DrainReport {
        node_id: node.id,
        cordoned: true,
        instances: instances.len(),
        stopped,
        failed,
    }))
}

/// `POST /v1/nodes/{id}/processes/{pid}/kill` with an optional `{"signal": "SIGKILL"}`.
pub async fn kill_process(
    State(state): State<AppState>,
    Authorized {
        resource: node,
        user,
        ..
    }: Authorized<Node, perm::NodesContainers>,
    AppPath((_, pid)): AppPath<(String, String)>,
    body: axum::body::Bytes,
) -> AppResult<AppJson<ProcessKilled>> {
    let pid: u32 = pid
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| AppError::invalid_field("pid", "pid must be a positive integer"))?;
    // The body is optional: empty means SIGTERM.
    let body: KillProcessRequest = if body.iter().all(u8::is_ascii_whitespace) {
        KillProcessRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::BadRequest(format!("invalid request body: {e}")))?
    };
    let signal = body.signal.unwrap_or_else(|| "SIGTERM".into());
    const SIGNALS: &[&str] = &[
        "SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
    ];
    if !SIGNALS.contains(&signal.as_str()) {
        return Err(AppError::invalid_field(
            "signal",
            format!("signal must be one of {}", SIGNALS.join(", ")),
        ));
    }
    let conn = connected(&state, &node.id).await?;
    let pid_param = pid.to_string();
    conn.request::<shardlyn_proto::agent_api::ProcessKill>(
        &pid_param.as_str(),
        &crate::nodes::node_scope(&user),
        &KillProcessRequest {
            signal: Some(signal.clone()),
        },
    )
    .await?;
    Ok(AppJson(ProcessKilled { pid, signal }))
}
