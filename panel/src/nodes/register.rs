//! Registration: an org member mints a single-use token (1 hour); the agent trades it for
//! a node id and its own agent token (`shardlyn_agent_...`, stored as SHA-256).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shardlyn_proto::register::{AgentRegistration, Registered};

use super::store::{self, AGENT_TOKEN_PREFIX};
use crate::auth::crypto::{random_hex, sha256_hex};
use crate::auth::extract::CurrentUser;
use crate::billing::limits::{Limit, plan_for, usage_of};
use crate::db::row::IsSet;
use crate::db::{new_id, now_ms, ts};
use crate::error::{AppError, AppJson, AppResult};
use crate::orgs::scope::scoped;
use crate::orgs::validate_name;
use crate::state::AppState;

const TOKEN_TTL_MS: i64 = 3600 * 1000;
const REGISTRATION_PREFIX: &str = "shardlyn_reg_";

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateToken {
    pub name: Option<String>,
    pub organization_id: Option<String>,
}

/// A registration token just minted (shown once) and the command that uses it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegistrationToken {
    /// `shardlyn_reg_...`, single use.
    pub token: String,
    pub organization_id: String,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub expires_at: i64,
    /// Registers the agent with this panel and starts it.
    pub command: String,
    /// One line that downloads the agent from this panel, installs it as a systemd
    /// service and registers it (`curl ... | sh -s -- --token ...`), pinning the panel's
    /// self-signed CA when it has one.
    pub install_command: String,
}

/// Mints a registration token and the command that uses it.
pub async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<CreateToken>,
) -> AppResult<(StatusCode, AppJson<RegistrationToken>)> {
    let member = scoped(
        &state,
        &user,
        body.organization_id.as_deref(),
        "nodes.create",
    )
    .await?;
    let name = match body.name.as_deref() {
        Some(n) => validate_name(n)?,
        None => String::new(),
    };
    let (token, expires_at) = mint(&state, &member.org_id, &name, &user.user.id).await?;
    let panel = state.base_url();
    let install_command = crate::bootstrap::cloudinit::install_command(
        &panel,
        &token,
        state.ca.as_ref().map(|ca| ca.sha256.as_str()),
    );
    let pin = state
        .ca
        .as_ref()
        .map(|ca| format!(" --ca-fingerprint {}", ca.sha256))
        .unwrap_or_default();
    let dir = "/var/lib/shardlyn-agent";
    let command = format!(
        "shardlyn-agent register --panel {panel} --token {token}{pin} --data-dir {dir} && shardlyn-agent run --data-dir {dir}"
    );
    Ok((
        StatusCode::CREATED,
        AppJson(RegistrationToken {
            token,
            organization_id: member.org_id,
            expires_at,
            command,
            install_command,
        }),
    ))
}

/// Stores a new single-use registration token for `org_id`; returns it and its expiry.
///
/// # Errors
/// Database failures.
pub async fn mint(
    state: &AppState,
    org_id: &str,
    name: &str,
    created_by: &str,
) -> AppResult<(String, i64)> {
    let token = format!("{REGISTRATION_PREFIX}{}", random_hex(32));
    let now = now_ms();
    sqlx::query(
        "INSERT INTO node_registration_tokens (id, org_id, name, token_hash, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(org_id)
    .bind(name)
    .bind(sha256_hex(&token))
    .bind(created_by)
    .bind(now)
    .bind(now + TOKEN_TTL_MS)
    .execute(&state.db.pool)
    .await?;
    Ok((token, now + TOKEN_TTL_MS))
}

/// A registration token as stored.
#[derive(sqlx::FromRow)]
struct StoredToken {
    id: String,
    org_id: String,
    name: String,
    expires_at: i64,
    #[sqlx(rename = "used_at", try_from = "IsSet")]
    used: bool,
}

/// The nodes cap of `org_id`'s plan and its node usage before the registration, when
/// capped.
async fn nodes_cap(
    conn: &mut sqlx::AnyConnection,
    state: &AppState,
    org_id: &str,
) -> AppResult<Option<(i64, i64)>> {
    let Some(cap) = plan_for(&mut *conn, state, org_id)
        .await?
        .and_then(|plan| Limit::Nodes.cap(&plan.limits))
    else {
        return Ok(None);
    };
    Ok(Some((
        cap,
        usage_of(conn, org_id, Limit::Nodes, None).await?,
    )))
}

/// Trades a registration token for a node identity (once). The node must fit the
/// organization's plan (402 `PLAN_LIMIT`; the token stays unused).
pub async fn agent_register(
    State(state): State<AppState>,
    AppJson(body): AppJson<AgentRegistration>,
) -> AppResult<(StatusCode, AppJson<Registered>)> {
    if body
        .protocol
        .is_some_and(|p| p != shardlyn_proto::PROTOCOL_VERSION)
    {
        return Err(AppError::BadRequest(format!(
            "agent protocol {:?} is not supported; this panel speaks {}",
            body.protocol,
            shardlyn_proto::PROTOCOL_VERSION
        )));
    }
    let invalid = || AppError::unauthorized("registration token is invalid, used or expired");
    let token: StoredToken = sqlx::query_as(
        "SELECT id, org_id, name, expires_at, used_at FROM node_registration_tokens WHERE token_hash = $1",
    )
    .bind(sha256_hex(&body.token))
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(invalid)?;
    let now = now_ms();
    if token.used || token.expires_at <= now {
        return Err(invalid());
    }
    let StoredToken {
        id: token_id,
        org_id,
        name: named,
        ..
    } = token;
    let hostname: String = body
        .hostname
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(253)
        .collect();
    let name = if !named.is_empty() {
        named
    } else if !hostname.is_empty() {
        hostname.chars().take(100).collect()
    } else {
        "node".to_string()
    };
    let node_id = new_id();
    let agent_token = format!("{AGENT_TOKEN_PREFIX}{}", random_hex(32));
    // The organization is held so concurrent registrations and provisioning queue on
    // its plan's node cap.
    let mut tx = crate::billing::limits::lock(&state, &org_id).await?;
    let nodes_cap = nodes_cap(&mut tx, &state, &org_id).await?;
    let claimed = sqlx::query(
        "UPDATE node_registration_tokens SET used_at = $1, node_id = $2 WHERE id = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(&node_id)
    .bind(&token_id)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() != 1 {
        return Err(invalid());
    }
    store::insert(&mut *tx, &node_id, &org_id, &name, &hostname, &agent_token).await?;
    crate::provision::on_registered(&mut *tx, &token_id, &node_id).await?;
    if let Some((cap, before)) = nodes_cap {
        // A provisioned node replaces its request, which was counted already: only a
        // registration that adds to the count must fit (nothing is kept when refused).
        let after = usage_of(&mut tx, &org_id, Limit::Nodes, None).await?;
        if after > before && after > cap {
            return Err(AppError::PlanLimit {
                limit: Limit::Nodes.key(),
                usage: before,
                cap,
                message: format!(
                    "the organization's plan allows {cap} node(s) and it has {before} \
                     (with cloud nodes being provisioned): upgrade the plan or remove a node"
                ),
            });
        }
    }
    tx.commit().await?;
    tracing::info!(node.id = %node_id, agent.version = ?body.version, "node registered");
    Ok((
        StatusCode::CREATED,
        AppJson(Registered {
            node_id,
            agent_token,
            organization_id: org_id,
        }),
    ))
}
