//! Schedules: cron-driven task lists per instance, run by the job runner.

use crate::routes::Routes;

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("schedules")
}
