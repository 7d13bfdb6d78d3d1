//! The uploads API.

use crate::routes::Routes;

/// The uploads routes.
pub fn router() -> Routes {
    Routes::new("uploads")
}
