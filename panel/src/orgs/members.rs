//! Organization members: list, remove (or leave), change role, read and override
//! permissions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::permissions::{Membership, Role, authorize, find, load_membership};
use super::store;
use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::state::AppState;

/// Members with their roles.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(org_id): AppPath<String>,
) -> AppResult<AppJson<Vec<store::Member>>> {
    authorize(&state, &user, &org_id, "members.read").await?;
    Ok(AppJson(store::members(&state.db.pool, &org_id).await?))
}

async fn target_role(state: &AppState, org_id: &str, user_id: &str) -> AppResult<Role> {
    let role = store::member_role(&state.db.pool, org_id, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("member"))?;
    Role::parse(&role)
}

async fn ensure_not_last_owner(state: &AppState, org_id: &str) -> AppResult<()> {
    if store::owner_count(&state.db.pool, org_id).await? <= 1 {
        return Err(AppError::Conflict(
            "the last owner cannot leave or be demoted; make someone else owner first".into(),
        ));
    }
    Ok(())
}

/// Removes a member; a member may also remove themself (leave).
pub async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath((org_id, member_id)): AppPath<(String, String)>,
) -> AppResult<StatusCode> {
    let leaving = member_id == user.user.id;
    let me = authorize(
        &state,
        &user,
        &org_id,
        if leaving {
            "org.read"
        } else {
            "members.remove"
        },
    )
    .await?;
    let target = target_role(&state, &org_id, &member_id).await?;
    if target == Role::Owner {
        if !leaving && me.role != Role::Owner {
            return Err(AppError::Forbidden(
                "only an owner can remove an owner".into(),
            ));
        }
        ensure_not_last_owner(&state, &org_id).await?;
    }
    store::remove_member(&state.db.pool, &org_id, &member_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new role for a member.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoleUpdate {
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

/// A member's role after a change.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberRole {
    pub user_id: String,
    pub role: String,
}

/// One permission granted or denied to a member over their role.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Override {
    pub key: String,
    pub allowed: bool,
}

/// A member's role, overrides and the keys they hold in effect.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberPermissions {
    pub user_id: String,
    pub role: String,
    pub overrides: Vec<Override>,
    /// Every permission key the member holds.
    pub permissions: Vec<String>,
}

/// Changes a member's role.
pub async fn update_role(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath((org_id, member_id)): AppPath<(String, String)>,
    AppJson(body): AppJson<RoleUpdate>,
) -> AppResult<AppJson<MemberRole>> {
    let me = authorize(&state, &user, &org_id, "members.role").await?;
    let new_role = Role::parse(&body.role)?;
    let current = target_role(&state, &org_id, &member_id).await?;
    if (new_role == Role::Owner || current == Role::Owner) && me.role != Role::Owner {
        return Err(AppError::Forbidden(
            "only an owner can grant or take away the owner role".into(),
        ));
    }
    if current == Role::Owner && new_role != Role::Owner {
        ensure_not_last_owner(&state, &org_id).await?;
    }
    store::upsert_member(&state.db.pool, &org_id, &member_id, new_role.as_str()).await?;
    store::drop_grants(&state.db.pool, &org_id, &member_id).await?;
    Ok(AppJson(MemberRole {
        user_id: member_id,
        role: new_role.as_str().to_string(),
    }))
}

/// A member's role, permission overrides and effective permission keys.
pub async fn permissions(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath((org_id, member_id)): AppPath<(String, String)>,
) -> AppResult<AppJson<MemberPermissions>> {
    let own = member_id == user.user.id;
    authorize(
        &state,
        &user,
        &org_id,
        if own { "org.read" } else { "members.read" },
    )
    .await?;
    Ok(AppJson(
        permissions_view(&state, &org_id, &member_id).await?,
    ))
}

/// The body of the permissions routes: role, overrides and effective keys.
async fn permissions_view(
    state: &AppState,
    org_id: &str,
    member_id: &str,
) -> AppResult<MemberPermissions> {
    let membership = load_membership(state, org_id, member_id)
        .await?
        .ok_or_else(|| AppError::not_found("member"))?;
    Ok(MemberPermissions {
        user_id: member_id.to_string(),
        role: membership.role.as_str().to_string(),
        overrides: membership
            .overrides()
            .iter()
            .map(|(key, allowed)| Override {
                key: key.clone(),
                allowed: *allowed,
            })
            .collect(),
        permissions: membership
            .effective()
            .into_iter()
            .map(str::to_string)
            .collect(),
    })
}

/// Grants (`allowed: true`) or denies one key.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct PermissionOverride {
    // Optional at parse time so a caller outside the organization gets its 404 first.
    pub key: Option<String>,
    pub allowed: Option<bool>,
}

/// Checks that `me` may change `member_id`'s overrides: the target must be a member and
/// only an owner touches an owner.
async fn check_override_target(
    state: &AppState,
    me: &Membership,
    org_id: &str,
    member_id: &str,
) -> AppResult<()> {
    let target = target_role(state, org_id, member_id).await?;
    // Otherwise an admin could lift a restriction an owner put on them.
    if member_id == me.user_id && me.role != Role::Owner {
        return Err(AppError::Forbidden(
            "you cannot change your own permissions".into(),
        ));
    }
    if target == Role::Owner && me.role != Role::Owner {
        return Err(AppError::Forbidden(
            "only an owner can change an owner's permissions".into(),
        ));
    }
    Ok(())
}

/// Grants or denies one permission key to a member, overriding their role.
pub async fn set_permission(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath((org_id, member_id)): AppPath<(String, String)>,
    AppJson(body): AppJson<PermissionOverride>,
) -> AppResult<AppJson<MemberPermissions>> {
    let me = authorize(&state, &user, &org_id, "members.permissions").await?;
    let (Some(key), Some(allowed)) = (body.key, body.allowed) else {
        return Err(AppError::Validation(
            "key (a permission key) and allowed (true or false) are required".into(),
        ));
    };
    let Some(def) = find(&key) else {
        return Err(AppError::invalid_field(
            "key",
            format!("unknown permission key {key}; see GET /v1/permissions"),
        ));
    };
    check_override_target(&state, &me, &org_id, &member_id).await?;
    if allowed && !me.can(def.key) {
        return Err(AppError::Forbidden(format!(
            "you cannot grant {} because you do not hold it",
            def.key
        )));
    }
    store::set_override(&state.db.pool, &org_id, &member_id, def.key, allowed).await?;
    Ok(AppJson(
        permissions_view(&state, &org_id, &member_id).await?,
    ))
}

/// Removes a member's override of one key (the role's default applies again).
pub async fn remove_permission(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath((org_id, member_id, key)): AppPath<(String, String, String)>,
) -> AppResult<StatusCode> {
    let me = authorize(&state, &user, &org_id, "members.permissions").await?;
    check_override_target(&state, &me, &org_id, &member_id).await?;
    if store::remove_override(&state.db.pool, &org_id, &member_id, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("permission override"))
    }
}
