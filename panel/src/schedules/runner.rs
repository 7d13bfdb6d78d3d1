//! Running schedules: the `schedules` background job finds due schedules and requested
//! runs, claims each with a conditional UPDATE (so with several replicas on one database
//! exactly one runs it), and executes the tasks in order through the same code paths as
//! the API: console commands, power actions, backups.

use std::time::Duration;

use shardlyn_proto::instance::{InstanceState, PowerAction};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::cron::When;
use super::store::{self, Action, Run, Schedule, Task};
use super::view::TaskResult;
use crate::backups::{CreateBody, Ignored};
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppResult};
use crate::events::{Event, EventData};
use crate::instances::ops::power::{self, send_command};
use crate::instances::store::Instance;
use crate::state::AppState;
use crate::types::Timestamp;

/// Due schedules and pending runs taken per poll.
const BATCH: i64 = 100;
/// Runs kept per schedule.
const KEEP_RUNS: i64 = 100;
/// How long shutdown waits for runs in flight before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// How often runs abandoned by a dead replica are looked for.
const REAP_EVERY: Duration = Duration::from_secs(60);
/// A run still open this long after it was requested is abandoned (the longest run is
/// `MAX_TASKS * MAX_OFFSET_SECS` of waiting plus the tasks themselves).
const ABANDONED_AFTER_MS: i64 =
    (super::input::MAX_TASKS as i64 * super::input::MAX_OFFSET_SECS + 3600) * 1000;

/// The `schedules` job: polls every `poll` until `stop` turns true, then lets runs in
/// flight finish (their waits between tasks end early) for a grace period.
pub async fn run_until_stopped(state: AppState, poll: Duration, mut stop: watch::Receiver<bool>) {
    let mut runs = JoinSet::new();
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_reap: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        while runs.try_join_next().is_some() {}
        if let Err(e) = poll_once(&state, &mut runs, &stop).await {
            tracing::warn!(error = %e, "schedules: poll failed");
        }
        if last_reap.is_none_or(|t| t.elapsed() >= REAP_EVERY) {
            last_reap = Some(tokio::time::Instant::now());
            let now = state.clock.now_ms();
            match store::fail_abandoned(&state.db.pool, now - ABANDONED_AFTER_MS, now).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(runs = n, "schedules: abandoned runs marked failed"),
                Err(e) => tracing::warn!(error = %e, "schedules: reaping abandoned runs"),
            }
        }
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while runs.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            runs = runs.len(),
            "schedules: runs still busy at shutdown abandoned"
        );
        runs.abort_all();
    }
}

/// One look: claims and starts every due schedule and every requested run.
///
/// # Errors
/// Database failures.
pub async fn poll_once(
    state: &AppState,
    runs: &mut JoinSet<()>,
    stop: &watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let pool = &state.db.pool;
    let now = state.clock.now_ms();
    for (id, due_at) in store::due(pool, now, BATCH).await? {
        let Some(schedule) = store::find_by_id(pool, &id).await? else {
            continue;
        };
        let next = When::parse(&schedule.cron, &schedule.timezone)
            .ok()
            .and_then(|w| w.next_after(now.max(due_at)));
        if !store::claim(pool, &id, due_at, next, now).await? {
            continue; // another replica has it
        }
        let run = Run {
            id: new_id(),
            schedule_id: id.clone(),
            instance_id: schedule.instance_id.clone(),
            source: "cron".into(),
            status: "running".into(),
            scheduled_for: Some(due_at),
            requested_at: now,
            started_at: Some(now),
            finished_at: None,
            results: "[]".into(),
            error: None,
        };
        if store::has_open_run(pool, &id).await? {
            let skipped = Run {
                status: "skipped".into(),
                finished_at: Some(now),
                error: Some("the previous run of this schedule is still running".into()),
                ..run
            };
            store::insert_run(pool, &skipped).await?;
            announce(
                state,
                &schedule,
                &skipped,
                &skipped.status,
                skipped.error.clone(),
            )
            .await;
            continue;
        }
        store::insert_run(pool, &run).await?;
        announce(state, &schedule, &run, "running", None).await;
        tracing::info!(schedule.id = %id, run.id = %run.id, "schedules: cron run started");
        runs.spawn(execute(state.clone(), stop.clone(), run, schedule));
    }
    for run in store::pending_runs(pool, BATCH).await? {
        if !store::claim_run(pool, &run.id, now).await? {
            continue;
        }
        let Some(schedule) = store::find_by_id(pool, &run.schedule_id).await? else {
            continue;
        };
        store::touch_last_run(pool, &schedule.id, now).await?;
        announce(state, &schedule, &run, "running", None).await;
        tracing::info!(schedule.id = %schedule.id, run.id = %run.id, "schedules: requested run started");
        runs.spawn(execute(state.clone(), stop.clone(), run, schedule));
    }
    Ok(())
}

/// Publishes a run's start, skip or end on the event bus.
async fn announce(
    state: &AppState,
    schedule: &Schedule,
    run: &Run,
    status: &str,
    error: Option<String>,
) {
    state
        .events
        .publish(Event::now(
            schedule.org_id.clone(),
            EventData::ScheduleRun {
                instance_id: schedule.instance_id.clone(),
                schedule_id: schedule.id.clone(),
                run_id: run.id.clone(),
                source: run.source.clone(),
                status: status.to_owned(),
                error,
            },
        ))
        .await;
}

/// The outcome of one task, as shown in the run history.
fn result(
    i: usize,
    task: &Task,
    status: &str,
    started: Option<i64>,
    outcome: TaskOutcome,
) -> TaskResult {
    TaskResult {
        position: i,
        action: task.action,
        status: status.to_owned(),
        started_at: started.map(Timestamp),
        finished_at: started.map(|_| Timestamp(now_ms())),
        error: outcome.error,
        state: outcome.state,
        backup_id: outcome.backup_id,
    }
}

/// What a task's result says beyond its status.
#[derive(Debug, Default)]
struct TaskOutcome {
    error: Option<String>,
    state: Option<InstanceState>,
    backup_id: Option<String>,
}

impl TaskOutcome {
    fn error(why: impl Into<String>) -> Self {
        Self {
            error: Some(why.into()),
            ..Self::default()
        }
    }
}

/// The stored form of a run's results.
fn encode(results: &[TaskResult]) -> String {
    serde_json::to_string(results).unwrap_or_else(|_| "[]".into())
}

/// Runs the tasks of `schedule` in order and records the run's end.
async fn execute(state: AppState, stop: watch::Receiver<bool>, run: Run, schedule: Schedule) {
    let (status, results, error) = perform(&state, stop, &run.id, &schedule).await;
    let results = encode(&results);
    let pool = &state.db.pool;
    if let Err(e) =
        store::finish_run(pool, &run.id, status, &results, error.as_deref(), now_ms()).await
    {
        tracing::warn!(run.id = %run.id, error = %e, "schedules: recording the end of a run");
    }
    if let Err(e) = store::prune_runs(pool, &schedule.id, KEEP_RUNS).await {
        tracing::warn!(schedule.id = %schedule.id, error = %e, "schedules: pruning runs");
    }
    announce(&state, &schedule, &run, status, error).await;
    tracing::info!(schedule.id = %schedule.id, run.id = %run.id, run.status = status, "schedules: run ended");
}

/// The tasks' work: `(status, per-task results, error)`.
async fn perform(
    state: &AppState,
    mut stop: watch::Receiver<bool>,
    run_id: &str,
    schedule: &Schedule,
) -> (&'static str, Vec<TaskResult>, Option<String>) {
    let mut results = Vec::with_capacity(schedule.tasks.len());
    let Ok(Some(first)) =
        crate::instances::store::find(&state.db.pool, &schedule.instance_id).await
    else {
        return (
            "failed",
            results,
            Some("the instance could not be loaded".into()),
        );
    };
    if schedule.only_when_online && first.state != InstanceState::Running {
        let why = format!(
            "skipped: the instance is {} and the schedule runs only when it is online",
            first.state.as_str()
        );
        return ("skipped", results, Some(why));
    }
    let mut failed = false;
    for (i, task) in schedule.tasks.iter().enumerate() {
        if task.time_offset > 0 {
            let wait = Duration::from_secs(task.time_offset.unsigned_abs());
            let stopped = tokio::select! {
                () = tokio::time::sleep(wait) => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            if stopped {
                skip_rest(schedule, i, &mut results, "the panel shut down");
                return (
                    "failed",
                    results,
                    Some("interrupted: the panel shut down".into()),
                );
            }
        }
        let started = now_ms();
        let instance =
            match crate::instances::store::find(&state.db.pool, &schedule.instance_id).await {
                Ok(Some(instance)) => Ok(instance),
                Ok(None) => Err(AppError::not_found("instance")),
                Err(e) => Err(AppError::from(e)),
            };
        let outcome = match instance {
            Ok(instance) => run_task(state, &instance, task).await,
            Err(e) => Err(e),
        };
        let entry = match outcome {
            Ok(extra) => result(i, task, "completed", Some(started), extra),
            Err(e) => {
                failed = true;
                result(
                    i,
                    task,
                    "failed",
                    Some(started),
                    TaskOutcome::error(e.to_string()),
                )
            }
        };
        let task_failed = entry.status == "failed";
        results.push(entry);
        let progress = encode(&results);
        let _ = store::record_progress(&state.db.pool, run_id, &progress).await;
        if task_failed && !task.continue_on_failure {
            skip_rest(schedule, i + 1, &mut results, "an earlier task failed");
            return ("failed", results, Some(format!("task {i} failed")));
        }
    }
    if failed {
        ("failed", results, Some("a task failed".into()))
    } else {
        ("completed", results, None)
    }
}

fn skip_rest(schedule: &Schedule, from: usize, results: &mut Vec<TaskResult>, why: &str) {
    for (i, task) in schedule.tasks.iter().enumerate().skip(from) {
        results.push(result(i, task, "skipped", None, TaskOutcome::error(why)));
    }
}

/// One task through the API's own code paths; extra fields for its result.
async fn run_task(state: &AppState, instance: &Instance, task: &Task) -> AppResult<TaskOutcome> {
    match task.action {
        Action::Command => {
            send_command(state, instance, &task.payload).await?;
            Ok(TaskOutcome::default())
        }
        Action::Power => {
            let action = PowerAction::parse(&task.payload).ok_or_else(|| {
                AppError::Validation(format!("unknown power action {:?}", task.payload))
            })?;
            let status = power::act(state, instance, action).await?;
            Ok(TaskOutcome {
                state: Some(status.state),
                ..TaskOutcome::default()
            })
        }
        Action::Backup => {
            let body = CreateBody {
                name: (!task.backup_name.is_empty()).then(|| task.backup_name.clone()),
                ignored: Ignored::Text(task.payload.clone()),
                locked: false,
            };
            let backup = crate::backups::begin(state, instance, body).await?;
            Ok(TaskOutcome {
                backup_id: Some(backup.id),
                ..TaskOutcome::default()
            })
        }
    }
}
