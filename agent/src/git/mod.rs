//! Git deploy: clone or fetch a repository and sync its tree into an instance's files.
//!
//! A sync (`POST /v1/instances/{id}/git/sync`, [`api`]) runs the host's `git` CLI
//! ([`fetch`]) in a staging repository under `DATA_DIR/git/{instance}/repo`: a shallow
//! fetch of the branch, then a hard reset of the work tree. The tracked files are then
//! copied ([`copy`]) into the target directory through the instance's file sandbox
//! ([`crate::files::Sandbox`]), so the denylist, the disk limit and the capability root
//! apply, and symlinks in the repository are never followed nor copied. Files the previous
//! sync wrote that the new commit no longer has are removed. One sync per instance at a
//! time ([`Syncs`]); a second one answers 409 `GIT_SYNC_RUNNING`.

pub mod api;
mod copy;
mod fetch;
pub mod pin;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http::StatusCode;
use shardlyn_proto::git::{SyncRequest, SyncResult};

use crate::files::{FileError, Sandbox};

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A sync of this instance is already running: 409 `GIT_SYNC_RUNNING`.
    #[error("a git sync of this instance is already running")]
    Busy,
    /// The request is unusable (URL, branch, key): 422 `VALIDATION_ERROR`.
    #[error("{0}")]
    Invalid(String),
    /// `git` failed (unreachable, no such branch, auth): 422 `GIT_FAILED`.
    #[error("git {step} failed: {detail}")]
    Git { step: &'static str, detail: String },
    /// `git` took longer than [`fetch::TIMEOUT`]: 504 `GIT_TIMEOUT`.
    #[error("git {0} timed out")]
    Timeout(&'static str),
    /// `git` is not installed on the node: 503 `GIT_MISSING`.
    #[error("git is not installed on this node: {0}")]
    Missing(String),
    /// Writing into the instance's files failed (denylist, disk limit, paths).
    #[error(transparent)]
    Files(#[from] FileError),
    /// The remote is refused by the outbound guard or does not resolve: 422
    /// `OUTBOUND_DENIED` or `OUTBOUND_UNRESOLVABLE`.
    #[error(transparent)]
    Outbound(#[from] shardlyn_net::outbound::OutboundError),
    /// Local I/O on the staging directory.
    #[error("git staging: {0}")]
    Io(String),
}

impl GitError {
    /// The HTTP status and the stable code.
    #[must_use]
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Busy => (StatusCode::CONFLICT, "GIT_SYNC_RUNNING"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            Self::Git { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "GIT_FAILED"),
            Self::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "GIT_TIMEOUT"),
            Self::Missing(_) => (StatusCode::SERVICE_UNAVAILABLE, "GIT_MISSING"),
            Self::Files(e) => e.status_code(),
            Self::Outbound(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.code()),
            Self::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "GIT_IO"),
        }
    }
}

/// The instances with a sync running on this agent. Cheap to clone.
#[derive(Clone, Default)]
pub struct Syncs(Arc<Mutex<HashSet<String>>>);

/// Held for the duration of one sync; frees the instance when dropped.
pub struct SyncGuard {
    syncs: Syncs,
    id: String,
}

impl Syncs {
    /// Marks `id` as syncing.
    ///
    /// # Errors
    /// [`GitError::Busy`] when a sync of `id` is already running.
    pub fn begin(&self, id: &str) -> Result<SyncGuard, GitError> {
        let mut running = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !running.insert(id.to_owned()) {
            return Err(GitError::Busy);
        }
        Ok(SyncGuard {
            syncs: self.clone(),
            id: id.to_owned(),
        })
    }

    /// Whether a sync of `id` is running.
    #[must_use]
    pub fn is_running(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }
}

impl Drop for SyncGuard {
    fn drop(&mut self) {
        self.syncs
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// `DATA_DIR/git`: staging repositories, the known-hosts file, temporary keys.
#[must_use]
pub fn git_root(manager: &crate::instances::Manager) -> PathBuf {
    manager.0.paths.tmp.with_file_name("git")
}

/// Checks the request the way the panel did (the agent trusts no one's validation).
///
/// # Errors
/// [`GitError::Invalid`].
pub fn check(req: &SyncRequest) -> Result<(), GitError> {
    use shardlyn_proto::git::{UrlKind, check_branch, check_url};
    let kind = check_url(&req.url).map_err(GitError::Invalid)?;
    check_branch(&req.branch).map_err(GitError::Invalid)?;
    if req.deploy_key.is_some() && kind != UrlKind::Ssh {
        return Err(GitError::Invalid(
            "a deploy key is only used with ssh URLs".into(),
        ));
    }
    if req.token.is_some() && kind != UrlKind::Http {
        return Err(GitError::Invalid(
            "a token is only used with http(s) URLs".into(),
        ));
    }
    crate::files::RelPath::parse(&req.target_dir)?;
    Ok(())
}

/// Runs one sync of instance `id` (the caller holds its [`SyncGuard`]): fetch, then copy
/// into the sandbox.
///
/// # Errors
/// See [`GitError`].
pub async fn sync(
    manager: &crate::instances::Manager,
    id: &str,
    req: &SyncRequest,
) -> Result<SyncResult, GitError> {
    check(req)?;
    let sandbox = Sandbox::for_instance(manager, id)?;
    let root = git_root(manager);
    let dir = root.join(id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| GitError::Io(format!("{}: {e}", dir.display())))?;
    // Checked here, at fetch time, against this node's allow list (the panel checked
    // when the URL was set, but DNS answers and allow lists differ between the two).
    let pinned = pin::pin(&manager.0.settings.outbound, &req.url).await?;
    let head = fetch::fetch(&root, &dir, req, &pinned).await?;
    let repo = dir.join("repo");
    let manifest = dir.join("manifest.json");
    let target = req.target_dir.clone();
    let (files, removed) = tokio::task::spawn_blocking(move || {
        copy::deploy(&sandbox, &repo, &head.files, &target, &manifest)
    })
    .await
    .map_err(|e| GitError::Io(format!("copy task: {e}")))??;
    Ok(SyncResult {
        commit: head.commit,
        message: head.message,
        files,
        removed,
    })
}

/// Removes the staging data of an instance (best effort).
pub fn forget(manager: &crate::instances::Manager, id: &str) {
    let dir = git_root(manager).join(id);
    if dir.starts_with(git_root(manager)) && Path::new(&dir).exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
