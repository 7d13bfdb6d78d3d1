//! What the API answers about git deploy: an instance's settings (never a secret, only
//! whether one is set and the deploy key's fingerprint), one sync, and the status.

use serde::{Deserialize, Serialize};

use super::store::{GitConfig, GitSync};
use crate::types::Timestamp;

/// How a repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GitAuth {
    DeployKey,
    Token,
    None,
}

/// An instance's git settings.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GitConfigView {
    pub instance_id: String,
    pub repository_url: String,
    pub branch: String,
    pub target_directory: String,
    pub restart_after_sync: bool,
    pub auth: GitAuth,
    pub has_deploy_key: bool,
    pub deploy_key_fingerprint: Option<String>,
    pub has_token: bool,
    pub token_username: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&GitConfig> for GitConfigView {
    fn from(c: &GitConfig) -> Self {
        let auth = if c.sealed_deploy_key.is_some() {
            GitAuth::DeployKey
        } else if c.sealed_token.is_some() {
            GitAuth::Token
        } else {
            GitAuth::None
        };
        Self {
            instance_id: c.instance_id.clone(),
            repository_url: c.repo_url.clone(),
            branch: c.branch.clone(),
            target_directory: c.target_dir.clone(),
            restart_after_sync: c.restart_after_sync,
            auth,
            has_deploy_key: c.sealed_deploy_key.is_some(),
            deploy_key_fingerprint: c.deploy_key_fingerprint.clone(),
            has_token: c.sealed_token.is_some(),
            token_username: c.token_username.clone(),
            created_at: Timestamp(c.created_at),
            updated_at: Timestamp(c.updated_at),
        }
    }
}

/// One sync.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GitSyncView {
    pub id: String,
    pub instance_id: String,
    /// `running`, `success` or `failed`.
    pub status: String,
    /// `manual`, `webhook`...
    pub trigger: String,
    pub repository_url: String,
    pub branch: String,
    /// The deployed commit, once known.
    pub commit: Option<String>,
    /// The commit's subject line.
    pub message: Option<String>,
    pub files: i64,
    pub removed: i64,
    pub restarted: bool,
    pub error: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub duration_ms: Option<i64>,
}

impl From<&GitSync> for GitSyncView {
    fn from(s: &GitSync) -> Self {
        Self {
            id: s.id.clone(),
            instance_id: s.instance_id.clone(),
            status: s.status.clone(),
            trigger: s.trigger.clone(),
            repository_url: s.repo_url.clone(),
            branch: s.branch.clone(),
            commit: s.commit_sha.clone(),
            message: s.commit_message.clone(),
            files: s.files,
            removed: s.removed,
            restarted: s.restarted,
            error: s.error.clone(),
            started_at: Timestamp(s.started_at),
            finished_at: s.finished_at.map(Timestamp),
            duration_ms: s.finished_at.map(|f| f - s.started_at),
        }
    }
}

/// Whether a sync runs, the last one and the last successful one (the deployed commit).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GitStatus {
    pub instance_id: String,
    pub configured: bool,
    pub config: Option<GitConfigView>,
    pub running: bool,
    pub current: Option<GitSyncView>,
    pub last_sync: Option<GitSyncView>,
    pub deployed_commit: Option<String>,
    pub last_success: Option<GitSyncView>,
}
