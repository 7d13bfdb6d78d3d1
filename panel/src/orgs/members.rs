//! Organization members: list, remove (or leave), change role, read permissions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::permissions::{Role, authorize, load_membership};
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

#[derive(Deserialize)]
pub struct RoleUpdate {
    role: String,
}

/// Changes a member's role.
pub async fn update_role(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath((org_id, member_id)): AppPath<(String, String)>,
    AppJson(body): AppJson<RoleUpdate>,
) -> AppResult<AppJson<Value>> {
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
    Ok(AppJson(
        json!({"user_id": member_id, "role": new_role.as_str()}),
    ))
}

/// A member's role, permission overrides and effective permission keys.
pub async fn permissions(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath((org_id, member_id)): AppPath<(String, String)>,
) -> AppResult<AppJson<Value>> {
    let own = member_id == user.user.id;
    authorize(
        &state,
        &user,
        &org_id,
        if own { "org.read" } else { "members.read" },
    )
    .await?;
    let membership = load_membership(&state, &org_id, &member_id)
        .await?
        .ok_or_else(|| AppError::not_found("member"))?;
    let overrides: Vec<Value> = membership
        .overrides()
        .iter()
        .map(|(key, allowed)| json!({"key": key, "allowed": allowed}))
        .collect();
    Ok(AppJson(json!({
        "user_id": member_id,
        "role": membership.role.as_str(),
        "overrides": overrides,
        "permissions": membership.effective(),
    })))
}
