//! Backups between panel and agent: where an archive goes (`Target`), the create and
//! restore requests, and the agent's record of one backup (`BackupInfo`).
//!
//! S3 credentials travel in the request over the tunnel and are never stored on the node.

use serde::{Deserialize, Serialize};

/// Console event sent when a backup finished (args: backup id, `"true"`/`"false"`).
pub const BACKUP_COMPLETED: &str = "backup completed";
/// Console event sent when a restore finished (args: backup id).
pub const BACKUP_RESTORE_COMPLETED: &str = "backup restore completed";
/// Agent → panel on `/v1/events`: an `Event` of this name with one argument, a
/// [`BackupProgress`]: how far a backup or restore got, and how it ended.
pub const BACKUP_PROGRESS: &str = "backup progress";

/// Where a backup archive lives.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// `DATA_DIR/backups/{instance}/{backup}.tar.zst` on the node.
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3(S3Target),
}

/// An S3-compatible bucket and the object key of one archive.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct S3Target {
    /// e.g. `http://127.0.0.1:9000`; empty for AWS.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub region: String,
    pub bucket: String,
    /// The object key of the archive.
    pub key: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Multipart upload part size in bytes (at least 5 MiB).
    #[serde(default)]
    pub part_size: u64,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("part_size", &self.part_size)
            .finish()
    }
}

/// `POST /v1/instances/{id}/backups` on the agent.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateBackup {
    /// The backup id chosen by the panel.
    pub id: String,
    /// Extra ignore patterns (gitignore syntax, one per line).
    #[serde(default)]
    pub ignored: String,
    #[serde(default)]
    pub target: Target,
}

/// `POST /v1/instances/{id}/backups/{bid}/restore` on the agent.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RestoreBackup {
    /// The SHA-256 (hex) recorded when the backup completed; checked before any file
    /// is touched.
    pub sha256: String,
    /// Empty the server directory before extracting.
    #[serde(default)]
    pub truncate: bool,
    #[serde(default)]
    pub target: Target,
}

/// A backup's status on the agent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    Running,
    Completed,
    Failed,
}

impl BackupStatus {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// The agent's record of one backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct BackupInfo {
    pub id: String,
    pub instance: String,
    pub status: BackupStatus,
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub error: Option<String>,
    pub started_at: i64,
    #[serde(default)]
    pub completed_at: Option<i64>,
}

/// What a [`BackupProgress`] is about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupOperation {
    /// Writing the archive.
    Backup,
    /// Extracting it into the server directory.
    Restore,
}

/// How far one backup or restore got. Sent when it starts, about once a second while it
/// runs, and once when it ends (`status` no longer `running`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct BackupProgress {
    pub instance: String,
    pub backup: String,
    pub operation: BackupOperation,
    pub status: BackupStatus,
    /// Backup: bytes of the server's files archived so far (tar stream, before
    /// compression). Restore: bytes of the archive read so far.
    pub bytes_done: u64,
    /// What `bytes_done` reaches at the end; 0 when the agent does not know.
    #[serde(default)]
    pub bytes_total: u64,
    /// A backup that ended: its record (size and checksum of the archive).
    #[serde(default)]
    pub record: Option<BackupInfo>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}
