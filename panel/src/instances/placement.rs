//! Choosing the node an instance runs on.
//!
//! An organization places on the node pools its plan allows (`nodes::platform::pools`):
//! its own nodes and the platform's (nodes a platform admin shared; with billing off,
//! both). A node named in the request must be in those pools: a node of another
//! organization that is not a platform node the plan allows is 404 `node`, as an unknown
//! one; an own node when the plan has no `own` pool is 409 `POOL_NOT_IN_PLAN`. It must
//! not be cordoned (409 `NODE_CORDONED`); it may be offline (the spec is pushed when its
//! agent connects) and is not checked for room: naming a node is an explicit decision.
//! Without a node, the best fit among the pools' nodes that are online (the rule of
//! `nodes::store`) and not cordoned: free memory is the memory the node last reported
//! (`node_metrics.memory_total_bytes`) minus the `memory_mb` of the instances already
//! placed there, whatever their organization, free disk likewise; the node with the most
//! free memory that fits both wins, ties going to the one with the least CPU handed out.
//! Nothing fitting is 409 `NO_NODE_AVAILABLE`. Two concurrent creates may both count
//! the same free memory; placement is advice, ports are the hard constraint (see
//! `store.rs`).

use axum::http::StatusCode;
use shardlyn_proto::instance::Limits;
use sqlx::AnyPool;

use crate::error::{AppError, AppResult};
use crate::nodes::platform::{self, Pools};
use crate::nodes::store::{self as nodes, Node};
use crate::state::AppState;

const MIB: i64 = 1024 * 1024;

/// What a node has left, in MiB, and the CPU already handed out there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub node_id: String,
    pub free_memory_mb: i64,
    pub free_disk_mb: i64,
    pub cpu_allocated: i64,
}

/// A node's latest totals (bytes) and what its instances were given (MiB, percent).
#[derive(sqlx::FromRow)]
struct RoomRow {
    id: String,
    memory_total: Option<i64>,
    disk_total: Option<i64>,
    memory_used: i64,
    disk_used: i64,
    cpu_used: i64,
}

/// The room left on every node an organization places on: its own when `pools.own`,
/// every platform node when `pools.platform`. What is used counts every organization's
/// instances on the node.
///
/// # Errors
/// Database failures.
pub async fn room(pool: &AnyPool, org_id: &str, pools: Pools) -> Result<Vec<Room>, sqlx::Error> {
    let rows: Vec<RoomRow> = sqlx::query_as(
        "SELECT n.id AS id, \
         (SELECT m.memory_total_bytes FROM node_metrics m WHERE m.node_id = n.id \
          ORDER BY m.at DESC LIMIT 1) AS memory_total, \
         (SELECT m.disk_total_bytes FROM node_metrics m WHERE m.node_id = n.id \
          ORDER BY m.at DESC LIMIT 1) AS disk_total, \
         CAST(COALESCE((SELECT SUM(i.memory_mb) FROM instances i WHERE i.node_id = n.id), 0) AS BIGINT) AS memory_used, \
         CAST(COALESCE((SELECT SUM(i.disk_mb) FROM instances i WHERE i.node_id = n.id), 0) AS BIGINT) AS disk_used, \
         CAST(COALESCE((SELECT SUM(i.cpu_percent) FROM instances i WHERE i.node_id = n.id), 0) AS BIGINT) AS cpu_used \
         FROM nodes n WHERE ($2 = 1 AND n.org_id = $1) OR ($3 = 1 AND n.platform = 1)",
    )
    .bind(org_id)
    .bind(i64::from(pools.own))
    .bind(i64::from(pools.platform))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Room {
            node_id: row.id,
            free_memory_mb: row.memory_total.unwrap_or(0) / MIB - row.memory_used,
            free_disk_mb: row.disk_total.unwrap_or(0) / MIB - row.disk_used,
            cpu_allocated: row.cpu_used,
        })
        .collect())
}

/// The best fit among `candidates` for `limits` (see the module doc).
#[must_use]
pub fn best_fit<'a>(candidates: &'a [Room], limits: &Limits) -> Option<&'a Room> {
    candidates
        .iter()
        .filter(|r| r.free_memory_mb >= limits.memory_mb && r.free_disk_mb >= limits.disk_mb)
        .max_by(|a, b| {
            a.free_memory_mb
                .cmp(&b.free_memory_mb)
                .then(b.cpu_allocated.cmp(&a.cpu_allocated))
                // Stable across calls: the smaller id wins a full tie.
                .then(b.node_id.cmp(&a.node_id))
        })
}

/// The name organization `org_id` knows `node` by: a node of another organization (a
/// platform node) by its public name.
#[must_use]
pub fn shown_name<'a>(node: &'a Node, org_id: &str) -> &'a str {
    if node.organization_id == org_id {
        &node.name
    } else {
        platform::public_name(node)
    }
}

/// The node named by the request, checked against the organization's pools and
/// cordoning.
///
/// # Errors
/// As [`named_in`].
pub async fn named(state: &AppState, org_id: &str, node_id: &str) -> AppResult<Node> {
    let pools = platform::pools(state, org_id).await?;
    named_in(&state.db.pool, org_id, pools, node_id).await
}

/// The node named by the request, for an organization placing on `pools`.
///
/// # Errors
/// 404 `node` for an unknown node or one of another organization that is not a platform
/// node the pools allow; 409 `POOL_NOT_IN_PLAN` for a node of the organization when its
/// plan does not place on its own nodes; 409 `NODE_CORDONED`.
pub async fn named_in(
    pool: &AnyPool,
    org_id: &str,
    pools: Pools,
    node_id: &str,
) -> AppResult<Node> {
    let node = if node_id.contains('\0') {
        None
    } else {
        nodes::find_any(pool, node_id).await?
    }
    .ok_or_else(|| AppError::not_found("node"))?;
    let own = node.organization_id == org_id;
    let allowed = (own && pools.own) || (node.platform && pools.platform);
    if !allowed {
        return Err(if own {
            AppError::coded(
                StatusCode::CONFLICT,
                "POOL_NOT_IN_PLAN",
                "the organization's plan does not place servers on its own nodes: choose a \
                 platform node or change the plan",
            )
        } else {
            AppError::not_found("node")
        });
    }
    if node.cordoned {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "NODE_CORDONED",
            format!(
                "node {} is cordoned: uncordon it or choose another node",
                shown_name(&node, org_id)
            ),
        ));
    }
    Ok(node)
}

/// The best node of the organization's pools for `limits`.
///
/// # Errors
/// 409 `NO_NODE_AVAILABLE` when no online, uncordoned node has room.
pub async fn choose(state: &AppState, org_id: &str, limits: &Limits) -> AppResult<Node> {
    choose_except(state, org_id, limits, None).await
}

/// The best node of the organization's pools for `limits` other than `except` (a
/// server's current node, when it moves).
///
/// # Errors
/// As [`choose`].
pub async fn choose_except(
    state: &AppState,
    org_id: &str,
    limits: &Limits,
    except: Option<&str>,
) -> AppResult<Node> {
    let pools = platform::pools(state, org_id).await?;
    choose_in(&state.db.pool, org_id, pools, limits, except).await
}

/// The online, uncordoned nodes of `pools` other than `except`: the candidates of a
/// placement, and every node of the pools.
///
/// # Errors
/// Database failures.
pub async fn eligible(
    pool: &AnyPool,
    org_id: &str,
    pools: Pools,
    except: Option<&str>,
) -> Result<(Vec<Node>, usize), sqlx::Error> {
    let nodes = nodes::list_pool(pool, org_id, pools.own, pools.platform).await?;
    let total = nodes.len();
    let eligible = nodes
        .into_iter()
        .filter(|n| n.status == "online" && !n.cordoned && Some(n.id.as_str()) != except)
        .collect();
    Ok((eligible, total))
}

/// [`choose_except`] for an organization placing on `pools`.
///
/// # Errors
/// As [`choose`].
pub async fn choose_in(
    pool: &AnyPool,
    org_id: &str,
    pools: Pools,
    limits: &Limits,
    except: Option<&str>,
) -> AppResult<Node> {
    let (eligible, total) = eligible(pool, org_id, pools, except).await?;
    if eligible.is_empty() {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "NO_NODE_AVAILABLE",
            if total == 0 && !pools.platform {
                "no node available: the organization has no nodes; register one first".to_owned()
            } else if total == 0 && !pools.own {
                "no node available: there is no platform node".to_owned()
            } else if total == 0 {
                "no node available: the organization has no nodes and there is no platform \
                 node; register one first"
                    .to_owned()
            } else if except.is_some() {
                "no other node available: every other node the organization places on is \
                 offline or cordoned"
                    .to_owned()
            } else {
                "no node available: every node the organization places on is offline or \
                 cordoned"
                    .to_owned()
            },
        ));
    }
    let rooms: Vec<Room> = room(pool, org_id, pools)
        .await?
        .into_iter()
        .filter(|r| eligible.iter().any(|n| n.id == r.node_id))
        .collect();
    let Some(best) = best_fit(&rooms, limits) else {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "NO_NODE_AVAILABLE",
            format!(
                "no node available: no online node has {} MiB of memory and {} MiB of disk free",
                limits.memory_mb, limits.disk_mb
            ),
        ));
    };
    eligible
        .into_iter()
        .find(|n| n.id == best.node_id)
        .ok_or_else(|| AppError::not_found("node"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str, mem: i64, disk: i64, cpu: i64) -> Room {
        Room {
            node_id: id.into(),
            free_memory_mb: mem,
            free_disk_mb: disk,
            cpu_allocated: cpu,
        }
    }

    #[test]
    fn most_free_memory_that_fits_wins() {
        let limits = Limits {
            memory_mb: 1024,
            disk_mb: 1000,
            ..Limits::default()
        };
        let rooms = [
            room("a", 2048, 5000, 0),
            room("b", 8192, 500, 0),
            room("c", 4096, 5000, 0),
        ];
        assert_eq!(
            best_fit(&rooms, &limits).map(|r| r.node_id.as_str()),
            Some("c")
        );
        let tie = [room("a", 4096, 5000, 300), room("b", 4096, 5000, 100)];
        assert_eq!(
            best_fit(&tie, &limits).map(|r| r.node_id.as_str()),
            Some("b")
        );
        assert!(best_fit(&[room("a", 512, 5000, 0)], &limits).is_none());
    }
}
