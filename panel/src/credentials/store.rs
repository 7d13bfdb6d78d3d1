//! SQL of `credentials`; the only place their rows are mapped.

use sqlx::{AnyPool, Executor};

use crate::db::row::Flag;

/// A stored credential (its secrets sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credential {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub provider: String,
    /// The public fields, JSON.
    pub config: String,
    /// The secret fields, JSON sealed with the master key.
    pub sealed_secrets: String,
    /// The secret fields' masked hints, JSON (`{"token": "••••a1b2"}`).
    pub hints: String,
    #[sqlx(try_from = "Flag")]
    pub is_default: bool,
    pub verified_at: Option<i64>,
    pub verified_ok: Option<i64>,
    pub verified_message: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! columns {
    () => {
        "id, org_id, name, provider, config, sealed_secrets, hints, is_default, verified_at, \
         verified_ok, verified_message, created_by, created_at, updated_at"
    };
}

/// Stores a new credential.
///
/// # Errors
/// Database failures.
pub async fn insert(pool: &AnyPool, c: &Credential) -> sqlx::Result<()> {
    sqlx::query(concat!(
        "INSERT INTO credentials (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(&c.id)
    .bind(&c.org_id)
    .bind(&c.name)
    .bind(&c.provider)
    .bind(&c.config)
    .bind(&c.sealed_secrets)
    .bind(&c.hints)
    .bind(i64::from(c.is_default))
    .bind(c.verified_at)
    .bind(c.verified_ok)
    .bind(&c.verified_message)
    .bind(&c.created_by)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Replaces a credential's name and fields (a changed secret forgets the last verify).
///
/// # Errors
/// Database failures.
pub async fn update(pool: &AnyPool, c: &Credential) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE credentials SET name = $1, config = $2, sealed_secrets = $3, hints = $4, \
         verified_at = $5, verified_ok = $6, verified_message = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(&c.name)
    .bind(&c.config)
    .bind(&c.sealed_secrets)
    .bind(&c.hints)
    .bind(c.verified_at)
    .bind(c.verified_ok)
    .bind(&c.verified_message)
    .bind(c.updated_at)
    .bind(&c.id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records what a verify call answered.
///
/// # Errors
/// Database failures.
pub async fn set_verified(
    pool: &AnyPool,
    id: &str,
    ok: bool,
    message: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE credentials SET verified_at = $1, verified_ok = $2, verified_message = $3 \
         WHERE id = $4",
    )
    .bind(now)
    .bind(i64::from(ok))
    .bind(message)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes `id` its organization's default for its provider (the previous default stops
/// being one), in one transaction.
///
/// # Errors
/// Database failures.
pub async fn make_default(pool: &AnyPool, c: &Credential) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    tx.execute(
        sqlx::query(
            "UPDATE credentials SET is_default = 0 WHERE org_id = $1 AND provider = $2 AND id <> $3",
        )
        .bind(&c.org_id)
        .bind(&c.provider)
        .bind(&c.id),
    )
    .await?;
    tx.execute(sqlx::query("UPDATE credentials SET is_default = 1 WHERE id = $1").bind(&c.id))
        .await?;
    tx.commit().await
}

/// Deletes a credential. Whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete(pool: &AnyPool, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM credentials WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A credential by id, unchecked (requests reach it through [`crate::authz`]).
///
/// # Errors
/// Database failures.
pub async fn find(pool: &AnyPool, id: &str) -> sqlx::Result<Option<Credential>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM credentials WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// An organization's credentials (of `provider` when given), by provider then name.
///
/// # Errors
/// Database failures.
pub async fn list(
    pool: &AnyPool,
    org_id: &str,
    provider: Option<&str>,
) -> sqlx::Result<Vec<Credential>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM credentials WHERE org_id = $1 AND ($2 = '' OR provider = $2) \
         ORDER BY provider, name, id"
    ))
    .bind(org_id)
    .bind(provider.unwrap_or(""))
    .fetch_all(pool)
    .await
}

/// How many credentials an organization has.
///
/// # Errors
/// Database failures.
pub async fn count(pool: &AnyPool, org_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM credentials WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
}

impl crate::authz::OrgScoped for Credential {
    const NAME: &'static str = "credential";

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
