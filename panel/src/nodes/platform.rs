//! Platform nodes (issue 19 §1): nodes a platform admin marks as the platform's, shared
//! by every organization whose plan has the `platform` pool. Domain layer, over
//! [`super::store`].
//!
//! A platform node stays owned by the organization that registered it (the operator's),
//! whose members keep full access through the node routes. Other organizations (tenants)
//! never reach the node itself: every `/v1/nodes/{id}` route answers them 404, as for any
//! node of another organization. They place servers there (`instances::placement`), move
//! them between the pool's nodes (`migrations`), see them in the planner, reach their
//! own servers through the instance routes, and read the node's public face here: its
//! public name (else its name), location, public addresses and whether it is online.
//!
//! Which pools an organization places on comes from its plan
//! ([`crate::billing::limits::plan_for`]): `own` (its own nodes) and `platform`. An
//! organization without a cap (billing off, a platform admin's organization, no plan)
//! uses both: with billing off every organization may place on platform nodes.

use std::collections::HashMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::store::{self, Node};
use crate::auth::extract::{AdminUser, CurrentUser};
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::state::AppState;

/// The longest public name or location, in characters.
const MAX_TEXT: usize = 64;

/// The node pools an organization places servers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pools {
    /// Its own nodes.
    pub own: bool,
    /// The platform's nodes.
    pub platform: bool,
}

impl Pools {
    /// Both pools: an organization without a cap.
    pub const ALL: Self = Self {
        own: true,
        platform: true,
    };
}

/// The pools organization `org_id` places servers on (see the module doc).
///
/// # Errors
/// Database failures.
pub async fn pools(state: &AppState, org_id: &str) -> AppResult<Pools> {
    let mut conn = state.db.pool.acquire().await?;
    Ok(
        match crate::billing::limits::plan_for(&mut conn, state, org_id).await? {
            None => Pools::ALL,
            Some(plan) => Pools {
                own: plan.allows_pool("own"),
                platform: plan.allows_pool("platform"),
            },
        },
    )
}

/// The name tenants see for a node: its public name, else its name.
#[must_use]
pub fn public_name(node: &Node) -> &str {
    node.public_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&node.name)
}

/// A node of another organization as its tenants see it: never its inventory, hostname,
/// agent or other tenants.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlatformNode {
    pub id: String,
    /// The node's public name (else its name).
    pub name: String,
    /// Where it is, e.g. `Falkenstein, DE` (`null`: not said).
    pub location: Option<String>,
    pub public_ipv4: Option<String>,
    pub public_ipv6: Option<String>,
    /// Whether its agent is connected.
    pub online: bool,
    /// Whether it is (still) a platform node; `false` for a node that was unmarked
    /// while a server of the organization runs there.
    pub platform: bool,
    /// Whether new servers of the organization may be placed there now (a platform
    /// node the plan allows, online, not cordoned).
    pub accepting: bool,
}

impl PlatformNode {
    fn of(node: &Node, pools: Pools) -> Self {
        let online = node.status == "online";
        Self {
            id: node.id.clone(),
            name: public_name(node).to_owned(),
            location: node.location.clone(),
            public_ipv4: node.public_ipv4.clone(),
            public_ipv6: node.public_ipv6.clone(),
            online,
            platform: node.platform,
            accepting: node.platform && pools.platform && online && !node.cordoned,
        }
    }
}

/// `GET /v1/platform-nodes`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlatformNodeList {
    /// Whether the organization's plan places servers on platform nodes.
    pub allowed: bool,
    /// The platform nodes of other organizations the plan allows, and any other node of
    /// another organization a server of this one runs on, by name.
    pub data: Vec<PlatformNode>,
}

/// Nodes of other organizations that organization `org_id` sees: the platform's when
/// `platform`, and those its servers run on.
async fn foreign_nodes(
    pool: &sqlx::AnyPool,
    org_id: &str,
    platform: bool,
) -> Result<Vec<Node>, sqlx::Error> {
    let hosting: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT i.node_id FROM instances i JOIN nodes n ON n.id = i.node_id \
         WHERE i.org_id = $1 AND n.org_id <> $1",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await?;
    let mut nodes: Vec<Node> = if platform {
        store::list_all(pool, true)
            .await?
            .into_iter()
            .filter(|n| n.organization_id != org_id)
            .collect()
    } else {
        Vec::new()
    };
    for id in hosting {
        if !nodes.iter().any(|n| n.id == id)
            && let Some(node) = store::find_any(pool, &id).await?
        {
            nodes.push(node);
        }
    }
    nodes.sort_by(|a, b| public_name(a).cmp(public_name(b)).then(a.id.cmp(&b.id)));
    Ok(nodes)
}

/// `GET /v1/platform-nodes?organization_id=`: the platform nodes the organization's
/// plan places servers on (its own nodes are `GET /v1/nodes`), as tenants see them.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<OrgQuery>,
) -> AppResult<AppJson<PlatformNodeList>> {
    let member = scoped(
        &state,
        &user,
        q.organization_id.as_deref(),
        "instances.read",
    )
    .await?;
    let pools = pools(&state, &member.org_id).await?;
    let nodes = foreign_nodes(&state.db.pool, &member.org_id, pools.platform).await?;
    Ok(AppJson(PlatformNodeList {
        allowed: pools.platform,
        data: nodes.iter().map(|n| PlatformNode::of(n, pools)).collect(),
    }))
}

/// What a node holds and has handed out, for platform admins.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Capacity {
    /// The memory the node last reported, MiB (`null`: never reported).
    pub memory_total_mb: Option<i64>,
    /// Memory given to the servers on it (every organization's), MiB.
    pub memory_used_mb: i64,
    pub disk_total_mb: Option<i64>,
    pub disk_used_mb: i64,
    /// CPU given to the servers on it, percent of one core.
    pub cpu_used_percent: i64,
    /// Servers on it, of every organization.
    pub instances: i64,
    /// Organizations other than the owner with servers on it.
    pub tenants: i64,
}

/// A node as platform admins see it on the platform-nodes page.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdminPlatformNode {
    #[serde(flatten)]
    pub node: Node,
    /// The organization that owns it (the operator's).
    pub organization_name: String,
    pub capacity: Capacity,
}

/// `GET /v1/admin/platform-nodes`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdminPlatformNodeList {
    pub data: Vec<AdminPlatformNode>,
}

#[derive(sqlx::FromRow)]
struct CapacityRow {
    id: String,
    organization_name: String,
    memory_total: Option<i64>,
    disk_total: Option<i64>,
    memory_used: i64,
    disk_used: i64,
    cpu_used: i64,
    instances: i64,
    tenants: i64,
}

const MIB: i64 = 1024 * 1024;

/// Capacity and owner name of every node (`platform_only`: of the platform's), by id.
async fn capacities(
    pool: &sqlx::AnyPool,
    platform_only: bool,
) -> Result<HashMap<String, (String, Capacity)>, sqlx::Error> {
    let rows: Vec<CapacityRow> = sqlx::query_as(
        "SELECT n.id AS id, o.name AS organization_name, \
         (SELECT m.memory_total_bytes FROM node_metrics m WHERE m.node_id = n.id \
          ORDER BY m.at DESC LIMIT 1) AS memory_total, \
         (SELECT m.disk_total_bytes FROM node_metrics m WHERE m.node_id = n.id \
          ORDER BY m.at DESC LIMIT 1) AS disk_total, \
         CAST(COALESCE((SELECT SUM(i.memory_mb) FROM instances i WHERE i.node_id = n.id), 0) AS BIGINT) AS memory_used, \
         CAST(COALESCE((SELECT SUM(i.disk_mb) FROM instances i WHERE i.node_id = n.id), 0) AS BIGINT) AS disk_used, \
         CAST(COALESCE((SELECT SUM(i.cpu_percent) FROM instances i WHERE i.node_id = n.id), 0) AS BIGINT) AS cpu_used, \
         CAST((SELECT COUNT(*) FROM instances i WHERE i.node_id = n.id) AS BIGINT) AS instances, \
         CAST((SELECT COUNT(DISTINCT i.org_id) FROM instances i \
               WHERE i.node_id = n.id AND i.org_id <> n.org_id) AS BIGINT) AS tenants \
         FROM nodes n JOIN organizations o ON o.id = n.org_id \
         WHERE n.platform = 1 OR $1 = 0",
    )
    .bind(i64::from(platform_only))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let capacity = Capacity {
                memory_total_mb: r.memory_total.map(|b| b / MIB),
                memory_used_mb: r.memory_used,
                disk_total_mb: r.disk_total.map(|b| b / MIB),
                disk_used_mb: r.disk_used,
                cpu_used_percent: r.cpu_used,
                instances: r.instances,
                tenants: r.tenants,
            };
            (r.id, (r.organization_name, capacity))
        })
        .collect())
}

fn admin_view(node: Node, caps: &mut HashMap<String, (String, Capacity)>) -> AdminPlatformNode {
    let (organization_name, capacity) = caps.remove(&node.id).unwrap_or_default();
    AdminPlatformNode {
        node,
        organization_name,
        capacity,
    }
}

/// `?all=` of the admin list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct AdminListQuery {
    /// Every node of every organization (to choose one to mark), not only the
    /// platform's.
    #[serde(default)]
    pub all: bool,
}

/// `GET /v1/admin/platform-nodes[?all=true]`: the platform nodes (or every node) with
/// their owner and capacity.
pub async fn admin_list(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(q): AppQuery<AdminListQuery>,
) -> AppResult<AppJson<AdminPlatformNodeList>> {
    let pool = &state.db.pool;
    let nodes = store::list_all(pool, !q.all).await?;
    let mut caps = capacities(pool, !q.all).await?;
    Ok(AppJson(AdminPlatformNodeList {
        data: nodes
            .into_iter()
            .map(|n| admin_view(n, &mut caps))
            .collect(),
    }))
}

/// The body of `PUT /v1/admin/nodes/{id}/platform`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPlatform {
    /// Whether the node is the platform's. Unmarking stops new placements there;
    /// servers already on it stay and keep working.
    pub platform: bool,
    /// The name tenants see (at most 64 characters; omitted: unchanged; empty: the
    /// node's name).
    #[serde(default)]
    pub public_name: Option<String>,
    /// Where the node is, as tenants see it, e.g. `Falkenstein, DE` (at most 64
    /// characters; omitted: unchanged; empty: not said).
    #[serde(default)]
    pub location: Option<String>,
}

/// A public text field: trimmed, empty as `None`, at most [`MAX_TEXT`] characters and
/// no control characters.
fn public_text(
    field: &str,
    value: Option<&str>,
    current: Option<&str>,
) -> AppResult<Option<String>> {
    let Some(value) = value else {
        return Ok(current.map(str::to_owned));
    };
    let value = value.trim();
    if value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            field,
            format!("{field} must be at most {MAX_TEXT} characters, without control characters"),
        ));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// `PUT /v1/admin/nodes/{id}/platform`: marks a node as the platform's (or not) and sets
/// the name and location its tenants see.
pub async fn mark(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<MarkPlatform>,
) -> AppResult<AppJson<AdminPlatformNode>> {
    let pool = &state.db.pool;
    let node = if id.contains('\0') {
        None
    } else {
        store::find_any(pool, &id).await?
    }
    .ok_or_else(|| AppError::not_found("node"))?;
    let public_name = public_text(
        "public_name",
        body.public_name.as_deref(),
        node.public_name.as_deref(),
    )?;
    let location = public_text(
        "location",
        body.location.as_deref(),
        node.location.as_deref(),
    )?;
    let node = store::set_platform(
        pool,
        &node.id,
        body.platform,
        public_name.as_deref(),
        location.as_deref(),
    )
    .await?
    .ok_or_else(|| AppError::not_found("node"))?;
    let mut caps = capacities(pool, false).await?;
    Ok(AppJson(admin_view(node, &mut caps)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_text_is_trimmed_bounded_and_optional() {
        assert_eq!(
            public_text("location", None, Some("Here")).expect("kept"),
            Some("Here".to_owned())
        );
        assert_eq!(
            public_text("location", Some("  "), Some("Here")).expect("cleared"),
            None
        );
        assert_eq!(
            public_text("location", Some(" Falkenstein, DE "), None).expect("set"),
            Some("Falkenstein, DE".to_owned())
        );
        assert!(public_text("location", Some(&"x".repeat(65)), None).is_err());
        assert!(public_text("public_name", Some("a\nb"), None).is_err());
    }
}
