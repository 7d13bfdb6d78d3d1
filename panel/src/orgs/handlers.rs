//! Organization CRUD and the permission list.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::permissions::{PERMISSIONS, Role, authorize};
use super::{slug_for, store, validate_name};
use crate::auth::extract::CurrentUser;
use crate::db::new_id;
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::state::AppState;

/// The caller's organizations with their role in each.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<AppJson<Vec<store::OrgWithRole>>> {
    Ok(AppJson(
        store::list_for_user(&state.db.pool, &user.user.id).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CreateOrg {
    name: String,
}

/// Creates an organization owned by the caller.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<CreateOrg>,
) -> AppResult<(StatusCode, AppJson<store::OrgWithRole>)> {
    let name = validate_name(&body.name)?;
    let mut tx = state.db.pool.begin().await?;
    let org = store::insert(
        &mut *tx,
        &new_id(),
        &name,
        &slug_for(&name),
        false,
        &user.user.id,
    )
    .await?;
    store::upsert_member(&mut *tx, &org.id, &user.user.id, Role::Owner.as_str()).await?;
    tx.commit().await?;
    crate::readcache::changed();
    Ok((
        StatusCode::CREATED,
        AppJson(store::OrgWithRole {
            org,
            role: Role::Owner.as_str().into(),
        }),
    ))
}

/// One organization the caller belongs to.
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(org_id): AppPath<String>,
) -> AppResult<AppJson<store::OrgWithRole>> {
    authorize(&state, &user, &org_id, "org.read").await?;
    store::find_for_member(&state.db.pool, &org_id, &user.user.id)
        .await?
        .map(AppJson)
        .ok_or_else(|| AppError::not_found("organization"))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct UpdateOrg {
    name: Option<String>,
    /// Require MFA of every member (the caller must have MFA on).
    require_mfa: Option<bool>,
}

/// Renames an organization.
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(org_id): AppPath<String>,
    AppJson(body): AppJson<UpdateOrg>,
) -> AppResult<AppJson<store::OrgWithRole>> {
    authorize(&state, &user, &org_id, "org.update").await?;
    if body.name.is_none() && body.require_mfa.is_none() {
        return Err(AppError::Validation("give name and/or require_mfa".into()));
    }
    let name = body.name.as_deref().map(validate_name).transpose()?;
    if body.require_mfa == Some(true) && !user.user.mfa_enabled {
        return Err(AppError::Validation(
            "enable MFA on your own account before requiring it of the organization".into(),
        ));
    }
    if let Some(name) = name {
        store::update_name(&state.db.pool, &org_id, &name).await?;
    }
    if let Some(on) = body.require_mfa {
        store::set_require_mfa(&state.db.pool, &org_id, on).await?;
    }
    store::find_for_member(&state.db.pool, &org_id, &user.user.id)
        .await?
        .map(AppJson)
        .ok_or_else(|| AppError::not_found("organization"))
}

/// Deletes an organization; a personal organization stays as long as its user.
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(org_id): AppPath<String>,
) -> AppResult<StatusCode> {
    authorize(&state, &user, &org_id, "org.delete").await?;
    let org = store::find_for_member(&state.db.pool, &org_id, &user.user.id)
        .await?
        .ok_or_else(|| AppError::not_found("organization"))?;
    if org.org.personal {
        return Err(AppError::Conflict(
            "a personal organization cannot be deleted".into(),
        ));
    }
    store::delete(&state.db.pool, &org_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A permission key and the roles holding it by default.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PermissionInfo {
    pub key: String,
    pub description: String,
    pub roles: Vec<String>,
}

/// The roles, highest first, and every permission key.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PermissionCatalog {
    pub roles: Vec<String>,
    pub permissions: Vec<PermissionInfo>,
}

/// Every permission key, with the roles that hold it by default.
pub async fn permission_list(_user: CurrentUser) -> AppJson<PermissionCatalog> {
    let permissions = PERMISSIONS
        .iter()
        .map(|p| PermissionInfo {
            key: p.key.to_string(),
            description: p.description.to_string(),
            roles: Role::ALL
                .into_iter()
                .filter(|r| *r <= p.min_role)
                .map(|r| r.as_str().to_string())
                .collect(),
        })
        .collect();
    AppJson(PermissionCatalog {
        roles: Role::ALL.map(|r| r.as_str().to_string()).to_vec(),
        permissions,
    })
}
