//! The webhooks API.

use crate::routes::Routes;

/// The webhooks routes.
pub fn router() -> Routes {
    Routes::new("webhooks")
}
