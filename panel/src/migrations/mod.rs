//! Moving servers between nodes: `POST /v1/instances/{id}/migrate` (an addition to the
//! reference), `POST /v1/nodes/{id}/migrate` (many at once, in waves: `bulk.rs`, which
//! the drain uses too), `GET /v1/migrations`, `GET /v1/migrations/{id}` and
//! `POST /v1/migrations/{id}/cancel`. A move is a row of `migrations` (`store.rs`) driven
//! by a task on the replica that accepted it (`runner.rs`); the files travel from the
//! source agent to the target agent through both tunnels and this panel, never touching
//! its disk (`shardlyn_proto::transfer`).

pub mod bulk;
mod handlers;
mod ports;
pub mod runner;
pub mod store;
mod view;

use axum::http::StatusCode;

pub use handlers::wave as handlers_wave;
pub use view::{MigrationList, MigrationView};

use crate::error::{AppError, AppResult};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The migrations routes.
#[must_use]
pub fn router() -> Routes {
    Routes::new("migrations")
        .post(
            "/v1/instances/{id}/migrate",
            Access::User,
            "Move a server to another node",
            handlers::migrate,
        )
        .post(
            "/v1/nodes/{id}/migrate",
            Access::User,
            "Move a node's servers to other nodes",
            handlers::migrate_node,
        )
        .get(
            "/v1/migrations",
            Access::User,
            "List migrations",
            handlers::list,
        )
        .get(
            "/v1/migrations/{id}",
            Access::User,
            "Get migration",
            handlers::get,
        )
        .post(
            "/v1/migrations/{id}/cancel",
            Access::User,
            "Cancel migration",
            handlers::cancel,
        )
}

/// Refuses what would disturb a move past its first copy (power actions): 409
/// `INSTANCE_MIGRATING`.
///
/// # Errors
/// As said; database failures.
pub async fn guard(state: &AppState, instance_id: &str) -> AppResult<()> {
    match store::open_for(&state.db.pool, instance_id).await? {
        Some(m) if m.state == "final_sync" || m.state == "switching" => Err(AppError::coded(
            StatusCode::CONFLICT,
            "INSTANCE_MIGRATING",
            "the server is being moved to another node: wait until the move ends",
        )),
        _ => Ok(()),
    }
}

impl crate::authz::OrgScoped for store::Migration {
    const NAME: &'static str = "migration";

    async fn find(state: &AppState, id: &str) -> AppResult<Option<Self>> {
        Ok(store::find(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}
