//! The instance routes of the agent API (table in `shardlyn_proto::instance`): specs,
//! power, install, commands, stats and logs. Streams live in `events.rs`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shardlyn_proto::agent_api::LinesQuery;
use shardlyn_proto::instance::{
    CommandRequest, InstanceSpec, InstanceStats, InstanceStatus, LogLines, PowerRequest,
};

use super::AgentState;
use super::json::AgentJson;
use crate::error::{ApiError, ApiResult};
use crate::instances::valid_id;

/// Longest console command.
const MAX_COMMAND: usize = 4096;

/// Refuses an invalid instance id in a path.
///
/// # Errors
/// 400 when `id` is not 1-64 letters, digits or dashes.
pub(crate) fn check_id(id: &str) -> ApiResult<()> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid instance id (1-64 letters, digits or dashes)",
        ))
    }
}

pub async fn list(State(state): State<AgentState>) -> Json<Vec<InstanceStatus>> {
    Json(state.instances.list())
}

pub async fn get(
    State(state): State<AgentState>,
    Path(id): Path<String>,
) -> ApiResult<Json<InstanceStatus>> {
    check_id(&id)?;
    Ok(Json(state.instances.status(&id)?))
}

pub async fn put(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(spec): AgentJson<InstanceSpec>,
) -> ApiResult<Json<InstanceStatus>> {
    check_id(&id)?;
    if spec.id != id {
        return Err(ApiError::bad_request("the spec's id differs from the path"));
    }
    Ok(Json(state.instances.put(spec).await?))
}

pub async fn delete(
    State(state): State<AgentState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    check_id(&id)?;
    state.instances.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn install(
    State(state): State<AgentState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<InstanceStatus>)> {
    check_id(&id)?;
    Ok((StatusCode::ACCEPTED, Json(state.instances.reinstall(&id)?)))
}

pub async fn power(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<PowerRequest>,
) -> ApiResult<(StatusCode, Json<InstanceStatus>)> {
    check_id(&id)?;
    let status = state.instances.power(&id, req.action).await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

pub async fn command(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<CommandRequest>,
) -> ApiResult<StatusCode> {
    check_id(&id)?;
    if req.command.len() > MAX_COMMAND {
        return Err(ApiError::too_large("the command is longer than 4 KiB"));
    }
    let line = req.command.strip_suffix('\n').unwrap_or(&req.command);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains(['\n', '\r']) {
        return Err(ApiError::bad_request("a command is one line"));
    }
    state.instances.command(&id, line).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stats(
    State(state): State<AgentState>,
    Path(id): Path<String>,
) -> ApiResult<Json<InstanceStats>> {
    check_id(&id)?;
    Ok(Json(state.instances.stats(&id).await?))
}

pub async fn logs(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<LinesQuery>,
) -> ApiResult<Json<LogLines>> {
    check_id(&id)?;
    let n = q.lines.unwrap_or(100).clamp(1, 5000);
    let lines = state.instances.logs(&id, n).await?;
    Ok(Json(LogLines { lines }))
}

pub async fn install_logs(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<LinesQuery>,
) -> ApiResult<Json<LogLines>> {
    check_id(&id)?;
    let n = q.lines.unwrap_or(5000).clamp(1, 5000);
    let lines = state.instances.install_logs(&id, n).await?;
    Ok(Json(LogLines { lines }))
}

pub async fn download_logs(
    State(state): State<AgentState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    check_id(&id)?;
    let bytes = state.instances.log_file(&id).await?;
    Ok((
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
        .into_response())
}

pub async fn clear_logs(
    State(state): State<AgentState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    check_id(&id)?;
    state.instances.clear_logs(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
