//! The tus handlers: discovery (`OPTIONS`), creation (`POST`, with an optional first
//! chunk), offsets (`HEAD`), appends (`PATCH`) and termination (`DELETE`). Bytes are
//! streamed to the agent as they arrive, never buffered here; the agent's offset is the
//! one reported.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use shardlyn_proto::upload::{CHECKSUM_HEADER, CreateUpload, UploadStatus};

use super::store::{self, Upload};
use super::tus;
use crate::authz::{Authorized, perm};
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppPath};
use crate::instances::ops::power::connected;
use crate::instances::ops::sync::push_instance;
use crate::instances::store::Instance;
use crate::state::AppState;
use crate::tunnel::AgentConn;
use shardlyn_proto::agent_api::{self as api, Endpoint};

/// The instance of the route, authorized for writing files; a refusal is answered with
/// the tus headers like every other error of the protocol.
type Auth = Result<Authorized<Instance, perm::InstancesFilesWrite>, AppError>;
/// Longest wait for an agent's answer once it has the whole body.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

type TusResult = Result<Response, Response>;

fn fail(e: AppError) -> Response {
    tus::with_resumable(e.into_response())
}

fn done(r: TusResult) -> Response {
    match r {
        Ok(r) | Err(r) => tus::with_resumable(r),
    }
}

/// The URL of an upload (the `Location` of its creation).
fn upload_url(instance: &str, upload: &str) -> String {
    format!("/v1/instances/{instance}/files/tus/{upload}")
}

/// `OPTIONS`: what this server supports.
pub async fn options(State(state): State<AppState>) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(tus::TUS_RESUMABLE, HeaderValue::from_static(tus::VERSION));
    h.insert(tus::TUS_VERSION, HeaderValue::from_static(tus::VERSION));
    h.insert(
        tus::TUS_EXTENSION,
        HeaderValue::from_static(tus::EXTENSIONS),
    );
    h.insert(
        tus::TUS_CHECKSUM_ALGORITHM,
        HeaderValue::from_static(tus::CHECKSUM_ALGORITHMS),
    );
    h.insert(
        tus::TUS_MAX_SIZE,
        HeaderValue::from(state.config.instances.upload_max_bytes),
    );
    r
}

/// An agent's answer: the JSON of a 2xx, or the error response to hand on (its 4xx as
/// sent, including 460; anything else a 503).
async fn agent_answer(response: http::Response<hyper::body::Incoming>) -> Result<Value, Response> {
    let status = response.status();
    let bytes = match tokio::time::timeout(ANSWER_TIMEOUT, response.into_body().collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => return Err(fail(AppError::Unavailable("node did not answer".into()))),
    };
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    if status.is_client_error() || status.as_u16() == shardlyn_proto::upload::CHECKSUM_MISMATCH {
        return Err((status, axum::Json(value)).into_response());
    }
    Err(fail(AppError::Unavailable(format!(
        "node answered {status}: {}",
        value["error"].as_str().unwrap_or("no detail")
    ))))
}

/// `E` on the agent with a streamed body: its answer read as `E::Response`, or the
/// error response to hand on ([`agent_answer`]).
async fn agent_call<E: Endpoint>(
    conn: &AgentConn,
    params: &E::Params<'_>,
    query: &E::Query,
    headers: HeaderMap,
    body: Body,
) -> Result<E::Response, Response>
where
    E::Query: serde::Serialize,
    E::Response: serde::de::DeserializeOwned,
{
    let response = conn
        .open::<E>(params, query, headers, body)
        .await
        .map_err(fail)?;
    let value = agent_answer(response).await?;
    serde_json::from_value(value).map_err(|e| {
        fail(AppError::Unavailable(format!(
            "node answered an unreadable upload status: {e}"
        )))
    })
}

/// The instance (authorized) and its upload record, live: 404 when unknown, 410 once
/// expired unfinished.
async fn load(state: &AppState, auth: Auth, upload: &str) -> Result<(Instance, Upload), Response> {
    let instance = auth.map_err(fail)?.resource;
    let record = store::find(&state.db.pool, &instance.id, upload)
        .await
        .map_err(|e| fail(e.into()))?
        .ok_or_else(|| fail(AppError::not_found("upload")))?;
    if record.completed_at.is_none() && record.expires_at < state.clock.now_ms() {
        return Err(fail(AppError::coded(
            StatusCode::GONE,
            "GONE",
            "the upload expired",
        )));
    }
    Ok((instance, record))
}

/// Streams `body` to the agent at `offset`; records what it reports.
async fn append(
    state: &AppState,
    conn: &AgentConn,
    record: &Upload,
    offset: u64,
    headers: &HeaderMap,
    body: Body,
) -> Result<UploadStatus, Response> {
    let mut forward = HeaderMap::new();
    if let Some(v) = headers.get(tus::UPLOAD_CHECKSUM) {
        forward.insert(CHECKSUM_HEADER, v.clone());
    }
    forward.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let status = agent_call::<api::UploadWrite>(
        conn,
        &(record.instance_id.as_str(), record.id.as_str()),
        &api::UploadOffset { offset },
        forward,
        body,
    )
    .await?;
    record_status(state, &status).await?;
    Ok(status)
}

async fn record_status(state: &AppState, status: &UploadStatus) -> Result<(), Response> {
    store::set_offset(
        &state.db.pool,
        &status.id,
        i64::try_from(status.offset).unwrap_or(i64::MAX),
        status.completed.then(now_ms),
    )
    .await
    .map_err(|e| fail(e.into()))
}

/// Offset headers of an answer, with `Upload-Expires` while unfinished.
fn offset_headers(r: &mut Response, status: &UploadStatus) {
    r.headers_mut()
        .insert(tus::UPLOAD_OFFSET, HeaderValue::from(status.offset));
    if !status.completed {
        tus::set(r, tus::UPLOAD_EXPIRES, &tus::http_date(status.expires_at));
    }
}

/// `POST /v1/instances/{id}/files/tus`: creation, with the first chunk when the body is
/// `application/offset+octet-stream`.
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Body,
) -> Response {
    done(create_inner(&state, auth, &headers, body).await)
}

async fn create_inner(state: &AppState, auth: Auth, headers: &HeaderMap, body: Body) -> TusResult {
    let Authorized {
        resource: instance,
        user,
        ..
    } = auth.map_err(fail)?;
    if let Some(r) = tus::check_version(headers) {
        return Err(r);
    }
    let bad = |m: String| fail(AppError::BadRequest(m));
    if headers.contains_key(tus::UPLOAD_DEFER_LENGTH) {
        return Err(bad("Upload-Defer-Length is not supported".into()));
    }
    let length = tus::number(headers, tus::UPLOAD_LENGTH)
        .map_err(bad)?
        .ok_or_else(|| bad("Upload-Length is required".into()))?;
    if length > state.config.instances.upload_max_bytes {
        return Err(fail(AppError::PayloadTooLarge));
    }
    let metadata_text = match headers.get(tus::UPLOAD_METADATA) {
        Some(v) => v
            .to_str()
            .map_err(|_| bad("Upload-Metadata is not text".into()))?,
        None => "",
    };
    let metadata = tus::parse_metadata(metadata_text).map_err(bad)?;
    let path = tus::target_path(&metadata).map_err(bad)?;
    let with_upload = tus::is_offset_stream(headers);

    let now = state.clock.now_ms();
    let conn = connected(state, &instance.node_id).await.map_err(fail)?;
    let expiry_ms = i64::try_from(state.config.instances.upload_expiry_secs)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000);
    let record = Upload {
        id: new_id(),
        instance_id: instance.id.clone(),
        user_id: user.user.id.clone(),
        path,
        length: i64::try_from(length).unwrap_or(i64::MAX),
        offset: 0,
        metadata: metadata_text.to_string(),
        created_at: now,
        expires_at: now.saturating_add(expiry_ms),
        completed_at: None,
    };
    store::insert(&state.db.pool, &record)
        .await
        .map_err(|e| fail(e.into()))?;
    let mut status = match open_on_agent(state, &conn, &instance, &record, length).await {
        Ok(s) => s,
        Err(r) => {
            let _ = store::delete(&state.db.pool, &record.id).await;
            return Err(r);
        }
    };
    record_status(state, &status).await?;
    if with_upload && !status.completed {
        status = match append(state, &conn, &record, 0, headers, body).await {
            Ok(s) => s,
            // The upload exists whatever happened to its first chunk: report where it is.
            Err(_) => current(state, &conn, &record).await.unwrap_or(status),
        };
    }
    tracing::info!(upload = %record.id, instance = %instance.id, upload.bytes = length, "upload created");
    let mut r = StatusCode::CREATED.into_response();
    tus::set(
        &mut r,
        header::LOCATION.as_str(),
        &upload_url(&instance.id, &record.id),
    );
    offset_headers(&mut r, &status);
    Ok(r)
}

/// Asks the agent to open the upload, giving it the instance's spec first if it does
/// not know the instance yet.
async fn open_on_agent(
    state: &AppState,
    conn: &Arc<AgentConn>,
    instance: &Instance,
    record: &Upload,
    length: u64,
) -> Result<UploadStatus, Response> {
    let body = CreateUpload {
        id: record.id.clone(),
        path: record.path.clone(),
        length,
        expires_at: record.expires_at,
    };
    let id = instance.id.as_str();
    let (json, bytes) = AgentConn::json_body::<api::UploadCreate>(&body).map_err(fail)?;
    let first = agent_call::<api::UploadCreate>(conn, &id, &(), json, bytes).await;
    match first {
        Err(r) if r.status() == StatusCode::NOT_FOUND => {
            push_instance(state, instance).await.map_err(fail)?;
            let (json, bytes) = AgentConn::json_body::<api::UploadCreate>(&body).map_err(fail)?;
            agent_call::<api::UploadCreate>(conn, &id, &(), json, bytes).await
        }
        other => other,
    }
}

/// The agent's view of an upload.
async fn current(
    state: &AppState,
    conn: &AgentConn,
    record: &Upload,
) -> Result<UploadStatus, Response> {
    let status = agent_call::<api::UploadGet>(
        conn,
        &(record.instance_id.as_str(), record.id.as_str()),
        &(),
        HeaderMap::new(),
        Body::empty(),
    )
    .await?;
    record_status(state, &status).await?;
    Ok(status)
}

/// `HEAD /v1/instances/{id}/files/tus/{upload}`: where the upload stands.
pub async fn head(
    State(state): State<AppState>,
    auth: Auth,
    AppPath((_, upload)): AppPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done(head_inner(&state, auth, &upload, &headers).await)
}

async fn head_inner(state: &AppState, auth: Auth, upload: &str, headers: &HeaderMap) -> TusResult {
    let (instance, record) = load(state, auth, upload).await?;
    if let Some(r) = tus::check_version(headers) {
        return Err(r);
    }
    let status = if record.completed_at.is_some() {
        UploadStatus {
            id: record.id.clone(),
            offset: u64::try_from(record.length).unwrap_or(0),
            length: u64::try_from(record.length).unwrap_or(0),
            completed: true,
            expires_at: record.expires_at,
        }
    } else {
        let conn = connected(state, &instance.node_id).await.map_err(fail)?;
        match current(state, &conn, &record).await {
            Err(r) if r.status() == StatusCode::NOT_FOUND => {
                // The agent lost the data: the client has to start over.
                let _ = store::delete(&state.db.pool, &record.id).await;
                return Err(r);
            }
            other => other?,
        }
    };
    let mut r = StatusCode::OK.into_response();
    offset_headers(&mut r, &status);
    r.headers_mut()
        .insert(tus::UPLOAD_LENGTH, HeaderValue::from(status.length));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !record.metadata.is_empty() {
        tus::set(&mut r, tus::UPLOAD_METADATA, &record.metadata);
    }
    Ok(r)
}

/// `PATCH /v1/instances/{id}/files/tus/{upload}`: appends the body at `Upload-Offset`.
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    AppPath((_, upload)): AppPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    done(patch_inner(&state, auth, &upload, &headers, body).await)
}

async fn patch_inner(
    state: &AppState,
    auth: Auth,
    upload: &str,
    headers: &HeaderMap,
    body: Body,
) -> TusResult {
    let (instance, record) = load(state, auth, upload).await?;
    if let Some(r) = tus::check_version(headers) {
        return Err(r);
    }
    if !tus::is_offset_stream(headers) {
        return Err(fail(AppError::coded(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "PATCH bodies must be application/offset+octet-stream",
        )));
    }
    let offset = tus::number(headers, tus::UPLOAD_OFFSET)
        .map_err(|m| fail(AppError::BadRequest(m)))?
        .ok_or_else(|| fail(AppError::BadRequest("Upload-Offset is required".into())))?;
    let conn = connected(state, &instance.node_id).await.map_err(fail)?;
    let status = append(state, &conn, &record, offset, headers, body).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    offset_headers(&mut r, &status);
    Ok(r)
}

/// `DELETE /v1/instances/{id}/files/tus/{upload}`: termination; the partial data goes
/// (a finished file stays where it landed).
pub async fn terminate(
    State(state): State<AppState>,
    auth: Auth,
    AppPath((_, upload)): AppPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done(terminate_inner(&state, auth, &upload, &headers).await)
}

async fn terminate_inner(
    state: &AppState,
    auth: Auth,
    upload: &str,
    headers: &HeaderMap,
) -> TusResult {
    let instance = auth.map_err(fail)?.resource;
    if let Some(r) = tus::check_version(headers) {
        return Err(r);
    }
    let record = store::find(&state.db.pool, &instance.id, upload)
        .await
        .map_err(|e| fail(e.into()))?
        .ok_or_else(|| fail(AppError::not_found("upload")))?;
    let conn = connected(state, &instance.node_id).await.map_err(fail)?;
    match agent_call::<api::UploadDelete>(
        &conn,
        &(instance.id.as_str(), record.id.as_str()),
        &(),
        HeaderMap::new(),
        Body::empty(),
    )
    .await
    {
        Err(r) if r.status() != StatusCode::NOT_FOUND => return Err(r),
        _ => {}
    }
    store::delete(&state.db.pool, &record.id)
        .await
        .map_err(|e| fail(e.into()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
