//! Platform settings (`/v1/settings`) and SSH keys for provisioning.

use crate::routes::Routes;

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("settings")
}
