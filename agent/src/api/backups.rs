//! Agent API: instance backups.

use axum::Router;

use super::AgentState;

/// The backups routes.
pub fn router() -> Router<AgentState> {
    Router::new()
}
