//! SQL for `system_backup_runs`; the only place its rows are mapped.

use sqlx::AnyPool;

/// A finished run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Run {
    pub id: String,
    pub trigger: String,
    pub status: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub bytes: Option<i64>,
    pub location: Option<String>,
    pub error: Option<String>,
    pub replica_id: Option<String>,
}

/// Records a finished run.
///
/// # Errors
/// Database failures.
pub async fn insert(pool: &AnyPool, r: &Run) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO system_backup_runs (id, trigger, status, started_at, finished_at, bytes, \
         location, error, replica_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&r.id)
    .bind(&r.trigger)
    .bind(&r.status)
    .bind(r.started_at)
    .bind(r.finished_at)
    .bind(r.bytes)
    .bind(&r.location)
    .bind(&r.error)
    .bind(&r.replica_id)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The newest `limit` runs, newest first.
///
/// # Errors
/// Database failures.
pub async fn recent(pool: &AnyPool, limit: i64) -> Result<Vec<Run>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, trigger, status, started_at, finished_at, bytes, location, error, replica_id \
         FROM system_backup_runs ORDER BY started_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// When the last run started by `trigger` started.
///
/// # Errors
/// Database failures.
pub async fn last_started(pool: &AnyPool, trigger: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MAX(started_at) FROM system_backup_runs WHERE trigger = $1")
        .bind(trigger)
        .fetch_one(pool)
        .await
}
