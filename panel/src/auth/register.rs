//! `POST /v1/auth/register`, governed by `auth.registration`. In `invite_only` mode an
//! account is created only together with the acceptance of a pending invite sent to
//! the same email (`invite_token`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::config::Registration;
use crate::error::{AppError, AppJson, AppResult};
use crate::orgs::invites;
use crate::state::AppState;
use crate::users::store::User;
use crate::users::{NewUser, create_account, create_user};

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
    let new = NewUser {
        email: &body.email,
        name: body.name.as_deref(),
        password: &body.password,
        is_admin: false,
    };
    let user = match state.config.auth.registration {
        Registration::Open => create_user(&state, new).await?,
        Registration::Closed => {
            return Err(AppError::Forbidden("registration is closed".into()));
        }
        Registration::InviteOnly => {
            let token = body.invite_token.as_deref().unwrap_or_default();
            let invite = match invites::find_pending(&state, token).await? {
                Some(invite) if invites::email_matches(&invite, &body.email) => invite,
                _ => return Err(AppError::Forbidden(INVITE_ONLY.into())),
            };
            // Account and membership in one transaction: neither exists without the other.
            let mut tx = state.db.pool.begin().await?;
            let user = create_account(&mut tx, &state.config.auth, new).await?;
            if !invites::consume(&mut tx, &invite, &user.id).await? {
                return Err(AppError::Forbidden(INVITE_ONLY.into()));
            }
            tx.commit().await?;
            user
        }
    };
    Ok((StatusCode::CREATED, AppJson(user)))
}
