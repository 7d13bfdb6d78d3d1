//! SQL for `oauth_states`, `oauth_login_codes` and `user_identities`.

use sqlx::AnyExecutor;

use crate::db::row::IsSet;
use crate::db::{new_id, now_ms};

/// The provider name stored with GitHub identities and states.
pub const PROVIDER: &str = "github";

/// A pending authorization, as the callback checks it.
#[derive(Debug, sqlx::FromRow)]
pub struct PendingState {
    pub id: String,
    pub browser_hash: String,
    pub sealed_verifier: String,
    pub expires_at: i64,
    #[sqlx(rename = "used_at", try_from = "IsSet")]
    pub used: bool,
}

/// A linked external account.
#[derive(Debug, sqlx::FromRow)]
pub struct Identity {
    pub id: String,
    pub user_id: String,
}

/// Records a new authorization attempt.
pub async fn insert_state<'e>(
    db: impl AnyExecutor<'e>,
    state_hash: &str,
    browser_hash: &str,
    sealed_verifier: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_states \
         (id, provider, state_hash, browser_hash, sealed_verifier, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(PROVIDER)
    .bind(state_hash)
    .bind(browser_hash)
    .bind(sealed_verifier)
    .bind(now_ms())
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes expired states and login codes (they are of no use once expired).
pub async fn purge_expired(pool: &sqlx::AnyPool) -> Result<(), sqlx::Error> {
    let now = now_ms();
    for sql in [
        "DELETE FROM oauth_states WHERE expires_at <= $1",
        "DELETE FROM oauth_login_codes WHERE expires_at <= $1",
    ] {
        sqlx::query(sql).bind(now).execute(pool).await?;
    }
    Ok(())
}

/// A GitHub state by the hash of its value.
pub async fn find_state<'e>(
    db: impl AnyExecutor<'e>,
    state_hash: &str,
) -> Result<Option<PendingState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, browser_hash, sealed_verifier, expires_at, used_at FROM oauth_states \
         WHERE state_hash = $1 AND provider = $2",
    )
    .bind(state_hash)
    .bind(PROVIDER)
    .fetch_optional(db)
    .await
}

/// Marks a state used; false when it already was or has expired (racing callbacks).
pub async fn claim_state<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE oauth_states SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms())
    .bind(id)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The identity of a provider account, if linked.
pub async fn find_identity<'e>(
    db: impl AnyExecutor<'e>,
    provider_user_id: &str,
) -> Result<Option<Identity>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id FROM user_identities WHERE provider = $1 AND provider_user_id = $2",
    )
    .bind(PROVIDER)
    .bind(provider_user_id)
    .fetch_optional(db)
    .await
}

/// Whether `user_id` already has a GitHub identity.
pub async fn user_has_identity<'e>(
    db: impl AnyExecutor<'e>,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM user_identities WHERE user_id = $1 AND provider = $2")
        .bind(user_id)
        .bind(PROVIDER)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// Links a GitHub account to a user.
pub async fn insert_identity<'e>(
    db: impl AnyExecutor<'e>,
    user_id: &str,
    provider_user_id: &str,
    login: &str,
    email: Option<&str>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO user_identities \
         (id, user_id, provider, provider_user_id, login, email, created_at, last_login_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(PROVIDER)
    .bind(provider_user_id)
    .bind(login)
    .bind(email)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Records a login through an identity (and the account's current login name).
pub async fn touch_identity<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    login: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_identities SET login = $1, last_login_at = $2 WHERE id = $3")
        .bind(login)
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Stores a single-use login code for `user_id`.
pub async fn insert_login_code<'e>(
    db: impl AnyExecutor<'e>,
    user_id: &str,
    code_hash: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_login_codes (id, user_id, code_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(code_hash)
    .bind(now_ms())
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Spends a login code: the user it was issued for, once, before it expires.
pub async fn claim_login_code<'e>(
    db: impl AnyExecutor<'e>,
    code_hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE oauth_login_codes SET used_at = $1 \
         WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
    )
    .bind(now_ms())
    .bind(code_hash)
    .fetch_optional(db)
    .await
}
