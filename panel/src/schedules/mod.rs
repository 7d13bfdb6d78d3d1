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

use serde_json::{Value, json};

use crate::db::rfc3339;
use crate::routes::{Access, Routes};

pub use handlers::{MAX_SCHEDULES, PERMISSION};

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

/// The JSON shape of a schedule.
#[must_use]
pub fn view(s: &store::Schedule) -> Value {
    let tasks: Vec<Value> = s
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({
                "position": i,
                "action": t.action.as_str(),
                "payload": t.payload,
                "backup_name": (t.action == store::Action::Backup).then_some(&t.backup_name),
                "time_offset": t.time_offset,
                "continue_on_failure": t.continue_on_failure,
            })
        })
        .collect();
    json!({
        "id": s.id,
        "instance_id": s.instance_id,
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone,
        "enabled": s.enabled,
        "only_when_online": s.only_when_online,
        "next_run_at": s.next_run_at.map(rfc3339),
        "last_run_at": s.last_run_at.map(rfc3339),
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
        "tasks": tasks,
    })
}

/// The JSON shape of a run; `tasks` holds one result per task (`status` `completed`,
/// `failed` or `skipped`, `error`, and `backup_id` / `state` where the action gives one).
#[must_use]
pub fn run_view(r: &store::Run) -> Value {
    let tasks: Value = serde_json::from_str(&r.results).unwrap_or_else(|_| json!([]));
    json!({
        "id": r.id,
        "schedule_id": r.schedule_id,
        "instance_id": r.instance_id,
        "source": r.source,
        "status": r.status,
        "scheduled_for": r.scheduled_for.map(rfc3339),
        "requested_at": rfc3339(r.requested_at),
        "started_at": r.started_at.map(rfc3339),
        "finished_at": r.finished_at.map(rfc3339),
        "error": r.error,
        "tasks": tasks,
    })
}
