//! Backups: `/v1/instances/{id}/backups` (`handlers.rs`; the agent archives, the panel
//! records, and learns progress and the end from the agent's reports: `progress.rs`) and `/v1/backup-config` (`configs.rs`: per-organization storage
//! targets). Tables `backups` and `backup_configs` (`store.rs`); S3 access from the panel
//! (downloads, deletes, bucket list/create) in `s3.rs`.

mod configs;
mod handlers;
pub mod progress;
pub mod s3;
pub mod store;
mod view;

/// Starting a backup without an HTTP caller (scheduled backup tasks), and where a
/// backup is read from (a move rebuilding a server from it).
pub(crate) use handlers::{CreateBody, Ignored, begin, forget_remote, target_of};

use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};
use crate::routes::{Access, Routes};

/// The backups routes.
pub fn router() -> Routes {
    Routes::new("backups")
        .get(
            "/v1/instances/{id}/backups",
            Access::User,
            "List backups",
            handlers::list,
        )
        .post(
            "/v1/instances/{id}/backups",
            Access::User,
            "Create backup",
            handlers::create,
        )
        .errors(&[(
            402,
            "PLAN_LIMIT: the organization's plan does not allow it (limit, usage, cap)",
        )])
        .get(
            "/v1/instances/{id}/backups/{bid}/download",
            Access::User,
            "Download backup",
            handlers::download,
        )
        .post(
            "/v1/instances/{id}/backups/{bid}/restore",
            Access::User,
            "Restore backup",
            handlers::restore,
        )
        .post(
            "/v1/instances/{id}/backups/{bid}/lock",
            Access::User,
            "Lock or unlock backup",
            handlers::lock,
        )
        .delete(
            "/v1/instances/{id}/backups/{bid}",
            Access::User,
            "Delete backup",
            handlers::delete,
        )
        .merge(
            Routes::new("backup-config")
                .get(
                    "/v1/backup-config",
                    Access::User,
                    "Active config",
                    configs::active,
                )
                .post(
                    "/v1/backup-config",
                    Access::User,
                    "Create config",
                    configs::create,
                )
                .get(
                    "/v1/backup-config/list",
                    Access::User,
                    "List all configs",
                    configs::list,
                )
                .get(
                    "/v1/backup-config/s3-buckets",
                    Access::User,
                    "List S3 buckets",
                    configs::buckets,
                )
                .post(
                    "/v1/backup-config/s3-buckets",
                    Access::User,
                    "Create S3 bucket",
                    configs::create_bucket,
                )
                .get(
                    "/v1/backup-config/{id}",
                    Access::User,
                    "Get config",
                    configs::get,
                )
                .put(
                    "/v1/backup-config/{id}",
                    Access::User,
                    "Update config",
                    configs::update,
                )
                .delete(
                    "/v1/backup-config/{id}",
                    Access::User,
                    "Delete config",
                    configs::delete,
                )
                .post(
                    "/v1/backup-config/{id}/activate",
                    Access::User,
                    "Set active",
                    configs::activate,
                ),
        )
}

/// A JSON body that may be empty (then the default).
pub(crate) fn optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> AppResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}
