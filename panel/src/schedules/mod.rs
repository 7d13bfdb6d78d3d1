//! Schedules: cron-driven task lists per instance (Pterodactyl's schedules), run by the
//! panel's job runner exactly once however many replicas share the database.
//!
//! `handlers.rs` serves `/v1/instances/{id}/schedules` (permission `instances.schedules`),
//! `input.rs` checks bodies, `cron.rs` computes next runs in a time zone, `store.rs` owns
//! the `schedules`, `schedule_tasks` and `schedule_runs` tables, and `runner.rs` is the
//! `schedules` background job (see `crate::jobs`).

pub mod cron;
mod handlers;
pub mod input;
pub mod runner;
pub mod store;
pub mod view;

use crate::routes::{Access, Routes};

pub use handlers::MAX_SCHEDULES;
pub use view::{RunList, RunView, ScheduleList, ScheduleView, TaskResult};

/// The schedules routes.
#[must_use]
pub fn router() -> Routes {
    Routes::new("schedules")
        .get(
            "/v1/instances/{id}/schedules",
            Access::User,
            "List schedules",
            handlers::list,
        )
        .post(
            "/v1/instances/{id}/schedules",
            Access::User,
            "Create schedule",
            handlers::create,
        )
        .get(
            "/v1/instances/{id}/schedules/{sid}",
            Access::User,
            "Get schedule",
            handlers::get,
        )
        .put(
            "/v1/instances/{id}/schedules/{sid}",
            Access::User,
            "Update, enable or disable schedule",
            handlers::update,
        )
        .delete(
            "/v1/instances/{id}/schedules/{sid}",
            Access::User,
            "Delete schedule",
            handlers::delete,
        )
        .post(
            "/v1/instances/{id}/schedules/{sid}/run",
            Access::User,
            "Run schedule now",
            handlers::run_now,
        )
        .get(
            "/v1/instances/{id}/schedules/{sid}/runs",
            Access::User,
            "Run history",
            handlers::runs,
        )
        .get(
            "/v1/instances/{id}/schedules/{sid}/runs/{rid}",
            Access::User,
            "Get run",
            handlers::run,
        )
}

/// The API's view of a schedule.
#[must_use]
pub fn view(s: &store::Schedule) -> ScheduleView {
    ScheduleView::from(s)
}

/// The API's view of a run; `tasks` holds one result per task (`status` `completed`,
/// `failed` or `skipped`, `error`, and `backup_id` / `state` where the action gives one).
#[must_use]
pub fn run_view(r: &store::Run) -> RunView {
    RunView::from(r)
}
