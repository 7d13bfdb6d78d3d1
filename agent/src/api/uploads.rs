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

mod append;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use shardlyn_proto::agent_api::{self as api, UploadOffset};
use shardlyn_proto::upload::{CHECKSUM_HEADER, CHECKSUM_MISMATCH, CreateUpload, UploadStatus};

use super::json::AgentJson;
use super::{AgentState, Declared};
use crate::error::{ApiError, ApiResult};
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

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "upload failed");
    ApiError::internal("upload failed")
}

fn not_found() -> ApiError {
    ApiError::not_found("upload not found")
}

fn check_ids(id: &str, upload: &str) -> ApiResult<()> {
    if valid_id(id) && valid_id(upload) {
        Ok(())
    } else {
        Err(ApiError::bad_request("invalid instance or upload id"))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal(&e)),
        Err(e) => Err(internal(&e)),
    }
}

/// The instance's file sandbox (denylist and disk limit of its spec).
async fn sandbox(state: &AgentState, id: &str) -> ApiResult<Sandbox> {
    let inst = state.instances.get(id)?;
    let spec = inst.spec();
    let limit = u64::try_from(spec.limits.disk_mb)
        .unwrap_or(0)
        .saturating_mul(1024 * 1024);
    let volume = state.instances.0.paths.volume(id);
    tokio::task::spawn_blocking(move || Sandbox::open(&volume, &spec.file_denylist, limit))
        .await
        .map_err(|e| internal(&e))?
        .map_err(ApiError::from)
}

/// Refuses a target the sandbox would refuse (bad path, denied) and a length that
/// cannot fit in the disk limit, before any byte is sent.
async fn check_target(sb: Sandbox, path: String, length: u64) -> ApiResult<()> {
    tokio::task::spawn_blocking(move || {
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
    .map_err(|e| internal(&e))?
    .map_err(ApiError::from)
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
) -> ApiResult<(StatusCode, Json<UploadStatus>)> {
    check_ids(&id, &req.id)?;
    let sb = sandbox(&state, &id).await?;
    check_target(sb.clone(), req.path.clone(), req.length).await?;
    let d = dir(&state.instances);
    let sweeper = state.clone();
    let sd = d.clone();
    blocking(move || {
        sweep(&sweeper, &sd);
        Ok(())
    })
    .await?;
    let l = state.uploads.lock_of(&req.id);
    let _guard = l.lock().await;
    if let Some(existing) = d.load(&req.id) {
        if existing.instance_id == id && existing.path == req.path && existing.length == req.length
        {
            return Ok((StatusCode::CREATED, Json(existing.status())));
        }
        return Err(ApiError::conflict("upload id already in use"));
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
    blocking(move || {
        std::fs::create_dir_all(&sd.0)?;
        std::fs::File::create(&part)?;
        sd.save(&saved)
    })
    .await?;
    // An empty file is complete on creation.
    if req.length == 0 {
        finish(&state, sb, &d, &mut sidecar).await?;
    }
    Ok((StatusCode::CREATED, Json(sidecar.status())))
}

/// Loads a live upload of instance `id`: 404 when unknown, 410 once expired.
fn live(d: &Dir, id: &str, upload: &str) -> ApiResult<Sidecar> {
    let s = d
        .load(upload)
        .filter(|s| s.instance_id == id)
        .ok_or_else(not_found)?;
    if s.expired(now_ms()) && !s.completed {
        return Err(ApiError::new(StatusCode::GONE, "GONE", "upload expired"));
    }
    Ok(s)
}

async fn status(
    State(state): State<AgentState>,
    Path((id, upload)): Path<(String, String)>,
) -> ApiResult<Json<UploadStatus>> {
    check_ids(&id, &upload)?;
    let l = state.uploads.lock_of(&upload);
    let _guard = l.lock().await;
    Ok(Json(live(&dir(&state.instances), &id, &upload)?.status()))
}

async fn write(
    State(state): State<AgentState>,
    Path((id, upload)): Path<(String, String)>,
    Query(at): Query<UploadOffset>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<UploadStatus>> {
    check_ids(&id, &upload)?;
    let checksum = match headers.get(CHECKSUM_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(Checksum::parse(v).map_err(ApiError::bad_request)?),
        Some(Err(_)) => return Err(ApiError::bad_request("Upload-Checksum is not text")),
    };
    // The append runs in its own task: a panel that hangs up mid-body (the client went
    // away) cancels this handler, not the bookkeeping of the bytes already received.
    let task = tokio::spawn(write_owned(state, id, upload, at.offset, checksum, body));
    task.await.map_err(|e| internal(&e))?.map(Json)
}

async fn write_owned(
    state: AgentState,
    id: String,
    upload: String,
    offset: u64,
    checksum: Option<Checksum>,
    body: Body,
) -> ApiResult<UploadStatus> {
    let l = state.uploads.lock_of(&upload);
    let _guard = l.lock().await;
    let d = dir(&state.instances);
    let mut s = live(&d, &id, &upload)?;
    if s.offset != offset || s.completed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "OFFSET_MISMATCH",
            format!("the upload is at offset {}", s.offset),
        ));
    }
    let outcome = append::append(d.part(&upload), offset, s.length - s.offset, checksum, body)
        .await
        .map_err(|e| internal(&e))?;
    let end = match outcome {
        Outcome::Done(end) | Outcome::Cut(end) => end,
        Outcome::TooLong => {
            return Err(ApiError::too_large("the body goes past Upload-Length"));
        }
        Outcome::Mismatch => {
            return Err(ApiError::new(
                StatusCode::from_u16(CHECKSUM_MISMATCH).unwrap_or(StatusCode::BAD_REQUEST),
                "CHECKSUM_MISMATCH",
                "the chunk's checksum does not match; it was discarded",
            ));
        }
    };
    if end != s.offset {
        s.offset = end;
        let (sd, saved) = (d.clone(), s.clone());
        blocking(move || sd.save(&saved)).await?;
    }
    tracing::debug!(upload = %upload, upload.bytes = end - offset, "appended");
    if s.offset == s.length {
        let sb = sandbox(&state, &id).await?;
        finish(&state, sb, &d, &mut s).await?;
    }
    Ok(s.status())
}

/// Moves a complete upload to its path through the sandbox (path, denylist, disk
/// limit, atomic replace) and records it done. A file the sandbox refuses is dropped with
/// the upload: its bytes could never land.
async fn finish(state: &AgentState, sb: Sandbox, d: &Dir, s: &mut Sidecar) -> ApiResult<()> {
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
        return Err(e.into());
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
) -> ApiResult<StatusCode> {
    check_ids(&id, &upload)?;
    let l = state.uploads.lock_of(&upload);
    let _guard = l.lock().await;
    let d = dir(&state.instances);
    if d.load(&upload).is_none_or(|s| s.instance_id != id) {
        return Err(not_found());
    }
    let _ = blocking(move || {
        d.remove(&upload);
        Ok(())
    })
    .await;
    Ok(StatusCode::NO_CONTENT)
}
