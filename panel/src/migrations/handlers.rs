//! The migrations routes.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::bulk;
use super::runner;
use super::store::{self, Migration};
use super::view::{MigrationList, MigrationView};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, perm};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::instances::placement;
use crate::instances::store::Instance;
use crate::orgs::scope::scoped;
use crate::respond::Accepted;
use crate::state::AppState;

/// Moves listed at most.
const LIST_LIMIT: i64 = 200;

/// The body of `POST /v1/instances/{id}/migrate`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateBody {
    /// The node to move to (one of the organization's, or a platform node its plan
    /// allows); omitted, the best fit among the other online, uncordoned nodes the
    /// organization places on (as for creation).
    #[serde(default)]
    pub target_node_id: Option<String>,
    /// The server's node is offline: rebuild the server on the target from its latest
    /// backup in S3. What changed on the server since that backup is lost, so this is
    /// only done when asked; without it such a move answers 409 `NODE_OFFLINE` naming
    /// the backup's age.
    #[serde(default)]
    pub from_backup: bool,
}

fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::coded(StatusCode::CONFLICT, code, message)
}

/// The node a move of `instance` goes to: one of the pools its organization places on
/// (its own nodes, the platform's), as for creation.
async fn target_of(
    state: &AppState,
    instance: &Instance,
    wanted: Option<&str>,
) -> AppResult<String> {
    let pool = &state.db.pool;
    let org_id = instance.org_id.as_str();
    let pools = crate::nodes::platform::pools(state, org_id).await?;
    let Some(id) = wanted.map(str::trim).filter(|s| !s.is_empty()) else {
        let node = placement::choose_in(
            pool,
            org_id,
            pools,
            &instance.limits,
            Some(&instance.node_id),
        )
        .await?;
        return Ok(node.id);
    };
    let node = placement::named_in(pool, org_id, pools, id).await?;
    if node.id == instance.node_id {
        return Err(AppError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "SAME_NODE",
            "the server is already on that node",
        ));
    }
    let name = placement::shown_name(&node, org_id);
    let room = placement::room(pool, org_id, pools)
        .await?
        .into_iter()
        .find(|r| r.node_id == node.id);
    if let Some(room) = room {
        if room.free_memory_mb < instance.limits.memory_mb {
            return Err(conflict(
                "NO_ROOM",
                format!(
                    "node {name} lacks memory: {} MiB free, the server needs {} MiB",
                    room.free_memory_mb, instance.limits.memory_mb
                ),
            ));
        }
        if room.free_disk_mb < instance.limits.disk_mb {
            return Err(conflict(
                "NO_ROOM",
                format!(
                    "node {name} lacks disk: {} MiB free, the server needs {} MiB",
                    room.free_disk_mb, instance.limits.disk_mb
                ),
            ));
        }
    }
    Ok(node.id)
}

/// `POST /v1/instances/{id}/migrate`: moves the server to another node (202 with the
/// move); its progress is `GET /v1/migrations/{id}` and `migration` events.
pub async fn migrate(
    State(state): State<AppState>,
    Authorized {
        resource: instance,
        user,
        ..
    }: Authorized<Instance, perm::InstancesMigrate>,
    body: axum::body::Bytes,
) -> AppResult<Accepted<MigrationView>> {
    let body: MigrateBody = crate::backups::optional_json(&body)?;
    let target = target_of(&state, &instance, body.target_node_id.as_deref()).await?;
    crate::instances::ops::power::connected(&state, &target).await?;
    // The files travel from one agent to the other; with the source offline, only a
    // backup can bring them.
    let source_up = crate::instances::ops::power::connected(&state, &instance.node_id)
        .await
        .is_ok();
    let backup = match (source_up, body.from_backup) {
        (true, false) => None,
        (true, true) => return Err(source_online()),
        (false, wanted) => Some(rebuild_from(&state, &instance, wanted).await?),
    };
    if backup.is_none()
        && let Some((code, reason)) = bulk::refusal(&state, &instance).await?
    {
        return Err(conflict(code, reason));
    }
    let mut m = Migration::queued(&instance, &target, &user.user.id);
    if let Some(b) = &backup {
        m = m.from_backup(&instance, b);
    }
    match store::insert(&state.db.pool, &m).await {
        Ok(()) => {}
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Err(conflict(
                "MIGRATION_EXISTS",
                "the server is already being moved",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    runner::announce(&state, &m.id).await;
    runner::spawn(&state, m.clone());
    Ok(Accepted(MigrationView::from(&m)))
}

/// 422 `SOURCE_ONLINE`: `from_backup` asked of a node that answers.
fn source_online() -> AppError {
    AppError::coded(
        StatusCode::UNPROCESSABLE_ENTITY,
        "SOURCE_ONLINE",
        "the server's node is online: a move copies every file; from_backup is only for a \
         node that is offline",
    )
}

/// The backup a server on an offline node is rebuilt from: its latest completed one in
/// S3, when `wanted`. 409 `NODE_OFFLINE` otherwise, naming the backup's age (what a
/// rebuild would lose) or that there is none.
async fn rebuild_from(
    state: &AppState,
    instance: &Instance,
    wanted: bool,
) -> AppResult<crate::backups::store::Backup> {
    match (bulk::latest_s3_backup(state, &instance.id).await?, wanted) {
        (Some(b), true) => Ok(b),
        (Some(b), false) => {
            let taken = b.completed_at.unwrap_or(b.created_at);
            Err(conflict(
                "NODE_OFFLINE",
                format!(
                    "the server's node is offline. Its latest backup in S3 was taken {} ago: \
                     ask again with \"from_backup\": true to rebuild the server from it, \
                     losing what changed since",
                    bulk::age(crate::db::now_ms() - taken)
                ),
            ))
        }
        (None, _) => Err(conflict(
            "NODE_OFFLINE",
            "the server's node is offline and the server has no completed backup in S3 to \
             rebuild it from",
        )),
    }
}

/// The body of `POST /v1/nodes/{id}/migrate`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateNodeBody {
    /// Where to; omitted, each server goes to its best fit.
    #[serde(default)]
    pub target_node_id: Option<String>,
    /// Only these servers of the node; omitted, all of them.
    #[serde(default)]
    pub instance_ids: Option<Vec<String>>,
    /// Moves run at once (1 to 16, default 2).
    #[serde(default)]
    pub wave_size: Option<usize>,
    /// The node is offline: rebuild each server from its latest backup in S3 (what
    /// changed since is lost). Servers without one are named and left.
    #[serde(default)]
    pub from_backup: bool,
}

/// Checks a wave size.
///
/// # Errors
/// 422 outside 1..=16.
pub fn wave(size: Option<usize>) -> AppResult<usize> {
    match size {
        None => Ok(bulk::DEFAULT_WAVE),
        Some(n) if (1..=bulk::MAX_WAVE).contains(&n) => Ok(n),
        Some(_) => Err(AppError::unprocessable(
            "wave_size",
            format!("wave_size must be between 1 and {}", bulk::MAX_WAVE),
        )),
    }
}

/// `POST /v1/nodes/{id}/migrate`: moves the node's servers (or the ones named) to the
/// node named or each to its best fit, in waves (202 with the queued moves and the
/// servers that fit nowhere, left where they are).
pub async fn migrate_node(
    State(state): State<AppState>,
    Authorized {
        resource: node,
        user,
        ..
    }: Authorized<crate::nodes::store::Node, perm::InstancesMigrate>,
    body: axum::body::Bytes,
) -> AppResult<Accepted<bulk::Planned>> {
    let body: MigrateNodeBody = crate::backups::optional_json(&body)?;
    let wave = wave(body.wave_size)?;
    let pool = &state.db.pool;
    let target = match body
        .target_node_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(id) => {
            let t = placement::named(&state, &node.organization_id, id).await?;
            if t.id == node.id {
                return Err(AppError::coded(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "SAME_NODE",
                    "the target is the node being emptied",
                ));
            }
            crate::instances::ops::power::connected(&state, &t.id).await?;
            Some(t.id)
        }
        None => None,
    };
    let node_up = crate::instances::ops::power::connected(&state, &node.id).await;
    match (node_up, body.from_backup) {
        (Ok(_), true) => return Err(source_online()),
        (Err(e), false) => return Err(e),
        _ => {}
    }
    let mut instances = crate::instances::store::list_for_node(pool, &node.id).await?;
    if let Some(ids) = &body.instance_ids {
        if let Some(stranger) = ids
            .iter()
            .find(|id| !instances.iter().any(|i| &i.id == *id))
        {
            return Err(AppError::unprocessable(
                "instance_ids",
                format!("{stranger} is not a server of this node"),
            ));
        }
        instances.retain(|i| ids.contains(&i.id));
    }
    let plan = bulk::Plan {
        org_id: &node.organization_id,
        source: &node.id,
        target: target.as_deref(),
        wave,
        user_id: &user.user.id,
        from_backup: body.from_backup,
    };
    let planned = bulk::start(&state, &plan, instances).await?;
    Ok(Accepted(planned))
}

/// `?organization_id=&instance_id=` of the list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    /// The organization (default: the caller's personal one).
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Only the moves of this server.
    #[serde(default)]
    pub instance_id: Option<String>,
}

/// `GET /v1/migrations`: the organization's moves, newest first (200 at most).
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<ListQuery>,
) -> AppResult<AppJson<MigrationList>> {
    let member = scoped(
        &state,
        &user,
        q.organization_id.as_deref(),
        "instances.read",
    )
    .await?;
    let rows = store::list(
        &state.db.pool,
        &member.org_id,
        q.instance_id.as_deref().filter(|s| !s.is_empty()),
        LIST_LIMIT,
    )
    .await?;
    Ok(AppJson(MigrationList {
        data: rows.iter().map(MigrationView::from).collect(),
    }))
}

/// `GET /v1/migrations/{id}`.
pub async fn get(
    Authorized { resource, .. }: Authorized<Migration, perm::InstancesRead>,
) -> AppJson<MigrationView> {
    AppJson(MigrationView::from(&resource))
}

/// `POST /v1/migrations/{id}/cancel`: stops a move before its switch (202; the move ends
/// `cancelled` at its next step, the source as it was). 409 `MIGRATION_PAST_CANCEL` once
/// it is switching or over.
pub async fn cancel(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Migration, perm::InstancesMigrate>,
) -> AppResult<Accepted<MigrationView>> {
    if !store::request_cancel(&state.db.pool, &resource.id).await? {
        return Err(conflict(
            "MIGRATION_PAST_CANCEL",
            format!(
                "the move is {}: it can no longer be cancelled",
                resource.state
            ),
        ));
    }
    let now = store::find(&state.db.pool, &resource.id)
        .await?
        .ok_or_else(|| AppError::not_found("migration"))?;
    Ok(Accepted(MigrationView::from(&now)))
}
