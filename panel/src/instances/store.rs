//! SQL for `instances` and `allocations`; the only place their rows are mapped to
//! structs.
//!
//! `variables` holds a JSON object (env name → value) with the resolved value of every
//! egg variable as of the last create or update (see `input.rs`); `state` and
//! `desired_state` hold the names of [`InstanceState`] and [`DesiredState`].

use std::collections::BTreeMap;

use shardlyn_proto::instance::{Allocation, DesiredState, InstanceState, Limits};
use sqlx::{AnyExecutor, AnyPool};

use crate::db::row::{Flag, JsonText};
use crate::db::{new_id, now_ms};

/// A stored instance with its allocations (primary first).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Instance {
    pub id: String,
    pub org_id: String,
    pub node_id: String,
    pub workload_id: String,
    pub name: String,
    pub description: String,
    /// One of the egg's images.
    pub image: String,
    /// Env name → value, as stored (see the module doc).
    #[sqlx(try_from = "JsonText")]
    pub variables: BTreeMap<String, String>,
    #[sqlx(flatten, try_from = "LimitsRow")]
    pub limits: Limits,
    /// Last state the agent reported (or the initial one).
    #[sqlx(try_from = "String")]
    pub state: InstanceState,
    #[sqlx(try_from = "String")]
    pub desired_state: DesiredState,
    /// Unix ms of the first successful install.
    pub installed_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    // Read by a second query.
    #[sqlx(skip)]
    pub allocations: Vec<Allocation>,
}

/// The name stored for a desired state.
#[must_use]
pub fn desired_str(d: DesiredState) -> &'static str {
    match d {
        DesiredState::Running => "running",
        DesiredState::Stopped => "stopped",
    }
}

macro_rules! columns {
    () => {
        "id, org_id, node_id, workload_id, name, description, image, variables, memory_mb, \
         swap_mb, cpu_percent, disk_mb, pids, io_weight, state, desired_state, installed_at, \
         created_by, created_at, updated_at"
    };
}

/// The limit columns of an instance row (`Limits` is a wire type of `proto`).
#[derive(sqlx::FromRow)]
struct LimitsRow {
    memory_mb: i64,
    swap_mb: i64,
    cpu_percent: i64,
    disk_mb: i64,
    pids: i64,
    io_weight: i64,
}

impl From<LimitsRow> for Limits {
    fn from(r: LimitsRow) -> Self {
        Self {
            memory_mb: r.memory_mb,
            swap_mb: r.swap_mb,
            cpu_percent: r.cpu_percent,
            disk_mb: r.disk_mb,
            pids: r.pids,
            io_weight: r.io_weight,
        }
    }
}

/// An allocation row with the instance it belongs to.
#[derive(sqlx::FromRow)]
struct AllocationRow {
    instance_id: String,
    ip: String,
    #[sqlx(try_from = "i64")]
    port: u16,
    #[sqlx(rename = "is_primary", try_from = "Flag")]
    primary: bool,
}

macro_rules! allocation_columns {
    () => {
        "instance_id, ip, port, is_primary"
    };
}

/// The ids of one page of an organization's instances; `$2 = ''` means any node.
macro_rules! page_ids {
    () => {
        "SELECT id FROM instances WHERE org_id = $1 AND ($2 = '' OR node_id = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    };
}

/// Attaches allocation rows (any order) to their instances, primary first, then by port.
fn attach(instances: &mut [Instance], rows: Vec<AllocationRow>) {
    let at: std::collections::HashMap<String, usize> = instances
        .iter()
        .enumerate()
        .map(|(n, i)| (i.id.clone(), n))
        .collect();
    for row in rows {
        if let Some(i) = at.get(&row.instance_id).map(|&n| &mut instances[n]) {
            i.allocations.push(Allocation {
                ip: row.ip,
                port: row.port,
                primary: row.primary,
            });
        }
    }
    for i in instances {
        i.allocations
            .sort_by_key(|a| (std::cmp::Reverse(a.primary), a.port));
    }
}

/// An instance to insert.
pub struct NewInstance<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub node_id: &'a str,
    pub workload_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub image: &'a str,
    pub variables: &'a BTreeMap<String, String>,
    pub limits: &'a Limits,
    pub state: InstanceState,
    pub desired_state: DesiredState,
    pub created_by: &'a str,
}

fn variables_json(variables: &BTreeMap<String, String>) -> String {
    serde_json::to_string(variables).unwrap_or_else(|_| "{}".into())
}

/// Inserts an instance row (without allocations, see [`insert_allocation`]).
pub async fn insert<'e>(
    db: impl AnyExecutor<'e>,
    new: &NewInstance<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instances (id, org_id, node_id, workload_id, name, description, image, \
         variables, memory_mb, swap_mb, cpu_percent, disk_mb, pids, io_weight, state, \
         desired_state, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)",
    )
    .bind(new.id)
    .bind(new.org_id)
    .bind(new.node_id)
    .bind(new.workload_id)
    .bind(new.name)
    .bind(new.description)
    .bind(new.image)
    .bind(variables_json(new.variables))
    .bind(new.limits.memory_mb)
    .bind(new.limits.swap_mb)
    .bind(new.limits.cpu_percent)
    .bind(new.limits.disk_mb)
    .bind(new.limits.pids)
    .bind(new.limits.io_weight)
    .bind(new.state.as_str())
    .bind(desired_str(new.desired_state))
    .bind(new.created_by)
    .bind(now_ms())
    .execute(db)
    .await?;
    crate::readcache::changed();
    Ok(())
}

/// Reserves `allocation.port` on `node_id` for an instance. A port already taken on the
/// node fails with a unique violation (see [`is_port_taken`]).
pub async fn insert_allocation<'e>(
    db: impl AnyExecutor<'e>,
    node_id: &str,
    instance_id: &str,
    allocation: &Allocation,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO allocations (id, node_id, ip, port, instance_id, is_primary) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(node_id)
    .bind(&allocation.ip)
    .bind(i64::from(allocation.port))
    .bind(instance_id)
    .bind(i64::from(allocation.primary))
    .execute(db)
    .await?;
    crate::readcache::changed();
    Ok(())
}

/// Whether an error is the `UNIQUE (node_id, port)` violation of `allocations`.
#[must_use]
pub fn is_port_taken(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The ports of a node's allocations within `start..=end`, ascending.
pub async fn ports_in_range<'e>(
    db: impl AnyExecutor<'e>,
    node_id: &str,
    start: u16,
    end: u16,
) -> Result<Vec<u16>, sqlx::Error> {
    let ports: Vec<i64> = sqlx::query_scalar(
        "SELECT port FROM allocations WHERE node_id = $1 AND port >= $2 AND port <= $3 \
         ORDER BY port",
    )
    .bind(node_id)
    .bind(i64::from(start))
    .bind(i64::from(end))
    .fetch_all(db)
    .await?;
    Ok(ports
        .into_iter()
        .filter_map(|p| u16::try_from(p).ok())
        .collect())
}

/// An instance by id, unchecked: for background work (schedules, syncs, agents' events)
/// and re-reads after a write. Routes reach an instance through [`crate::authz`].
///
/// # Errors
/// Database failures or an undecodable row.
pub async fn find(pool: &AnyPool, id: &str) -> Result<Option<Instance>, sqlx::Error> {
    let Some(instance) = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM instances WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let mut instances = [instance];
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        allocation_columns!(),
        " FROM allocations WHERE instance_id = $1"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    attach(&mut instances, rows);
    let [instance] = instances;
    Ok(Some(instance))
}

/// Every instance placed on a node, oldest first (for re-pushing specs when its agent
/// connects).
///
/// # Errors
/// Database failures or an undecodable row.
pub async fn list_for_node(pool: &AnyPool, node_id: &str) -> Result<Vec<Instance>, sqlx::Error> {
    let mut instances: Vec<Instance> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM instances WHERE node_id = $1 ORDER BY created_at, id"
    ))
    .bind(node_id)
    .fetch_all(pool)
    .await?;
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        allocation_columns!(),
        " FROM allocations WHERE node_id = $1"
    ))
    .bind(node_id)
    .fetch_all(pool)
    .await?;
    attach(&mut instances, rows);
    Ok(instances)
}

/// One page of an organization's instances (optionally only those on `node_id`),
/// newest first.
///
/// # Errors
/// Database failures or an undecodable row.
pub async fn list(
    pool: &AnyPool,
    org_id: &str,
    node_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Instance>, sqlx::Error> {
    let node = node_id.unwrap_or_default();
    let mut instances: Vec<Instance> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM instances WHERE id IN (",
        page_ids!(),
        ") ORDER BY created_at DESC, id DESC"
    ))
    .bind(org_id)
    .bind(node)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        allocation_columns!(),
        " FROM allocations WHERE instance_id IN (",
        page_ids!(),
        ")"
    ))
    .bind(org_id)
    .bind(node)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    attach(&mut instances, rows);
    Ok(instances)
}

/// How many instances [`list`] pages through.
///
/// # Errors
/// Database failures.
pub async fn count<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    node_id: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM instances \
         WHERE org_id = $1 AND ($2 = '' OR node_id = $2)",
    )
    .bind(org_id)
    .bind(node_id.unwrap_or_default())
    .fetch_one(db)
    .await
}

/// How many instances are placed on a node.
///
/// # Errors
/// Database failures.
pub async fn count_on_node<'e>(
    db: impl AnyExecutor<'e>,
    node_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM instances WHERE node_id = $1")
        .bind(node_id)
        .fetch_one(db)
        .await
}

/// How many instances run a workload.
///
/// # Errors
/// Database failures.
pub async fn count_for_workload<'e>(
    db: impl AnyExecutor<'e>,
    workload_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM instances WHERE workload_id = $1")
        .bind(workload_id)
        .fetch_one(db)
        .await
}

/// The settings `PUT /v1/instances/{id}` may change.
pub struct Settings<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub image: &'a str,
    pub variables: &'a BTreeMap<String, String>,
    pub limits: &'a Limits,
}

/// Replaces an instance's settings; whether it existed.
///
/// # Errors
/// Database failures.
pub async fn update_settings<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    s: &Settings<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE instances SET name = $2, description = $3, image = $4, variables = $5, \
         memory_mb = $6, swap_mb = $7, cpu_percent = $8, disk_mb = $9, pids = $10, \
         io_weight = $11, updated_at = $12 WHERE id = $1",
    )
    .bind(id)
    .bind(s.name)
    .bind(s.description)
    .bind(s.image)
    .bind(variables_json(s.variables))
    .bind(s.limits.memory_mb)
    .bind(s.limits.swap_mb)
    .bind(s.limits.cpu_percent)
    .bind(s.limits.disk_mb)
    .bind(s.limits.pids)
    .bind(s.limits.io_weight)
    .bind(now_ms())
    .execute(db)
    .await?;
    crate::readcache::changed();
    Ok(done.rows_affected() > 0)
}

/// An instance's stored limits (`None`: no such instance); read inside a transaction
/// that changes them.
///
/// # Errors
/// Database failures.
pub async fn limits_of<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
) -> Result<Option<Limits>, sqlx::Error> {
    let row: Option<LimitsRow> = sqlx::query_as(
        "SELECT memory_mb, swap_mb, cpu_percent, disk_mb, pids, io_weight FROM instances \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Limits::from))
}

/// How far ahead of the panel's clock an agent's state version may be, in µs. Versions
/// are the agent's wall clock in µs (strictly increasing), so a correct node is ahead
/// only by its clock skew; 10 minutes tolerates a badly synchronised clock while a
/// version from the far future (which would freeze the recorded state, since every
/// later report would look older) is refused.
pub const MAX_STATE_VERSION_AHEAD_US: u64 = 10 * 60 * 1_000_000;

/// The newest state version the panel accepts now (see [`MAX_STATE_VERSION_AHEAD_US`]).
#[must_use]
pub fn max_state_version() -> u64 {
    u64::try_from(now_ms())
        .unwrap_or(0)
        .saturating_mul(1000)
        .saturating_add(MAX_STATE_VERSION_AHEAD_US)
}

/// Records the state that `node_id`'s agent reported for instance `id`, unless a newer
/// report (a higher `version`) or this very one is already recorded: events and power
/// answers may arrive in either order, and both carry the same report (recorded, and so
/// published, once). Only the instance's own node counts; a version beyond
/// [`max_state_version`] is refused, and one recorded before that bound existed never
/// blocks a plausible report. The instance's organization when the report was recorded
/// (`None`: older than the recorded one, refused, or not this node's instance).
///
/// # Errors
/// Database failures.
pub async fn set_state(
    pool: &AnyPool,
    id: &str,
    node_id: &str,
    state: InstanceState,
    version: u64,
) -> Result<Option<String>, sqlx::Error> {
    let bound = max_state_version();
    if version > bound {
        return Ok(None);
    }
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    let bound = i64::try_from(bound).unwrap_or(i64::MAX);
    let org_id = sqlx::query_scalar(
        "UPDATE instances SET state = $2, state_version = $3 \
         WHERE id = $1 AND node_id = $4 AND (state_version < $3 OR state_version > $5) \
         RETURNING org_id",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(version)
    .bind(node_id)
    .bind(bound)
    .fetch_optional(pool)
    .await?;
    if org_id.is_some() {
        crate::readcache::changed();
    }
    Ok(org_id)
}

/// Records the power state the panel wants.
///
/// # Errors
/// Database failures.
pub async fn set_desired(
    pool: &AnyPool,
    id: &str,
    desired: DesiredState,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE instances SET desired_state = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(desired_str(desired))
        .bind(now_ms())
        .execute(pool)
        .await?;
    crate::readcache::changed();
    Ok(())
}

/// Records the first successful install at `at` (unix ms); later calls keep the first.
///
/// # Errors
/// Database failures.
pub async fn mark_installed(pool: &AnyPool, id: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE instances SET installed_at = $2 WHERE id = $1 AND installed_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(pool)
        .await?;
    crate::readcache::changed();
    Ok(())
}

/// Makes `to` the node of instance `id` (which must still be on `from`), with
/// `allocations` there and `desired` as its desired state, in one transaction. False
/// when the instance was not on `from` any more.
///
/// # Errors
/// Database failures; a port of `allocations` taken on `to` (a unique violation, see
/// [`is_port_taken`]) leaves everything as it was.
pub async fn move_to_node(
    pool: &AnyPool,
    id: &str,
    from: &str,
    to: &str,
    allocations: &[Allocation],
    desired: DesiredState,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE instances SET node_id = $3, desired_state = $4, state = 'offline', \
         updated_at = $5 WHERE id = $1 AND node_id = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(desired_str(desired))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM allocations WHERE instance_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for allocation in allocations {
        insert_allocation(&mut *tx, to, id, allocation).await?;
    }
    tx.commit().await?;
    crate::readcache::changed();
    Ok(true)
}

/// Deletes an instance (its allocations, tickets and metrics cascade); whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM instances WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    crate::readcache::changed();
    Ok(done.rows_affected() > 0)
}

impl crate::authz::OrgScoped for Instance {
    const NAME: &'static str = "instance";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }

    fn server_id(&self) -> Option<&str> {
        Some(&self.id)
    }
}
