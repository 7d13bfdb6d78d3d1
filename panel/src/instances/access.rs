//! Per-server access: `/v1/instances/{id}/access[/{userId}]`. A grant gives an account
//! some instance permission keys on one server and nothing else in the organization
//! (what Pterodactyl calls a subuser). The account becomes a *scoped* member of the
//! server's organization ([`crate::orgs::permissions::Membership::is_scoped`]); its last
//! grant removed, the membership goes too. A full member already sees every server, so
//! granting them one answers 409 `ALREADY_MEMBER`.
//!
//! Granting is `members.permissions` in the server's organization, the same key that
//! changes a member's permission overrides.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::Instance;
use crate::authz::{Authorized, perm};
use crate::billing::limits::{self, Ask, Limit};
use crate::db::{now_ms, ts};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::orgs::permissions::{PERMISSIONS, grantable};
use crate::respond::Created;
use crate::state::AppState;
use sqlx::AnyExecutor;

/// One account's access to one server.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Grant {
    pub user_id: String,
    pub email: String,
    pub name: String,
    /// Instance permission keys.
    pub permissions: Vec<String>,
    #[schemars(with = "crate::types::Timestamp")]
    #[serde(with = "ts")]
    pub created_at: i64,
    #[schemars(with = "crate::types::Timestamp")]
    #[serde(with = "ts")]
    pub updated_at: i64,
}

/// A key a grant may hold.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GrantableKey {
    pub key: &'static str,
    pub description: &'static str,
}

/// `GET /v1/instances/{id}/access`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AccessList {
    pub data: Vec<Grant>,
    /// The keys a grant may hold.
    pub grantable: Vec<GrantableKey>,
}

/// `POST /v1/instances/{id}/access`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// The account's email; it must exist.
    pub email: String,
    pub permissions: Vec<String>,
}

/// `PUT /v1/instances/{id}/access/{userId}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantUpdate {
    pub permissions: Vec<String>,
}

/// The keys every grant may hold, in declaration order.
#[must_use]
pub fn grantable_keys() -> Vec<GrantableKey> {
    PERMISSIONS
        .iter()
        .filter(|p| grantable(p.key))
        .map(|p| GrantableKey {
            key: p.key,
            description: p.description,
        })
        .collect()
}

/// Checks and orders a submitted key list (duplicates dropped); `instances.read` is
/// always added: a grant lets its holder see the server.
///
/// # Errors
/// 400 naming `permissions` for an empty list or a key a grant may not hold.
pub fn check_keys(keys: &[String]) -> AppResult<Vec<String>> {
    if keys.is_empty() {
        return Err(AppError::invalid_field(
            "permissions",
            "give at least one permission key (remove the access instead)",
        ));
    }
    if let Some(bad) = keys.iter().find(|k| !grantable(k)) {
        return Err(AppError::invalid_field(
            "permissions",
            format!(
                "`{bad}` cannot be granted on one server (keys: instances.*, not create or migrate)"
            ),
        ));
    }
    Ok(PERMISSIONS
        .iter()
        .map(|p| p.key.to_owned())
        .filter(|k| k == "instances.read" || keys.contains(k))
        .collect())
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    user_id: String,
    email: String,
    name: String,
    permissions: String,
    created_at: i64,
    updated_at: i64,
}

impl From<GrantRow> for Grant {
    fn from(r: GrantRow) -> Self {
        Self {
            user_id: r.user_id,
            email: r.email,
            name: r.name,
            permissions: serde_json::from_str(&r.permissions).unwrap_or_default(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const GRANT_COLUMNS: &str = "g.user_id, u.email, u.name, g.permissions, g.created_at, g.updated_at \
     FROM server_grants g JOIN users u ON u.id = g.user_id";

/// The grants on one server, by email.
///
/// # Errors
/// Database failures.
pub async fn list<'e>(db: impl AnyExecutor<'e>, instance_id: &str) -> AppResult<Vec<Grant>> {
    let rows = sqlx::query_as::<_, GrantRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} WHERE g.instance_id = $1 ORDER BY u.email"
    )))
    .bind(instance_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Grant::from).collect())
}

async fn one<'e>(
    db: impl AnyExecutor<'e>,
    instance_id: &str,
    user_id: &str,
) -> AppResult<Option<Grant>> {
    Ok(sqlx::query_as::<_, GrantRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} WHERE g.instance_id = $1 AND g.user_id = $2"
    )))
    .bind(instance_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?
    .map(Grant::from))
}

/// Gives `user_id` `keys` on `instance` (replacing a grant they had), making them a
/// scoped member of its organization if they are not a member. Runs in the caller's
/// transaction, which must hold the organization ([`limits::lock`]) when a member may
/// be added; the caller calls [`crate::readcache::changed`] after the commit.
///
/// # Errors
/// 409 `ALREADY_MEMBER` when the account is a full member; 402 `PLAN_LIMIT` when a new
/// member exceeds the plan; database failures.
pub async fn put(
    conn: &mut sqlx::AnyConnection,
    state: &AppState,
    instance: &Instance,
    user_id: &str,
    keys: &[String],
) -> AppResult<()> {
    let member: Option<(crate::db::row::Flag,)> =
        sqlx::query_as("SELECT scoped FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(&instance.org_id)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    match member {
        Some((scoped,)) if !scoped.0 => {
            return Err(AppError::coded(
                StatusCode::CONFLICT,
                "ALREADY_MEMBER",
                "this account is a member of the organization and sees every server; change its role or permissions instead",
            ));
        }
        Some(_) => {}
        None => {
            limits::check(
                &mut *conn,
                state,
                &instance.org_id,
                &[Ask::new(Limit::Members, 1)],
            )
            .await?;
            sqlx::query(
                "INSERT INTO org_members (org_id, user_id, role, created_at, scoped) \
                 VALUES ($1, $2, 'viewer', $3, 1)",
            )
            .bind(&instance.org_id)
            .bind(user_id)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        }
    }
    let now = now_ms();
    let keys = serde_json::to_string(keys).map_err(|e| AppError::Internal(e.into()))?;
    sqlx::query(
        "INSERT INTO server_grants (org_id, user_id, instance_id, permissions, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (user_id, instance_id) DO UPDATE SET permissions = $4, updated_at = $5",
    )
    .bind(&instance.org_id)
    .bind(user_id)
    .bind(&instance.id)
    .bind(&keys)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `GET /v1/instances/{id}/access`: who holds access to this server alone.
pub async fn list_access(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::MembersPermissions>,
) -> AppResult<AppJson<AccessList>> {
    Ok(AppJson(AccessList {
        data: list(&state.db.pool, &instance.id).await?,
        grantable: grantable_keys(),
    }))
}

/// `POST /v1/instances/{id}/access`: grants an existing account access to this server.
pub async fn grant(
    State(state): State<AppState>,
    Authorized {
        resource: instance,
        user,
        ..
    }: Authorized<Instance, perm::MembersPermissions>,
    AppJson(body): AppJson<NewGrant>,
) -> AppResult<Created<Grant>> {
    let keys = check_keys(&body.permissions)?;
    let email = body.email.trim();
    if email.is_empty() || email.len() > 254 {
        return Err(AppError::invalid_field("email", "give the account's email"));
    }
    let account = crate::users::store::find_auth_by_email(&state.db.pool, email)
        .await?
        .ok_or_else(|| {
            AppError::coded(
                StatusCode::NOT_FOUND,
                "USER_NOT_FOUND",
                "no account has this email; the person registers first (or invite them to the organization)",
            )
        })?;
    if account.user.id == user.user.id {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "ALREADY_MEMBER",
            "you are a member of the organization already",
        ));
    }
    let mut tx = limits::lock(&state, &instance.org_id).await?;
    put(&mut tx, &state, &instance, &account.user.id, &keys).await?;
    tx.commit().await?;
    crate::readcache::changed();
    let grant = one(&state.db.pool, &instance.id, &account.user.id)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("grant vanished")))?;
    Ok(Created(grant))
}

/// `PUT /v1/instances/{id}/access/{userId}`: replaces the keys of a grant.
pub async fn update(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::MembersPermissions>,
    AppPath((_, user_id)): AppPath<(String, String)>,
    AppJson(body): AppJson<GrantUpdate>,
) -> AppResult<AppJson<Grant>> {
    let keys = check_keys(&body.permissions)?;
    let now = now_ms();
    let text = serde_json::to_string(&keys).map_err(|e| AppError::Internal(e.into()))?;
    let done = sqlx::query(
        "UPDATE server_grants SET permissions = $1, updated_at = $2 \
         WHERE instance_id = $3 AND user_id = $4",
    )
    .bind(&text)
    .bind(now)
    .bind(&instance.id)
    .bind(&user_id)
    .execute(&state.db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found("grant"));
    }
    crate::readcache::changed();
    one(&state.db.pool, &instance.id, &user_id)
        .await?
        .map(AppJson)
        .ok_or_else(|| AppError::not_found("grant"))
}

/// `DELETE /v1/instances/{id}/access/{userId}`: removes a grant; the account's last one
/// gone, it leaves the organization.
pub async fn revoke(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::MembersPermissions>,
    AppPath((_, user_id)): AppPath<(String, String)>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.pool.begin().await?;
    let done = sqlx::query("DELETE FROM server_grants WHERE instance_id = $1 AND user_id = $2")
        .bind(&instance.id)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found("grant"));
    }
    sqlx::query(
        "DELETE FROM org_members WHERE org_id = $1 AND user_id = $2 AND scoped = 1 \
         AND NOT EXISTS (SELECT 1 FROM server_grants g WHERE g.org_id = $1 AND g.user_id = $2)",
    )
    .bind(&instance.org_id)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    crate::readcache::changed();
    Ok(StatusCode::NO_CONTENT)
}
