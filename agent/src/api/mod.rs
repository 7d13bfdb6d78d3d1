//! The agent API: an axum router the panel calls over the tunnel (HTTP/2). It is a plain
//! router, so it is tested without a panel.

mod backups;
mod containers;
mod events;
mod files;
mod instances;
mod inventory;
pub(crate) mod json;
pub mod metrics;
mod processes;
pub(crate) mod uploads;

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};

/// State of the agent API.
#[derive(Clone)]
pub struct AgentState {
    pub node_id: String,
    pub runtime: std::sync::Arc<crate::runtime::DockerRuntime>,
    pub sampler: std::sync::Arc<metrics::Sampler>,
    /// The instance manager: one per agent process, shared by every tunnel connection.
    pub instances: crate::instances::Manager,
    /// Backups of this node (`crate::backups`).
    pub backups: crate::backups::Backups,
    /// Locks of the tus uploads in progress (`uploads.rs`).
    pub(crate) uploads: uploads::Uploads,
    /// Git syncs running on this node (`crate::git`).
    pub git: crate::git::Syncs,
    /// SFTP logins waiting for the panel's answer (`crate::sftp`).
    pub sftp: crate::sftp::Gate,
}

impl AgentState {
    /// State for `node_id` around an existing instance manager.
    #[must_use]
    pub fn new(node_id: String, instances: crate::instances::Manager) -> Self {
        Self {
            node_id,
            runtime: std::sync::Arc::new(crate::runtime::DockerRuntime::local()),
            sampler: std::sync::Arc::default(),
            backups: crate::backups::Backups::new(&instances),
            uploads: uploads::Uploads::default(),
            git: crate::git::Syncs::default(),
            sftp: crate::sftp::Gate::default(),
            instances,
        }
    }
}

/// Every route of the agent API.
pub fn router(state: AgentState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/inventory", get(inventory::all))
        .route("/v1/inventory/system", get(inventory::system))
        .route("/v1/inventory/network", get(inventory::network))
        .route("/v1/inventory/disks", get(inventory::disks))
        .route("/v1/inventory/users", get(inventory::users))
        .route("/v1/inventory/processes", get(inventory::processes))
        .route("/v1/metrics", get(metrics::sample))
        .route("/v1/containers", get(containers::list))
        .route("/v1/containers/{id}/logs", get(containers::logs))
        .route(
            "/v1/containers/{id}/{action}",
            axum::routing::post(containers::power),
        )
        .route("/v1/processes/{pid}/kill", post(processes::kill))
        .merge(files::router())
        .merge(uploads::router())
        .merge(backups::router())
        .merge(crate::git::api::router())
        .route("/v1/events", get(events::states))
        .route("/v1/sftp/auth/{id}", post(crate::sftp::answer))
        .route("/v1/instances", get(instances::list))
        .route(
            "/v1/instances/{id}",
            get(instances::get)
                .put(instances::put)
                .delete(instances::delete),
        )
        .route("/v1/instances/{id}/install", post(instances::install))
        .route("/v1/instances/{id}/power", post(instances::power))
        .route("/v1/instances/{id}/command", post(instances::command))
        .route("/v1/instances/{id}/stats", get(instances::stats))
        .route(
            "/v1/instances/{id}/logs",
            get(instances::logs).delete(instances::clear_logs),
        )
        .route(
            "/v1/instances/{id}/logs/download",
            get(instances::download_logs),
        )
        .route(
            "/v1/instances/{id}/install-logs",
            get(instances::install_logs),
        )
        .route("/v1/instances/{id}/events", get(events::instance))
        .fallback(|| async {
            (
                http::StatusCode::NOT_FOUND,
                axum::Json(shardlyn_proto::ErrorBody::new(
                    "NOT_FOUND",
                    "no such agent route",
                )),
            )
        })
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<AgentState>,
) -> axum::Json<Value> {
    axum::Json(json!({
        "status": "ok",
        "node_id": state.node_id,
        "version": crate::VERSION,
        "protocol": shardlyn_proto::PROTOCOL_VERSION,
    }))
}

/// Serves the agent API over plain HTTP on `listener` (tests and local debugging; the
/// panel reaches it through the tunnel).
///
/// # Errors
/// The listener fails.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    state: AgentState,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}
