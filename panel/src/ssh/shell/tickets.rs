//! Shell tickets: a browser cannot set headers on a WebSocket, so it trades its token for
//! a single-use ticket valid 30 seconds for one node and one kind of shell, and passes it
//! as `?ticket=` (as consoles do). Only the SHA-256 of a ticket is stored.

use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use shardlyn_proto::shell::ShellKind;

use crate::auth::crypto::{random_hex, sha256_hex};
use crate::auth::extract::{Credential, CurrentUser};
use crate::authz::{Authorized, perm};
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppResult};
use crate::instances::ops::tickets::TICKET_TTL_MS;
use crate::nodes::store::Node;
use crate::respond::Created;
use crate::state::AppState;

/// Prefix of every shell ticket.
const PREFIX: &str = "shardlyn_st_";

/// A ticket, and the socket it opens.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ShellTicket {
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: i64,
    /// The socket to open with it (add `&cols=`, `&rows=`...).
    pub url: String,
}

pub(super) fn kind_name(kind: ShellKind) -> &'static str {
    match kind {
        ShellKind::Ssh => "ssh",
        ShellKind::Terminal => "terminal",
    }
}

async fn issue(
    state: &AppState,
    node: &Node,
    user: &CurrentUser,
    kind: ShellKind,
) -> AppResult<Created<ShellTicket>> {
    let ticket = format!("{PREFIX}{}", random_hex(32));
    let now = now_ms();
    let (session_id, api_token_id) = crate::instances::ops::tickets::bought_with(&user.credential);
    sqlx::query(
        "INSERT INTO node_shell_tickets (id, token_hash, node_id, user_id, kind, session_id, \
         api_token_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id())
    .bind(sha256_hex(&ticket))
    .bind(&node.id)
    .bind(&user.user.id)
    .bind(kind_name(kind))
    .bind(session_id)
    .bind(api_token_id)
    .bind(now)
    .bind(now + TICKET_TTL_MS)
    .execute(&state.db.pool)
    .await?;
    sqlx::query("DELETE FROM node_shell_tickets WHERE expires_at < $1")
        .bind(now - TICKET_TTL_MS)
        .execute(&state.db.pool)
        .await?;
    Ok(Created(ShellTicket {
        url: format!("/v1/nodes/{}/{}?ticket={ticket}", node.id, kind_name(kind)),
        ticket,
        expires_in: TICKET_TTL_MS / 1000,
    }))
}

/// `POST /v1/nodes/{id}/ssh/tickets`.
pub async fn ssh(
    State(state): State<AppState>,
    Authorized { resource, user, .. }: Authorized<Node, perm::NodesSsh>,
) -> AppResult<Created<ShellTicket>> {
    issue(&state, &resource, &user, ShellKind::Ssh).await
}

/// `POST /v1/nodes/{id}/terminal/tickets`.
pub async fn terminal(
    State(state): State<AppState>,
    Authorized { resource, user, .. }: Authorized<Node, perm::NodesTerminal>,
) -> AppResult<Created<ShellTicket>> {
    issue(&state, &resource, &user, ShellKind::Terminal).await
}

/// Spends a ticket for `node_id` and `kind`, once: its user and the credential it was
/// bought with (which the session keeps checking).
///
/// # Errors
/// 401 for an unknown, expired, used, other-node or other-kind ticket, or a suspended
/// user.
pub async fn redeem(
    state: &AppState,
    ticket: &str,
    node_id: &str,
    kind: ShellKind,
) -> AppResult<(CurrentUser, Option<Credential>)> {
    let invalid = || AppError::unauthorized("invalid, expired or already used shell ticket");
    if !ticket.starts_with(PREFIX) || ticket.len() > 128 {
        return Err(invalid());
    }
    let now = now_ms();
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "UPDATE node_shell_tickets SET used_at = $1 \
         WHERE token_hash = $2 AND node_id = $3 AND kind = $4 AND used_at IS NULL \
         AND expires_at > $1 RETURNING user_id, session_id, api_token_id",
    )
    .bind(now)
    .bind(sha256_hex(ticket))
    .bind(node_id)
    .bind(kind_name(kind))
    .fetch_optional(&state.db.pool)
    .await?;
    crate::instances::ops::tickets::holder(state, row.ok_or_else(invalid)?)
        .await?
        .ok_or_else(invalid)
}
