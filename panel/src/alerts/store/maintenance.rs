//! SQL of `alert_maintenance`: planned downtime windows.

use sqlx::AnyPool;

/// A maintenance window as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Window {
    pub id: String,
    pub org_id: String,
    /// `node` or `instance`.
    pub target_type: String,
    /// `None`: every target of the type in the organization.
    pub target_id: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub created_by: Option<String>,
    pub created_at: i64,
}

macro_rules! window_columns {
    () => {
        "id, org_id, target_type, target_id, starts_at, ends_at, reason, created_by, created_at"
    };
}

/// Stores a new window.
///
/// # Errors
/// Database failures.
pub async fn insert_window(pool: &AnyPool, w: &Window) -> sqlx::Result<()> {
    sqlx::query(concat!(
        "INSERT INTO alert_maintenance (",
        window_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&w.id)
    .bind(&w.org_id)
    .bind(&w.target_type)
    .bind(&w.target_id)
    .bind(w.starts_at)
    .bind(w.ends_at)
    .bind(&w.reason)
    .bind(&w.created_by)
    .bind(w.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// A window by id, unchecked (requests reach it through [`crate::authz`]).
///
/// # Errors
/// Database failures.
pub async fn find_window(pool: &AnyPool, id: &str) -> sqlx::Result<Option<Window>> {
    sqlx::query_as(concat!(
        "SELECT ",
        window_columns!(),
        " FROM alert_maintenance WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One page of an organization's windows that end after `after`, soonest first.
///
/// # Errors
/// Database failures.
pub async fn list_windows(
    pool: &AnyPool,
    org_id: &str,
    after: i64,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Window>> {
    sqlx::query_as(concat!(
        "SELECT ",
        window_columns!(),
        " FROM alert_maintenance WHERE org_id = $1 AND ends_at > $2 \
         ORDER BY starts_at, id LIMIT $3 OFFSET $4"
    ))
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// How many of an organization's windows end after `after`.
///
/// # Errors
/// Database failures.
pub async fn count_windows(pool: &AnyPool, org_id: &str, after: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM alert_maintenance WHERE org_id = $1 AND ends_at > $2",
    )
    .bind(org_id)
    .bind(after)
    .fetch_one(pool)
    .await
}

/// Deletes a window (a window still open ends now). Whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete_window(pool: &AnyPool, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM alert_maintenance WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether a window of `org_id` open at `now` covers target `target_id` of type
/// `target_type` running on node `node_id` (a node's own id for a node): a window on
/// the target, on every target of its type, on its node or on every node.
///
/// # Errors
/// Database failures.
pub async fn in_maintenance(
    pool: &AnyPool,
    org_id: &str,
    (target_type, target_id, node_id): (&str, &str, &str),
    now: i64,
) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(1 AS BIGINT) FROM alert_maintenance WHERE org_id = $1 AND starts_at <= $2 \
         AND ends_at > $2 AND ((target_type = $3 AND (target_id IS NULL OR target_id = $4)) \
         OR (target_type = 'node' AND (target_id IS NULL OR target_id = $5))) LIMIT 1",
    )
    .bind(org_id)
    .bind(now)
    .bind(target_type)
    .bind(target_id)
    .bind(node_id)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

impl crate::authz::OrgScoped for Window {
    const NAME: &'static str = "maintenance window";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find_window(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}
