//! Platform settings (`/v1/settings`) and the SSH keys the panel provisions machines
//! with (`/v1/settings/ssh-keys`). Reading the settings needs a signed-in user; changing
//! them, and every SSH key route, needs a platform admin signed in with a session.

pub mod platform;
pub mod ssh_keys;
pub mod store;

use crate::routes::{Access, Routes};

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("settings")
        .get("/v1/settings", Access::User, "Get settings", platform::get)
        .put(
            "/v1/settings",
            Access::SessionAdmin,
            "Update settings",
            platform::put,
        )
        .post(
            "/v1/settings/ssh-keys",
            Access::SessionAdmin,
            "Add SSH key",
            ssh_keys::add,
        )
        .delete(
            "/v1/settings/ssh-keys/{name}",
            Access::SessionAdmin,
            "Remove SSH key",
            ssh_keys::delete,
        )
        .post(
            "/v1/settings/ssh-keys/{name}/default",
            Access::SessionAdmin,
            "Set default key",
            ssh_keys::set_default,
        )
}
