//! What the API answers about backups: one backup ([`BackupView`]), the list, and a
//! restore that started.

use serde::{Deserialize, Serialize};
use shardlyn_proto::instance::{DesiredState, InstanceState};

use super::store::Backup;
use crate::types::Timestamp;

/// One backup of an instance.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackupView {
    pub id: String,
    pub instance_id: String,
    pub name: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// `local` or `s3`.
    pub target: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the archive (empty until it completed).
    pub sha256: String,
    /// `sha256:<hex>`, null until the archive completed.
    pub checksum: Option<String>,
    /// A locked backup is neither deleted nor rotated.
    pub locked: bool,
    /// The ignore patterns, one a line.
    pub ignored: String,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

impl From<&Backup> for BackupView {
    fn from(b: &Backup) -> Self {
        Self {
            id: b.id.clone(),
            instance_id: b.instance_id.clone(),
            name: b.name.clone(),
            status: b.status.clone(),
            target: b.target.clone(),
            size_bytes: b.size_bytes,
            sha256: b.sha256.clone(),
            checksum: (!b.sha256.is_empty()).then(|| format!("sha256:{}", b.sha256)),
            locked: b.locked,
            ignored: b.ignored.clone(),
            error: b.error.clone(),
            created_at: Timestamp(b.created_at),
            completed_at: b.completed_at.map(Timestamp),
        }
    }
}

/// The backups of an instance, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackupList {
    pub data: Vec<BackupView>,
}

/// A restore the node started: the server was stopped first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RestoreStarted {
    /// The backup.
    pub id: String,
    pub instance_id: String,
    pub restoring: bool,
    pub truncate: bool,
    pub state: InstanceState,
    pub desired_state: DesiredState,
}
