//! Platform-admin user and organization management.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::store::{self, User};
use super::{NewUser, create_user};
use crate::auth::extract::AdminUser;
use crate::auth::sessions;
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::orgs::store as org_store;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    /// Substring of email or name.
    q: Option<String>,
}

/// Users, newest first.
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(page): AppQuery<PageParams>,
    AppQuery(query): AppQuery<ListQuery>,
) -> AppResult<AppJson<Page<User>>> {
    let (limit, offset) = page.limit_offset()?;
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if search.is_some_and(|q| q.len() > 200) {
        return Err(AppError::Validation("q must be at most 200 bytes".into()));
    }
    let (users, total) = store::list(&state.db.pool, search, limit, offset).await?;
    Ok(AppJson(Page::new(users, page, total)))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CreateUser {
    email: String,
    password: String,
    name: Option<String>,
    #[serde(default)]
    is_admin: bool,
}

/// Creates a user (with their personal organization).
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppJson(body): AppJson<CreateUser>,
) -> AppResult<(StatusCode, AppJson<User>)> {
    let user = create_user(
        &state,
        NewUser {
            email: &body.email,
            name: body.name.as_deref(),
            password: &body.password,
            is_admin: body.is_admin,
            // An admin vouches for the address.
            email_verified: true,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, AppJson(user)))
}

/// One user.
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<User>> {
    store::find(&state.db.pool, &id)
        .await?
        .map(AppJson)
        .ok_or_else(|| AppError::not_found("user"))
}

/// Deletes a user, their sessions, tokens and the organizations only they belong to.
pub async fn delete(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(id): AppPath<String>,
) -> AppResult<StatusCode> {
    let user = store::find(&state.db.pool, &id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    if user.id == admin.user.id {
        return Err(AppError::Conflict(
            "you cannot delete your own account".into(),
        ));
    }
    let mut tx = state.db.begin_write().await?;
    let owned: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT m.org_id, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM org_members x WHERE x.org_id = m.org_id) AS members, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM org_members x WHERE x.org_id = m.org_id AND x.role = 'owner') AS owners \
         FROM org_members m WHERE m.user_id = $1 AND m.role = 'owner'",
    )
    .bind(&id)
    .fetch_all(&mut *tx)
    .await?;
    for (org_id, members, owners) in owned {
        if members == 1 {
            org_store::delete(&mut *tx, &org_id).await?;
        } else if owners == 1 {
            return Err(AppError::Conflict(format!(
                "the user is the last owner of organization {org_id}; transfer ownership first"
            )));
        }
    }
    // Their SSH certificates stay on record, revoked.
    crate::ssh::store::revoke_all_of(&mut *tx, &id, "the user was deleted").await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.auth_cache.invalidate_all();
    // Their memberships went with them.
    crate::readcache::changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn set_suspended(
    state: &AppState,
    admin: &AdminUser,
    id: &str,
    on: bool,
) -> AppResult<AppJson<User>> {
    if on && id == admin.0.user.id {
        return Err(AppError::Conflict(
            "you cannot suspend your own account".into(),
        ));
    }
    let mut tx = state.db.pool.begin().await?;
    if !store::set_suspended(&mut *tx, id, on).await? {
        return Err(AppError::not_found("user"));
    }
    if on {
        sessions::revoke_all(&mut *tx, id, None).await?;
        crate::ssh::store::revoke_all_of(&mut *tx, id, "the user was suspended").await?;
    }
    tx.commit().await?;
    state.auth_cache.invalidate_all();
    store::find(&state.db.pool, id)
        .await?
        .map(AppJson)
        .ok_or_else(|| AppError::not_found("user"))
}

/// Suspends a user: their sessions end and their tokens stop working at once.
pub async fn suspend(
    State(state): State<AppState>,
    admin: AdminUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<User>> {
    set_suspended(&state, &admin, &id, true).await
}

/// Lifts a suspension.
pub async fn unsuspend(
    State(state): State<AppState>,
    admin: AdminUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<User>> {
    set_suspended(&state, &admin, &id, false).await
}

/// Every organization.
pub async fn organizations(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<AppJson<Page<org_store::Org>>> {
    let (limit, offset) = page.limit_offset()?;
    let orgs = org_store::list_all(&state.db.pool, limit, offset).await?;
    let total: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM organizations")
        .fetch_one(&state.db.pool)
        .await?;
    Ok(AppJson(Page::new(orgs, page, total)))
}

/// An organization with its members, as the admin sees it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct OrgWithMembers {
    pub organization: org_store::Org,
    pub members: Vec<org_store::Member>,
}

/// One organization with its members.
pub async fn organization(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<OrgWithMembers>> {
    let org = org_store::find(&state.db.pool, &id)
        .await?
        .ok_or_else(|| AppError::not_found("organization"))?;
    let members = org_store::members(&state.db.pool, &id).await?;
    Ok(AppJson(OrgWithMembers {
        organization: org,
        members,
    }))
}
