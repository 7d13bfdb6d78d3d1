//! SQL for `uploads`, the tus upload records; the only place its rows become structs.
//! `upload_offset` is the last offset the agent reported: the agent's is the truth.

use sqlx::AnyPool;

/// One upload record.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Upload {
    pub id: String,
    pub instance_id: String,
    pub user_id: String,
    /// Target path in the server's files (`/dir/name`).
    pub path: String,
    pub length: i64,
    #[sqlx(rename = "upload_offset")]
    pub offset: i64,
    /// `Upload-Metadata` as the client sent it.
    pub metadata: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
}

macro_rules! columns {
    () => {
        "id, instance_id, user_id, path, length, upload_offset, metadata, created_at, \
         expires_at, completed_at"
    };
}

/// Records a new upload.
pub async fn insert(pool: &AnyPool, u: &Upload) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO uploads (id, instance_id, user_id, path, length, upload_offset, metadata, \
         created_at, expires_at, completed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&u.id)
    .bind(&u.instance_id)
    .bind(&u.user_id)
    .bind(&u.path)
    .bind(u.length)
    .bind(u.offset)
    .bind(&u.metadata)
    .bind(u.created_at)
    .bind(u.expires_at)
    .bind(u.completed_at)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The upload `id` of instance `instance_id`.
pub async fn find(
    pool: &AnyPool,
    instance_id: &str,
    id: &str,
) -> Result<Option<Upload>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM uploads WHERE id = $1 AND instance_id = $2"
    ))
    .bind(id)
    .bind(instance_id)
    .fetch_optional(pool)
    .await
}

/// Records the offset the agent reported, and completion when it says so.
pub async fn set_offset(
    pool: &AnyPool,
    id: &str,
    offset: i64,
    completed_at: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE uploads SET upload_offset = $2, completed_at = COALESCE(completed_at, $3) \
         WHERE id = $1",
    )
    .bind(id)
    .bind(offset)
    .bind(completed_at)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Removes one upload record.
pub async fn delete(pool: &AnyPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Removes every record past its expiry (agents drop the data of theirs on their own).
pub async fn delete_expired(pool: &AnyPool, now: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM uploads WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
}

/// The `upload_expiry` job: while this replica holds the job lease, removes expired
/// records every `every` until `stop`. Deleting is idempotent, so the short overlap of a
/// lease changing hands does no harm.
pub async fn sweep_until_stopped(
    state: crate::state::AppState,
    every: std::time::Duration,
    mut lease: tokio::sync::watch::Receiver<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while crate::jobs::lease::until_held(&mut lease, &mut stop).await {
        match delete_expired(&state.db.pool, state.clock.now_ms()).await {
            Ok(n) if n > 0 => tracing::info!(uploads.expired = n, "expired uploads removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "removing expired uploads"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
