//! Platform admin: metrics dashboard and log settings.

use crate::routes::Routes;

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("admin")
}
