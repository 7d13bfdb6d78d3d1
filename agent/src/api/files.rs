//! Agent API: instance files, under `/v1/instances/{id}/files...`. Every access goes
//! through [`crate::files::Sandbox`]; every error is a [`crate::error::ApiError`].
//! Blocking file work runs in `spawn_blocking`. Streams (download, upload, zip, pull)
//! live in `files/transfer.rs`.

mod transfer;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::StatusCode;
use tokio::io::AsyncWriteExt;

use shardlyn_proto::agent_api as api;
use shardlyn_proto::files::{
    ChmodRequest, CompressRequest, DecompressRequest, DeleteRequest, Deleted, Extracted, FromTo,
    ListQuery, MkdirRequest, PathQuery, SearchQuery, SearchResults, Written,
};

use super::json::AgentJson;
use super::{AgentState, Declared};
use crate::error::{ApiError, ApiResult};
use crate::files::{FileError, ListOptions, Sandbox};

/// Largest file the content routes read or write (the editor's cap).
pub const CONTENT_MAX_BYTES: u64 = crate::files::list::EDITABLE_MAX_BYTES;

/// The files routes.
pub fn router() -> Router<AgentState> {
    Router::new()
        .at::<api::FilesList, _, _>(list)
        .at::<api::FilesDelete, _, _>(delete)
        .at::<api::FilesStat, _, _>(stat)
        .at::<api::FilesRead, _, _>(read)
        .at::<api::FilesWrite, _, _>(write)
        .at::<api::FilesMkdir, _, _>(mkdir)
        .at::<api::FilesMove, _, _>(rename)
        .at::<api::FilesCopy, _, _>(copy)
        .at::<api::FilesChmod, _, _>(chmod)
        .at::<api::FilesCompress, _, _>(compress)
        .at::<api::FilesDecompress, _, _>(decompress)
        .at::<api::FilesSearch, _, _>(search)
        .at::<api::FilesDownload, _, _>(transfer::download)
        .at::<api::FilesUpload, _, _>(transfer::upload)
        .at::<api::FilesDownloadZip, _, _>(transfer::download_zip)
        .at::<api::FilesPull, _, _>(transfer::pull)
}

pub(crate) type FileResult<T> = Result<T, FileError>;

/// The sandbox of instance `id`.
pub(crate) fn sandbox(state: &AgentState, id: &str) -> FileResult<Sandbox> {
    if !crate::instances::valid_id(id) {
        return Err(FileError::NoInstance);
    }
    Sandbox::for_instance(&state.instances, id)
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> FileResult<T> + Send + 'static,
) -> FileResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FileError::Io(format!("task: {e}")))?
}

/// `Query` with rejections in the error envelope.
pub(crate) struct Q<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

async fn list(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Q(q): Q<ListQuery>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let defaults = ListOptions::default();
    let opts = ListOptions {
        page: q.page.unwrap_or(defaults.page),
        per_page: q.per_page.unwrap_or(defaults.per_page),
        sort: q.sort,
        desc: q.desc,
    };
    let listing = blocking(move || sb.list(&q.path, &opts)).await?;
    Ok(Json(listing).into_response())
}

async fn stat(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Q(q): Q<PathQuery>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    Ok(Json(blocking(move || sb.stat(&q.path)).await?).into_response())
}

/// Whether `data` is text the editor can show (valid UTF-8, no NUL).
fn is_text(data: &[u8]) -> bool {
    !data.contains(&0) && std::str::from_utf8(data).is_ok()
}

async fn read(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Q(q): Q<PathQuery>,
) -> ApiResult<Response> {
    use std::io::Read;
    let sb = sandbox(&state, &id)?;
    let path = q.path.clone();
    let data = blocking(move || {
        let (file, meta) = sb.open_file(&path)?;
        if meta.len() > CONTENT_MAX_BYTES {
            return Err(FileError::TooLarge(format!(
                "{path} is larger than {} MiB; download it instead",
                CONTENT_MAX_BYTES / (1024 * 1024)
            )));
        }
        let mut data = Vec::new();
        file.take(CONTENT_MAX_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(|e| FileError::io(&path, &e))?;
        if !is_text(&data) {
            return Err(FileError::Binary(path));
        }
        Ok(data)
    })
    .await?;
    Ok((
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        data,
    )
        .into_response())
}

async fn write(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Q(q): Q<PathQuery>,
    body: Body,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let (path, size) = receive(sb, q.path, body, Some(CONTENT_MAX_BYTES)).await?;
    Ok(Json(Written { path, size }).into_response())
}

/// Streams `body` into `path` through a pending write (temp file, disk limit, atomic
/// rename); `cap` bounds the size. Returns the user path and the bytes written.
pub(crate) async fn receive(
    sb: Sandbox,
    path: String,
    body: Body,
    cap: Option<u64>,
) -> FileResult<(String, u64)> {
    let p = sb.resolve(&path)?;
    let display = p.display();
    let mut pending = {
        let sb = sb.clone();
        blocking(move || sb.create(&display)).await?
    };
    let file = pending
        .take_file()
        .ok_or_else(|| FileError::Io("no temp file".into()))?;
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FileError::BadRequest(format!("body: {e}")))?;
        if let Some(cap) = cap
            && pending.written() + chunk.len() as u64 > cap
        {
            return Err(FileError::TooLarge(format!(
                "the body is larger than {} MiB",
                cap / (1024 * 1024)
            )));
        }
        pending.charge(chunk.len() as u64)?;
        file.write_all(&chunk)
            .await
            .map_err(|e| FileError::io(&p.display(), &e))?;
    }
    file.flush()
        .await
        .map_err(|e| FileError::io(&p.display(), &e))?;
    let std_file = file.into_std().await;
    let written = blocking(move || {
        std_file
            .sync_data()
            .map_err(|e| FileError::Io(e.to_string()))?;
        drop(std_file);
        pending.commit()
    })
    .await?;
    Ok((p.display(), written))
}

async fn delete(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(body): AgentJson<DeleteRequest>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let mut paths = body.paths;
    paths.extend(body.path);
    if paths.is_empty() {
        return Err(FileError::BadRequest("give `path` or `paths`".into()).into());
    }
    if paths.len() > 1000 {
        return Err(FileError::BadRequest("at most 1000 paths at once".into()).into());
    }
    let n = blocking(move || {
        for p in &paths {
            sb.remove(p)?;
        }
        Ok(paths.len())
    })
    .await?;
    Ok(Json(Deleted { deleted: n }).into_response())
}

async fn mkdir(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(body): AgentJson<MkdirRequest>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let path = body.path;
    let entry = blocking(move || {
        sb.mkdir(&path)?;
        sb.stat(&path)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

async fn rename(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(body): AgentJson<FromTo>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let entry = blocking(move || {
        sb.rename(&body.from, &body.to)?;
        sb.stat(&body.to)
    })
    .await?;
    Ok(Json(entry).into_response())
}

async fn copy(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(body): AgentJson<FromTo>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let entry = blocking(move || {
        sb.copy(&body.from, &body.to)?;
        sb.stat(&body.to)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

async fn chmod(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(body): AgentJson<ChmodRequest>,
) -> ApiResult<Response> {
    let mode = u32::from_str_radix(body.mode.trim_start_matches("0o"), 8)
        .map_err(|_| FileError::BadRequest("mode must be octal, e.g. \"755\"".into()))?;
    let sb = sandbox(&state, &id)?;
    let entry = blocking(move || {
        sb.chmod(&body.path, mode)?;
        sb.stat(&body.path)
    })
    .await?;
    Ok(Json(entry).into_response())
}

async fn compress(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(body): AgentJson<CompressRequest>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let entry = blocking(move || {
        let path = crate::files::compress(
            &sb,
            &body.root,
            &body.files,
            body.format,
            body.name.as_deref(),
        )?;
        sb.stat(&path)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

async fn decompress(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(body): AgentJson<DecompressRequest>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let files = blocking(move || {
        let dest = match body.destination {
            Some(d) => d,
            None => sb
                .resolve(&body.path)?
                .split_last()
                .map_or_else(|| "/".to_owned(), |(parent, _)| parent.display()),
        };
        crate::files::decompress(&sb, &body.path, &dest)
    })
    .await?;
    Ok(Json(Extracted { files }).into_response())
}

async fn search(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Q(q): Q<SearchQuery>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let limit = q.limit.clamp(1, crate::files::list::MAX_SEARCH_RESULTS);
    let found = blocking(move || crate::files::search(&sb, &q.path, &q.q, limit)).await?;
    Ok(Json(SearchResults {
        truncated: found.len() >= limit,
        entries: found,
    })
    .into_response())
}
