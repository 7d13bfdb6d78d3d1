//! A node's inventory and Docker containers, read live from its agent through the tunnel
//! (`Tunnels::route`: 409 `NODE_OFFLINE` when the agent is not connected). The bodies are
//! the agent's own `shardlyn_proto::inventory` types, passed on as they are.

use axum::extract::State;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shardlyn_proto::agent_api::{self as api, Endpoint};
use shardlyn_proto::inventory::{
    ContainerInfo, ContainerLogs, DiskInfo, Inventory, NetworkInterface, ProcessInfo, SystemInfo,
    SystemUser,
};

use super::handlers::node_scope;
use super::store::Node;
use crate::authz::{Authorized, perm};
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::respond::NoContent;
use crate::state::AppState;

/// `E` on the agent of `node` (which the handler's [`crate::authz::Authorized`] loaded).
async fn agent_call<E: Endpoint<Request = ()>>(
    state: &AppState,
    node: &Node,
    params: &E::Params<'_>,
    query: &E::Query,
) -> AppResult<E::Response>
where
    E::Query: Serialize,
    E::Response: DeserializeOwned,
{
    state
        .tunnels
        .route(&node.id)
        .await?
        .request::<E>(params, query, &())
        .await
}

/// Docker ids and names as the agent accepts them; checked here too so nothing odd is
/// spliced into the agent path.
fn container_id(id: &str) -> AppResult<&str> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    ok.then_some(id)
        .ok_or_else(|| AppError::Validation("invalid container id".into()))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct LogsQuery {
    tail: Option<u32>,
}

/// The last lines of a container's output.
pub async fn container_logs(
    State(state): State<AppState>,
    Authorized {
        resource: node,
        user,
        ..
    }: Authorized<Node, perm::NodesRead>,
    AppPath((_, container)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<LogsQuery>,
) -> AppResult<AppJson<ContainerLogs>> {
    let query = api::ContainerLogsQuery {
        tail: Some(q.tail.unwrap_or(100).min(10_000)),
        all: node_scope(&user).all,
    };
    let container = container_id(&container)?;
    let logs = agent_call::<api::ContainerLogsRoute>(&state, &node, &container, &query).await?;
    Ok(AppJson(logs))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct PowerQuery {
    timeout: Option<u32>,
    signal: Option<String>,
}

async fn container_power(
    state: &AppState,
    Authorized {
        resource: node,
        user,
        ..
    }: Authorized<Node, perm::NodesContainers>,
    container: &str,
    action: &str,
    q: &PowerQuery,
) -> AppResult<NoContent> {
    let container = container_id(container)?;
    if let Some(signal) = &q.signal
        && (signal.is_empty()
            || signal.len() > 16
            || !signal.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(AppError::Validation(
            "signal must be a name like SIGTERM or a number".into(),
        ));
    }
    let query = api::ContainerPowerQuery {
        timeout: Some(q.timeout.unwrap_or(10).min(600)),
        signal: q.signal.clone(),
        all: node_scope(&user).all,
    };
    agent_call::<api::ContainerPower>(state, &node, &(container, action), &query).await?;
    Ok(NoContent)
}

macro_rules! container_action {
    ($name:ident, $action:literal) => {
        /// A power action on a container of the node.
        pub async fn $name(
            State(state): State<AppState>,
            auth: Authorized<Node, perm::NodesContainers>,
            AppPath((_, container)): AppPath<(String, String)>,
            AppQuery(q): AppQuery<PowerQuery>,
        ) -> AppResult<NoContent> {
            container_power(&state, auth, &container, $action, &q).await
        }
    };
}

container_action!(container_start, "start");
container_action!(container_stop, "stop");
container_action!(container_restart, "restart");
container_action!(container_kill, "kill");

macro_rules! inventory_route {
    ($name:ident, $endpoint:ty, $body:ty) => {
        /// Inventory read live from the node's agent.
        pub async fn $name(
            State(state): State<AppState>,
            Authorized { resource: node, .. }: Authorized<Node, perm::NodesRead>,
        ) -> AppResult<AppJson<$body>> {
            let body: $body = agent_call::<$endpoint>(&state, &node, &(), &()).await?;
            Ok(AppJson(body))
        }
    };
}

inventory_route!(inventory_all, api::InventoryAll, Inventory);
inventory_route!(inventory_system, api::InventorySystem, SystemInfo);
inventory_route!(
    inventory_network,
    api::InventoryNetwork,
    Vec<NetworkInterface>
);
inventory_route!(inventory_disks, api::InventoryDisks, Vec<DiskInfo>);
inventory_route!(inventory_users, api::InventoryUsers, Vec<SystemUser>);
inventory_route!(
    inventory_processes,
    api::InventoryProcesses,
    Vec<ProcessInfo>
);

/// The node's Docker containers: those Shardlyn created, or all of them for platform
/// admins.
pub async fn inventory_containers(
    State(state): State<AppState>,
    Authorized {
        resource: node,
        user,
        ..
    }: Authorized<Node, perm::NodesRead>,
) -> AppResult<AppJson<Vec<ContainerInfo>>> {
    let scope = node_scope(&user);
    let list = agent_call::<api::Containers>(&state, &node, &(), &scope).await?;
    Ok(AppJson(list))
}
