//! The files API.

use crate::routes::Routes;

/// The files routes.
pub fn router() -> Routes {
    Routes::new("files")
}
