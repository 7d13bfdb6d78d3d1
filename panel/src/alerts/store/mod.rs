//! SQL of the alerts area; the row <-> struct mapping lives here: rules
//! (`alert_rules`, `rules.rs`), alerts and their transitions (`alerts`, `alerts.rs`), and
//! notification claims, seen marks and recipients (`alert_notifications`, `alert_seen`,
//! `notifications.rs`), and maintenance windows (`alert_maintenance`, `maintenance.rs`).

mod alerts;
mod maintenance;
mod notifications;
mod rules;

pub use alerts::*;
pub use maintenance::*;
pub use notifications::*;
pub use rules::*;
