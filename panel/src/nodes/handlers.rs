//! Node CRUD, cordon and allocation settings; who may reach which node (and which of its
//! containers).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::store::{self, Node, PortRange};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, perm};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::orgs::validate_name;
use crate::state::AppState;

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
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesRead>,
) -> AppResult<AppJson<Node>> {
    Ok(AppJson(node))
}

/// What an update changes: a field left out stays as it is; `null` puts the allocation
/// settings back to the panel's defaults.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNode {
    #[serde(default)]
    name: Option<String>,
    /// The address new servers' ports are allocated on, e.g. `10.0.0.7`.
    #[serde(default, deserialize_with = "present")]
    allocation_ip: Option<Option<String>>,
    /// The range automatic ports of new servers come from (1024-65535), e.g.
    /// `{"start": 27000, "end": 27999}`: agents that share a machine need ranges of
    /// their own.
    #[serde(default, deserialize_with = "present")]
    port_range: Option<Option<PortRange>>,
}

/// A field that was sent, `null` or not.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Renames a node, sets its allocation address and port range.
pub async fn update(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
    AppJson(body): AppJson<UpdateNode>,
) -> AppResult<AppJson<Node>> {
    // Everything is checked before anything is written.
    let name = body.name.as_deref().map(validate_name).transpose()?;
    let ip = match body.allocation_ip {
        None => node.allocation_ip.clone(),
        Some(None) => None,
        Some(Some(ip)) => Some(valid_ip(&ip)?),
    };
    let range = match body.port_range {
        None => node.port_range,
        Some(None) => None,
        Some(Some(range)) => Some(valid_range(range)?),
    };
    let pool = &state.db.pool;
    if let Some(name) = name {
        store::rename(pool, &node.id, &name).await?;
    }
    Ok(AppJson(reloaded(
        store::set_allocation(pool, &node.id, ip.as_deref(), range).await?,
    )?))
}

fn valid_ip(ip: &str) -> AppResult<String> {
    ip.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| {
            AppError::invalid_field("allocation_ip", "allocation_ip must be an IP address")
        })
}

fn valid_range(range: PortRange) -> AppResult<PortRange> {
    if range.start < 1024 || range.start > range.end {
        return Err(AppError::invalid_field(
            "port_range",
            "port_range must run from start to end, both between 1024 and 65535",
        ));
    }
    Ok(range)
}

/// The node after an update of its row (gone meanwhile: 404).
fn reloaded(node: Option<Node>) -> AppResult<Node> {
    node.ok_or_else(|| AppError::not_found("node"))
}

/// Deletes a node and cuts its tunnel; its agent token stops working. A node that
/// still has instances is kept (409), and so is one the panel provisioned (409: its
/// provision request destroys it with its cloud server).
pub async fn delete(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesDelete>,
) -> AppResult<StatusCode> {
    let id = node.id;
    if let Some(request) = crate::provision::store::for_node(&state.db.pool, &id).await? {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "PROVISIONED_NODE",
            format!(
                "the panel provisioned this node: destroy it with DELETE /v1/provision/{} \
                 so its cloud server goes too",
                request.id
            ),
        ));
    }
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

async fn set_cordon(state: &AppState, node: &Node, on: bool) -> AppResult<AppJson<Node>> {
    Ok(AppJson(reloaded(
        store::set_cordoned(&state.db.pool, &node.id, on).await?,
    )?))
}

/// Stops placing new instances on a node.
pub async fn cordon(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
) -> AppResult<AppJson<Node>> {
    set_cordon(&state, &node, true).await
}

/// Allows placement again.
pub async fn uncordon(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
) -> AppResult<AppJson<Node>> {
    set_cordon(&state, &node, false).await
}

/// The caller's reach on a node's agent: `all` for platform admins, so the agent reaches
/// every container and process of the node; everybody else reaches only the containers
/// Shardlyn created there and the processes inside them.
#[must_use]
pub fn node_scope(user: &CurrentUser) -> shardlyn_proto::agent_api::Scope {
    shardlyn_proto::agent_api::Scope {
        all: user.user.is_admin,
    }
}
