//! SQL for `integrations` and `integration_deliveries`; the only place their rows are
//! mapped.

use sqlx::{AnyExecutor, AnyPool};

use crate::db::row::Flag;

/// A stored integration (its secrets sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Integration {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub kind: String,
    /// The public fields, JSON.
    pub config: String,
    /// The secret fields, JSON sealed with the master key.
    pub sealed_secrets: String,
    #[sqlx(try_from = "Flag")]
    pub enabled: bool,
    #[sqlx(try_from = "Flag")]
    pub healthy: bool,
    pub last_error: Option<String>,
    pub last_delivery_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! columns {
    () => {
        "id, org_id, name, kind, config, sealed_secrets, enabled, healthy, last_error, \
         last_delivery_at, created_by, created_at, updated_at"
    };
}

/// Inserts an integration.
///
/// # Errors
/// Database failure.
pub async fn insert(db: impl AnyExecutor<'_>, i: &Integration) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO integrations (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&i.id)
    .bind(&i.org_id)
    .bind(&i.name)
    .bind(&i.kind)
    .bind(&i.config)
    .bind(&i.sealed_secrets)
    .bind(i64::from(i.enabled))
    .bind(i64::from(i.healthy))
    .bind(&i.last_error)
    .bind(i.last_delivery_at)
    .bind(&i.created_by)
    .bind(i.created_at)
    .bind(i.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Saves what a user may change: name, configuration, secrets, enabled.
///
/// # Errors
/// Database failure.
pub async fn update(db: impl AnyExecutor<'_>, i: &Integration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE integrations SET name = $2, config = $3, sealed_secrets = $4, enabled = $5, \
         updated_at = $6 WHERE id = $1",
    )
    .bind(&i.id)
    .bind(&i.name)
    .bind(&i.config)
    .bind(&i.sealed_secrets)
    .bind(i64::from(i.enabled))
    .bind(i.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

/// One integration.
///
/// # Errors
/// Database failure.
pub async fn find(db: impl AnyExecutor<'_>, id: &str) -> Result<Option<Integration>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM integrations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// An organization's integrations, oldest first.
///
/// # Errors
/// Database failure.
pub async fn list(db: impl AnyExecutor<'_>, org_id: &str) -> Result<Vec<Integration>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM integrations WHERE org_id = $1 ORDER BY created_at, id"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// Deletes an integration (its queued deliveries go with it); whether it existed.
///
/// # Errors
/// Database failure.
pub async fn delete(pool: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM integration_deliveries WHERE integration_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM integrations WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Records a delivered notification: healthy again.
///
/// # Errors
/// Database failure.
pub async fn mark_delivered(
    db: impl AnyExecutor<'_>,
    id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE integrations SET healthy = 1, last_error = NULL, last_delivery_at = $2 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// Records a delivery given up: unhealthy, with why.
///
/// # Errors
/// Database failure.
pub async fn mark_unhealthy(
    db: impl AnyExecutor<'_>,
    id: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE integrations SET healthy = 0, last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(db)
        .await?;
    Ok(())
}

impl crate::authz::OrgScoped for Integration {
    const NAME: &'static str = "integration";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}

/// A queued notification for one integration.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub integration_id: String,
    pub dedup_key: String,
    /// The notification, JSON.
    pub payload: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

macro_rules! delivery_columns {
    () => {
        "id, integration_id, dedup_key, payload, state, attempts, next_attempt_at, \
         last_status, last_error, created_at, delivered_at"
    };
}

/// Queues a delivery unless one with the same key is queued for the integration;
/// whether it was queued now.
///
/// # Errors
/// Database failure.
pub async fn enqueue(db: impl AnyExecutor<'_>, d: &Delivery) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO integration_deliveries (id, integration_id, dedup_key, payload, state, \
         attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6) \
         ON CONFLICT (integration_id, dedup_key) DO NOTHING",
    )
    .bind(&d.id)
    .bind(&d.integration_id)
    .bind(&d.dedup_key)
    .bind(&d.payload)
    .bind(d.next_attempt_at)
    .bind(d.created_at)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The ids of pending deliveries due at `now` and claimed by no live replica.
///
/// # Errors
/// Database failure.
pub async fn due(
    db: impl AnyExecutor<'_>,
    now: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM integration_deliveries WHERE state = 'pending' \
         AND next_attempt_at <= $1 AND claimed_until <= $1 \
         ORDER BY next_attempt_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Claims delivery `id` for `holder` until `until` (one replica wins); the row if won.
///
/// # Errors
/// Database failure.
pub async fn claim(
    pool: &AnyPool,
    id: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<Option<Delivery>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE integration_deliveries SET claimed_until = $3, claimed_by = $4 \
         WHERE id = $1 AND state = 'pending' AND claimed_until <= $2",
    )
    .bind(id)
    .bind(now)
    .bind(until)
    .bind(holder)
    .execute(pool)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    find_delivery(pool, id).await
}

/// One delivery.
///
/// # Errors
/// Database failure.
pub async fn find_delivery(
    db: impl AnyExecutor<'_>,
    id: &str,
) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM integration_deliveries WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The deliveries of an integration, newest first.
///
/// # Errors
/// Database failure.
pub async fn deliveries(
    db: impl AnyExecutor<'_>,
    integration_id: &str,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM integration_deliveries WHERE integration_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(integration_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Ends an attempt: `state` (`pending` again with `next_attempt_at`, `delivered` or
/// `failed`), the receiver's status and error; releases the claim.
///
/// # Errors
/// Database failure.
#[expect(clippy::too_many_arguments, reason = "one UPDATE of one row")]
pub async fn finish_attempt(
    db: impl AnyExecutor<'_>,
    id: &str,
    state: &str,
    attempts: i64,
    next_attempt_at: i64,
    last_status: Option<i64>,
    last_error: Option<&str>,
    delivered_at: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE integration_deliveries SET state = $2, attempts = $3, next_attempt_at = $4, \
         last_status = $5, last_error = $6, delivered_at = $7, claimed_until = 0, \
         claimed_by = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(attempts)
    .bind(next_attempt_at)
    .bind(last_status)
    .bind(last_error)
    .bind(delivered_at)
    .execute(db)
    .await?;
    Ok(())
}
