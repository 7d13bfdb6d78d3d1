//! `/v1/instances/{id}/schedules`: list, create, get, update (enable/disable too),
//! delete, run now, run history. Every route asks `instances.schedules`: task payloads
//! are console commands, which may carry secrets (RCON passwords and the like).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::input::{self, ScheduleBody};
use super::store::{self, Run, Schedule};
use super::{RunList, RunView, ScheduleList, ScheduleView, run_view, view};
use crate::authz::{Authorized, perm};
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::instances::store::Instance;
use crate::respond::{Accepted, Created};
use crate::state::AppState;

/// Most schedules per instance.
pub const MAX_SCHEDULES: i64 = 50;
/// Most runs one history page shows.
const MAX_RUNS_PAGE: i64 = 100;

/// Schedule `sid` of an instance the caller was authorized on.
async fn schedule_for(
    state: &AppState,
    instance: Instance,
    sid: &str,
) -> AppResult<(Instance, Schedule)> {
    let schedule = store::find(&state.db.pool, &instance.id, sid)
        .await?
        .ok_or_else(|| AppError::not_found("schedule"))?;
    Ok((instance, schedule))
}

/// `GET /v1/instances/{id}/schedules`.
pub async fn list(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesSchedules>,
) -> AppResult<AppJson<ScheduleList>> {
    let rows = store::list(&state.db.pool, &instance.id).await?;
    Ok(AppJson(ScheduleList {
        data: rows.iter().map(view).collect(),
    }))
}

/// `POST /v1/instances/{id}/schedules`.
pub async fn create(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesSchedules>,
    AppJson(body): AppJson<ScheduleBody>,
) -> AppResult<Created<ScheduleView>> {
    let name = input::name(body.name.as_deref().unwrap_or_default())?;
    let cron = body
        .cron
        .ok_or_else(|| AppError::unprocessable("cron", "cron is required, e.g. \"0 4 * * *\""))?;
    let timezone = body.timezone.unwrap_or_else(|| "UTC".into());
    let when = input::when(&cron, &timezone)?;
    let tasks = input::tasks(body.tasks.unwrap_or_default())?;
    if store::count(&state.db.pool, &instance.id).await? >= MAX_SCHEDULES {
        return Err(AppError::unprocessable(
            "schedules",
            format!("an instance has at most {MAX_SCHEDULES} schedules"),
        ));
    }
    let now = state.clock.now_ms();
    let enabled = body.enabled.unwrap_or(true);
    let schedule = Schedule {
        id: new_id(),
        instance_id: instance.id.clone(),
        org_id: instance.org_id.clone(),
        name,
        cron: cron.trim().to_string(),
        timezone: timezone.trim().to_string(),
        enabled,
        only_when_online: body.only_when_online.unwrap_or(false),
        next_run_at: if enabled { when.next_after(now) } else { None },
        last_run_at: None,
        created_at: now,
        updated_at: now,
        tasks,
    };
    store::insert(&state.db.pool, &schedule).await?;
    Ok(Created(view(&schedule)))
}

/// `GET /v1/instances/{id}/schedules/{sid}`.
pub async fn get(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesSchedules>,
    AppPath((_, sid)): AppPath<(String, String)>,
) -> AppResult<AppJson<ScheduleView>> {
    let (_, schedule) = schedule_for(&state, instance, &sid).await?;
    Ok(AppJson(view(&schedule)))
}

/// `PUT /v1/instances/{id}/schedules/{sid}`: the fields given replace the stored ones
/// (`tasks` replaces the whole list); `{"enabled": false}` alone disables. The next run
/// is computed again from now when the expression, the zone or `enabled` change.
pub async fn update(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesSchedules>,
    AppPath((_, sid)): AppPath<(String, String)>,
    AppJson(body): AppJson<ScheduleBody>,
) -> AppResult<AppJson<ScheduleView>> {
    let (_, mut schedule) = schedule_for(&state, instance, &sid).await?;
    if let Some(name) = &body.name {
        schedule.name = input::name(name)?;
    }
    let timing_changed = body.cron.is_some() || body.timezone.is_some() || body.enabled.is_some();
    if let Some(cron) = body.cron {
        schedule.cron = cron.trim().to_string();
    }
    if let Some(tz) = body.timezone {
        schedule.timezone = tz.trim().to_string();
    }
    let when = input::when(&schedule.cron, &schedule.timezone)?;
    if let Some(tasks) = body.tasks {
        schedule.tasks = input::tasks(tasks)?;
    }
    if let Some(enabled) = body.enabled {
        schedule.enabled = enabled;
    }
    if let Some(only) = body.only_when_online {
        schedule.only_when_online = only;
    }
    let now = state.clock.now_ms();
    if timing_changed {
        schedule.next_run_at = if schedule.enabled {
            when.next_after(now)
        } else {
            None
        };
    }
    schedule.updated_at = now;
    if !store::update(&state.db.pool, &schedule).await? {
        return Err(AppError::not_found("schedule"));
    }
    Ok(AppJson(view(&schedule)))
}

/// `DELETE /v1/instances/{id}/schedules/{sid}`: the schedule, its tasks and its runs.
pub async fn delete(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesSchedules>,
    AppPath((_, sid)): AppPath<(String, String)>,
) -> AppResult<StatusCode> {
    let (_, schedule) = schedule_for(&state, instance, &sid).await?;
    if !store::delete(&state.db.pool, &schedule.id).await? {
        return Err(AppError::not_found("schedule"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/instances/{id}/schedules/{sid}/run`: queues a run now, whether the schedule
/// is enabled or not; the job runner picks it up within its poll interval. 409
/// `SCHEDULE_RUNNING` while a run of it is queued or executing.
pub async fn run_now(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesSchedules>,
    AppPath((_, sid)): AppPath<(String, String)>,
) -> AppResult<Accepted<RunView>> {
    let (instance, schedule) = schedule_for(&state, instance, &sid).await?;
    if store::has_active_run(&state.db.pool, &schedule.id).await? {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "SCHEDULE_RUNNING",
            "a run of this schedule is already queued or running",
        ));
    }
    let run = Run {
        id: new_id(),
        schedule_id: schedule.id.clone(),
        instance_id: instance.id.clone(),
        source: "manual".into(),
        status: "pending".into(),
        scheduled_for: None,
        requested_at: now_ms(),
        started_at: None,
        finished_at: None,
        results: "[]".into(),
        error: None,
    };
    store::insert_run(&state.db.pool, &run).await?;
    Ok(Accepted(run_view(&run)))
}

/// Query of the run history.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    limit: Option<i64>,
}

/// `GET /v1/instances/{id}/schedules/{sid}/runs?limit=`: newest first (default 20, at
/// most 100; the last 100 runs are kept).
pub async fn runs(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesSchedules>,
    AppPath((_, sid)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<RunsQuery>,
) -> AppResult<AppJson<RunList>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_RUNS_PAGE).contains(&limit) {
        return Err(AppError::invalid_field(
            "limit",
            format!("limit must be between 1 and {MAX_RUNS_PAGE}"),
        ));
    }
    let (_, schedule) = schedule_for(&state, instance, &sid).await?;
    let rows = store::list_runs(&state.db.pool, &schedule.id, limit).await?;
    Ok(AppJson(RunList {
        data: rows.iter().map(run_view).collect(),
    }))
}

/// `GET /v1/instances/{id}/schedules/{sid}/runs/{rid}`.
pub async fn run(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesSchedules>,
    AppPath((_, sid, rid)): AppPath<(String, String, String)>,
) -> AppResult<AppJson<RunView>> {
    let (_, schedule) = schedule_for(&state, instance, &sid).await?;
    let run = store::find_run(&state.db.pool, &schedule.id, &rid)
        .await?
        .ok_or_else(|| AppError::not_found("run"))?;
    Ok(AppJson(run_view(&run)))
}
