//! Node CRUD, cordon, and inventory through the tunnel.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::store::{self, Node};
use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::orgs::permissions::authorize;
use crate::orgs::scope::{OrgQuery, scoped};
use crate::orgs::validate_name;
use crate::state::AppState;

/// Loads a node the caller may act on with `permission`; another organization's node
/// is as missing as a node that does not exist.
pub async fn node_for(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    permission: &str,
) -> AppResult<Node> {
    let node = store::find(&state.db.pool, id)
        .await?
        .ok_or_else(|| AppError::not_found("node"))?;
    authorize(state, user, &node.organization_id, permission)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::not_found("node"),
            other => other,
        })?;
    Ok(node)
}

/// The nodes of the scoped organization.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<OrgQuery>,
) -> AppResult<AppJson<Vec<Node>>> {
    let member = scoped(&state, &user, q.organization_id.as_deref(), "nodes.read").await?;
    Ok(AppJson(store::list(&state.db.pool, &member.org_id).await?))
}

/// One node.
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<Node>> {
    Ok(AppJson(node_for(&state, &user, &id, "nodes.read").await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct UpdateNode {
    name: String,
}

/// Renames a node.
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<UpdateNode>,
) -> AppResult<AppJson<Node>> {
    node_for(&state, &user, &id, "nodes.update").await?;
    store::rename(&state.db.pool, &id, &validate_name(&body.name)?).await?;
    Ok(AppJson(node_for(&state, &user, &id, "nodes.read").await?))
}

/// Deletes a node and cuts its tunnel; its agent token stops working. A node that
/// still has instances is kept (409).
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
) -> AppResult<StatusCode> {
    node_for(&state, &user, &id, "nodes.delete").await?;
    let instances = crate::instances::store::count_on_node(&state.db.pool, &id).await?;
    if instances > 0 {
        return Err(AppError::Conflict(format!(
            "the node still has {instances} instance(s): delete or move them first"
        )));
    }
    store::delete(&state.db.pool, &id).await?;
    state.tunnels.disconnect(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_cordon(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    on: bool,
) -> AppResult<AppJson<Node>> {
    node_for(state, user, id, "nodes.update").await?;
    store::set_cordoned(&state.db.pool, id, on).await?;
    Ok(AppJson(node_for(state, user, id, "nodes.read").await?))
}

/// Stops placing new instances on a node.
pub async fn cordon(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<Node>> {
    set_cordon(&state, &user, &id, true).await
}

/// Allows placement again.
pub async fn uncordon(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<Node>> {
    set_cordon(&state, &user, &id, false).await
}

async fn agent_call(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    permission: &str,
    method: http::Method,
    path: &str,
) -> AppResult<Value> {
    node_for(state, user, id, permission).await?;
    let conn = state
        .tunnels
        .get(id)
        .ok_or_else(|| AppError::Unavailable("node is offline".into()))?;
    conn.call(method, path).await
}

async fn from_agent(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    path: &str,
) -> AppResult<AppJson<Value>> {
    Ok(AppJson(
        agent_call(state, user, id, "nodes.read", http::Method::GET, path).await?,
    ))
}

/// `path` on the agent, with `all=true` for platform admins: the agent then reaches
/// every container and process of the node; everybody else reaches only the containers
/// Shardlyn created there and the processes inside them.
#[must_use]
pub fn node_scoped(path: String, user: &CurrentUser) -> String {
    if !user.user.is_admin {
        return path;
    }
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}all=true")
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
    user: CurrentUser,
    AppPath((id, container)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<LogsQuery>,
) -> AppResult<AppJson<Value>> {
    let path = node_scoped(
        format!(
            "/v1/containers/{}/logs?tail={}",
            container_id(&container)?,
            q.tail.unwrap_or(100).min(10_000)
        ),
        &user,
    );
    Ok(AppJson(
        agent_call(&state, &user, &id, "nodes.read", http::Method::GET, &path).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct PowerQuery {
    timeout: Option<u32>,
    signal: Option<String>,
}

async fn container_power(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    container: &str,
    action: &str,
    q: &PowerQuery,
) -> AppResult<StatusCode> {
    let mut path = node_scoped(
        format!(
            "/v1/containers/{}/{action}?timeout={}",
            container_id(container)?,
            q.timeout.unwrap_or(10).min(600)
        ),
        user,
    );
    if let Some(signal) = &q.signal {
        if signal.is_empty()
            || signal.len() > 16
            || !signal.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(AppError::Validation(
                "signal must be a name like SIGTERM or a number".into(),
            ));
        }
        path.push_str("&signal=");
        path.push_str(signal);
    }
    agent_call(
        state,
        user,
        id,
        "nodes.containers",
        http::Method::POST,
        &path,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

macro_rules! container_action {
    ($name:ident, $action:literal) => {
        /// A power action on a container of the node.
        pub async fn $name(
            State(state): State<AppState>,
            user: CurrentUser,
            AppPath((id, container)): AppPath<(String, String)>,
            AppQuery(q): AppQuery<PowerQuery>,
        ) -> AppResult<StatusCode> {
            container_power(&state, &user, &id, &container, $action, &q).await
        }
    };
}

container_action!(container_start, "start");
container_action!(container_stop, "stop");
container_action!(container_restart, "restart");
container_action!(container_kill, "kill");

macro_rules! inventory_route {
    ($name:ident, $path:literal) => {
        /// Inventory read live from the node's agent.
        pub async fn $name(
            State(state): State<AppState>,
            user: CurrentUser,
            AppPath(id): AppPath<String>,
        ) -> AppResult<AppJson<Value>> {
            from_agent(&state, &user, &id, $path).await
        }
    };
}

inventory_route!(inventory_all, "/v1/inventory");
inventory_route!(inventory_system, "/v1/inventory/system");
inventory_route!(inventory_network, "/v1/inventory/network");
inventory_route!(inventory_disks, "/v1/inventory/disks");
inventory_route!(inventory_users, "/v1/inventory/users");
inventory_route!(inventory_processes, "/v1/inventory/processes");

/// The node's Docker containers: those Shardlyn created, or all of them for platform
/// admins.
pub async fn inventory_containers(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<Value>> {
    let path = node_scoped("/v1/containers".into(), &user);
    from_agent(&state, &user, &id, &path).await
}
