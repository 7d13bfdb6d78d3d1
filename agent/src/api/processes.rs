//! `POST /v1/processes/{pid}/kill`: signals a process of the node (from the inventory's
//! process list). Refuses pid 1 and the agent itself. Uses the `kill` utility, since the
//! workspace forbids `unsafe` and std has no signal API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AgentState;
use super::instances::error;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KillRequest {
    signal: Option<String>,
}

const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "STOP", "CONT",
];

pub async fn kill(
    State(_): State<AgentState>,
    Path(pid): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(pid) = pid.parse::<u32>() else {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "invalid pid");
    };
    let req: KillRequest = if body.iter().all(u8::is_ascii_whitespace) {
        KillRequest::default()
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
