//! The caller's own account: profile, password, sessions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::store::{self, User};
use crate::auth::crypto::{check_password_policy, hash_password, verify_password};
use crate::auth::extract::{CurrentUser, SessionUser};
use crate::auth::sessions::{self, SessionView};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::state::AppState;

/// The caller.
pub async fn get(user: CurrentUser) -> AppJson<User> {
    AppJson(user.user)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the password and ends every other session.
pub async fn change_password(
    State(state): State<AppState>,
    SessionUser(user): SessionUser,
    AppJson(body): AppJson<PasswordChange>,
) -> AppResult<StatusCode> {
    check_password_policy(&body.new_password, state.config.auth.password_min_length)?;
    let account = store::find_auth_by_id(&state.db.pool, &user.user.id)
        .await?
        .ok_or_else(|| AppError::unauthorized("account no longer exists"))?;
    if !verify_password(body.current_password, Some(account.password_hash)).await {
        return Err(AppError::Validation("current password is wrong".into()));
    }
    let hash = hash_password(body.new_password).await?;
    let mut tx = state.db.pool.begin().await?;
    store::set_password(&mut *tx, &user.user.id, &hash).await?;
    sessions::revoke_all(&mut *tx, &user.user.id, user.session_id()).await?;
    tx.commit().await?;
    state.auth_cache.invalidate_all();
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's live sessions.
pub async fn sessions(
    State(state): State<AppState>,
    SessionUser(user): SessionUser,
) -> AppResult<AppJson<Vec<SessionView>>> {
    Ok(AppJson(
        sessions::list_active(&state.db.pool, &user.user.id, user.session_id()).await?,
    ))
}

/// Ends one of the caller's sessions.
pub async fn revoke_session(
    State(state): State<AppState>,
    SessionUser(user): SessionUser,
    AppPath(id): AppPath<String>,
) -> AppResult<StatusCode> {
    let owned = sessions::list_active(&state.db.pool, &user.user.id, None)
        .await?
        .iter()
        .any(|s| s.id == id);
    if !owned {
        return Err(AppError::not_found("session"));
    }
    sessions::revoke(&state.db.pool, &id).await?;
    state.auth_cache.invalidate_all();
    Ok(StatusCode::NO_CONTENT)
}
