//! What a new machine downloads from this panel to join it as a node (issue 17): the
//! agent binary (`/downloads/shardlyn-agent/{platform}`), the install script
//! (`/install-agent.sh`, with this panel's URL and the binary's checksum filled in), the
//! self-signed CA as PEM for the script to pin (`/ca.pem`), and the cloud-init user
//! data of provisioned nodes ([`cloudinit`]). All public: a machine has nothing else yet.
//!
//! Layer: an API area; it reads the configuration and the panel's CA, nothing else.

pub mod cloudinit;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::error::{AppError, AppPath, AppResult};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The install script, served with `@PANEL_URL@`, `@AGENT_SHA256@` and the line
/// `@AGENT_UNIT@` filled in.
const INSTALL_SCRIPT: &str = include_str!("install-agent.sh");

/// The agent's systemd unit: the one `packaging/install.sh` installs too.
pub const AGENT_UNIT: &str = include_str!("../../../packaging/systemd/shardlyn-agent.service");

/// The header carrying the served binary's SHA-256 (lowercase hex).
pub const CHECKSUM_HEADER: &str = "x-checksum-sha256";

/// The public bootstrap routes.
pub fn router() -> Routes {
    Routes::new("bootstrap")
        .get(
            "/downloads/shardlyn-agent/{platform}",
            Access::Public,
            "The shardlyn-agent binary for a platform (linux-amd64)",
            download_agent,
        )
        .errors(&[
            (
                404,
                "unknown platform, or no build for it yet (NOT_AVAILABLE)",
            ),
            (
                503,
                "this panel has no agent binary to serve (AGENT_BINARY_MISSING)",
            ),
        ])
        .get(
            "/install-agent.sh",
            Access::Public,
            "Script that installs shardlyn-agent and joins the machine to this panel",
            install_script,
        )
        .get(
            "/ca.pem",
            Access::Public,
            "The panel's self-signed CA certificate (PEM) for the install script to pin",
            ca_pem,
        )
        .errors(&[(
            404,
            "no self-signed CA: TLS is off or the certificate comes from a file",
        )])
}

/// The agent binary this panel serves: `[provision] agent_binary`, or else the
/// `shardlyn-agent` beside the panel's own executable.
#[must_use]
pub fn agent_binary_path(state: &AppState) -> Option<PathBuf> {
    if let Some(path) = &state.config.provision.agent_binary {
        return Some(path.clone());
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("shardlyn-agent"))
}

/// A checksum computed once per version of a file (its length and modification time).
struct Cached {
    len: u64,
    modified: Option<SystemTime>,
    sha256: String,
}

/// Checksums of served binaries by path. Several panels of one process (the tests) may
/// serve different files; a rebuilt binary gets a new entry.
static CHECKSUMS: Mutex<Option<HashMap<PathBuf, Cached>>> = Mutex::new(None);

fn missing(path: &Path) -> AppError {
    AppError::coded(
        StatusCode::SERVICE_UNAVAILABLE,
        "AGENT_BINARY_MISSING",
        format!(
            "this panel has no agent binary to serve ({} is missing): set [provision] agent_binary",
            path.display()
        ),
    )
}

/// The SHA-256 (lowercase hex) of the agent binary at `path`, computed on first use and
/// again only when the file changes.
///
/// # Errors
/// 503 `AGENT_BINARY_MISSING` when the file cannot be read.
pub async fn agent_checksum(path: &Path) -> AppResult<String> {
    let meta = tokio::fs::metadata(path).await.map_err(|_| missing(path))?;
    if !meta.is_file() {
        return Err(missing(path));
    }
    let (len, modified) = (meta.len(), meta.modified().ok());
    let lookup = |map: &HashMap<PathBuf, Cached>| {
        map.get(path)
            .filter(|c| c.len == len && c.modified == modified)
            .map(|c| c.sha256.clone())
    };
    if let Some(hit) = CHECKSUMS
        .lock()
        .ok()
        .and_then(|guard| guard.as_ref().and_then(lookup))
    {
        return Ok(hit);
    }
    let owned = path.to_path_buf();
    let sha256 = tokio::task::spawn_blocking(move || sha256_file(&owned))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("checksum task: {e}")))?
        .map_err(|_| missing(path))?;
    if let Ok(mut guard) = CHECKSUMS.lock() {
        guard.get_or_insert_with(HashMap::new).insert(
            path.to_path_buf(),
            Cached {
                len,
                modified,
                sha256: sha256.clone(),
            },
        );
    }
    Ok(sha256)
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Streams the agent binary with its length and SHA-256.
async fn download_agent(
    State(state): State<AppState>,
    AppPath(platform): AppPath<String>,
) -> AppResult<Response> {
    match platform.as_str() {
        "linux-amd64" => {}
        "linux-arm64" => {
            return Err(AppError::coded(
                StatusCode::NOT_FOUND,
                "NOT_AVAILABLE",
                "no ARM agent build exists yet",
            ));
        }
        _ => {
            return Err(AppError::NotFound(format!(
                "no agent build for platform {platform:?} (available: linux-amd64)"
            )));
        }
    }
    let path = agent_binary_path(&state).ok_or_else(|| missing(Path::new("shardlyn-agent")))?;
    let sha256 = agent_checksum(&path).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| missing(&path))?;
    let len = file.metadata().await.map_err(|_| missing(&path))?.len();
    // At most `len` bytes: a file growing while it is sent cannot break Content-Length.
    let body = Body::from_stream(futures_util::stream::unfold(
        (file.take(len), vec![0u8; 64 * 1024]),
        |(mut file, mut buf)| async move {
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    let chunk = axum::body::Bytes::copy_from_slice(&buf[..n]);
                    Some((Ok::<_, std::io::Error>(chunk), (file, buf)))
                }
                Err(e) => Some((Err(e), (file, buf))),
            }
        },
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::ETAG, format!("\"{sha256}\"")),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"shardlyn-agent\"".to_string(),
            ),
        ],
        [(CHECKSUM_HEADER, sha256)],
        body,
    )
        .into_response())
}

/// The install script for this panel. Served even when the agent binary is missing (the
/// script then says so), so the one-liner never pipes an error page into `sh`.
async fn install_script(State(state): State<AppState>) -> Response {
    let sha256 = match agent_binary_path(&state) {
        Some(path) => agent_checksum(&path).await.unwrap_or_default(),
        None => String::new(),
    };
    let script = INSTALL_SCRIPT
        .replace("@PANEL_URL@", &state.base_url().replace('\'', "'\\''"))
        .replace("@AGENT_SHA256@", &sha256)
        .replace("@AGENT_UNIT@\n", AGENT_UNIT);
    (
        [
            (header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        script,
    )
        .into_response()
}

/// The self-signed CA as PEM (the JSON form with its fingerprint is `GET /v1/ca`).
async fn ca_pem(State(state): State<AppState>) -> AppResult<Response> {
    let ca = state.ca.as_ref().ok_or_else(|| {
        AppError::NotFound("no self-signed CA (TLS off or a certificate from a file)".into())
    })?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        ca.pem.clone(),
    )
        .into_response())
}
