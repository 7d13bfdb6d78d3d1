//! Instance pages beyond the console: the create form, the file browser (tus uploads), backups, schedules and settings.

use axum::Router;

use super::WebState;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
}
