//! The backups API.

use crate::routes::Routes;

/// The backups routes.
pub fn router() -> Routes {
    Routes::new("backups")
}
