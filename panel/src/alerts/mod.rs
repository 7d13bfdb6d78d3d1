//! Alerts (domain layer): an organization's rules (`/v1/alerts/rules`, `rules.rs`), the
//! alerts they raise (`/v1/alerts`, `handlers.rs`), their evaluation as samples and
//! events arrive (`evaluate.rs`: pending → firing → resolved with duration, hysteresis
//! and cooldown; missing data is not recovery; a node's outage is one alert) and their
//! notification, once per transition and channel across replicas (`notify.rs`), and
//! maintenance windows that hold both back (`/v1/alerts/maintenance`, `maintenance.rs`). The
//! nodes' presence listener, the heartbeat's sample and the instances' state reports
//! call [`evaluate`]; the `alerts` job moves on the alerts whose time came.

pub mod evaluate;
pub mod handlers;
pub mod maintenance;
pub mod notify;
pub mod rules;
pub mod store;

use crate::routes::{Access, Routes};

/// The alerts routes.
pub fn router() -> Routes {
    Routes::new("alerts")
        .get("/v1/alerts", Access::User, "List alerts", handlers::list)
        .get(
            "/v1/alerts/unread-count",
            Access::User,
            "Unread count",
            handlers::unread_count,
        )
        .post(
            "/v1/alerts/read",
            Access::User,
            "Mark alerts seen",
            handlers::mark_read,
        )
        .get("/v1/alerts/rules", Access::User, "List rules", rules::list)
        .post(
            "/v1/alerts/rules",
            Access::User,
            "Create rule",
            rules::create,
        )
        .get(
            "/v1/alerts/rules/{id}",
            Access::User,
            "Get rule",
            rules::get,
        )
        .put(
            "/v1/alerts/rules/{id}",
            Access::User,
            "Update rule",
            rules::update,
        )
        .delete(
            "/v1/alerts/rules/{id}",
            Access::User,
            "Delete rule",
            rules::delete,
        )
        .get(
            "/v1/alerts/maintenance",
            Access::User,
            "List maintenance windows",
            maintenance::list,
        )
        .post(
            "/v1/alerts/maintenance",
            Access::User,
            "Create maintenance window",
            maintenance::create,
        )
        .get(
            "/v1/alerts/maintenance/{id}",
            Access::User,
            "Get maintenance window",
            maintenance::get,
        )
        .delete(
            "/v1/alerts/maintenance/{id}",
            Access::User,
            "Delete maintenance window",
            maintenance::delete,
        )
        .get("/v1/alerts/{id}", Access::User, "Get alert", handlers::get)
        .post(
            "/v1/alerts/{id}/ack",
            Access::User,
            "Acknowledge alert",
            handlers::ack,
        )
        .post(
            "/v1/alerts/{id}/silence",
            Access::User,
            "Silence alert",
            handlers::silence,
        )
}
