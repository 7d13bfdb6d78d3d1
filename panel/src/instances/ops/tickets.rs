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
    sqlx::query(
        "INSERT INTO console_tickets (id, token_hash, instance_id, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(sha256_hex(&ticket))
    .bind(&instance.id)
    .bind(&user.user.id)
    .bind(now)
    .bind(now + TICKET_TTL_MS)
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

/// Spends a ticket for `instance_id`: the user it was issued to, once.
///
/// # Errors
/// 401 for an unknown, expired, used or other-instance ticket, or a suspended user.
pub async fn redeem(state: &AppState, ticket: &str, instance_id: &str) -> AppResult<CurrentUser> {
    let invalid = || AppError::unauthorized("invalid, expired or already used console ticket");
    if !ticket.starts_with(PREFIX) || ticket.len() > 128 {
        return Err(invalid());
    }
    let hash = sha256_hex(ticket);
    let now = now_ms();
    let row: Option<(String,)> = sqlx::query_as(
        "UPDATE console_tickets SET used_at = $1 \
         WHERE token_hash = $2 AND instance_id = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING user_id",
    )
    .bind(now)
    .bind(&hash)
    .bind(instance_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let (user_id,) = row.ok_or_else(invalid)?;
    let user = users::find(&state.db.pool, &user_id)
        .await?
        .filter(|u| !u.suspended)
        .ok_or_else(invalid)?;
    Ok(CurrentUser {
        user,
        credential: Credential::Ticket,
    })
}
