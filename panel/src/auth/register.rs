//! `POST /v1/auth/register`, governed by `auth.registration`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::config::Registration;
use crate::error::{AppError, AppJson, AppResult};
use crate::state::AppState;
use crate::users::store::User;
use crate::users::{NewUser, create_user};

#[derive(Deserialize)]
pub struct RegisterRequest {
    email: String,
    password: String,
    name: Option<String>,
}

/// Creates an account and its personal organization.
pub async fn register(
    State(state): State<AppState>,
    AppJson(body): AppJson<RegisterRequest>,
) -> AppResult<(StatusCode, AppJson<User>)> {
    match state.config.auth.registration {
        Registration::Open => {}
        Registration::Closed => {
            return Err(AppError::Forbidden("registration is closed".into()));
        }
        Registration::InviteOnly => {
            return Err(AppError::Forbidden(
                "registration is by invitation only: accept an organization invite instead".into(),
            ));
        }
    }
    let user = create_user(
        &state,
        NewUser {
            email: &body.email,
            name: body.name.as_deref(),
            password: &body.password,
            is_admin: false,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, AppJson(user)))
}
