//! Reading an organization's fleet into [`NodeRoom`]s: five set queries whatever the
//! number of nodes (nodes, their latest reported totals, what their instances reserve,
//! their taken ports, and the instance type of the nodes the panel provisioned). The
//! fleet is the pools the organization places on: its own nodes and, when its plan
//! allows, the platform's (`nodes::platform`).
//!
//! Capacity is what the node last reported (`node_metrics`: memory and disk totals); use
//! is what the panel handed out (`instances.memory_mb`, `disk_mb`, `cpu_percent`), as
//! `instances::placement` counts it. Only provisioned nodes have a known core count
//! (their instance type's vCPUs), so CPU rules out only those.

use std::collections::HashMap;

use sqlx::AnyPool;

use super::catalog;
use super::fit::NodeRoom;
use crate::error::AppResult;
use crate::nodes::platform;
use crate::nodes::store as nodes;
use crate::state::AppState;

const MIB: i64 = 1024 * 1024;

#[derive(sqlx::FromRow)]
struct Totals {
    node_id: String,
    memory_total: i64,
    disk_total: i64,
}

#[derive(sqlx::FromRow)]
struct Used {
    node_id: String,
    memory: i64,
    disk: i64,
    cpu: i64,
    n: i64,
    mine: i64,
}

#[derive(sqlx::FromRow)]
struct Taken {
    node_id: String,
    port: i64,
}

#[derive(sqlx::FromRow)]
struct Provisioned {
    node_id: String,
    provider: String,
    instance_type: String,
}

/// Every node `org_id` places on as the planner sees it, by name: its own and, when its
/// plan allows the pool, the platform's (marked `platform`, named by their public name,
/// counting only this organization's instances in `instances`; what other tenants use
/// still counts in the memory, disk and CPU used).
///
/// # Errors
/// Database failures.
pub async fn load(state: &AppState, org_id: &str) -> AppResult<Vec<NodeRoom>> {
    let pool: &AnyPool = &state.db.pool;
    let pools = platform::pools(state, org_id).await?;
    let (own, shared) = (i64::from(pools.own), i64::from(pools.platform));
    let list = nodes::list_pool(pool, org_id, pools.own, pools.platform).await?;
    let totals: Vec<Totals> = sqlx::query_as(
        "SELECT m.node_id AS node_id, m.memory_total_bytes AS memory_total, \
         m.disk_total_bytes AS disk_total FROM node_metrics m JOIN nodes n ON n.id = m.node_id \
         WHERE (($2 = 1 AND n.org_id = $1) OR ($3 = 1 AND n.platform = 1)) \
         AND m.at = (SELECT MAX(x.at) FROM node_metrics x WHERE x.node_id = m.node_id)",
    )
    .bind(org_id)
    .bind(own)
    .bind(shared)
    .fetch_all(pool)
    .await?;
    let used: Vec<Used> = sqlx::query_as(
        "SELECT i.node_id AS node_id, CAST(SUM(i.memory_mb) AS BIGINT) AS memory, \
         CAST(SUM(i.disk_mb) AS BIGINT) AS disk, CAST(SUM(i.cpu_percent) AS BIGINT) AS cpu, \
         CAST(COUNT(*) AS BIGINT) AS n, \
         CAST(SUM(CASE WHEN i.org_id = $1 THEN 1 ELSE 0 END) AS BIGINT) AS mine \
         FROM instances i JOIN nodes n ON n.id = i.node_id \
         WHERE (($2 = 1 AND n.org_id = $1) OR ($3 = 1 AND n.platform = 1)) GROUP BY i.node_id",
    )
    .bind(org_id)
    .bind(own)
    .bind(shared)
    .fetch_all(pool)
    .await?;
    let taken: Vec<Taken> = sqlx::query_as(
        "SELECT a.node_id AS node_id, a.port AS port FROM allocations a \
         JOIN nodes n ON n.id = a.node_id \
         WHERE (($2 = 1 AND n.org_id = $1) OR ($3 = 1 AND n.platform = 1))",
    )
    .bind(org_id)
    .bind(own)
    .bind(shared)
    .fetch_all(pool)
    .await?;
    let provisioned: Vec<Provisioned> = sqlx::query_as(
        "SELECT p.node_id AS node_id, p.provider AS provider, p.instance_type AS instance_type \
         FROM provision_requests p JOIN nodes n ON n.id = p.node_id \
         WHERE (($2 = 1 AND n.org_id = $1) OR ($3 = 1 AND n.platform = 1))",
    )
    .bind(org_id)
    .bind(own)
    .bind(shared)
    .fetch_all(pool)
    .await?;

    let totals: HashMap<&str, &Totals> = totals.iter().map(|t| (t.node_id.as_str(), t)).collect();
    let used: HashMap<&str, &Used> = used.iter().map(|u| (u.node_id.as_str(), u)).collect();
    let mut ports: HashMap<&str, Vec<u16>> = HashMap::new();
    for t in &taken {
        if let Ok(p) = u16::try_from(t.port) {
            ports.entry(t.node_id.as_str()).or_default().push(p);
        }
    }
    let cores: HashMap<&str, i64> = provisioned
        .iter()
        .filter_map(|p| {
            let ty = catalog::bundled_table(&p.provider)?.find(&p.instance_type)?;
            Some((p.node_id.as_str(), i64::from(ty.vcpus) * 1000))
        })
        .collect();
    let defaults = &state.config.instances;
    Ok(list
        .into_iter()
        .map(|n| {
            let mut taken = ports.remove(n.id.as_str()).unwrap_or_default();
            taken.sort_unstable();
            let (start, end) = n
                .port_range
                .map_or((defaults.port_range_start, defaults.port_range_end), |r| {
                    (r.start, r.end)
                });
            let in_range = taken.iter().filter(|p| (start..=end).contains(*p)).count();
            let size = i64::from(end) - i64::from(start) + 1;
            let u = used.get(n.id.as_str());
            let t = totals.get(n.id.as_str());
            let foreign = n.organization_id != org_id;
            NodeRoom {
                online: n.status == "online",
                cordoned: n.cordoned,
                memory_total_mb: t.map(|t| t.memory_total / MIB),
                memory_used_mb: u.map_or(0, |u| u.memory),
                disk_total_mb: t.map(|t| t.disk_total / MIB),
                disk_used_mb: u.map_or(0, |u| u.disk),
                cpu_total_millis: cores.get(n.id.as_str()).copied(),
                // cpu_percent 100 is one core.
                cpu_used_millis: u.map_or(0, |u| u.cpu * 10),
                ports_free: size - i64::try_from(in_range).unwrap_or(0),
                taken,
                instances: u.map_or(0, |u| if foreign { u.mine } else { u.n }),
                platform: n.platform,
                name: if foreign {
                    platform::public_name(&n).to_owned()
                } else {
                    n.name.clone()
                },
                id: n.id,
            }
        })
        .collect())
}
