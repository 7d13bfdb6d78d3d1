//! What the API answers about moves.

use serde::{Deserialize, Serialize};

use super::store::Migration;
use crate::types::Timestamp;

/// A port that was taken on the target and replaced.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PortChange {
    pub from: u16,
    pub to: u16,
}

/// The backup a server is rebuilt from.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FromBackup {
    pub backup_id: String,
    /// When it was taken: what changed on the server since is lost.
    pub taken_at: Timestamp,
}

/// One move of a server.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MigrationView {
    pub id: String,
    pub instance_id: String,
    pub source_node_id: String,
    pub target_node_id: String,
    /// `queued`, `copying`, `final_sync`, `switching`, `completed`, `failed` or
    /// `cancelled`.
    pub state: String,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// The server ran when the move began (it runs again at the end).
    pub was_running: bool,
    /// Archive bytes moved so far (compressed).
    pub bytes_copied: i64,
    /// Ports that were taken on the target and replaced.
    pub ports_changed: Vec<PortChange>,
    /// Copies resumed after a cut (a node's tunnel, or the panel replica running it).
    pub resumes: i64,
    /// Set when the server is rebuilt from a backup because its node is offline.
    pub from_backup: Option<FromBackup>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl From<&Migration> for MigrationView {
    fn from(m: &Migration) -> Self {
        Self {
            id: m.id.clone(),
            instance_id: m.instance_id.clone(),
            source_node_id: m.source_node_id.clone(),
            target_node_id: m.target_node_id.clone(),
            state: m.state.clone(),
            reason: m.reason.clone(),
            was_running: m.was_running,
            bytes_copied: m.bytes_copied,
            ports_changed: m
                .ports_changed
                .split(',')
                .filter_map(|pair| {
                    let (from, to) = pair.split_once("->")?;
                    Some(PortChange {
                        from: from.parse().ok()?,
                        to: to.parse().ok()?,
                    })
                })
                .collect(),
            resumes: m.resumes,
            from_backup: m.backup_id.as_ref().map(|id| FromBackup {
                backup_id: id.clone(),
                taken_at: Timestamp(m.backup_taken_at.unwrap_or_default()),
            }),
            created_at: Timestamp(m.created_at),
            updated_at: Timestamp(m.updated_at),
            finished_at: m.finished_at.map(Timestamp),
        }
    }
}

/// Moves, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MigrationList {
    pub data: Vec<MigrationView>,
}
