//! Git deploy per instance: configuration, sync through the agent, status and history.

use crate::routes::Routes;

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("git")
}
