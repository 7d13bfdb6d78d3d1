//! Platform settings (`/v1/settings`) and the SSH keys the panel provisions machines
//! with (`/v1/settings/ssh-keys`). Reading the settings needs a signed-in user; changing
//! them, and every SSH key route, needs a platform admin signed in with a session.

pub mod platform;
pub mod ssh_keys;
pub mod store;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::extract::{CurrentUser, SessionUser};
use crate::error::AppError;
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("settings")
        .get("/v1/settings", Access::User, "Get settings", platform::get)
        .put(
            "/v1/settings",
            Access::Session,
            "Update settings",
            platform::put,
        )
        .post(
            "/v1/settings/ssh-keys",
            Access::Session,
            "Add SSH key",
            ssh_keys::add,
        )
        .delete(
            "/v1/settings/ssh-keys/{name}",
            Access::Session,
            "Remove SSH key",
            ssh_keys::delete,
        )
        .post(
            "/v1/settings/ssh-keys/{name}/default",
            Access::Session,
            "Set default key",
            ssh_keys::set_default,
        )
}

/// A platform admin signed in with a session: who may change platform settings and
/// SSH keys. An extractor, so the check runs before the body is read (a non-admin gets
/// 403 whatever they send).
pub struct SettingsAdmin(pub CurrentUser);

impl FromRequestParts<AppState> for SettingsAdmin {
    type Rejection = AppError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let SessionUser(user) = SessionUser::from_request_parts(parts, state).await?;
        if !user.user.is_admin {
            return Err(AppError::Forbidden(
                "only platform admins can change platform settings".into(),
            ));
        }
        Ok(Self(user))
    }
}
