//! Password reset: a single-use token valid for one hour, mailed to the account. The
//! request answers the same whether or not the email belongs to an account.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::AnyExecutor;

use super::crypto::{
    check_password_policy, hash_password, normalize_email, random_hex, sha256_hex,
};
use super::sessions;
use crate::db::row::IsSet;
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppJson, AppResult};
use crate::mailer::Template;
use crate::respond::Accepted;
use crate::state::AppState;
use crate::types::Message;
use crate::users::store as users;

/// Lifetime of a reset token.
const RESET_TTL_MS: i64 = 3600 * 1000;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ForgotRequest {
    email: String,
}

/// Mails a reset link if the account exists; always answers 202 with the same body.
pub async fn forgot(
    State(state): State<AppState>,
    AppJson(body): AppJson<ForgotRequest>,
) -> AppResult<Accepted<Message>> {
    let answer = || {
        Accepted(Message::new(
            "if an account exists for this email, a reset link is on its way",
        ))
    };
    let Ok(email) = normalize_email(&body.email) else {
        return Ok(answer());
    };
    let Some(account) = users::find_auth_by_email(&state.db.pool, &email).await? else {
        return Ok(answer());
    };
    if account.user.suspended {
        return Ok(answer());
    }
    let token = issue(&state.db.pool, &account.user.id, RESET_TTL_MS).await?;
    state.mailer.send_template(
        &account.user.email,
        &Template::PasswordReset {
            link: link(&state, &token),
            token,
            valid_minutes: RESET_TTL_MS / 60_000,
        },
    );
    Ok(answer())
}

/// Stores a new reset token of `user_id`, valid for `ttl_ms`; returns the token to mail
/// (only its digest is stored). `pterodactyl::users` issues one to each account it moves
/// without a password.
///
/// # Errors
/// Database failures.
pub async fn issue<'e>(db: impl AnyExecutor<'e>, user_id: &str, ttl_ms: i64) -> AppResult<String> {
    let token = random_hex(32);
    let now = now_ms();
    sqlx::query(
        "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(sha256_hex(&token))
    .bind(now)
    .bind(now + ttl_ms)
    .execute(db)
    .await?;
    Ok(token)
}

/// The page that sets a new password with `token`.
#[must_use]
pub fn link(state: &AppState, token: &str) -> String {
    format!("{}/reset-password?token={token}", state.base_url())
}

/// A reset token and the new password.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResetRequest {
    pub token: String,
    pub new_password: String,
}

/// A reset link as stored.
#[derive(sqlx::FromRow)]
struct Link {
    id: String,
    user_id: String,
    expires_at: i64,
    #[sqlx(rename = "used_at", try_from = "IsSet")]
    used: bool,
}

/// Sets a new password with a reset token and ends every session of the account.
pub async fn reset(
    State(state): State<AppState>,
    AppJson(body): AppJson<ResetRequest>,
) -> AppResult<AppJson<Message>> {
    check_password_policy(&body.new_password, state.config.auth.password_min_length)?;
    let invalid = || AppError::InvalidToken("reset token is invalid, used or expired".into());
    let now = now_ms();
    let link: Link = sqlx::query_as(
        "SELECT id, user_id, expires_at, used_at FROM password_resets WHERE token_hash = $1",
    )
    .bind(sha256_hex(&body.token))
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(invalid)?;
    if link.used || link.expires_at <= now {
        return Err(invalid());
    }
    let Link { id, user_id, .. } = link;
    let hash = hash_password(body.new_password).await?;
    let mut tx = state.db.pool.begin().await?;
    let claimed =
        sqlx::query("UPDATE password_resets SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    if claimed.rows_affected() != 1 {
        return Err(invalid());
    }
    users::set_password(&mut *tx, &user_id, &hash).await?;
    // The reset link went to the account's mailbox: that proves the address too.
    users::mark_email_verified(&mut *tx, &user_id).await?;
    // Other outstanding reset links of this account die with this one.
    sqlx::query("UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    sessions::revoke_all(&mut *tx, &user_id, None).await?;
    sqlx::query("DELETE FROM login_failures WHERE user_id = $1")
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE users SET locked_until = NULL WHERE id = $1")
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.auth_cache.invalidate_all();
    Ok(AppJson(Message::new(
        "password updated; sign in with the new password",
    )))
}
