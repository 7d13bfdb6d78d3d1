//! `POST /v1/auth/register`, governed by `auth.registration`. In `invite_only` mode an
//! account is created only together with the acceptance of a pending invite sent to
//! the same email (`invite_token`). In `open` mode anyone may register; the address is
//! then verified by a mailed link before the account can sign in (`verify_email`),
//! unless a matching invite came along, which proves the mailbox as well.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::verify_email;
use crate::config::Registration;
use crate::error::{AppError, AppJson, AppResult};
use crate::orgs::invites;
use crate::state::AppState;
use crate::users::store::User;
use crate::users::{NewUser, create_account};

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RegisterRequest {
    email: String,
    password: String,
    name: Option<String>,
    /// The token of an organization invite (required in `invite_only` mode).
    invite_token: Option<String>,
}

const INVITE_ONLY: &str = "registration is by invitation only: register with the invite_token of an invite sent to this email";

/// Creates an account and its personal organization.
pub async fn register(
    State(state): State<AppState>,
    AppJson(body): AppJson<RegisterRequest>,
) -> AppResult<(StatusCode, AppJson<User>)> {
    let registration = state.config.auth.registration;
    if registration == Registration::Closed {
        return Err(AppError::Forbidden("registration is closed".into()));
    }
    let invite = match body.invite_token.as_deref() {
        Some(token) => invites::find_pending(&state, token)
            .await?
            .filter(|invite| invites::email_matches(invite, &body.email)),
        None => None,
    };
    if registration == Registration::InviteOnly && invite.is_none() {
        return Err(AppError::Forbidden(INVITE_ONLY.into()));
    }
    let new = NewUser {
        email: &body.email,
        name: body.name.as_deref(),
        password: &body.password,
        is_admin: false,
        email_verified: invite.is_some(),
    };
    // Account, membership or verification link in one transaction; joining holds the
    // organization for its plan's members cap.
    let mut tx = match &invite {
        Some(invite) => crate::billing::limits::lock(&state, &invite.org_id).await?,
        None => state.db.pool.begin().await?,
    };
    let user = create_account(&mut tx, &state.config.auth, new).await?;
    let link = match &invite {
        Some(invite) => {
            if !invites::consume(&mut tx, &state, invite, &user.id).await? {
                return Err(AppError::Forbidden(INVITE_ONLY.into()));
            }
            None
        }
        None => Some(verify_email::issue(&mut tx, &user.id).await?),
    };
    tx.commit().await?;
    if let Some(token) = link {
        verify_email::mail_link(&state, &user.email, token);
    }
    Ok((StatusCode::CREATED, AppJson(user)))
}
