//! Agent API: instance backups (`crate::backups`): create, status, download of local
//! archives, restore, delete.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shardlyn_proto::agent_api as api;
use shardlyn_proto::backup::{BackupInfo, CreateBackup, RestoreBackup};

use super::json::AgentJson;
use super::{AgentState, Declared};
use crate::error::{ApiError, ApiResult};

/// The backups routes.
pub fn router() -> Router<AgentState> {
    Router::new()
        .at::<api::BackupList, _, _>(list)
        .at::<api::BackupCreate, _, _>(create)
        .at::<api::BackupGet, _, _>(info)
        .at::<api::BackupDelete, _, _>(delete)
        .at::<api::BackupDownload, _, _>(download)
        .at::<api::BackupRestore, _, _>(restore)
}

async fn list(State(state): State<AgentState>, Path(id): Path<String>) -> Json<Vec<BackupInfo>> {
    Json(state.backups.list(&id))
}

async fn create(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<CreateBackup>,
) -> ApiResult<(StatusCode, Json<BackupInfo>)> {
    Ok((StatusCode::ACCEPTED, Json(state.backups.create(&id, req)?)))
}

async fn info(
    State(state): State<AgentState>,
    Path((id, bid)): Path<(String, String)>,
) -> ApiResult<Json<BackupInfo>> {
    Ok(Json(state.backups.info(&id, &bid)?))
}

async fn delete(
    State(state): State<AgentState>,
    Path((id, bid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.backups.delete(&id, &bid)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn download(
    State(state): State<AgentState>,
    Path((id, bid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let path = state.backups.archive_path(&id, &bid)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or_default();
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

async fn restore(
    State(state): State<AgentState>,
    Path((id, bid)): Path<(String, String)>,
    AgentJson(req): AgentJson<RestoreBackup>,
) -> ApiResult<StatusCode> {
    state.backups.restore(&id, &bid, req).await?;
    Ok(StatusCode::ACCEPTED)
}
