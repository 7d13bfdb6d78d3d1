//! The instance routes of the agent API (table in `shardlyn_proto::instance`): specs,
//! power, install, commands, stats and logs. Streams live in `events.rs`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shardlyn_proto::ErrorBody;
use shardlyn_proto::agent_api::LinesQuery;
use shardlyn_proto::instance::{CommandRequest, InstanceSpec, LogLines, PowerRequest};

use super::AgentState;
use super::json::AgentJson;
use crate::instances::{InstanceError, valid_id};

/// Longest console command.
const MAX_COMMAND: usize = 4096;

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}

pub(crate) fn instance_error(err: &InstanceError) -> Response {
    let (status, code) = match err {
        InstanceError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        InstanceError::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
        InstanceError::ImageUnavailable(_) => (StatusCode::CONFLICT, "IMAGE_UNAVAILABLE"),
        InstanceError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        InstanceError::Docker(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        InstanceError::Internal(_) => {
            tracing::error!(error = %err, "instance operation failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
        }
    };
    error(status, code, &err.to_string())
}

fn result<T: serde::Serialize>(status: StatusCode, r: Result<T, InstanceError>) -> Response {
    match r {
        Ok(v) => (status, Json(v)).into_response(),
        Err(e) => instance_error(&e),
    }
}

/// The error response for an invalid instance id in a path.
pub(crate) fn check_id(id: &str) -> Option<Response> {
    (!valid_id(id)).then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "invalid instance id (1-64 letters, digits or dashes)",
        )
    })
}

pub async fn list(State(state): State<AgentState>) -> Response {
    Json(state.instances.list()).into_response()
}

pub async fn get(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    result(StatusCode::OK, state.instances.status(&id))
}

pub async fn put(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(spec): AgentJson<InstanceSpec>,
) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    if spec.id != id {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the spec's id differs from the path",
        );
    }
    result(StatusCode::OK, state.instances.put(spec).await)
}

pub async fn delete(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    match state.instances.delete(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => instance_error(&e),
    }
}

pub async fn install(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    result(StatusCode::ACCEPTED, state.instances.reinstall(&id))
}

pub async fn power(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<PowerRequest>,
) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    result(
        StatusCode::ACCEPTED,
        state.instances.power(&id, req.action).await,
    )
}

pub async fn command(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<CommandRequest>,
) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    if req.command.len() > MAX_COMMAND {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the command is longer than 4 KiB",
        );
    }
    let line = req.command.strip_suffix('\n').unwrap_or(&req.command);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains(['\n', '\r']) {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "a command is one line",
        );
    }
    match state.instances.command(&id, line).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => instance_error(&e),
    }
}

pub async fn stats(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    result(StatusCode::OK, state.instances.stats(&id).await)
}

pub async fn logs(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<LinesQuery>,
) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    let n = q.lines.unwrap_or(100).clamp(1, 5000);
    result(
        StatusCode::OK,
        state
            .instances
            .logs(&id, n)
            .await
            .map(|lines| LogLines { lines }),
    )
}

pub async fn install_logs(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<LinesQuery>,
) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    let n = q.lines.unwrap_or(5000).clamp(1, 5000);
    result(
        StatusCode::OK,
        state
            .instances
            .install_logs(&id, n)
            .await
            .map(|lines| LogLines { lines }),
    )
}

pub async fn download_logs(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    match state.instances.log_file(&id).await {
        Ok(bytes) => (
            [
                (
                    http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
                (
                    http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}.log\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => instance_error(&e),
    }
}

pub async fn clear_logs(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    if let Some(r) = check_id(&id) {
        return r;
    }
    match state.instances.clear_logs(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => instance_error(&e),
    }
}
