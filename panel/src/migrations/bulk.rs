//! Moving many servers of a node at once (`POST /v1/nodes/{id}/migrate`, a drain): each
//! is placed on a target (the one named, or its best fit among the other online,
//! uncordoned nodes its organization places on, counting what this plan already sends
//! there: on a platform node, each tenant's servers stay in that tenant's pools), and
//! the moves run in waves of `wave_size`. A server that fits nowhere, or that cannot be
//! moved now, is named with the reason and left where it is.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use shardlyn_proto::instance::InstanceState;

use super::runner;
use super::store::{self, Migration};
use super::view::MigrationView;
use crate::error::AppResult;
use crate::instances::Instance;
use crate::instances::placement::{self, Room};
use crate::state::AppState;

/// Moves run at once by default.
pub const DEFAULT_WAVE: usize = 2;
/// The largest wave asked for.
pub const MAX_WAVE: usize = 16;

/// A server the plan left where it is, and why.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unplaced {
    pub instance_id: String,
    pub reason: String,
}

/// What a bulk move started.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Planned {
    /// The moves, queued (they run in waves).
    pub migrations: Vec<MigrationView>,
    /// The servers left where they are.
    pub unplaced: Vec<Unplaced>,
}

/// Why `instance` cannot be moved now, if it cannot: the error code and the reason.
pub(super) async fn refusal(
    state: &AppState,
    instance: &Instance,
) -> AppResult<Option<(&'static str, &'static str)>> {
    if instance.state == InstanceState::Installing {
        return Ok(Some((
            "INSTALLING",
            "the server is installing: move it once the install ended",
        )));
    }
    if crate::backups::store::list(&state.db.pool, &instance.id)
        .await?
        .iter()
        .any(|b| b.status == "running" || b.status == "pending")
    {
        return Ok(Some((
            "BACKUP_RUNNING",
            "a backup of the server is running: move it once the backup ended",
        )));
    }
    Ok(None)
}

/// The latest completed backup of an instance in S3 (what a server on an offline node
/// can be rebuilt from).
///
/// # Errors
/// Database failure.
pub(super) async fn latest_s3_backup(
    state: &AppState,
    instance_id: &str,
) -> AppResult<Option<crate::backups::store::Backup>> {
    Ok(crate::backups::store::list(&state.db.pool, instance_id)
        .await?
        .into_iter()
        .filter(|b| b.status == "completed" && b.target == "s3")
        .max_by_key(|b| b.completed_at.unwrap_or(b.created_at)))
}

/// `ms` as people say it: "3 h 12 min", "5 min", "40 s".
#[must_use]
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// What a bulk move is asked to do.
pub struct Plan<'a> {
    /// The organization of the source node (its servers may be other organizations':
    /// on a platform node, each goes where its own organization places).
    pub org_id: &'a str,
    /// The node the servers are on.
    pub source: &'a str,
    /// Where to; `None`: each to its best fit.
    pub target: Option<&'a str>,
    /// Moves run at once.
    pub wave: usize,
    /// Who asked.
    pub user_id: &'a str,
    /// The source is offline: each server is rebuilt from its latest S3 backup.
    pub from_backup: bool,
}

/// Plans and starts the moves of `instances` (all on `plan.source`).
///
/// # Errors
/// Database failures.
pub async fn start(
    state: &AppState,
    plan: &Plan<'_>,
    mut instances: Vec<Instance>,
) -> AppResult<Planned> {
    let Plan {
        org_id: _,
        source,
        target,
        wave,
        user_id,
        from_backup,
    } = *plan;
    let pool = &state.db.pool;
    // Each server goes where its own organization places: on a platform node, the
    // servers of tenants go to the other nodes of their pools, never to the operator's
    // own nodes.
    let mut pools_of: HashMap<String, Vec<String>> = HashMap::new();
    let mut rooms: HashMap<String, Room> = HashMap::new();
    // The biggest first, so they get the room they need.
    instances.sort_by_key(|i| std::cmp::Reverse(i.limits.memory_mb));
    let mut moves = Vec::new();
    let mut unplaced = Vec::new();
    for instance in instances {
        if !pools_of.contains_key(&instance.org_id) {
            let pools = crate::nodes::platform::pools(state, &instance.org_id).await?;
            let (eligible, _) =
                placement::eligible(pool, &instance.org_id, pools, Some(source)).await?;
            let ids: Vec<String> = eligible
                .into_iter()
                .filter(|n| target.is_none_or(|t| t == n.id))
                .map(|n| n.id)
                .collect();
            for r in placement::room(pool, &instance.org_id, pools).await? {
                if ids.contains(&r.node_id) {
                    rooms.entry(r.node_id.clone()).or_insert(r);
                }
            }
            pools_of.insert(instance.org_id.clone(), ids);
        }
        let candidates: Vec<Room> = pools_of
            .get(&instance.org_id)
            .map(|ids| ids.iter().filter_map(|id| rooms.get(id).cloned()).collect())
            .unwrap_or_default();
        if target.is_some() && candidates.is_empty() {
            unplaced.push(Unplaced {
                instance_id: instance.id,
                reason: "the target is not a node the server's organization places on".into(),
            });
            continue;
        }
        let backup = if from_backup {
            let Some(b) = latest_s3_backup(state, &instance.id).await? else {
                unplaced.push(Unplaced {
                    instance_id: instance.id,
                    reason: "no completed backup in S3 to rebuild the server from".into(),
                });
                continue;
            };
            Some(b)
        } else {
            if let Some((_, reason)) = refusal(state, &instance).await? {
                unplaced.push(Unplaced {
                    instance_id: instance.id,
                    reason: reason.to_owned(),
                });
                continue;
            }
            None
        };
        let Some(room) = placement::best_fit(&candidates, &instance.limits).cloned() else {
            unplaced.push(Unplaced {
                instance_id: instance.id.clone(),
                reason: format!(
                    "no other online node has {} MiB of memory and {} MiB of disk free",
                    instance.limits.memory_mb, instance.limits.disk_mb
                ),
            });
            continue;
        };
        if let Some(r) = rooms.get_mut(&room.node_id) {
            r.free_memory_mb -= instance.limits.memory_mb;
            r.free_disk_mb -= instance.limits.disk_mb;
            r.cpu_allocated += instance.limits.cpu_percent;
        }
        let mut m = Migration::queued(&instance, &room.node_id, user_id);
        if let Some(b) = &backup {
            m = m.from_backup(&instance, b);
        }
        match store::insert(pool, &m).await {
            Ok(()) => moves.push(m),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                unplaced.push(Unplaced {
                    instance_id: instance.id,
                    reason: "the server is already being moved".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    for m in &moves {
        runner::announce(state, &m.id).await;
    }
    let planned = Planned {
        migrations: moves.iter().map(MigrationView::from).collect(),
        unplaced,
    };
    run_in_waves(state, moves, wave.clamp(1, MAX_WAVE));
    Ok(planned)
}

/// Runs `moves`, `wave` at a time; the ones waiting say they are alive meanwhile.
fn run_in_waves(state: &AppState, moves: Vec<Migration>, wave: usize) {
    let state = state.clone();
    tokio::spawn(async move {
        let ids: Vec<String> = moves.iter().map(|m| m.id.clone()).collect();
        let heartbeat = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(runner::HEARTBEAT).await;
                    for id in &ids {
                        if let Err(e) = store::touch_queued(&state.db.pool, id).await {
                            tracing::warn!(migration.id = %id, error = %e, "a queued move's heartbeat");
                        }
                    }
                }
            })
        };
        for chunk in moves.chunks(wave) {
            let mut running = tokio::task::JoinSet::new();
            for m in chunk {
                running.spawn(runner::run(state.clone(), m.clone()));
            }
            while running.join_next().await.is_some() {}
        }
        heartbeat.abort();
    });
}
