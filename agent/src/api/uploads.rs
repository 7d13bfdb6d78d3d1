//! Agent API: the bytes of tus uploads (the panel speaks tus to clients, see
//! `shardlyn_proto::upload` for these routes).
//!
//! Partial data lives outside the server's files, in `DATA_DIR/uploads/{id}.part` with a
//! JSON sidecar (`store.rs`), so it survives agent restarts and the server never sees a
//! half-written file. Offsets are decided here: an append checks the offset (409),
//! writes and syncs (`append.rs`), then records the new offset. When the last byte is
//! in, the disk limit is checked and the file moved to its path in the volume. One
//! append per upload at a time; expired uploads are swept whenever one is created and
//! every `upload_sweep_secs` (agent settings, default 60).

#![expect(
    clippy::result_large_err,
    reason = "the error side is the response itself, built once per request"
)]

mod append;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use shardlyn_proto::agent_api::{self as api, UploadOffset};
use shardlyn_proto::upload::{CHECKSUM_HEADER, CHECKSUM_MISMATCH, CreateUpload};

use super::instances::{error, instance_error};
use super::json::AgentJson;
use super::{AgentState, Declared};
use crate::files::{FileError, Sandbox};
use crate::instances::{Manager, lock, now_ms, valid_id};
use append::{Checksum, Outcome};
use store::{Dir, Sidecar};

/// One lock per upload, so appends (and status reads) of one upload take turns.
#[derive(Clone, Default)]
pub struct Uploads {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Uploads {
    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.locks).entry(id.to_string()).or_default().clone()
    }

    fn forget(&self, id: &str) {
        lock(&self.locks).remove(id);
    }
}

/// The uploads routes.
pub fn router() -> Router<AgentState> {
    Router::new()
        .at::<api::UploadCreate, _, _>(create)
        .at::<api::UploadGet, _, _>(status)
        .at::<api::UploadWrite, _, _>(write)
        .at::<api::UploadDelete, _, _>(remove)
}

fn dir(m: &Manager) -> Dir {
    let data =
        m.0.paths
            .volumes
            .parent()
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
    Dir(data.join("uploads"))
}

fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "upload failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "upload failed",
    )
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "upload not found")
}

fn check_ids(id: &str, upload: &str) -> Option<Response> {
    (!valid_id(id) || !valid_id(upload)).then(|| bad("invalid instance or upload id"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal(&e)),
        Err(e) => Err(internal(&e)),
    }
}

/// The instance's file sandbox (denylist and disk limit of its spec).
async fn sandbox(state: &AgentState, id: &str) -> Result<Sandbox, Response> {
    let inst = state.instances.get(id).map_err(|e| instance_error(&e))?;
    let spec = inst.spec();
    let limit = u64::try_from(spec.limits.disk_mb)
        .unwrap_or(0)
        .saturating_mul(1024 * 1024);
    let volume = state.instances.0.paths.volume(id);
    match tokio::task::spawn_blocking(move || Sandbox::open(&volume, &spec.file_denylist, limit))
        .await
    {
        Ok(r) => r.map_err(IntoResponse::into_response),
        Err(e) => Err(internal(&e)),
    }
}

/// Refuses a target the sandbox would refuse (bad path, denied) and a length that
/// cannot fit in the disk limit, before any byte is sent.
async fn check_target(sb: Sandbox, path: String, length: u64) -> Result<(), Response> {
    let checked = tokio::task::spawn_blocking(move || {
        let p = sb.resolve(&path)?;
        if p.is_root() {
            return Err(FileError::WrongType("/ is a directory".into()));
        }
        sb.check_allowed(&p, false)?;
        if sb.limit() > 0 && sb.usage().saturating_add(length) > sb.limit() {
            return Err(FileError::DiskLimit {
                limit_mb: sb.limit() / (1024 * 1024),
            });
        }
        Ok(())
    })
    .await
    .map_err(|e| internal(&e))?;
    checked.map_err(IntoResponse::into_response)
}

/// Sweeps expired uploads every `every`, for as long as the agent runs.
pub async fn sweep_every(state: AgentState, every: std::time::Duration) {
    loop {
        tokio::time::sleep(every).await;
        let d = dir(&state.instances);
        let sweeper = state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || sweep(&sweeper, &d)).await {
            tracing::warn!(error = %e, "sweeping expired uploads");
        }
    }
}

/// Removes expired uploads that no append is busy with.
fn sweep(state: &AgentState, d: &Dir) {
    let now = now_ms();
    for s in d.all().into_iter().filter(|s| s.expired(now)) {
        let l = state.uploads.lock_of(&s.id);
        if let Ok(_guard) = l.try_lock() {
            d.remove(&s.id);
            state.uploads.forget(&s.id);
        }
    }
}

async fn create(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(req): AgentJson<CreateUpload>,
) -> Response {
    if let Some(r) = check_ids(&id, &req.id) {
        return r;
    }
    let sb = match sandbox(&state, &id).await {
        Ok(sb) => sb,
        Err(r) => return r,
    };
    if let Err(r) = check_target(sb.clone(), req.path.clone(), req.length).await {
        return r;
    }
    let d = dir(&state.instances);
    let sweeper = state.clone();
    let sd = d.clone();
    if let Err(r) = blocking(move || {
        sweep(&sweeper, &sd);
        Ok(())
    })
    .await
    {
        return r;
    }
    let l = state.uploads.lock_of(&req.id);
    let _guard = l.lock().await;
    if let Some(existing) = d.load(&req.id) {
        if existing.instance_id == id && existing.path == req.path && existing.length == req.length
        {
            return (StatusCode::CREATED, axum::Json(existing.status())).into_response();
        }
        return error(StatusCode::CONFLICT, "CONFLICT", "upload id already in use");
    }
    let mut sidecar = Sidecar {
        id: req.id.clone(),
        instance_id: id.clone(),
        path: req.path.clone(),
        length: req.length,
        offset: 0,
        expires_at: req.expires_at,
        completed: false,
    };
    let part = d.part(&req.id);
    let sd = d.clone();
    let saved = sidecar.clone();
    if let Err(r) = blocking(move || {
        std::fs::create_dir_all(&sd.0)?;
        std::fs::File::create(&part)?;
        sd.save(&saved)
    })
    .await
    {
        return r;
    }
    // An empty file is complete on creation.
    if req.length == 0
        && let Err(r) = finish(&state, sb, &d, &mut sidecar).await
    {
        return r;
    }
    (StatusCode::CREATED, axum::Json(sidecar.status())).into_response()
}

/// Loads a live upload of instance `id`: 404 when unknown, 410 once expired.
fn live(d: &Dir, id: &str, upload: &str) -> Result<Sidecar, Response> {
    let s = d
        .load(upload)
        .filter(|s| s.instance_id == id)
        .ok_or_else(not_found)?;
    if s.expired(now_ms()) && !s.completed {
        return Err(error(StatusCode::GONE, "GONE", "upload expired"));
    }
    Ok(s)
}

async fn status(
    State(state): State<AgentState>,
    Path((id, upload)): Path<(String, String)>,
) -> Response {
    if let Some(r) = check_ids(&id, &upload) {
        return r;
    }
    let l = state.uploads.lock_of(&upload);
    let _guard = l.lock().await;
    match live(&dir(&state.instances), &id, &upload) {
        Ok(s) => axum::Json(s.status()).into_response(),
        Err(r) => r,
    }
}

async fn write(
    State(state): State<AgentState>,
    Path((id, upload)): Path<(String, String)>,
    Query(at): Query<UploadOffset>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(r) = check_ids(&id, &upload) {
        return r;
    }
    let checksum = match headers.get(CHECKSUM_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match Checksum::parse(v) {
            Ok(c) => Some(c),
            Err(m) => return bad(m),
        },
        Some(Err(_)) => return bad("Upload-Checksum is not text"),
    };
    // The append runs in its own task: a panel that hangs up mid-body (the client went
    // away) cancels this handler, not the bookkeeping of the bytes already received.
    let task = tokio::spawn(write_owned(state, id, upload, at.offset, checksum, body));
    task.await.unwrap_or_else(|e| internal(&e))
}

async fn write_owned(
    state: AgentState,
    id: String,
    upload: String,
    offset: u64,
    checksum: Option<Checksum>,
    body: Body,
) -> Response {
    let l = state.uploads.lock_of(&upload);
    let _guard = l.lock().await;
    let d = dir(&state.instances);
    let mut s = match live(&d, &id, &upload) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if s.offset != offset || s.completed {
        return error(
            StatusCode::CONFLICT,
            "OFFSET_MISMATCH",
            &format!("the upload is at offset {}", s.offset),
        );
    }
    let outcome =
        match append::append(d.part(&upload), offset, s.length - s.offset, checksum, body).await {
            Ok(o) => o,
            Err(e) => return internal(&e),
        };
    let end = match outcome {
        Outcome::Done(end) | Outcome::Cut(end) => end,
        Outcome::TooLong => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the body goes past Upload-Length",
            );
        }
        Outcome::Mismatch => {
            return error(
                StatusCode::from_u16(CHECKSUM_MISMATCH).unwrap_or(StatusCode::BAD_REQUEST),
                "CHECKSUM_MISMATCH",
                "the chunk's checksum does not match; it was discarded",
            );
        }
    };
    if end != s.offset {
        s.offset = end;
        let (sd, saved) = (d.clone(), s.clone());
        if let Err(r) = blocking(move || sd.save(&saved)).await {
            return r;
        }
    }
    tracing::debug!(upload = %upload, upload.bytes = end - offset, "appended");
    if s.offset == s.length {
        let sb = match sandbox(&state, &id).await {
            Ok(sb) => sb,
            Err(r) => return r,
        };
        if let Err(r) = finish(&state, sb, &d, &mut s).await {
            return r;
        }
    }
    axum::Json(s.status()).into_response()
}

/// Moves a complete upload to its path through the sandbox (path, denylist, disk
/// limit, atomic replace) and records it done. A file the sandbox refuses is dropped with
/// the upload: its bytes could never land.
async fn finish(state: &AgentState, sb: Sandbox, d: &Dir, s: &mut Sidecar) -> Result<(), Response> {
    let owner = if state.instances.0.is_root {
        state.instances.0.settings.container_ids()
    } else {
        None
    };
    let part = d.part(&s.id);
    let path = s.path.clone();
    let placed = tokio::task::spawn_blocking(move || {
        // Owned by the server's user before it enters the volume (rename keeps it).
        if let Some((uid, gid)) = owner {
            let _ = std::os::unix::fs::lchown(&part, Some(uid), Some(gid));
        }
        let p = sb.resolve(&path)?;
        if let Some((parent, _)) = p.split_last()
            && !parent.is_root()
        {
            sb.mkdir(&parent.display())?;
        }
        sb.place(&part, &path)
    })
    .await
    .map_err(|e| internal(&e))?;
    if let Err(e) = placed {
        if !matches!(e, FileError::Io(_)) {
            d.remove(&s.id);
            state.uploads.forget(&s.id);
        }
        return Err(e.into_response());
    }
    s.completed = true;
    let (sd, saved) = (d.clone(), s.clone());
    blocking(move || sd.save(&saved)).await?;
    tracing::info!(upload = %s.id, instance = %s.instance_id, upload.bytes = s.length, "upload complete");
    Ok(())
}

async fn remove(
    State(state): State<AgentState>,
    Path((id, upload)): Path<(String, String)>,
) -> Response {
    if let Some(r) = check_ids(&id, &upload) {
        return r;
    }
    let l = state.uploads.lock_of(&upload);
    let _guard = l.lock().await;
    let d = dir(&state.instances);
    if d.load(&upload).is_none_or(|s| s.instance_id != id) {
        return not_found();
    }
    let _ = blocking(move || {
        d.remove(&upload);
        Ok(())
    })
    .await;
    StatusCode::NO_CONTENT.into_response()
}
