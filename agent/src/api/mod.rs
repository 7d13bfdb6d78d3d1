//! The agent API: an axum router the panel calls over the tunnel (HTTP/2). It is a plain
//! router, so it is tested without a panel.

mod containers;
mod inventory;
pub mod metrics;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

/// State of the agent API.
#[derive(Clone)]
pub struct AgentState {
    pub node_id: String,
    pub runtime: std::sync::Arc<crate::runtime::DockerRuntime>,
    pub sampler: std::sync::Arc<metrics::Sampler>,
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
