//! SQL of `webhook_tokens` and `webhook_deliveries`; the row <-> struct mapping lives here.

use sqlx::AnyPool;

/// A webhook token as stored (its secret sealed under the master key).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookToken {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// The first characters after `shardlyn_whk_`, to tell tokens apart and find them.
    pub prefix: String,
    pub sealed_secret: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

macro_rules! columns {
    () => {
        "id, org_id, name, prefix, sealed_secret, created_by, created_at, last_used_at"
    };
}

/// Stores a new token.
///
/// # Errors
/// Database failures.
pub async fn insert(pool: &AnyPool, t: &WebhookToken) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_tokens (id, org_id, name, prefix, sealed_secret, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&t.id)
    .bind(&t.org_id)
    .bind(&t.name)
    .bind(&t.prefix)
    .bind(&t.sealed_secret)
    .bind(&t.created_by)
    .bind(t.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// One page of an organization's tokens, newest first.
///
/// # Errors
/// Database failures.
pub async fn list(
    pool: &AnyPool,
    org_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<WebhookToken>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_tokens WHERE org_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(org_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// How many tokens an organization has.
///
/// # Errors
/// Database failures.
pub async fn count(pool: &AnyPool, org_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM webhook_tokens WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
}

/// A token by id, unchecked: for the delivery route, which proves the token by its
/// signature; management routes reach tokens through [`crate::authz`].
///
/// # Errors
/// Database failures.
pub(super) async fn find(pool: &AnyPool, id: &str) -> sqlx::Result<Option<WebhookToken>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_tokens WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Tokens whose secret starts with `prefix` (usually one).
///
/// # Errors
/// Database failures.
pub async fn find_by_prefix(pool: &AnyPool, prefix: &str) -> sqlx::Result<Vec<WebhookToken>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_tokens WHERE prefix = $1 LIMIT 16"
    ))
    .bind(prefix)
    .fetch_all(pool)
    .await
}

/// Deletes a token; whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete(pool: &AnyPool, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM webhook_tokens WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Notes that a token verified a delivery.
///
/// # Errors
/// Database failures.
pub async fn touch(pool: &AnyPool, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE webhook_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Tenancy of deliveries that belong to no organization (Stripe's).
pub const PLATFORM_SCOPE: &str = "platform";

/// A verified delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// `github`, `gitlab` or `stripe`.
    pub provider: &'a str,
    /// The organization id, or [`PLATFORM_SCOPE`]; delivery ids are unique per provider
    /// and scope, so one tenant cannot pre-empt another's delivery ids.
    pub scope: &'a str,
    pub delivery_id: &'a str,
    pub token_id: Option<&'a str>,
    pub org_id: Option<&'a str>,
    /// `push`, `ping`, `Push Hook`, `invoice.paid`...
    pub event: &'a str,
    pub repository: Option<&'a str>,
    pub branch: Option<&'a str>,
    /// The raw body (lossy UTF-8).
    pub payload: &'a str,
    pub received_at: i64,
}

/// Records a delivery once: `false` when this provider and scope already saw its id.
///
/// # Errors
/// Database failures.
pub async fn record(pool: &AnyPool, d: &NewDelivery<'_>) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries (id, provider, scope, delivery_id, token_id, org_id, \
         event, repository, branch, payload, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (provider, scope, delivery_id) DO NOTHING",
    )
    .bind(crate::db::new_id())
    .bind(d.provider)
    .bind(d.scope)
    .bind(d.delivery_id)
    .bind(d.token_id)
    .bind(d.org_id)
    .bind(d.event)
    .bind(d.repository)
    .bind(d.branch)
    .bind(d.payload)
    .bind(d.received_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A recorded delivery, for the consumers that act on them later (billing reads Stripe's).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub provider: String,
    pub delivery_id: String,
    pub org_id: Option<String>,
    pub event: String,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub payload: String,
    pub received_at: i64,
}

/// The most recent deliveries of `provider`, newest first.
///
/// # Errors
/// Database failures.
pub async fn recent(pool: &AnyPool, provider: &str, limit: i64) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as(
        "SELECT id, provider, delivery_id, org_id, event, repository, branch, payload, received_at \
         FROM webhook_deliveries WHERE provider = $1 ORDER BY received_at DESC, id DESC LIMIT $2",
    )
    .bind(provider)
    .bind(limit)
    .fetch_all(pool)
    .await
}

impl crate::authz::OrgScoped for WebhookToken {
    const NAME: &'static str = "webhook token";

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
