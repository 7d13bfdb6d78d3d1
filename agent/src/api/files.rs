//! Agent API: instance files.

use axum::Router;

use super::AgentState;

/// The files routes.
pub fn router() -> Router<AgentState> {
    Router::new()
}
