//! Agent API: instance backups (`crate::backups`): create, status, download of local
//! archives, restore, delete.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shardlyn_proto::agent_api as api;
use shardlyn_proto::backup::{CreateBackup, RestoreBackup};

use super::instances::instance_error;
use super::json::AgentJson;
use super::{AgentState, Declared};

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

async fn list(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    axum::Json(state.backups.list(&id)).into_response()
}

async fn create(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<CreateBackup>,
) -> Response {
    match state.backups.create(&id, req) {
        Ok(info) => (StatusCode::ACCEPTED, axum::Json(info)).into_response(),
        Err(e) => instance_error(&e),
    }
}

async fn info(
    State(state): State<AgentState>,
    Path((id, bid)): Path<(String, String)>,
) -> Response {
    match state.backups.info(&id, &bid) {
        Ok(info) => axum::Json(info).into_response(),
        Err(e) => instance_error(&e),
    }
}

async fn delete(
    State(state): State<AgentState>,
    Path((id, bid)): Path<(String, String)>,
) -> Response {
    match state.backups.delete(&id, &bid) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => instance_error(&e),
    }
}

async fn download(
    State(state): State<AgentState>,
    Path((id, bid)): Path<(String, String)>,
) -> Response {
    let path = match state.backups.archive_path(&id, &bid) {
        Ok(p) => p,
        Err(e) => return instance_error(&e),
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => return instance_error(&e.into()),
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or_default();
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    (
        [
            (header::CONTENT_TYPE, "application/zstd".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response()
}

async fn restore(
    State(state): State<AgentState>,
    Path((id, bid)): Path<(String, String)>,
    AgentJson(req): AgentJson<RestoreBackup>,
) -> Response {
    match state.backups.restore(&id, &bid, req).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => instance_error(&e),
    }
}
