//! Agent API: instance uploads.

use axum::Router;

use super::AgentState;

/// The uploads routes.
pub fn router() -> Router<AgentState> {
    Router::new()
}
