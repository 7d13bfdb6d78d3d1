//! `ApiError`: the agent's one error type for its API. Every refused or failed request
//! answers through it, in the envelope the panel answers with
//! (`shardlyn_proto::ErrorBody`: `{"error": "...", "code": "..."}`), so the panel can relay an
//! agent's refusal to its own client unchanged.
//!
//! The areas keep their own error enums ([`FileError`], [`GitError`], [`InstanceError`],
//! [`RuntimeError`]), each saying which status and code a variant is; they convert into
//! `ApiError` with `?`. Only this file builds an error response.

use std::borrow::Cow;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use shardlyn_net::outbound::OutboundError;
use shardlyn_proto::ErrorBody;

use crate::files::FileError;
use crate::git::GitError;
use crate::instances::InstanceError;
use crate::runtime::RuntimeError;

/// A refused or failed agent API request: a status, a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
}

/// What an agent API handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with this status, code and message.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
        }
    }

    /// 400 `BAD_REQUEST`.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    /// 404 `NOT_FOUND`.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 409 `CONFLICT`.
    #[must_use]
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    #[must_use]
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message)
    }

    /// 500 `INTERNAL`.
    #[must_use]
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The envelope this error answers with.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code.clone(), self.message.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = %self.code, error = %self.message, "agent request failed");
        }
        (self.status, Json(self.body())).into_response()
    }
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> Self {
        let (status, code) = e.status_code();
        Self::new(status, code, e.to_string())
    }
}

impl From<GitError> for ApiError {
    fn from(e: GitError) -> Self {
        let (status, code) = e.status_code();
        Self::new(status, code, e.to_string())
    }
}

impl From<InstanceError> for ApiError {
    fn from(e: InstanceError) -> Self {
        let (status, code) = e.status_code();
        Self::new(status, code, e.to_string())
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        let (status, code) = e.status_code();
        let message = match e {
            RuntimeError::NotFound => "container not found".to_owned(),
            RuntimeError::Conflict(m) | RuntimeError::Unavailable(m) => m,
        };
        Self::new(status, code, message)
    }
}

impl From<OutboundError> for ApiError {
    fn from(e: OutboundError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn envelope(e: impl Into<ApiError>) -> (StatusCode, serde_json::Value) {
        let response = e.into().into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("json"))
    }

    /// Only this file builds an error answer: any other `ErrorBody` construction or
    /// `IntoResponse` impl under `agent/src` is a second error type.
    #[test]
    fn only_this_file_builds_error_answers() {
        let root =
            std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
                .join("src");
        let mut stack = vec![root.clone()];
        let mut found = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path == root.join("error.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read");
                for (n, line) in text.lines().enumerate() {
                    if line.contains("ErrorBody::new(")
                        || line.contains("ErrorBody {")
                        || (line.contains("impl") && line.contains("IntoResponse for"))
                    {
                        found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "error answers built outside error.rs:\n{}",
            found.join("\n")
        );
    }

    #[tokio::test]
    async fn every_area_error_renders_the_panels_envelope() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (FileError::Escape("a/b".into()).into(), 403, "PATH_ESCAPE"),
            (FileError::NoInstance.into(), 404, "NOT_FOUND"),
            (GitError::Busy.into(), 409, "GIT_SYNC_RUNNING"),
            (
                GitError::Files(FileError::DiskLimit { limit_mb: 5 }).into(),
                413,
                "DISK_LIMIT",
            ),
            (InstanceError::NotFound.into(), 404, "NOT_FOUND"),
            (
                InstanceError::ImageUnavailable("x".into()).into(),
                409,
                "IMAGE_UNAVAILABLE",
            ),
            (
                InstanceError::Docker("down".into()).into(),
                503,
                "SERVICE_UNAVAILABLE",
            ),
            (RuntimeError::NotFound.into(), 404, "NOT_FOUND"),
            (ApiError::bad_request("invalid pid"), 400, "BAD_REQUEST"),
        ];
        for (error, status, code) in cases {
            let message = error.message.clone();
            let (got_status, body) = envelope(error).await;
            assert_eq!(got_status.as_u16(), status, "{code}");
            // Exactly the panel's envelope: the same two keys, read back as its type.
            let parsed: ErrorBody = serde_json::from_value(body.clone()).expect("envelope");
            assert_eq!(parsed, ErrorBody::new(code, message), "{body}");
            assert_eq!(
                body.as_object().map(serde_json::Map::len),
                Some(2),
                "{body}"
            );
        }
    }
}
