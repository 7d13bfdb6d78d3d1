//! Streamed transfers: download (with `Range`), upload (streamed body), directory zip
//! download, and pull from a URL.

use std::io::{SeekFrom, Write};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode, header};
use shardlyn_proto::files::{PathQuery, PullRequest, Written};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{Q, blocking, receive, sandbox};
use crate::api::AgentState;
use crate::api::json::AgentJson;
use crate::error::{ApiError, ApiResult};
use crate::files::FileError;

/// A parsed single `Range: bytes=...` against a file of `len` bytes: `Ok(None)` when
/// absent or not a single byte range (serve it whole), `Err(())` when unsatisfiable.
fn parse_range(value: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if v.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = v.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

fn disposition(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("attachment; filename=\"{safe}\"")
}

pub(super) async fn download(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Q(q): Q<PathQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let path = q.path.clone();
    let (file, meta) = blocking(move || sb.open_file(&path)).await?;
    let len = meta.len();
    let name = sb_name(&q.path);
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let mut file = tokio::fs::File::from_std(file);
    let base = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_DISPOSITION, disposition(&name)),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
    ];
    match range {
        Err(()) => Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_NOT_SATISFIABLE",
                "the requested range is outside the file",
            ),
        )
            .into_response()),
        Ok(None) => {
            let body = Body::from_stream(ReaderStream::with_capacity(file, 64 * 1024));
            Ok((base, [(header::CONTENT_LENGTH, len.to_string())], body).into_response())
        }
        Ok(Some((start, end))) => {
            file.seek(SeekFrom::Start(start))
                .await
                .map_err(|e| FileError::io(&q.path, &e))?;
            let n = end - start + 1;
            let body = Body::from_stream(ReaderStream::with_capacity(file.take(n), 64 * 1024));
            Ok((
                StatusCode::PARTIAL_CONTENT,
                base,
                [
                    (header::CONTENT_LENGTH, n.to_string()),
                    (header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
                ],
                body,
            )
                .into_response())
        }
    }
}

fn sb_name(path: &str) -> String {
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("download")
        .to_owned()
}

pub(super) async fn upload(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Q(q): Q<PathQuery>,
    body: Body,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let (path, size) = receive(sb, q.path, body, None).await?;
    Ok((StatusCode::CREATED, Json(Written { path, size })).into_response())
}

/// `GET /files/download-zip?path=`: the directory as a zip, streamed while it is
/// written (no temp copy, no `Content-Length`). Path errors are answered as JSON before
/// the first byte; an error afterwards ends the body with an error.
pub(super) async fn download_zip(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Q(q): Q<PathQuery>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    let path = q.path.clone();
    let check = sb.clone();
    blocking(move || crate::files::zip_dir_check(&check, &path).map(drop)).await?;
    let name = if q.path.trim_matches('/').is_empty() {
        format!("{}-files.zip", id.chars().take(8).collect::<String>())
    } else {
        format!("{}.zip", sb_name(&q.path))
    };
    let (tx, rx) = tokio::sync::mpsc::channel(ZIP_CHANNEL_CHUNKS);
    let path = q.path;
    tokio::task::spawn_blocking(move || {
        let w = ChunkWriter::new(tx.clone());
        let result = crate::files::zip_dir_stream(&sb, &path, w)
            .and_then(|mut w| w.flush().map_err(|e| FileError::Io(format!("zip: {e}"))));
        if let Err(e) = result {
            // Ends the body with an error (a no-op when the client already went away).
            tracing::debug!(instance = %id, %path, error = %e, "zip download stopped");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, disposition(&name)),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Size of the chunks a streamed zip is sent in.
const ZIP_CHUNK: usize = 64 * 1024;
/// Chunks buffered between the zip writer and the response body (bounds memory and
/// makes the writer wait for a slow client).
const ZIP_CHANNEL_CHUNKS: usize = 8;

/// A blocking [`Write`](std::io::Write) that sends [`ZIP_CHUNK`]-sized [`Bytes`] into
/// a bounded channel; fails with `BrokenPipe` once the receiver is gone. Call it from
/// blocking threads only.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: BytesMut,
}

impl ChunkWriter {
    fn new(tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        Self {
            tx,
            buf: BytesMut::with_capacity(ZIP_CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(ZIP_CHUNK);
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(ZIP_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= ZIP_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Largest file a pull fetches.
pub const PULL_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;

pub(super) async fn pull(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    AgentJson(body): AgentJson<PullRequest>,
) -> ApiResult<Response> {
    let sb = sandbox(&state, &id)?;
    // The shared guard: refuses non-public addresses unless `[outbound] allow`ed; the
    // client connects to exactly the checked addresses and follows no redirect.
    let checked = state
        .instances
        .0
        .settings
        .outbound
        .resolve_url(&body.url)
        .await?;
    let url = checked.url.clone();
    let client = checked
        .pin(reqwest::Client::builder())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| FileError::Io(e.to_string()))?;
    let resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| FileError::BadRequest(format!("fetch failed: {e}")))?;
    if !resp.status().is_success() {
        return Err(FileError::BadRequest(format!("the server answered {}", resp.status())).into());
    }
    if resp.content_length().is_some_and(|l| l > PULL_MAX_BYTES) {
        return Err(FileError::TooLarge("the remote file is too large".into()).into());
    }
    let name = match body.name {
        Some(n) => n,
        None => url
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "download".into()),
    };
    if name.contains('/') || name == ".." || name == "." {
        return Err(FileError::BadPath("name must be a plain file name".into()).into());
    }
    let dir = sb.resolve(&body.path)?;
    let target = dir.join(&name).display();
    let stream = resp
        .bytes_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let (path, size) = receive(sb, target, Body::from_stream(stream), Some(PULL_MAX_BYTES)).await?;
    Ok((StatusCode::CREATED, Json(Written { path, size })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=95-200"), 100), Ok(Some((95, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
    }

    #[test]
    fn chunk_writer_sends_chunks_and_stops_when_the_reader_goes() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut w = ChunkWriter::new(tx);
        w.write_all(&vec![1u8; ZIP_CHUNK * 2 + 10]).unwrap();
        w.flush().unwrap();
        let sizes: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| c.unwrap().len())
            .collect();
        assert_eq!(sizes, [ZIP_CHUNK, ZIP_CHUNK, 10]);
        drop(rx);
        let err = w.write_all(&vec![0u8; ZIP_CHUNK]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_zip_stream_stops_cleanly_when_the_client_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let noise: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for i in 0..4 {
            std::fs::write(dir.path().join(format!("f{i}.bin")), &noise).unwrap();
        }
        let sb = crate::files::Sandbox::open(dir.path(), &[], 0).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let writer = std::thread::spawn(move || {
            crate::files::zip_dir_stream(&sb, "/", ChunkWriter::new(tx)).map(drop)
        });
        let first = rx.blocking_recv().unwrap().unwrap();
        assert_eq!(&first[..2], b"PK");
        drop(rx);
        let err = writer.join().expect("no panic").unwrap_err();
        assert!(err.to_string().contains("went away"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 4, "nothing left behind");
    }
}
