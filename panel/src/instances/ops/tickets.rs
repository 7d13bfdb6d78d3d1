//! Console tickets: browsers cannot set headers on a WebSocket, so they trade their
//! token for a single-use ticket valid 30 seconds and pass it as `?ticket=`. Only the
//! SHA-256 of a ticket is stored.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::auth::crypto::{random_hex, sha256_hex};
use crate::auth::extract::{Credential, CurrentUser};
use crate::authz::{Authorized, perm};
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppJson, AppResult};
use crate::instances::Instance;
use crate::state::AppState;
use crate::users::store as users;

/// How long a ticket is valid.
pub const TICKET_TTL_MS: i64 = 30_000;
/// Prefix of every ticket.
const PREFIX: &str = "shardlyn_ct_";

/// `POST /v1/instances/{id}/console/tickets`.
pub async fn create(
    State(state): State<AppState>,
    Authorized {
        resource: instance,
        user,
        ..
    }: Authorized<Instance, perm::InstancesLogs>,
) -> AppResult<(StatusCode, AppJson<Value>)> {
    let ticket = format!("{PREFIX}{}", random_hex(32));
    let now = now_ms();
    let (session_id, api_token_id) = bought_with(&user.credential);
    sqlx::query(
        "INSERT INTO console_tickets (id, token_hash, instance_id, user_id, created_at, expires_at, \
         session_id, api_token_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id())
    .bind(sha256_hex(&ticket))
    .bind(&instance.id)
    .bind(&user.user.id)
    .bind(now)
    .bind(now + TICKET_TTL_MS)
    .bind(session_id)
    .bind(api_token_id)
    .execute(&state.db.pool)
    .await?;
    // Used and expired tickets are worthless; drop them as new ones are made.
    sqlx::query("DELETE FROM console_tickets WHERE expires_at < $1")
        .bind(now - TICKET_TTL_MS)
        .execute(&state.db.pool)
        .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(json!({
            "ticket": ticket,
            "expires_in": TICKET_TTL_MS / 1000,
            "console_url": format!("/v1/instances/{}/console?ticket={ticket}", instance.id),
            "logs_url": format!("/v1/instances/{}/logs?ticket={ticket}", instance.id),
        })),
    ))
}

/// Spends a ticket for `instance_id`, once: the user it was issued to, and the
/// credential they bought it with (which the console keeps checking).
///
/// # Errors
/// 401 for an unknown, expired, used or other-instance ticket, or a suspended user.
pub async fn redeem(
    state: &AppState,
    ticket: &str,
    instance_id: &str,
) -> AppResult<(CurrentUser, Option<Credential>)> {
    let invalid = || AppError::unauthorized("invalid, expired or already used console ticket");
    if !ticket.starts_with(PREFIX) || ticket.len() > 128 {
        return Err(invalid());
    }
    let hash = sha256_hex(ticket);
    let now = now_ms();
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "UPDATE console_tickets SET used_at = $1 \
         WHERE token_hash = $2 AND instance_id = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING user_id, session_id, api_token_id",
    )
    .bind(now)
    .bind(&hash)
    .bind(instance_id)
    .fetch_optional(&state.db.pool)
    .await?;
    holder(state, row.ok_or_else(invalid)?)
        .await?
        .ok_or_else(invalid)
}

/// The `session_id` and `api_token_id` columns a ticket bought with `credential` keeps
/// (the credential its socket is checked against; [`holder`] reads them back).
#[must_use]
pub fn bought_with(credential: &Credential) -> (Option<&str>, Option<&str>) {
    match credential {
        Credential::Session(id) => (Some(id.as_str()), None),
        Credential::ApiToken(id) => (None, Some(id.as_str())),
        Credential::Ticket => (None, None),
    }
}

/// The user of a spent ticket's row (`user_id, session_id, api_token_id`) and the
/// credential it was bought with; `None` when the user is gone or suspended.
///
/// # Errors
/// Database failures.
pub async fn holder(
    state: &AppState,
    (user_id, session_id, api_token_id): (String, Option<String>, Option<String>),
) -> AppResult<Option<(CurrentUser, Option<Credential>)>> {
    let bought_with = session_id
        .map(Credential::Session)
        .or(api_token_id.map(Credential::ApiToken));
    let Some(user) = users::find(&state.db.pool, &user_id)
        .await?
        .filter(|u| !u.suspended)
    else {
        return Ok(None);
    };
    Ok(Some((
        CurrentUser {
            user,
            credential: Credential::Ticket,
        },
        bought_with,
    )))
}

/// Whether `credential` still stands: a session not revoked nor ended, an API token not
/// deleted nor expired (a ticket's own credential always, it was spent at the start).
///
/// # Errors
/// Database failures.
pub async fn credential_stands(state: &AppState, credential: &Credential) -> AppResult<bool> {
    let now = now_ms();
    let found: Option<i64> = match credential {
        Credential::Session(id) => {
            sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) FROM sessions \
                 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&state.db.pool)
            .await?
        }
        Credential::ApiToken(id) => {
            sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) FROM api_tokens \
                 WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&state.db.pool)
            .await?
        }
        Credential::Ticket => Some(1),
    };
    Ok(found.is_some())
}
