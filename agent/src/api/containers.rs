//! Containers on the node: list, logs, start, stop, restart, kill.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use shardlyn_proto::ErrorBody;

use super::AgentState;
use crate::runtime::{Runtime, RuntimeError};

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}

fn runtime_error(err: &RuntimeError) -> Response {
    match err {
        RuntimeError::NotFound => error(StatusCode::NOT_FOUND, "NOT_FOUND", "container not found"),
        RuntimeError::Conflict(m) => error(StatusCode::CONFLICT, "CONFLICT", m),
        RuntimeError::Unavailable(m) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", m)
        }
    }
}

/// Docker ids and names: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn bad_id() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        "invalid container id",
    )
}

pub async fn list(State(state): State<AgentState>) -> Response {
    match state.runtime.list().await {
        Ok(list) => Json(list).into_response(),
        Err(e) => runtime_error(&e),
    }
}

#[derive(Deserialize)]
pub struct LogsQuery {
    tail: Option<u32>,
}

pub async fn logs(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if !valid_id(&id) {
        return bad_id();
    }
    match state
        .runtime
        .logs(&id, q.tail.unwrap_or(100).min(10_000))
        .await
    {
        Ok(lines) => Json(json!({"lines": lines})).into_response(),
        Err(e) => runtime_error(&e),
    }
}

#[derive(Deserialize, Default)]
pub struct PowerQuery {
    /// Seconds to wait before SIGKILL on stop/restart.
    timeout: Option<u32>,
    /// Signal for kill (default SIGKILL).
    signal: Option<String>,
}

pub async fn power(
    State(state): State<AgentState>,
    Path((id, action)): Path<(String, String)>,
    Query(q): Query<PowerQuery>,
) -> Response {
    if !valid_id(&id) {
        return bad_id();
    }
    let timeout = q.timeout.unwrap_or(10).min(600);
    let result = match action.as_str() {
        "start" => state.runtime.start(&id).await,
        "stop" => state.runtime.stop(&id, i64::from(timeout)).await,
        "restart" => {
            state
                .runtime
                .restart(&id, isize::try_from(timeout).unwrap_or(10))
                .await
        }
        "kill" => {
            let signal = q.signal.unwrap_or_else(|| "SIGKILL".into());
            if !signal.chars().all(|c| c.is_ascii_alphanumeric()) || signal.len() > 16 {
                return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "invalid signal");
            }
            state.runtime.kill(&id, &signal).await
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such container action",
            );
        }
    };
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => runtime_error(&e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn container_ids_are_checked() {
        assert!(super::valid_id("3f1c2a"));
        assert!(super::valid_id("my-server_1.x"));
        for bad in ["", "../x", "-x", "a/b", "a b", &"a".repeat(129)] {
            assert!(!super::valid_id(bad), "{bad}");
        }
    }
}
