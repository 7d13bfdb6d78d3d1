//! `POST /v1/processes/{pid}/kill`: signals a process of the node (from the inventory's
//! process list). Refuses pid 1 and the agent itself. Uses the `kill` utility, since the
//! workspace forbids `unsafe` and std has no signal API.
//!
//! Trust boundary: only processes inside the cgroup of a container this agent created
//! can be signalled, unless the panel adds `?all=true` (platform admins only); any other
//! process is as missing as one that does not exist (404).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use shardlyn_proto::agent_api::Scope;
use shardlyn_proto::inventory::KillProcessRequest;

use super::AgentState;
use super::containers::managed;
use crate::error::{ApiError, ApiResult};

const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "STOP", "CONT",
];

/// Whether process `pid` runs in the cgroup of a container this agent created: its
/// `/proc/PID/cgroup` names the container's full id (`/docker/ID` with the cgroupfs
/// driver, `docker-ID.scope` with systemd, `libpod-ID.scope` with Podman).
async fn in_managed_container(state: &AgentState, pid: u32) -> bool {
    let Ok(cgroup) = tokio::fs::read_to_string(format!("/proc/{pid}/cgroup")).await else {
        return false;
    };
    let Ok(containers) = managed(state).await else {
        return false;
    };
    containers
        .iter()
        .any(|c| c.id.len() == 64 && cgroup.contains(&c.id))
}

pub async fn kill(
    State(state): State<AgentState>,
    Path(pid): Path<String>,
    Query(scope): Query<Scope>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let pid = pid
        .parse::<u32>()
        .map_err(|_| ApiError::bad_request("invalid pid"))?;
    let req: KillProcessRequest = if body.iter().all(u8::is_ascii_whitespace) {
        KillProcessRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let signal = req.signal.unwrap_or_else(|| "SIGTERM".into());
    let name = signal.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name).to_string();
    if !SIGNALS.contains(&name.as_str()) {
        return Err(ApiError::bad_request("unsupported signal"));
    }
    let gone = || ApiError::not_found("no such process");
    if pid == 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(gone());
    }
    if pid == 1 || pid == std::process::id() {
        return Err(ApiError::conflict(
            "refusing to signal init or the agent itself",
        ));
    }
    if !scope.all && !in_managed_container(&state, pid).await {
        tracing::info!(pid, "refusing a process outside Shardlyn's containers");
        return Err(gone());
    }
    let out = tokio::process::Command::new("kill")
        .arg("-s")
        .arg(&name)
        .arg(pid.to_string())
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("running kill: {e}")))?;
    if out.status.success() {
        Ok(StatusCode::NO_CONTENT)
    } else if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        Err(ApiError::conflict(
            String::from_utf8_lossy(&out.stderr).trim(),
        ))
    } else {
        Err(gone())
    }
}
