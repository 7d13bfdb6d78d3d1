//! SQL for `schedules`, `schedule_tasks` and `schedule_runs`; the only place their rows
//! are mapped to structs (booleans are BIGINT 0/1, times unix ms, results JSON text).

use sqlx::{AnyExecutor, AnyPool};

use crate::db::row::Flag;

/// A stored schedule with its tasks in order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Schedule {
    pub id: String,
    pub instance_id: String,
    pub org_id: String,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    #[sqlx(try_from = "Flag")]
    pub enabled: bool,
    #[sqlx(try_from = "Flag")]
    pub only_when_online: bool,
    /// Next due time while enabled.
    pub next_run_at: Option<i64>,
    pub last_run_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    // Read by a second query.
    #[sqlx(skip)]
    pub tasks: Vec<Task>,
}

/// What a task does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "ScheduleAction")]
pub enum Action {
    /// Write `payload` to the console.
    Command,
    /// Apply the power action named by `payload`.
    Power,
    /// Start a backup named `backup_name`, ignoring `payload`'s patterns.
    Backup,
}

impl Action {
    /// The stored and wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Power => "power",
            Self::Backup => "backup",
        }
    }

    /// The action with this name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "command" => Some(Self::Command),
            "power" => Some(Self::Power),
            "backup" => Some(Self::Backup),
            _ => None,
        }
    }
}

impl TryFrom<String> for Action {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        Self::parse(&stored).ok_or_else(|| format!("stored task action `{stored}` is not known"))
    }
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Task {
    #[sqlx(try_from = "String")]
    pub action: Action,
    pub payload: String,
    pub backup_name: String,
    /// Seconds to wait after the previous task (or the start of the run).
    pub time_offset: i64,
    #[sqlx(try_from = "Flag")]
    pub continue_on_failure: bool,
}

/// One run of a schedule.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Run {
    pub id: String,
    pub schedule_id: String,
    pub instance_id: String,
    /// `cron` or `manual`.
    pub source: String,
    /// `pending`, `running`, `completed`, `failed` or `skipped`.
    pub status: String,
    pub scheduled_for: Option<i64>,
    pub requested_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// JSON array, one object per task.
    pub results: String,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, instance_id, org_id, name, cron, timezone, enabled, only_when_online, \
                       next_run_at, last_run_at, created_at, updated_at";
const RUN_COLUMNS: &str = "id, schedule_id, instance_id, source, status, scheduled_for, \
                           requested_at, started_at, finished_at, results, error";

async fn tasks_of(pool: &AnyPool, schedule_id: &str) -> Result<Vec<Task>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action, payload, backup_name, time_offset, continue_on_failure \
         FROM schedule_tasks WHERE schedule_id = $1 ORDER BY position",
    )
    .bind(schedule_id)
    .fetch_all(pool)
    .await
}

/// A schedule of `instance_id` with its tasks.
///
/// # Errors
/// Database failures.
pub async fn find(
    pool: &AnyPool,
    instance_id: &str,
    id: &str,
) -> Result<Option<Schedule>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1 AND instance_id = $2");
    let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(instance_id)
        .fetch_optional(pool)
        .await?;
    with_tasks(pool, row).await
}

/// A schedule by id alone (the job runner).
///
/// # Errors
/// Database failures.
pub async fn find_by_id(pool: &AnyPool, id: &str) -> Result<Option<Schedule>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1");
    let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    with_tasks(pool, row).await
}

/// `schedule`, if any, with its tasks.
async fn with_tasks(
    pool: &AnyPool,
    schedule: Option<Schedule>,
) -> Result<Option<Schedule>, sqlx::Error> {
    let Some(mut schedule) = schedule else {
        return Ok(None);
    };
    schedule.tasks = tasks_of(pool, &schedule.id).await?;
    Ok(Some(schedule))
}

/// The schedules of an instance, oldest first, with their tasks.
///
/// # Errors
/// Database failures.
pub async fn list(pool: &AnyPool, instance_id: &str) -> Result<Vec<Schedule>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM schedules WHERE instance_id = $1 ORDER BY created_at, id");
    let rows: Vec<Schedule> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(instance_id)
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for mut schedule in rows {
        schedule.tasks = tasks_of(pool, &schedule.id).await?;
        out.push(schedule);
    }
    Ok(out)
}

/// How many schedules an instance has.
///
/// # Errors
/// Database failures.
pub async fn count<'e>(db: impl AnyExecutor<'e>, instance_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM schedules WHERE instance_id = $1")
        .bind(instance_id)
        .fetch_one(db)
        .await
}

/// Inserts a schedule and its tasks in one transaction.
///
/// # Errors
/// Database failures.
pub async fn insert(pool: &AnyPool, s: &Schedule) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO schedules (id, instance_id, org_id, name, cron, timezone, enabled, \
         only_when_online, next_run_at, last_run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&s.id)
    .bind(&s.instance_id)
    .bind(&s.org_id)
    .bind(&s.name)
    .bind(&s.cron)
    .bind(&s.timezone)
    .bind(i64::from(s.enabled))
    .bind(i64::from(s.only_when_online))
    .bind(s.next_run_at)
    .bind(s.last_run_at)
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(&mut *tx)
    .await?;
    insert_tasks(&mut tx, &s.id, &s.tasks).await?;
    tx.commit().await
}

async fn insert_tasks(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    schedule_id: &str,
    tasks: &[Task],
) -> Result<(), sqlx::Error> {
    for (position, t) in tasks.iter().enumerate() {
        sqlx::query(
            "INSERT INTO schedule_tasks (id, schedule_id, position, action, payload, \
             backup_name, time_offset, continue_on_failure) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(crate::db::new_id())
        .bind(schedule_id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(t.action.as_str())
        .bind(&t.payload)
        .bind(&t.backup_name)
        .bind(t.time_offset)
        .bind(i64::from(t.continue_on_failure))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Stores a schedule's settings and replaces its tasks, in one transaction.
///
/// # Errors
/// Database failures.
pub async fn update(pool: &AnyPool, s: &Schedule) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE schedules SET name = $1, cron = $2, timezone = $3, enabled = $4, \
         only_when_online = $5, next_run_at = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&s.name)
    .bind(&s.cron)
    .bind(&s.timezone)
    .bind(i64::from(s.enabled))
    .bind(i64::from(s.only_when_online))
    .bind(s.next_run_at)
    .bind(s.updated_at)
    .bind(&s.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM schedule_tasks WHERE schedule_id = $1")
        .bind(&s.id)
        .execute(&mut *tx)
        .await?;
    insert_tasks(&mut tx, &s.id, &s.tasks).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes a schedule (its tasks and runs cascade); whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete(pool: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM schedules WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Enabled schedules due at `now`: `(id, next_run_at)`, oldest due first.
///
/// # Errors
/// Database failures.
pub async fn due(pool: &AnyPool, now: i64, limit: i64) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, next_run_at FROM schedules \
         WHERE enabled = 1 AND next_run_at IS NOT NULL AND next_run_at <= $1 \
         ORDER BY next_run_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Claims the run due at `old` for this replica by moving `next_run_at` to `next`: true
/// for exactly one caller, whatever the number of replicas (the conditional UPDATE is
/// atomic on SQLite and PostgreSQL alike).
///
/// # Errors
/// Database failures.
pub async fn claim(
    pool: &AnyPool,
    id: &str,
    old: i64,
    next: Option<i64>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE schedules SET next_run_at = $1, last_run_at = $2 \
         WHERE id = $3 AND enabled = 1 AND next_run_at = $4",
    )
    .bind(next)
    .bind(now)
    .bind(id)
    .bind(old)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records `last_run_at` (a manual run started).
///
/// # Errors
/// Database failures.
pub async fn touch_last_run(pool: &AnyPool, id: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE schedules SET last_run_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Inserts a run.
///
/// # Errors
/// Database failures (a second cron run for the same time breaks the unique key).
pub async fn insert_run(pool: &AnyPool, r: &Run) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO schedule_runs (id, schedule_id, instance_id, source, status, \
         scheduled_for, requested_at, started_at, finished_at, results, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&r.id)
    .bind(&r.schedule_id)
    .bind(&r.instance_id)
    .bind(&r.source)
    .bind(&r.status)
    .bind(r.scheduled_for)
    .bind(r.requested_at)
    .bind(r.started_at)
    .bind(r.finished_at)
    .bind(&r.results)
    .bind(&r.error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether a run of the schedule is executing now.
///
/// # Errors
/// Database failures.
pub async fn has_open_run(pool: &AnyPool, schedule_id: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM schedule_runs \
         WHERE schedule_id = $1 AND status = 'running'",
    )
    .bind(schedule_id)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// Whether a run of the schedule is requested or executing.
///
/// # Errors
/// Database failures.
pub async fn has_active_run(pool: &AnyPool, schedule_id: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM schedule_runs \
         WHERE schedule_id = $1 AND status IN ('pending', 'running')",
    )
    .bind(schedule_id)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// Requested runs not yet picked up, oldest first.
///
/// # Errors
/// Database failures.
pub async fn pending_runs(pool: &AnyPool, limit: i64) -> Result<Vec<Run>, sqlx::Error> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE status = 'pending' \
         ORDER BY requested_at LIMIT $1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Claims a pending run for this replica: true for exactly one caller.
///
/// # Errors
/// Database failures.
pub async fn claim_run(pool: &AnyPool, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE schedule_runs SET status = 'running', started_at = $1 \
         WHERE id = $2 AND status = 'pending'",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the per-task results so far of a running run.
///
/// # Errors
/// Database failures.
pub async fn record_progress(pool: &AnyPool, id: &str, results: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE schedule_runs SET results = $1 WHERE id = $2 AND status = 'running'")
        .bind(results)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a run with `status`.
///
/// # Errors
/// Database failures.
pub async fn finish_run(
    pool: &AnyPool,
    id: &str,
    status: &str,
    results: &str,
    error: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE schedule_runs SET status = $1, results = $2, error = $3, finished_at = $4, \
         started_at = COALESCE(started_at, $4) WHERE id = $5",
    )
    .bind(status)
    .bind(results)
    .bind(error)
    .bind(at)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// A run of a schedule.
///
/// # Errors
/// Database failures.
pub async fn find_run(
    pool: &AnyPool,
    schedule_id: &str,
    id: &str,
) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM schedule_runs WHERE id = $1 AND schedule_id = $2");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(schedule_id)
        .fetch_optional(pool)
        .await
}

/// The latest runs of a schedule, newest first.
///
/// # Errors
/// Database failures.
pub async fn list_runs(
    pool: &AnyPool,
    schedule_id: &str,
    limit: i64,
) -> Result<Vec<Run>, sqlx::Error> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = $1 \
         ORDER BY requested_at DESC, id DESC LIMIT $2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(schedule_id)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Keeps the newest `keep` runs of a schedule; older ones are deleted.
///
/// # Errors
/// Database failures.
pub async fn prune_runs(pool: &AnyPool, schedule_id: &str, keep: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM schedule_runs WHERE schedule_id = $1 AND id NOT IN \
         (SELECT id FROM schedule_runs WHERE schedule_id = $1 \
          ORDER BY requested_at DESC, id DESC LIMIT $2)",
    )
    .bind(schedule_id)
    .bind(keep)
    .execute(pool)
    .await?;
    Ok(())
}

/// Runs left `running` or `pending` since before `before` (their replica died): marked
/// failed. How many.
///
/// # Errors
/// Database failures.
pub async fn fail_abandoned(pool: &AnyPool, before: i64, now: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE schedule_runs SET status = 'failed', finished_at = $1, \
         error = 'abandoned: the panel running it stopped before it finished' \
         WHERE status IN ('running', 'pending') AND requested_at < $2",
    )
    .bind(now)
    .bind(before)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
