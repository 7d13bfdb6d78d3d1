//! Node CRUD and cordon; who may reach which node (and which of its containers).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::store::{self, Node};
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

#[derive(Deserialize, schemars::JsonSchema)]
pub struct UpdateNode {
    name: String,
}

/// Renames a node.
pub async fn update(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
    AppJson(body): AppJson<UpdateNode>,
) -> AppResult<AppJson<Node>> {
    let name = validate_name(&body.name)?;
    Ok(AppJson(reloaded(
        store::rename(&state.db.pool, &node.id, &name).await?,
    )?))
}

/// The node after an update of its row (gone meanwhile: 404).
fn reloaded(node: Option<Node>) -> AppResult<Node> {
    node.ok_or_else(|| AppError::not_found("node"))
}

/// Deletes a node and cuts its tunnel; its agent token stops working. A node that
/// still has instances is kept (409).
pub async fn delete(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesDelete>,
) -> AppResult<StatusCode> {
    let id = node.id;
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
