//! Agent API of git deploy: `POST /v1/instances/{id}/git/sync` runs a sync and answers
//! with the deployed commit ([`shardlyn_proto::git::SyncResult`]); `DELETE
//! /v1/instances/{id}/git` drops the staging repository when the panel removes the
//! instance's git settings.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use shardlyn_proto::agent_api as api;
use shardlyn_proto::git::SyncRequest;

use super::{GitError, sync};
use crate::api::json::AgentJson;
use crate::api::{AgentState, Declared};
use crate::error::ApiResult;
use crate::files::FileError;

/// The git routes of the agent API.
pub fn router() -> Router<AgentState> {
    Router::new()
        .at::<api::GitSync, _, _>(run)
        .at::<api::GitForget, _, _>(forget)
}

fn known(state: &AgentState, id: &str) -> Result<(), GitError> {
    if crate::instances::valid_id(id) && state.instances.get(id).is_ok() {
        Ok(())
    } else {
        Err(GitError::Files(FileError::NoInstance))
    }
}

/// `POST /v1/instances/{id}/git/sync`: 409 while another sync of the instance runs. The
/// sync runs in its own task, so it completes (and frees the instance) even when the
/// caller goes away.
async fn run(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<SyncRequest>,
) -> ApiResult<Response> {
    known(&state, &id)?;
    let guard = state.git.begin(&id)?;
    let manager = state.instances.clone();
    let task = tokio::spawn(async move {
        let _guard = guard;
        let started = std::time::Instant::now();
        let result = sync(&manager, &id, &req).await;
        match &result {
            Ok(r) => tracing::info!(
                instance.id = %id, git.commit = %r.commit, git.files = r.files,
                duration_ms = started.elapsed().as_millis(), "git sync done"
            ),
            Err(e) => tracing::warn!(instance.id = %id, error = %e, "git sync failed"),
        }
        result
    });
    match task.await {
        Ok(result) => Ok(Json(result?).into_response()),
        Err(e) => Err(GitError::Io(format!("sync task: {e}")).into()),
    }
}

/// `DELETE /v1/instances/{id}/git`: removes the staging data; 409 while a sync runs.
async fn forget(State(state): State<AgentState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if !crate::instances::valid_id(&id) {
        return Err(FileError::NoInstance.into());
    }
    let _guard = state.git.begin(&id)?;
    let manager = state.instances.clone();
    let _ = tokio::task::spawn_blocking(move || super::forget(&manager, &id)).await;
    Ok(StatusCode::NO_CONTENT)
}
