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
    /// The servers of `stop_instead`, stopped.
    pub stopped: Vec<DrainStopped>,
    /// Servers of `stop_instead` that could not be stopped.
    pub failed: Vec<DrainFailed>,
    /// The moves started (queued; they run in waves).
    #[serde(default)]
    pub migrations: Vec<crate::migrations::MigrationView>,
    /// Servers that fit on no other node (or cannot move now), left running here.
    #[serde(default)]
    pub unplaced: Vec<crate::migrations::bulk::Unplaced>,
}

/// The optional body of a drain.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainBody {
    /// Moves run at once (1 to 16, default 2).
    #[serde(default)]
    pub wave_size: Option<usize>,
    /// Servers to stop here instead of moving.
    #[serde(default)]
    pub stop_instead: Vec<String>,
}

/// A signal sent to a process of the node.
#[derive(Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ProcessKilled {
    pub pid: u32,
    pub signal: String,
}

/// `POST /v1/nodes/{id}/drain` (body optional: `wave_size`, `stop_instead`): cordons the
/// node, stops the servers of `stop_instead`, and moves every other one to its best-fit
/// node, in waves (`migrations::bulk`). Servers that fit nowhere, and every server when
/// the node is offline, are named in the answer and left where they are.
pub async fn drain(
    State(state): State<AppState>,
    Authorized {
        resource: node,
        user,
        ..
    }: Authorized<Node, perm::NodesUpdate>,
    body: axum::body::Bytes,
) -> AppResult<crate::respond::Accepted<DrainReport>> {
    let body: DrainBody = crate::backups::optional_json(&body)?;
    let wave = crate::migrations::handlers_wave(body.wave_size)?;
    let instances = store::list_for_node(&state.db.pool, &node.id).await?;
    if let Some(stranger) = body
        .stop_instead
        .iter()
        .find(|id| !instances.iter().any(|i| &i.id == *id))
    {
        return Err(AppError::unprocessable(
            "stop_instead",
            format!("{stranger} is not a server of this node"),
        ));
    }
    crate::nodes::store::set_cordoned(&state.db.pool, &node.id, true).await?;
    let (to_stop, to_move): (Vec<_>, Vec<_>) = instances
        .iter()
        .cloned()
        .partition(|i| body.stop_instead.contains(&i.id));
    let planned = if to_move.is_empty() {
        crate::migrations::bulk::Planned {
            migrations: Vec::new(),
            unplaced: Vec::new(),
        }
    } else if connected(&state, &node.id).await.is_err() {
        crate::migrations::bulk::Planned {
            migrations: Vec::new(),
            unplaced: to_move
                .iter()
                .map(|i| crate::migrations::bulk::Unplaced {
                    instance_id: i.id.clone(),
                    reason: "the node is offline: its files cannot be copied (POST \
                             /v1/nodes/{id}/migrate with \"from_backup\": true rebuilds \
                             servers from their S3 backups)"
                        .into(),
                })
                .collect(),
        }
    } else {
        let plan = crate::migrations::bulk::Plan {
            org_id: &node.organization_id,
            source: &node.id,
            target: None,
            wave,
            user_id: &user.user.id,
            from_backup: false,
        };
        crate::migrations::bulk::start(&state, &plan, to_move).await?
    };
    let mut stopped = Vec::new();
    let mut failed = Vec::new();
    for instance in &to_stop {
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
    Ok(crate::respond::Accepted(DrainReport {
        node_id: node.id,
        cordoned: true,
        instances: instances.len(),
        stopped,
        failed,
        migrations: planned.migrations,
        unplaced: planned.unplaced,
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
