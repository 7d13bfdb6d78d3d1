//! Support: messages to the support address and the HelpScout signature.

use crate::routes::Routes;

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("support")
}
