//! Platform admin: the metrics dashboard (`/v1/admin/metrics`), the log settings
//! (`/v1/admin/settings/logs`: log level applied at run time, audit-log retention) and
//! the panel's replicas with their agents (`/v1/admin/replicas`).
//! Users, organizations and audit logs live with their areas (`users`, `audit`).

pub mod logs;
mod metrics;
pub mod replicas;

use crate::routes::{Access, Routes};

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("admin")
        .get(
            "/v1/admin/metrics",
            Access::Admin,
            "Metrics dashboard",
            metrics::get,
        )
        .get(
            "/v1/admin/replicas",
            Access::Admin,
            "List panel replicas and their agents",
            replicas::list,
        )
        .errors(&[(503, "The replica registry (Redis) cannot be read")])
        .get(
            "/v1/admin/settings/logs",
            Access::Admin,
            "Get log settings",
            logs::get,
        )
        .put(
            "/v1/admin/settings/logs",
            Access::Admin,
            "Update log settings",
            logs::put,
        )
}
