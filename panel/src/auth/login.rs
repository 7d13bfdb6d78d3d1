//! `POST /v1/auth/login`, `/v1/auth/refresh` and `/v1/auth/logout`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::crypto::{hash_password, is_bcrypt, normalize_email, verify_password};
use super::extract::{ClientMeta, SessionUser};
use super::lockout;
use super::mfa::{self, MfaRequired};
use super::sessions::{self, TokenPair};
use super::verify_email;
use crate::audit::AuditSlot;
use crate::error::{AppError, AppJson, AppResult};
use crate::state::AppState;
use crate::users::store::{self as users, UserAuthRow};

#[derive(Deserialize, schemars::JsonSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// The login answer: the token pair, or (MFA enabled) a challenge and no tokens.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenPair),
    Mfa(MfaRequired),
}

/// Checks credentials and starts a session, or for a user with MFA issues a challenge
/// that `/v1/auth/mfa/challenge` completes. The right password of an account whose
/// address is not verified yet answers 403 `EMAIL_NOT_VERIFIED`.
pub async fn login(
    State(state): State<AppState>,
    ClientMeta(client): ClientMeta,
    audit: Option<Extension<AuditSlot>>,
    AppJson(body): AppJson<LoginRequest>,
) -> AppResult<AppJson<LoginResponse>> {
    let Ok(email) = normalize_email(&body.email) else {
        return Err(AppError::InvalidCredentials);
    };
    if body.password.len() > 1024 {
        return Err(AppError::InvalidCredentials);
    }
    let account = users::find_auth_by_email(&state.db.pool, &email).await?;
    if let Some(account) = &account
        && let Some(retry_after) = lockout::remaining_secs(account.locked_until)
    {
        return Err(AppError::AccountLocked { retry_after });
    }
    let ok = verify_password(
        body.password.clone(),
        account.as_ref().map(|a| a.password_hash.clone()),
    )
    .await;
    let Some(account) = account else {
        return Err(AppError::InvalidCredentials);
    };
    if let Some(Extension(slot)) = &audit {
        slot.set_actor(&account.user.id, &account.user.email);
    }
    if !ok {
        lockout::record_failure(&state.db.pool, &state.config.auth, &account.user.id).await?;
        return Err(AppError::InvalidCredentials);
    }
    upgrade_bcrypt(&state, &account, body.password).await?;
    if account.user.suspended {
        return Err(AppError::Forbidden("account suspended".into()));
    }
    if !account.email_verified {
        return Err(verify_email::not_verified(
            "verify your email address first: open the link mailed to it at registration, \
             or ask for a new one with POST /v1/auth/verify-email/resend",
        ));
    }
    lockout::clear(&state.db.pool, &account.user.id).await?;
    if account.user.mfa_enabled {
        if let Some(Extension(slot)) = &audit {
            slot.set_action("auth.login.mfa_challenge", Some(&account.user.id));
        }
        return Ok(AppJson(LoginResponse::Mfa(
            mfa::issue_challenge(&state, &account.user.id).await?,
        )));
    }
    if let Some(Extension(slot)) = &audit {
        slot.set_action("auth.login", Some(&account.user.id));
    }
    Ok(AppJson(LoginResponse::Tokens(
        sessions::start(&state, &account.user.id, &client).await?,
    )))
}

/// After the right password: an account still on a bcrypt hash carried over from another
/// panel (`pterodactyl::users`) gets it re-hashed with argon2id, so bcrypt checks it once.
/// Conditional on the old hash (a password changed meanwhile stays); sessions stay too,
/// since the password is the same.
///
/// # Errors
/// Database failures.
pub(crate) async fn upgrade_bcrypt(
    state: &AppState,
    account: &UserAuthRow,
    password: String,
) -> AppResult<()> {
    if !is_bcrypt(&account.password_hash) {
        return Ok(());
    }
    let hash = hash_password(password).await?;
    users::upgrade_password_hash(
        &state.db.pool,
        &account.user.id,
        &account.password_hash,
        &hash,
    )
    .await?;
    Ok(())
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Rotates a refresh token.
pub async fn refresh(
    State(state): State<AppState>,
    AppJson(body): AppJson<RefreshRequest>,
) -> AppResult<AppJson<TokenPair>> {
    Ok(AppJson(
        sessions::rotate(&state, &body.refresh_token).await?,
    ))
}

/// Revokes the caller's session: its refresh token family and its access tokens.
pub async fn logout(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
) -> AppResult<StatusCode> {
    if let Some(sid) = current.session_id() {
        sessions::revoke(&state.db.pool, sid).await?;
        state.auth_cache.invalidate_all();
    }
    Ok(StatusCode::NO_CONTENT)
}
