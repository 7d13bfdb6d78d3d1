//! Node CRUD and cordon; who may reach which node (and which of its containers).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

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

/// The caller's reach on a node's agent: `all` for platform admins, so the agent reaches
/// every container and process of the node; everybody else reaches only the containers
/// Shardlyn created there and the processes inside them.
#[must_use]
pub fn node_scope(user: &CurrentUser) -> shardlyn_proto::agent_api::Scope {
    shardlyn_proto::agent_api::Scope {
        all: user.user.is_admin,
    }
}
