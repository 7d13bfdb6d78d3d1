//! Agent API: moving a server between nodes (`crate::transfers`). Source side:
//! `/v1/instances/{id}/transfer/{manifest,archive}`; target side: `/v1/transfers/{id}`.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shardlyn_proto::agent_api as api;
use shardlyn_proto::backup::RestoreBackup;
use shardlyn_proto::instance::{InstanceSpec, InstanceStatus};
use shardlyn_proto::transfer::{
    ArchiveSelect, Keep, Manifest, Notice, PartQuery, Pruned, Received,
};

use super::json::AgentJson;
use super::{AgentState, Declared};
use crate::error::ApiResult;

/// The transfer routes.
pub fn router() -> Router<AgentState> {
    Router::new()
        .at::<api::TransferManifest, _, _>(source_manifest)
        .at::<api::TransferArchive, _, _>(archive)
        .at::<api::TransferReceive, _, _>(receive)
        .at::<api::TransferStaged, _, _>(staged_manifest)
        .at::<api::TransferPrune, _, _>(prune)
        .at::<api::TransferAdopt, _, _>(adopt)
        .at::<api::TransferDiscard, _, _>(discard)
        .at::<api::TransferRestore, _, _>(restore)
        .at::<api::TransferNotice, _, _>(notice)
}

async fn source_manifest(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<PartQuery>,
) -> ApiResult<Json<Manifest>> {
    Ok(Json(
        state.transfers.source_manifest(&id, q.part, q.hash).await?,
    ))
}

async fn archive(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<PartQuery>,
    AgentJson(select): AgentJson<ArchiveSelect>,
) -> ApiResult<Response> {
    let rx = state.transfers.archive(&id, q.part, select)?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/zstd")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn receive(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<PartQuery>,
    body: Body,
) -> ApiResult<Json<Received>> {
    Ok(Json(state.transfers.receive(&id, q.part, body).await?))
}

async fn staged_manifest(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<PartQuery>,
) -> ApiResult<Json<Manifest>> {
    Ok(Json(
        state.transfers.staged_manifest(&id, q.part, q.hash).await?,
    ))
}

async fn prune(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<PartQuery>,
    AgentJson(keep): AgentJson<Keep>,
) -> ApiResult<Json<Pruned>> {
    Ok(Json(state.transfers.prune(&id, q.part, keep).await?))
}

async fn adopt(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(spec): AgentJson<InstanceSpec>,
) -> ApiResult<Json<InstanceStatus>> {
    if spec.id != id {
        return Err(crate::error::ApiError::bad_request(
            "the spec is of another server",
        ));
    }
    Ok(Json(state.transfers.adopt(spec).await?))
}

async fn discard(State(state): State<AgentState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.transfers.discard(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restore(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<RestoreBackup>,
) -> ApiResult<Json<Received>> {
    Ok(Json(state.transfers.restore(&id, req).await?))
}

async fn notice(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(notice): AgentJson<Notice>,
) -> ApiResult<StatusCode> {
    state.transfers.notice(&id, &notice)?;
    Ok(StatusCode::NO_CONTENT)
}
