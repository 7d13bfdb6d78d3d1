//! Git deploy per instance: configuration, sync through the agent, status and history.
//!
//! `/v1/instances/{id}/git` holds an instance's repository URL, branch, target directory,
//! restart flag and optional deploy key or token (`config.rs`; the secrets sealed under
//! the master key and never returned, only the key's fingerprint). A sync (`sync.rs`) is
//! recorded in `git_syncs` as `running`, runs on the instance's agent (fetch, then copy
//! into the instance files through its sandbox) and ends `success` or `failed`; a push
//! webhook for the same repository and branch triggers one ([`on_push`]). Every route
//! needs the `instances.git` permission. Tables in `store.rs`.

mod config;
pub mod store;
mod sync;

use serde_json::{Value, json};

use crate::db::rfc3339;
use crate::routes::{Access, Routes};

pub use sync::on_push;

/// The permission every git deploy route needs.
pub const PERMISSION: &str = "instances.git";

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("git")
        .get(
            "/v1/instances/{id}/git",
            Access::User,
            "Get git config",
            config::get,
        )
        .put(
            "/v1/instances/{id}/git",
            Access::User,
            "Create/update config",
            config::put,
        )
        .delete(
            "/v1/instances/{id}/git",
            Access::User,
            "Delete config",
            config::delete,
        )
        .post(
            "/v1/instances/{id}/git/sync",
            Access::User,
            "Trigger sync",
            sync::trigger,
        )
        .get(
            "/v1/instances/{id}/git/status",
            Access::User,
            "Sync status",
            sync::status,
        )
        .get(
            "/v1/instances/{id}/git/history",
            Access::User,
            "Sync history",
            sync::history,
        )
}

/// The JSON shape of an instance's git settings (no secret, ever).
pub(crate) fn config_view(c: &store::GitConfig) -> Value {
    json!({
        "instance_id": c.instance_id,
        "repository_url": c.repo_url,
        "branch": c.branch,
        "target_directory": c.target_dir,
        "restart_after_sync": c.restart_after_sync,
        "auth": if c.sealed_deploy_key.is_some() { "deploy_key" } else if c.sealed_token.is_some() { "token" } else { "none" },
        "has_deploy_key": c.sealed_deploy_key.is_some(),
        "deploy_key_fingerprint": c.deploy_key_fingerprint,
        "has_token": c.sealed_token.is_some(),
        "token_username": c.token_username,
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

/// The JSON shape of one sync.
pub(crate) fn sync_view(s: &store::GitSync) -> Value {
    json!({
        "id": s.id,
        "instance_id": s.instance_id,
        "status": s.status,
        "trigger": s.trigger,
        "repository_url": s.repo_url,
        "branch": s.branch,
        "commit": s.commit_sha,
        "message": s.commit_message,
        "files": s.files,
        "removed": s.removed,
        "restarted": s.restarted,
        "error": s.error,
        "started_at": rfc3339(s.started_at),
        "finished_at": s.finished_at.map(rfc3339),
        "duration_ms": s.finished_at.map(|f| f - s.started_at),
    })
}
