//! Email verification for open registration. An account registered through
//! `POST /v1/auth/register` in `open` mode signs in (and can be linked by a GitHub login)
//! only once its address is proven by a mailed link: a single-use token valid for 24
//! hours, stored as its SHA-256 like password-reset tokens. `POST /v1/auth/verify-email`
//! spends it; `POST /v1/auth/verify-email/resend` mails a new one and answers the same
//! whether or not the address has an account.
//!
//! Accounts made any other way are verified when created: by an admin, at bootstrap,
//! with an invite (the invite came to that mailbox) or through GitHub (which verified
//! the address). A completed password reset verifies too: its link went to the mailbox.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sqlx::AnyConnection;

use super::crypto::{normalize_email, random_hex, sha256_hex};
use crate::audit::AuditSlot;
use crate::db::row::IsSet;
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppJson, AppResult};
use crate::mailer::Template;
use crate::state::AppState;
use crate::users::store as users;

/// Lifetime of a verification link.
const VERIFY_TTL_MS: i64 = 24 * 3600 * 1000;
/// At most one link per account in this time; more requests answer alike and mail nothing.
const RESEND_INTERVAL_MS: i64 = 60_000;

/// The 403 of an account whose address is not verified yet.
#[must_use]
pub fn not_verified(message: &str) -> AppError {
    AppError::coded(StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED", message)
}

/// Stores a new verification token for `user_id` inside the caller's transaction and
/// returns it (mail it with [`mail_link`] once committed).
///
/// # Errors
/// Database failures.
pub async fn issue(conn: &mut AnyConnection, user_id: &str) -> Result<String, sqlx::Error> {
    let token = random_hex(32);
    let now = now_ms();
    sqlx::query(
        "INSERT INTO email_verifications (id, user_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(sha256_hex(&token))
    .bind(now)
    .bind(now + VERIFY_TTL_MS)
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

/// Mails the verification link of `token` to `email`.
pub fn mail_link(state: &AppState, email: &str, token: String) {
    let link = format!("{}/verify-email?token={token}", state.base_url());
    state.mailer.send_template(
        email,
        &Template::VerifyEmail {
            link,
            token,
            valid_hours: VERIFY_TTL_MS / 3_600_000,
        },
    );
}

pub use crate::types::Message;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct VerifyRequest {
    token: String,
}

/// A verification link as stored.
#[derive(sqlx::FromRow)]
struct Link {
    id: String,
    user_id: String,
    expires_at: i64,
    #[sqlx(rename = "used_at", try_from = "IsSet")]
    used: bool,
}

/// `POST /v1/auth/verify-email`: spends a verification token; the address is verified.
///
/// # Errors
/// 400 `INVALID_TOKEN` for an unknown, used or expired token.
pub async fn verify(
    State(state): State<AppState>,
    audit: Option<Extension<AuditSlot>>,
    AppJson(body): AppJson<VerifyRequest>,
) -> AppResult<AppJson<Message>> {
    let invalid = || AppError::InvalidToken("verification link is invalid, used or expired".into());
    let now = now_ms();
    let link: Link = sqlx::query_as(
        "SELECT id, user_id, expires_at, used_at FROM email_verifications WHERE token_hash = $1",
    )
    .bind(sha256_hex(&body.token))
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(invalid)?;
    if link.used || link.expires_at <= now {
        return Err(invalid());
    }
    let Link { id, user_id, .. } = link;
    let mut tx = state.db.pool.begin().await?;
    let claimed = sqlx::query(
        "UPDATE email_verifications SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() != 1 {
        return Err(invalid());
    }
    users::mark_email_verified(&mut *tx, &user_id).await?;
    // The other links of this account have nothing left to prove.
    sqlx::query(
        "UPDATE email_verifications SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some(Extension(slot)) = &audit {
        slot.set_action("auth.email.verify", Some(&user_id));
    }
    Ok(AppJson(Message::new(
        "email address verified; you can sign in now",
    )))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ResendRequest {
    email: String,
}

/// `POST /v1/auth/verify-email/resend`: mails a new link to an account waiting for
/// verification; always answers 202 with the same body (rate limited per client as a
/// login, and at most one mail per account a minute).
///
/// # Errors
/// Database failures only.
pub async fn resend(
    State(state): State<AppState>,
    AppJson(body): AppJson<ResendRequest>,
) -> AppResult<(StatusCode, AppJson<Message>)> {
    let answer = (
        StatusCode::ACCEPTED,
        AppJson(Message::new(
            "if this address has an account waiting for verification, a new link is on its way",
        )),
    );
    let Ok(email) = normalize_email(&body.email) else {
        return Ok(answer);
    };
    let Some(account) = users::find_auth_by_email(&state.db.pool, &email).await? else {
        return Ok(answer);
    };
    if account.email_verified || account.user.suspended {
        return Ok(answer);
    }
    let now = now_ms();
    let latest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(created_at) FROM email_verifications WHERE user_id = $1")
            .bind(&account.user.id)
            .fetch_one(&state.db.pool)
            .await?;
    if latest.is_some_and(|at| now - at < RESEND_INTERVAL_MS) {
        return Ok(answer);
    }
    let mut conn = state.db.pool.acquire().await?;
    let token = issue(&mut conn, &account.user.id).await?;
    mail_link(&state, &account.user.email, token);
    Ok(answer)
}
