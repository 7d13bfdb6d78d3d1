//! The new side of the copy: the imported server's volume on its node, reached through
//! the tunnel with the agent's own file routes (the same paths the file manager and
//! resumable uploads use): the manifest of the volume (`TransferManifest`, with
//! checksums when asked), `mkdir`, `chmod`, `delete`, one streamed `upload` per small
//! file, and tus uploads (`UploadCreate`/`UploadWrite`) for big files, sent in parts
//! that each carry their SHA-256 for the agent to check. Every write lands through the
//! agent's sandbox (temp file, disk limit, atomic rename), so a cut leaves no half file.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
use shardlyn_proto::agent_api::{self as api, FilePath, UploadOffset};
use shardlyn_proto::files::{ChmodRequest, DeleteRequest, MkdirRequest, Written};
use shardlyn_proto::transfer::{Manifest, PartQuery, TransferPart};
use shardlyn_proto::upload::{CHECKSUM_HEADER, CHECKSUM_MISMATCH, CreateUpload, UploadStatus};

use super::CopyError;
use crate::instances::Instance;
use crate::instances::ops::{power, sync};
use crate::state::AppState;
use crate::tunnel::AgentConn;

/// Longest an answer to a small request may take to arrive whole.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// An agent's refusal: its status, code and message.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Refusal {
    /// A refusal about this one path (denied, a bad name, a directory in the way): the
    /// copy reports it and goes on.
    pub fn about_the_path(&self) -> bool {
        matches!(
            self.code.as_str(),
            "FILE_DENIED" | "PATH_ESCAPE" | "BAD_PATH" | "WRONG_TYPE" | "FILE_EXISTS"
        )
    }

    /// The error that ends the copy.
    pub fn into_error(self) -> CopyError {
        if self.status == 413 {
            return CopyError::Refused(format!(
                "the new server's disk limit is too small for its files ({})",
                self.message
            ));
        }
        if self.status >= 500 || self.status == 0 {
            return CopyError::NodeUnavailable(self.message);
        }
        CopyError::Refused(format!(
            "the new node refused: {} ({})",
            self.message, self.code
        ))
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> Refusal {
    Refusal {
        status: 0,
        code: "NODE_UNAVAILABLE".into(),
        message: format!("the new node did not answer: {e}"),
    }
}

/// An answer read as `T`, or the agent's refusal.
async fn answer<T: DeserializeOwned>(
    sent: crate::error::AppResult<http::Response<hyper::body::Incoming>>,
) -> Result<T, Refusal> {
    let response = sent.map_err(|e| unavailable(&e))?;
    let status = response.status();
    let bytes = tokio::time::timeout(ANSWER_TIMEOUT, response.into_body().collect())
        .await
        .map_err(|e| unavailable(&e))?
        .map_err(|e| unavailable(&e))?
        .to_bytes();
    let text = if bytes.is_empty() {
        &b"null"[..]
    } else {
        &bytes[..]
    };
    if status.is_success() {
        return serde_json::from_slice(text).map_err(|e| unavailable(&e));
    }
    let value: serde_json::Value = serde_json::from_slice(text).unwrap_or_default();
    Err(Refusal {
        status: status.as_u16(),
        code: value["code"].as_str().unwrap_or_default().to_owned(),
        message: value["error"].as_str().unwrap_or("no detail").to_owned(),
    })
}

/// The imported server on its node.
pub struct Target {
    conn: Arc<AgentConn>,
    id: String,
}

/// How one part of a tus upload went.
pub enum Appended {
    /// The agent has the upload up to this offset.
    At(UploadStatus),
    /// The agent's checksum of the part differed: it dropped the part.
    Mismatch,
}

impl Target {
    /// Reaches the node of `instance`, giving the agent its spec first when it does not
    /// know the server yet.
    ///
    /// # Errors
    /// [`CopyError::NodeUnavailable`] while the node is offline.
    pub async fn open(state: &AppState, instance: &Instance) -> Result<Self, CopyError> {
        let conn = power::connected(state, &instance.node_id)
            .await
            .map_err(|e| CopyError::NodeUnavailable(e.to_string()))?;
        let target = Self {
            conn,
            id: instance.id.clone(),
        };
        match target.manifest(false).await {
            Err(CopyError::Refused(m)) if m.contains("(NOT_FOUND)") => {
                sync::push_instance(state, instance)
                    .await
                    .map_err(|e| CopyError::NodeUnavailable(e.to_string()))?;
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        Ok(target)
    }

    /// Every entry of the volume; with the SHA-256 of every file when `hash` (reads
    /// every byte on the node).
    ///
    /// # Errors
    /// The node did not answer or refused.
    pub async fn manifest(&self, hash: bool) -> Result<Manifest, CopyError> {
        let query = PartQuery {
            part: TransferPart::Files,
            hash,
        };
        // Hashing a big volume takes longer than a request's time limit: no limit here
        // (a dead agent still ends it with its tunnel).
        let sent = self
            .conn
            .open::<api::TransferManifest>(
                &self.id.as_str(),
                &query,
                http::HeaderMap::new(),
                Body::empty(),
            )
            .await;
        let response = sent.map_err(|e| CopyError::NodeUnavailable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CopyError::NodeUnavailable(e.to_string()))?
            .to_bytes();
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| CopyError::NodeUnavailable(format!("an unreadable manifest: {e}")));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(Refusal {
            status: status.as_u16(),
            code: value["code"].as_str().unwrap_or_default().to_owned(),
            message: value["error"].as_str().unwrap_or("no detail").to_owned(),
        }
        .into_error())
    }

    async fn json<E>(
        &self,
        params: &E::Params<'_>,
        body: &E::Request,
    ) -> Result<E::Response, Refusal>
    where
        E: api::Endpoint<Query = ()>,
        E::Request: serde::Serialize,
        E::Response: DeserializeOwned,
    {
        let (headers, body) = AgentConn::json_body::<E>(body).map_err(|e| unavailable(&e))?;
        answer(self.conn.open::<E>(params, &(), headers, body).await).await
    }

    /// Creates `path` and its parents.
    ///
    /// # Errors
    /// The agent's refusal.
    pub async fn mkdir(&self, path: &str) -> Result<(), Refusal> {
        let body = MkdirRequest {
            path: path.to_owned(),
        };
        self.json::<api::FilesMkdir>(&self.id.as_str(), &body)
            .await
            .map(drop)
    }

    /// Sets the permission bits of `path`.
    ///
    /// # Errors
    /// The agent's refusal.
    pub async fn chmod(&self, path: &str, mode: u32) -> Result<(), Refusal> {
        let body = ChmodRequest {
            path: path.to_owned(),
            mode: format!("{mode:o}"),
        };
        self.json::<api::FilesChmod>(&self.id.as_str(), &body)
            .await
            .map(drop)
    }

    /// Removes `paths` (trees for directories), at most 1,000 per request.
    ///
    /// # Errors
    /// The agent's refusal.
    pub async fn delete(&self, paths: &[String]) -> Result<(), Refusal> {
        for chunk in paths.chunks(1000) {
            let body = DeleteRequest {
                path: None,
                paths: chunk.to_vec(),
            };
            self.json::<api::FilesDelete>(&self.id.as_str(), &body)
                .await?;
        }
        Ok(())
    }

    /// Streams `body` to `path` (replaced atomically once whole): the bytes written.
    ///
    /// # Errors
    /// The agent's refusal; a body that failed midway leaves nothing.
    pub async fn upload(&self, path: &str, body: Body) -> Result<u64, Refusal> {
        let query = FilePath {
            path: path.to_owned(),
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let sent = self
            .conn
            .open::<api::FilesUpload>(&self.id.as_str(), &query, headers, body)
            .await;
        answer::<Written>(sent).await.map(|w| w.size)
    }

    /// Opens (or finds again: same id, path and length) the tus upload `upload`.
    ///
    /// # Errors
    /// The agent's refusal.
    pub async fn tus_open(
        &self,
        upload: &str,
        path: &str,
        length: u64,
        expires_at: i64,
    ) -> Result<UploadStatus, Refusal> {
        let body = CreateUpload {
            id: upload.to_owned(),
            path: path.to_owned(),
            length,
            expires_at,
        };
        self.json::<api::UploadCreate>(&self.id.as_str(), &body)
            .await
    }

    /// Appends `part` at `offset`, with its SHA-256 for the agent to check.
    ///
    /// # Errors
    /// The agent's refusal (409 `OFFSET_MISMATCH` when it is elsewhere).
    pub async fn tus_append(
        &self,
        upload: &str,
        offset: u64,
        part: Bytes,
        sha256: &[u8],
    ) -> Result<Appended, Refusal> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let checksum = format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(sha256)
        );
        headers.insert(
            CHECKSUM_HEADER,
            HeaderValue::from_str(&checksum).map_err(|e| unavailable(&e))?,
        );
        let sent = self
            .conn
            .open::<api::UploadWrite>(
                &(self.id.as_str(), upload),
                &UploadOffset { offset },
                headers,
                Body::from(part),
            )
            .await;
        match answer::<UploadStatus>(sent).await {
            Ok(status) => Ok(Appended::At(status)),
            Err(r) if r.status == CHECKSUM_MISMATCH => Ok(Appended::Mismatch),
            Err(r) => Err(r),
        }
    }

    /// Drops the tus upload `upload` (gone already is fine).
    ///
    /// # Errors
    /// The agent's refusal.
    pub async fn tus_drop(&self, upload: &str) -> Result<(), Refusal> {
        let sent = self
            .conn
            .open::<api::UploadDelete>(
                &(self.id.as_str(), upload),
                &(),
                http::HeaderMap::new(),
                Body::empty(),
            )
            .await;
        match answer::<serde_json::Value>(sent).await {
            Ok(_) => Ok(()),
            Err(r) if r.status == 404 => Ok(()),
            Err(r) => Err(r),
        }
    }
}
