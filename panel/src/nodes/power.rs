//! `/v1/nodes/{id}/power/*`: a provisioned node's server started, stopped, rebooted and
//! its status read, through the provider's API (Terraform does not manage power).
//! Reading needs `nodes.read`, acting `nodes.power`; a node the panel did not provision
//! answers 409 `not_provisioned`, another organization's node 404.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::store::Node;
use crate::authz::{Authorized, perm};
use crate::cloud::hetzner::Action;
use crate::cloud::{self, Cloud, Feature};
use crate::error::{AppJson, AppQuery, AppResult};
use crate::respond::Accepted;
use crate::state::AppState;

/// A provisioned node's server and its power state.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerStatus {
    /// As the provider says: `running`, `off`, `starting`, `stopping`, `initializing`,
    /// `rebuilding`, `migrating`, `deleting` or `unknown`.
    pub status: String,
    /// `hetzner`.
    pub provider: String,
    /// The provider's id of the server.
    pub server_id: String,
    /// The provision request that made the node (`/v1/provision/{id}`: its runs, resize
    /// and destroy).
    pub provision_request_id: String,
}

/// A power action the provider started.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerAction {
    /// `hetzner`.
    pub provider: String,
    pub server_id: String,
    /// The provider's action (`start_server`, `shutdown_server`...), `running` until done.
    pub action: Action,
}

/// `?force=true` of `stop`: cut the power instead of asking the system to shut down.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct StopQuery {
    #[serde(default)]
    pub force: bool,
}

/// `GET /v1/nodes/{id}/power/status`.
pub async fn status(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesRead>,
) -> AppResult<AppJson<PowerStatus>> {
    let p = cloud::require_provisioned(&state.db.pool, &node.id).await?;
    let Cloud::Hetzner { api, server_id } = Cloud::of(&state, &p, Feature::Power).await?;
    let status = api.server_status(server_id).await?;
    Ok(AppJson(PowerStatus {
        status,
        provider: p.provider,
        server_id: server_id.to_string(),
        provision_request_id: p.id,
    }))
}

async fn act(state: &AppState, node: &Node, action: &str) -> AppResult<Accepted<PowerAction>> {
    let p = cloud::require_provisioned(&state.db.pool, &node.id).await?;
    let Cloud::Hetzner { api, server_id } = Cloud::of(state, &p, Feature::Power).await?;
    let started = api.server_action(server_id, action).await?;
    tracing::info!(node.id = %node.id, server.id = server_id, action, "node power action");
    Ok(Accepted(PowerAction {
        provider: p.provider,
        server_id: server_id.to_string(),
        action: started,
    }))
}

/// `POST /v1/nodes/{id}/power/start`: 202 with the provider's action.
pub async fn start(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesPower>,
) -> AppResult<Accepted<PowerAction>> {
    act(&state, &node, "poweron").await
}

/// `POST /v1/nodes/{id}/power/stop`: an ACPI shutdown (`?force=true`: power off).
pub async fn stop(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesPower>,
    AppQuery(q): AppQuery<StopQuery>,
) -> AppResult<Accepted<PowerAction>> {
    act(&state, &node, if q.force { "poweroff" } else { "shutdown" }).await
}

/// `POST /v1/nodes/{id}/power/reboot`.
pub async fn reboot(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesPower>,
) -> AppResult<Accepted<PowerAction>> {
    act(&state, &node, "reboot").await
}
