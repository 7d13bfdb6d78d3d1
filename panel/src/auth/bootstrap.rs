//! First run: while no user exists, `POST /v1/auth/bootstrap` creates the first platform
//! admin. A row in `system_state` makes it happen once even under concurrent requests.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::ClientMeta;
use super::sessions::{self, TokenPair};
use crate::db::now_ms;
use crate::error::{AppError, AppJson, AppResult};
use crate::state::AppState;
use crate::users::store::{self as users, User};
use crate::users::{NewUser, create_account};

/// Whether the platform still needs its first admin.
pub async fn status(State(state): State<AppState>) -> AppResult<AppJson<BootstrapStatus>> {
    let needed = users::count(&state.db.pool).await? == 0;
    Ok(AppJson(BootstrapStatus {
        needs_bootstrap: needed,
    }))
}

/// Whether the first admin is still to be created.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BootstrapStatus {
    pub needs_bootstrap: bool,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct BootstrapRequest {
    email: String,
    password: String,
    name: Option<String>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct BootstrapResponse {
    pub user: User,
    #[serde(flatten)]
    pub tokens: TokenPair,
}

/// Creates the first admin and logs them in.
pub async fn bootstrap(
    State(state): State<AppState>,
    ClientMeta(client): ClientMeta,
    AppJson(body): AppJson<BootstrapRequest>,
) -> AppResult<(StatusCode, AppJson<BootstrapResponse>)> {
    let user =
        create_first_admin(&state, &body.email, &body.password, body.name.as_deref()).await?;
    let tokens = sessions::start(&state, &user.id, &client).await?;
    Ok((
        StatusCode::CREATED,
        AppJson(BootstrapResponse { user, tokens }),
    ))
}

/// Creates the first admin, once. Also used by `shardlyn admin create` on an empty panel.
///
/// # Errors
/// 409 once any user exists; 400 for invalid input.
pub async fn create_first_admin(
    state: &AppState,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> AppResult<User> {
    let already = || AppError::Conflict("the platform is already set up".into());
    if users::count(&state.db.pool).await? > 0 {
        return Err(already());
    }
    let mut tx = state.db.pool.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO system_state (key, value) VALUES ('bootstrapped_at', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(now_ms().to_string())
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() != 1 {
        return Err(already());
    }
    let user = create_account(
        &mut tx,
        &state.config.auth,
        NewUser {
            email,
            name,
            password,
            is_admin: true,
            email_verified: true,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user.id = %user.id, "bootstrapped the first admin");
    Ok(user)
}
