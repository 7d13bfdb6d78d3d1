//! Sessions and their refresh tokens. A session is one refresh-token family: every
//! refresh rotates the token; presenting a used token revokes the whole family. Starting
//! a session from an address the user never signed in from mails them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sqlx::{AnyExecutor, AnyPool};

use super::crypto::{random_hex, sha256_hex};
use super::jwt::ACCESS_TTL_SECS;
use crate::db::row::IsSet;
use crate::db::{new_id, now_ms, rfc3339, ts};
use crate::error::{AppError, AppResult};
use crate::mailer::Template;
use crate::state::AppState;

/// The token pair of the login response.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub token_type: Cow<'static, str>,
}

/// A session as listed to its user.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct SessionView {
    pub id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub last_seen_at: i64,
    // Whether this is the caller's session: not a column.
    #[sqlx(skip)]
    pub current: bool,
}

/// Where a login came from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

fn new_refresh_token() -> String {
    format!("shardlyn_rt_{}", random_hex(32))
}

async fn insert_refresh<'e>(
    db: impl AnyExecutor<'e>,
    session_id: &str,
    token: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(session_id)
    .bind(sha256_hex(token))
    .bind(now_ms())
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Starts a session for `user_id` and returns its first token pair.
///
/// # Errors
/// Database failures.
pub async fn start(state: &AppState, user_id: &str, client: &ClientInfo) -> AppResult<TokenPair> {
    notify_if_new_ip(state, user_id, client).await;
    let now = now_ms();
    let ttl_ms = i64::try_from(state.config.auth.refresh_ttl_secs)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000);
    let session_id = new_id();
    let refresh = new_refresh_token();
    let mut tx = state.db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, ip, user_agent) \
         VALUES ($1, $2, $3, $3, $4, $5, $6)",
    )
    .bind(&session_id)
    .bind(user_id)
    .bind(now)
    .bind(now.saturating_add(ttl_ms))
    .bind(client.ip.as_deref())
    .bind(client.user_agent.as_deref().map(|ua| truncate(ua, 255)))
    .execute(&mut *tx)
    .await?;
    insert_refresh(&mut *tx, &session_id, &refresh, now.saturating_add(ttl_ms)).await?;
    tx.commit().await?;
    pair(state, user_id, &session_id, refresh)
}

fn pair(
    state: &AppState,
    user_id: &str,
    session_id: &str,
    refresh: String,
) -> AppResult<TokenPair> {
    Ok(TokenPair {
        access_token: state.jwt.issue(user_id, session_id)?,
        refresh_token: refresh,
        expires_in: ACCESS_TTL_SECS,
        token_type: Cow::Borrowed("Bearer"),
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A refresh token with the state of its session and user.
#[derive(sqlx::FromRow)]
struct RefreshRow {
    id: String,
    session_id: String,
    user_id: String,
    expires_at: i64,
    #[sqlx(rename = "used_at", try_from = "IsSet")]
    used: bool,
    #[sqlx(rename = "revoked_at", try_from = "IsSet")]
    revoked: bool,
    #[sqlx(rename = "suspended_at", try_from = "IsSet")]
    suspended: bool,
}

/// Exchanges a refresh token for a new pair. A token presented twice revokes its family.
///
/// # Errors
/// 401 for an unknown, used, expired or revoked token, or a suspended user.
pub async fn rotate(state: &AppState, token: &str) -> AppResult<TokenPair> {
    let invalid = || AppError::unauthorized("invalid or expired refresh token");
    let now = now_ms();
    let row: RefreshRow = sqlx::query_as(
        "SELECT r.id, r.session_id, r.expires_at, r.used_at, s.user_id, s.revoked_at, u.suspended_at \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id \
         WHERE r.token_hash = $1",
    )
    .bind(sha256_hex(token))
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(invalid)?;
    let RefreshRow {
        id: token_id,
        session_id,
        user_id,
        expires_at,
        used,
        revoked,
        suspended,
    } = row;
    if used {
        tracing::warn!(session.id = %session_id, "refresh token reuse: revoking the session");
        revoke(&state.db.pool, &session_id).await?;
        state.auth_cache.invalidate_all();
        return Err(AppError::unauthorized(
            "refresh token already used: session revoked",
        ));
    }
    if revoked || expires_at <= now || suspended {
        return Err(invalid());
    }
    let refresh = new_refresh_token();
    let mut tx = state.db.pool.begin().await?;
    // Conditional on `used_at IS NULL`, so two racing refreshes cannot both win.
    let claimed =
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(&token_id)
            .execute(&mut *tx)
            .await?;
    if claimed.rows_affected() != 1 {
        tx.rollback().await?;
        revoke(&state.db.pool, &session_id).await?;
        state.auth_cache.invalidate_all();
        return Err(AppError::unauthorized(
            "refresh token already used: session revoked",
        ));
    }
    insert_refresh(&mut *tx, &session_id, &refresh, expires_at).await?;
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&session_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    pair(state, &user_id, &session_id, refresh)
}

/// Revokes one session (its refresh tokens stop working, and so do its access tokens).
///
/// # Errors
/// Database failures.
pub async fn revoke<'e>(db: impl AnyExecutor<'e>, session_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(session_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Revokes every session of a user except `keep`.
///
/// # Errors
/// Database failures.
pub async fn revoke_all<'e>(
    db: impl AnyExecutor<'e>,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE sessions SET revoked_at = $1 \
         WHERE user_id = $2 AND revoked_at IS NULL AND ($3 IS NULL OR id <> $3)",
    )
    .bind(now_ms())
    .bind(user_id)
    .bind(keep)
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// A user's email, how many sessions they ever had (live or not), and how many of
/// those came from `ip`.
///
/// # Errors
/// Database failures.
pub async fn ip_history(
    pool: &AnyPool,
    user_id: &str,
    ip: &str,
) -> Result<Option<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.email, \
         CAST((SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id) AS BIGINT) AS total, \
         CAST((SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id AND s.ip = $2) AS BIGINT) AS same_ip \
         FROM users u WHERE u.id = $1",
    )
    .bind(user_id)
    .bind(ip)
    .fetch_optional(pool)
    .await
}

/// Mails the user when a sign-in (password, MFA challenge, GitHub...) comes from an IP
/// address none of their earlier sessions came from; the very first sign-in is not
/// announced. Runs before the new session is stored; a failed check is logged and never
/// fails the sign-in.
async fn notify_if_new_ip(state: &AppState, user_id: &str, client: &ClientInfo) {
    let Some(ip) = client.ip.as_deref() else {
        return;
    };
    match ip_history(&state.db.pool, user_id, ip).await {
        Ok(Some((email, total, 0))) if total > 0 => state.mailer.send_template(
            &email,
            &Template::NewLogin {
                ip: ip.to_string(),
                user_agent: client.user_agent.clone(),
                time: rfc3339(now_ms()),
            },
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(user.id = %user_id, "checking for a sign-in from a new address: {e}");
        }
    }
}

/// The live sessions of a user, newest first.
///
/// # Errors
/// Database failures.
pub async fn list_active(
    pool: &AnyPool,
    user_id: &str,
    current: Option<&str>,
) -> Result<Vec<SessionView>, sqlx::Error> {
    let mut sessions: Vec<SessionView> = sqlx::query_as(
        "SELECT id, ip, user_agent, created_at, last_seen_at FROM sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC",
    )
    .bind(user_id)
    .bind(now_ms())
    .fetch_all(pool)
    .await?;
    for session in &mut sessions {
        session.current = current == Some(session.id.as_str());
    }
    Ok(sessions)
}
