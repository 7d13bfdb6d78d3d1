//! The few rows `/metrics` counts at scrape time, one small query each, the same on
//! SQLite and PostgreSQL. Each is bounded by an index (`nodes` aside, which is one row
//! per machine): open deployments and imports by `(status, lease_until)`, running
//! Terraform runs by their partial unique index, open moves by `migrations_one_open`,
//! due schedules by `schedules_due`, pending deliveries by `(state, next_attempt_at)`.
//! The conditions are those of the jobs that take the rows over (`jobs::lease::resume_lapsed`
//! for deployments and imports: unfinished, the lease ended or never began; the
//! `provision_reaper`; the `migration_reaper`), so a row counted as lapsed is one they
//! would take over, give or take the millisecond the lease ends at.

use sqlx::AnyPool;

/// Nodes by their agent's connection, and those cordoned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Nodes {
    pub online: i64,
    pub offline: i64,
    pub cordoned: i64,
}

/// Nodes online, offline and cordoned.
///
/// # Errors
/// Database failures.
pub async fn nodes(pool: &AnyPool) -> Result<Nodes, sqlx::Error> {
    sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN connected = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS online, \
         CAST(COALESCE(SUM(CASE WHEN connected = 1 THEN 0 ELSE 1 END), 0) AS BIGINT) AS offline, \
         CAST(COALESCE(SUM(CASE WHEN cordoned = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS cordoned \
         FROM nodes",
    )
    .fetch_one(pool)
    .await
}

/// Rows of a leased job: held by a live replica, or left by one that died.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Leased {
    pub running: i64,
    pub lapsed: i64,
}

/// Runs `sql`, which binds `now` twice (`$1`, `$2`) and answers the open rows of a
/// table as `running` and `lapsed`.
async fn open_by_lease(pool: &AnyPool, sql: &'static str, now: i64) -> Result<Leased, sqlx::Error> {
    sqlx::query_as(sql)
        .bind(now)
        .bind(now)
        .fetch_one(pool)
        .await
}

/// Open one-click deployments.
///
/// # Errors
/// Database failures.
pub async fn deployments(pool: &AnyPool, now: i64) -> Result<Leased, sqlx::Error> {
    open_by_lease(
        pool,
        "SELECT CAST(COALESCE(SUM(CASE WHEN lease_until > $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS running, \
         CAST(COALESCE(SUM(CASE WHEN lease_until IS NULL OR lease_until <= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS lapsed \
         FROM deployments WHERE status IN ('pending', 'running')",
        now,
    )
    .await
}

/// Unfinished imports from Pterodactyl.
///
/// # Errors
/// Database failures.
pub async fn pterodactyl_imports(pool: &AnyPool, now: i64) -> Result<Leased, sqlx::Error> {
    open_by_lease(
        pool,
        "SELECT CAST(COALESCE(SUM(CASE WHEN lease_until > $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS running, \
         CAST(COALESCE(SUM(CASE WHEN lease_until IS NULL OR lease_until <= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS lapsed \
         FROM pterodactyl_imports WHERE status IN ('pending', 'running')",
        now,
    )
    .await
}

/// Terraform runs in progress.
///
/// # Errors
/// Database failures.
pub async fn provision_runs(pool: &AnyPool, now: i64) -> Result<Leased, sqlx::Error> {
    open_by_lease(
        pool,
        "SELECT CAST(COALESCE(SUM(CASE WHEN lease_until >= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS running, \
         CAST(COALESCE(SUM(CASE WHEN lease_until < $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS lapsed \
         FROM provision_runs WHERE status = 'running'",
        now,
    )
    .await
}

/// Open moves of servers between nodes; lapsed are those nothing moved forward since
/// `stale_before` (their replica died; `migration_reaper` takes them over).
///
/// # Errors
/// Database failures.
pub async fn migrations(pool: &AnyPool, stale_before: i64) -> Result<Leased, sqlx::Error> {
    open_by_lease(
        pool,
        "SELECT CAST(COALESCE(SUM(CASE WHEN updated_at >= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS running, \
         CAST(COALESCE(SUM(CASE WHEN updated_at < $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS lapsed \
         FROM migrations WHERE state IN ('queued', 'copying', 'final_sync', 'switching')",
        stale_before,
    )
    .await
}

/// Enabled schedules whose run was due before `before` and is still not claimed.
///
/// # Errors
/// Database failures.
pub async fn schedules_overdue(pool: &AnyPool, before: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM schedules \
         WHERE next_run_at IS NOT NULL AND next_run_at < $1 AND enabled = 1",
    )
    .bind(before)
    .fetch_one(pool)
    .await
}

/// The notification queue: deliveries still to be made (first attempt or retry), and
/// the earliest time one of them is due (unix ms; `None` when the queue is empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Deliveries {
    pub pending: i64,
    pub first_due_at: Option<i64>,
}

/// The pending integration deliveries.
///
/// # Errors
/// Database failures.
pub async fn deliveries(pool: &AnyPool) -> Result<Deliveries, sqlx::Error> {
    sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) AS pending, MIN(next_attempt_at) AS first_due_at \
         FROM integration_deliveries WHERE state = 'pending'",
    )
    .fetch_one(pool)
    .await
}
