//! Workload import, organizations and members, the account (password, MFA, API tokens, sessions) and admin pages.

use axum::Router;

use super::WebState;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
}
