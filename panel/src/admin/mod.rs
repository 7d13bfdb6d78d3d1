//! Platform admin: the metrics dashboard (`/v1/admin/metrics`) and the log settings
//! (`/v1/admin/settings/logs`: log level applied at run time, audit-log retention).
//! Users, organizations and audit logs live with their areas (`users`, `audit`).

pub mod logs;
mod metrics;

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
