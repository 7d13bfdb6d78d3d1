//! What runs through the agent: power, stats, logs, console WebSockets, and keeping the
//! agent's specs in step with the panel's desired state.

pub mod sync;

use crate::routes::Routes;

/// Power, stats, logs and console routes.
pub fn router() -> Routes {
    Routes::new("instances")
}
