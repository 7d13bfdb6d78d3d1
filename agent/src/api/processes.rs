//! `POST /v1/processes/{pid}/kill`: signals a process of the node (from the inventory's
//! process list). Refuses pid 1 and the agent itself. Uses the `kill` utility, since the
//! workspace forbids `unsafe` and std has no signal API.
//!
//! Trust boundary: only processes inside the cgroup of a container this agent created
//! can be signalled, unless the panel adds `?all=true` (platform admins only); any other
//! process is as missing as one that does not exist (404).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shardlyn_proto::agent_api::Scope;
use shardlyn_proto::inventory::KillProcessRequest;

use super::AgentState;
use super::containers::managed;
use super::instances::error;

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
) -> Response {
    let Ok(pid) = pid.parse::<u32>() else {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "invalid pid");
    };
    let req: KillProcessRequest = if body.iter().all(u8::is_ascii_whitespace) {
        KillProcessRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &e.to_string()),
        }
    };
    let signal = req.signal.unwrap_or_else(|| "SIGTERM".into());
    let name = signal.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name).to_string();
    if !SIGNALS.contains(&name.as_str()) {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "unsupported signal");
    }
    if pid == 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such process");
    }
    if pid == 1 || pid == std::process::id() {
        return error(
            StatusCode::CONFLICT,
            "CONFLICT",
            "refusing to signal init or the agent itself",
        );
    }
    if !scope.all && !in_managed_container(&state, pid).await {
        tracing::info!(pid, "refusing a process outside Shardlyn's containers");
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such process");
    }
    let out = tokio::process::Command::new("kill")
        .arg("-s")
        .arg(&name)
        .arg(pid.to_string())
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => StatusCode::NO_CONTENT.into_response(),
        Ok(o) => {
            let msg = String::from_utf8_lossy(&o.stderr).trim().to_string();
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                error(StatusCode::CONFLICT, "CONFLICT", &msg)
            } else {
                error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such process")
            }
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            &format!("running kill: {e}"),
        ),
    }
}
