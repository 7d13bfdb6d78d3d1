//! Resumable uploads (tus) between the panel and the agent: the panel speaks tus to
//! clients and keeps the records; the agent holds the bytes, so its offset is the truth.
//!
//! Agent routes: `POST /v1/instances/{id}/uploads` ([`CreateUpload`] → [`UploadStatus`]),
//! `GET /v1/instances/{id}/uploads/{upload}` (→ [`UploadStatus`]),
//! `POST /v1/instances/{id}/uploads/{upload}?offset=N` with the raw bytes as body and an
//! optional [`CHECKSUM_HEADER`] (→ [`UploadStatus`]; 409 `OFFSET_MISMATCH`, 460
//! `CHECKSUM_MISMATCH`), `DELETE /v1/instances/{id}/uploads/{upload}` (204).

use serde::{Deserialize, Serialize};

/// Header carrying the tus `Upload-Checksum` of one append (`sha1 <base64>`).
pub const CHECKSUM_HEADER: &str = "upload-checksum";

/// Status code of a chunk whose checksum did not match (tus checksum extension).
pub const CHECKSUM_MISMATCH: u16 = 460;

/// Opens an upload of `length` bytes that lands at `path` (relative to the server's
/// files) once complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateUpload {
    pub id: String,
    pub path: String,
    pub length: u64,
    /// Unix milliseconds after which the partial data may be removed.
    pub expires_at: i64,
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UploadStatus {
    pub id: String,
    pub offset: u64,
    pub length: u64,
    /// The file is at its path.
    pub completed: bool,
    pub expires_at: i64,
}
