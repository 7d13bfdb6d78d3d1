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
pub mod view;

use crate::routes::{Access, Routes};

pub use sync::on_push;
pub use view::{GitConfigView, GitStatus, GitSyncView};

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

/// The API's view of an instance's git settings (no secret, ever).
pub(crate) fn config_view(c: &store::GitConfig) -> GitConfigView {
    GitConfigView::from(c)
}

/// The API's view of one sync.
pub(crate) fn sync_view(s: &store::GitSync) -> GitSyncView {
    GitSyncView::from(s)
}
