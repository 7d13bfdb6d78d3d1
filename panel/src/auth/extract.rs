//! Typed extractors for who is calling: [`CurrentUser`] (JWT or API token),
//! [`SessionUser`] (JWT only), [`AdminUser`] (platform admin), [`SessionAdmin`] (platform
//! admin with a session), [`AgentNode`] (a node's agent) and [`ClientMeta`]. Each keeps
//! what it proved in the request's extensions, so the router's guard (`auth::guard`)
//! and the handler verify a credential once.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::crypto::{digest_eq, sha256_hex};
use super::sessions::ClientInfo;
use crate::audit::AuditSlot;
use crate::db::now_ms;
use crate::db::row::IsSet;
use crate::error::AppError;
use crate::nodes::store::{self as nodes, Node};
use crate::state::AppState;
use crate::users::store::{User, user_columns};

/// The header an agent presents its token in.
pub const AGENT_TOKEN_HEADER: &str = "x-agent-token";
/// Prefix of every API token.
pub const API_TOKEN_PREFIX: &str = "shardlyn_api_";
/// How often `last_used_at` of an API token is written, at most (ms).
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An access token of this session.
    Session(String),
    /// This API token id.
    ApiToken(String),
    /// A single-use console ticket (WebSockets from browsers).
    Ticket,
}

/// An authenticated, active (not suspended) user.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub credential: Credential,
}

impl CurrentUser {
    /// The session id, when the caller used an access token.
    #[must_use]
    pub fn session_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiToken(_) | Credential::Ticket => None,
        }
    }
}

/// A caller that used a session access token (not an API token): for actions an
/// automation token must not take, such as minting tokens or changing the password.
#[derive(Debug, Clone)]
pub struct SessionUser(pub CurrentUser);

/// A platform admin.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

pub(crate) fn bearer(parts: &Parts) -> Result<&str, AppError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| AppError::unauthorized("missing bearer token"))?
        .to_str()
        .map_err(|_| AppError::unauthorized("malformed authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| AppError::unauthorized("malformed authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::unauthorized("missing bearer token"));
    }
    Ok(token.trim())
}

/// A user with the state of the session an access token names.
#[derive(sqlx::FromRow)]
struct SessionUserRow {
    #[sqlx(flatten)]
    user: User,
    #[sqlx(try_from = "IsSet")]
    session_revoked_at: bool,
}

/// A user with one of their API tokens.
#[derive(sqlx::FromRow)]
struct TokenUserRow {
    #[sqlx(flatten)]
    user: User,
    token_id: String,
    token_hash: String,
    token_expires_at: Option<i64>,
    token_last_used_at: Option<i64>,
}

async fn from_access_token(state: &AppState, token: &str) -> Result<CurrentUser, AppError> {
    // A hit means this exact token was verified before; the entry expires with it, so
    // the signature and claims need no second check.
    let key = sha256_hex(token);
    if let Some(hit) = state.auth_cache.get(&key) {
        return Ok(hit);
    }
    let claims = state.jwt.verify(token)?;
    let epoch = state.auth_cache.epoch();
    let row: SessionUserRow = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(u),
        ", s.revoked_at AS session_revoked_at \
         FROM users u JOIN sessions s ON s.user_id = u.id WHERE u.id = $1 AND s.id = $2"
    ))
    .bind(&claims.sub)
    .bind(&claims.sid)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::unauthorized("session no longer exists"))?;
    if row.session_revoked_at {
        return Err(AppError::unauthorized("session revoked"));
    }
    let current = CurrentUser {
        user: row.user,
        credential: Credential::Session(claims.sid),
    };
    let expires_at = claims.exp.saturating_mul(1000);
    state
        .auth_cache
        .put(key, current.clone(), Some(expires_at), epoch);
    Ok(current)
}

async fn from_api_token(state: &AppState, token: &str) -> Result<CurrentUser, AppError> {
    let invalid = || AppError::unauthorized("invalid API token");
    let secret = token.strip_prefix(API_TOKEN_PREFIX).ok_or_else(invalid)?;
    let prefix = secret.get(..8).ok_or_else(invalid)?;
    let digest = sha256_hex(token);
    if let Some(hit) = state.auth_cache.get(&digest) {
        return Ok(hit);
    }
    let epoch = state.auth_cache.epoch();
    let rows: Vec<TokenUserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(u),
        ", t.id AS token_id, t.token_hash, t.expires_at AS token_expires_at, \
         t.last_used_at AS token_last_used_at \
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.prefix = $1"
    ))
    .bind(prefix)
    .fetch_all(&state.db.pool)
    .await?;
    let now = now_ms();
    for row in rows {
        if !digest_eq(&row.token_hash, &digest) {
            continue;
        }
        let expires_at = row.token_expires_at;
        if expires_at.is_some_and(|at| at <= now) {
            return Err(AppError::unauthorized("API token expired"));
        }
        let token_id = row.token_id;
        if row
            .token_last_used_at
            .is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS)
        {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&token_id)
                .execute(&state.db.pool)
                .await?;
        }
        let current = CurrentUser {
            user: row.user,
            credential: Credential::ApiToken(token_id),
        };
        state
            .auth_cache
            .put(digest, current.clone(), expires_at, epoch);
        return Ok(current);
    }
    Err(invalid())
}

/// Authenticates the request's bearer token (JWT or API token).
///
/// # Errors
/// 401 for a missing, invalid, expired or revoked credential or a suspended user.
#[tracing::instrument(skip_all)]
pub async fn authenticate(state: &AppState, parts: &Parts) -> Result<CurrentUser, AppError> {
    let current = authenticate_token(state, bearer(parts)?).await?;
    if let Some(slot) = parts.extensions.get::<AuditSlot>() {
        slot.set_actor(&current.user.id, &current.user.email);
    }
    Ok(current)
}

/// Authenticates a bearer token given outside a header (a WebSocket `auth` message).
///
/// # Errors
/// As [`authenticate`].
pub async fn authenticate_token(state: &AppState, token: &str) -> Result<CurrentUser, AppError> {
    let current = if token.starts_with(API_TOKEN_PREFIX) {
        from_api_token(state, token).await?
    } else {
        from_access_token(state, token).await?
    };
    if current.user.suspended {
        return Err(AppError::unauthorized("account suspended"));
    }
    if let Credential::ApiToken(id) = &current.credential {
        // From now on its requests count in the token's own rate-limit bucket.
        state.limiter.learn(token, format!("tok:{id}"));
    }
    Ok(current)
}

/// An extractor's earlier answer for this request (the router's guard ran it first).
fn proven<T: Clone + Send + Sync + 'static>(parts: &Parts) -> Option<T> {
    parts.extensions.get::<T>().cloned()
}

/// Keeps what an extractor proved, so the handler's own extraction reuses it.
fn keep<T: Clone + Send + Sync + 'static>(parts: &mut Parts, value: &T) {
    parts.extensions.insert(value.clone());
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(user) = proven::<Self>(parts) {
            return Ok(user);
        }
        let user = authenticate(state, parts).await?;
        keep(parts, &user);
        Ok(user)
    }
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = AppError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if current.session_id().is_none() {
            return Err(AppError::Forbidden(
                "this action needs a login session; API tokens cannot perform it".into(),
            ));
        }
        Ok(Self(current))
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if !current.user.is_admin {
            return Err(AppError::Forbidden("platform admin only".into()));
        }
        Ok(Self(current))
    }
}

/// A platform admin signed in with a session: who may change platform settings and
/// the SSH keys the panel provisions machines with. An API token, even an admin's, is
/// refused (403), as is a member (403).
#[derive(Debug, Clone)]
pub struct SessionAdmin(pub CurrentUser);

impl FromRequestParts<AppState> for SessionAdmin {
    type Rejection = AppError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let SessionUser(user) = SessionUser::from_request_parts(parts, state).await?;
        if !user.user.is_admin {
            return Err(AppError::Forbidden(
                "only platform admins can change platform settings".into(),
            ));
        }
        Ok(Self(user))
    }
}

/// The node whose agent presented its token (`X-Agent-Token`).
#[derive(Debug, Clone)]
pub struct AgentNode(pub Node);

impl FromRequestParts<AppState> for AgentNode {
    type Rejection = AppError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(node) = proven::<Self>(parts) {
            return Ok(node);
        }
        let token = parts
            .headers
            .get(AGENT_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AppError::unauthorized("missing agent token"))?;
        let node = nodes::find_by_agent_token(&state.db.pool, token)
            .await?
            .ok_or_else(|| AppError::unauthorized("invalid agent token"))?;
        // Verified: the rate limiter may count this agent as its node from now on.
        state.limiter.learn(token, format!("node:{}", node.id));
        let node = Self(node);
        keep(parts, &node);
        Ok(node)
    }
}

/// The caller's address and user agent.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta(pub ClientInfo);

/// The client IP of a request: the address `client_ip` resolved (honouring trusted
/// proxies), else the peer address.
#[must_use]
pub fn peer_ip(parts_ext: &http::Extensions) -> Option<String> {
    if let Some(crate::client_ip::ClientIp(ip)) = parts_ext.get() {
        return Some(ip.to_string());
    }
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

impl<S: Send + Sync> FromRequestParts<S> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(ClientInfo {
            ip: peer_ip(&parts.extensions),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }))
    }
}
