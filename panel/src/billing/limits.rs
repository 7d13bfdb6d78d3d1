//! Plan limits, checked in the same transaction as the change they guard.
//!
//! A change that adds to what an organization uses (a server, memory, a node, a backup,
//! a member) runs as: [`lock`] (a transaction holding the organization: `BEGIN
//! IMMEDIATE` on SQLite, `SELECT ... FOR UPDATE` on the organization's row on
//! PostgreSQL, so concurrent changes of one organization queue), [`check`] (402
//! `PLAN_LIMIT` naming the limit, the usage and the cap), the change's own writes, then
//! commit. Usage is counted inside the transaction, so six concurrent creates against a
//! cap of two make two. Only what adds is refused: after a downgrade below current use
//! nothing is deleted, and shrinking stays allowed.
//!
//! Unlimited ([`plan_for`] is `None`): billing off (no Stripe key), an organization
//! owned by a platform admin, or no plan at all (no default plan).

use sqlx::{Any, AnyConnection, Transaction};

use super::plans::{self, HOLDING, Plan, PlanLimits};
use crate::db::Backend;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// One limit of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Servers,
    MemoryMb,
    CpuPercent,
    DiskMb,
    Nodes,
    BackupsPerServer,
    Members,
}

impl Limit {
    /// Every limit, in the order pages show them.
    pub const ALL: [Limit; 7] = [
        Limit::Servers,
        Limit::MemoryMb,
        Limit::CpuPercent,
        Limit::DiskMb,
        Limit::Nodes,
        Limit::BackupsPerServer,
        Limit::Members,
    ];

    /// Its name in the API (`limit` of a 402, the keys of `limits`).
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Servers => "servers",
            Self::MemoryMb => "memory_mb",
            Self::CpuPercent => "cpu_percent",
            Self::DiskMb => "disk_mb",
            Self::Nodes => "nodes",
            Self::BackupsPerServer => "backups_per_server",
            Self::Members => "members",
        }
    }

    /// The cap of `limits` for it.
    #[must_use]
    pub fn cap(self, limits: &PlanLimits) -> Option<i64> {
        match self {
            Self::Servers => limits.servers,
            Self::MemoryMb => limits.memory_mb,
            Self::CpuPercent => limits.cpu_percent,
            Self::DiskMb => limits.disk_mb,
            Self::Nodes => limits.nodes,
            Self::BackupsPerServer => limits.backups_per_server,
            Self::Members => limits.members,
        }
    }

    /// How a message names an amount of it.
    fn amount(self, n: i64) -> String {
        match self {
            Self::Servers => format!("{n} server(s)"),
            Self::MemoryMb => format!("{n} MiB of memory"),
            Self::CpuPercent => format!("{n}% CPU"),
            Self::DiskMb => format!("{n} MiB of disk"),
            Self::Nodes => format!("{n} node(s)"),
            Self::BackupsPerServer => format!("{n} backup(s) of this server"),
            Self::Members => format!("{n} member(s) and pending invite(s)"),
        }
    }
}

/// One thing a change adds: `adding` of `limit` (for `BackupsPerServer`, on the server
/// `instance_id`).
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub limit: Limit,
    pub adding: i64,
    pub instance_id: Option<&'a str>,
}

impl<'a> Ask<'a> {
    /// `adding` of `limit`.
    #[must_use]
    pub fn new(limit: Limit, adding: i64) -> Self {
        Self {
            limit,
            adding,
            instance_id: None,
        }
    }

    /// One more backup of `instance_id`.
    #[must_use]
    pub fn backup_of(instance_id: &'a str) -> Self {
        Self {
            limit: Limit::BackupsPerServer,
            adding: 1,
            instance_id: Some(instance_id),
        }
    }
}

/// A transaction holding organization `org_id` against concurrent limited changes.
/// With billing off nothing is capped and it is a plain transaction.
///
/// # Errors
/// Database failures.
pub async fn lock(state: &AppState, org_id: &str) -> AppResult<Transaction<'static, Any>> {
    if !super::enabled(state) {
        return Ok(state.db.pool.begin().await?);
    }
    match state.db.backend {
        Backend::Sqlite => Ok(state.db.begin_write().await?),
        Backend::Postgres => {
            let mut tx = state.db.pool.begin().await?;
            sqlx::query("SELECT id FROM organizations WHERE id = $1 FOR UPDATE")
                .bind(org_id)
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        }
    }
}

/// The plan whose caps apply to organization `org_id`; `None` is unlimited (see the
/// module doc). A subscription that holds a plan (active, trialing, past due, unpaid,
/// given by an admin) gives its plan; anything else the default plan. Two queries: who
/// owns the organization and what it holds, then the plan.
///
/// # Errors
/// Database failures.
pub async fn plan_for(
    conn: &mut AnyConnection,
    state: &AppState,
    org_id: &str,
) -> AppResult<Option<Plan>> {
    if !super::enabled(state) {
        return Ok(None);
    }
    let (admins, held): (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT CAST((SELECT COUNT(*) FROM org_members m JOIN users u ON u.id = m.user_id \
          WHERE m.org_id = $1 AND m.role = 'owner' AND u.is_admin = 1) AS BIGINT), \
         (SELECT plan_id FROM subscriptions WHERE org_id = $1 AND plan_id IS NOT NULL \
          AND status IN {HOLDING})"
    )))
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await?;
    if admins > 0 {
        return Ok(None);
    }
    Ok(plans::find_for_limits(conn, held.as_deref()).await?)
}

/// The plan organization `org_id` holds, billing aside: its subscription's, else the
/// default plan.
///
/// # Errors
/// Database failures.
pub async fn held_plan(conn: &mut AnyConnection, org_id: &str) -> sqlx::Result<Option<Plan>> {
    let held: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT plan_id FROM subscriptions WHERE org_id = $1 AND plan_id IS NOT NULL \
         AND status IN {HOLDING}"
    )))
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = held
        && let Some(plan) = plans::find(&mut *conn, &id).await?
    {
        return Ok(Some(plan));
    }
    plans::default_plan(conn).await
}

/// What the organization's servers use together: count, memory, CPU, disk.
async fn servers_usage(conn: &mut AnyConnection, org_id: &str) -> sqlx::Result<[i64; 4]> {
    let (n, mem, cpu, disk): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT), \
         CAST(COALESCE(SUM(cpu_percent), 0) AS BIGINT), \
         CAST(COALESCE(SUM(disk_mb), 0) AS BIGINT) FROM instances WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_one(conn)
    .await?;
    Ok([n, mem, cpu, disk])
}

/// What organization `org_id` uses of `limit` now (`BackupsPerServer`: of `instance_id`,
/// or the most any one server has without it).
///
/// # Errors
/// Database failures.
pub async fn usage_of(
    conn: &mut AnyConnection,
    org_id: &str,
    limit: Limit,
    instance_id: Option<&str>,
) -> sqlx::Result<i64> {
    let sql = match (limit, instance_id) {
        (Limit::Servers, _) => "SELECT COUNT(*) FROM instances WHERE org_id = $1",
        (Limit::MemoryMb, _) => {
            "SELECT CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) FROM instances WHERE org_id = $1"
        }
        (Limit::CpuPercent, _) => {
            "SELECT CAST(COALESCE(SUM(cpu_percent), 0) AS BIGINT) FROM instances WHERE org_id = $1"
        }
        (Limit::DiskMb, _) => {
            "SELECT CAST(COALESCE(SUM(disk_mb), 0) AS BIGINT) FROM instances WHERE org_id = $1"
        }
        // Its own nodes (not the platform's it was given), and cloud nodes on the way.
        (Limit::Nodes, _) => {
            "SELECT (SELECT COUNT(*) FROM nodes WHERE org_id = $1 AND platform = 0) + \
             (SELECT COUNT(*) FROM provision_requests WHERE org_id = $1 AND node_id IS NULL \
              AND status IN ('pending', 'planning', 'planned', 'applying', 'applied'))"
        }
        (Limit::BackupsPerServer, Some(_)) => {
            "SELECT COUNT(*) FROM backups WHERE org_id = $1 AND instance_id = $2"
        }
        (Limit::BackupsPerServer, None) => {
            "SELECT CAST(COALESCE(MAX(n), 0) AS BIGINT) FROM \
             (SELECT COUNT(*) AS n FROM backups WHERE org_id = $1 GROUP BY instance_id) t"
        }
        (Limit::Members, _) => {
            "SELECT (SELECT COUNT(*) FROM org_members WHERE org_id = $1) + \
             (SELECT COUNT(*) FROM org_invites WHERE org_id = $1 AND accepted_at IS NULL \
              AND expires_at > $2)"
        }
    };
    let mut q = sqlx::query_scalar::<_, i64>(sql).bind(org_id);
    match limit {
        Limit::BackupsPerServer if instance_id.is_some() => q = q.bind(instance_id),
        Limit::Members => q = q.bind(crate::db::now_ms()),
        _ => {}
    }
    q.fetch_one(conn).await
}

/// Refuses the change with 402 `PLAN_LIMIT` when any `asks` would pass its cap. Only
/// adding is refused. Call it inside [`lock`]'s transaction, before the change's writes.
///
/// # Errors
/// 402 `PLAN_LIMIT`; database failures.
pub async fn check(
    conn: &mut AnyConnection,
    state: &AppState,
    org_id: &str,
    asks: &[Ask<'_>],
) -> AppResult<()> {
    if asks.iter().all(|a| a.adding <= 0) {
        return Ok(());
    }
    let Some(plan) = plan_for(conn, state, org_id).await? else {
        return Ok(());
    };
    // The servers' four sums come from one query, read once.
    let mut servers: Option<[i64; 4]> = None;
    for ask in asks.iter().filter(|a| a.adding > 0) {
        let Some(cap) = ask.limit.cap(&plan.limits) else {
            continue;
        };
        let slot = match ask.limit {
            Limit::Servers => Some(0),
            Limit::MemoryMb => Some(1),
            Limit::CpuPercent => Some(2),
            Limit::DiskMb => Some(3),
            _ => None,
        };
        let usage = match slot {
            Some(i) => {
                if servers.is_none() {
                    servers = Some(servers_usage(conn, org_id).await?);
                }
                servers.map_or(0, |s| s[i])
            }
            None => usage_of(conn, org_id, ask.limit, ask.instance_id).await?,
        };
        if usage + ask.adding > cap {
            return Err(AppError::PlanLimit {
                limit: ask.limit.key(),
                usage,
                cap,
                message: format!(
                    "the {} plan allows {}; the organization has {} and this would add {}: \
                     upgrade the plan or free some up",
                    plan.name,
                    ask.limit.amount(cap),
                    ask.limit.amount(usage),
                    ask.adding
                ),
            });
        }
    }
    Ok(())
}

/// What an organization uses, every limit.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Usage {
    pub organization_id: String,
    pub servers: i64,
    pub memory_mb: i64,
    pub cpu_percent: i64,
    pub disk_mb: i64,
    pub nodes: i64,
    /// Members and pending invites.
    pub members: i64,
    /// The backups of the server that has the most.
    pub max_backups_on_a_server: i64,
}

impl Usage {
    /// The usage of `limit`.
    #[must_use]
    pub fn of(&self, limit: Limit) -> i64 {
        match limit {
            Limit::Servers => self.servers,
            Limit::MemoryMb => self.memory_mb,
            Limit::CpuPercent => self.cpu_percent,
            Limit::DiskMb => self.disk_mb,
            Limit::Nodes => self.nodes,
            Limit::BackupsPerServer => self.max_backups_on_a_server,
            Limit::Members => self.members,
        }
    }
}

/// Everything organization `org_id` uses.
///
/// # Errors
/// Database failures.
pub async fn usage(conn: &mut AnyConnection, org_id: &str) -> sqlx::Result<Usage> {
    let mut u = Usage {
        organization_id: org_id.to_owned(),
        ..Usage::default()
    };
    for limit in Limit::ALL {
        let n = usage_of(conn, org_id, limit, None).await?;
        match limit {
            Limit::Servers => u.servers = n,
            Limit::MemoryMb => u.memory_mb = n,
            Limit::CpuPercent => u.cpu_percent = n,
            Limit::DiskMb => u.disk_mb = n,
            Limit::Nodes => u.nodes = n,
            Limit::BackupsPerServer => u.max_backups_on_a_server = n,
            Limit::Members => u.members = n,
        }
    }
    Ok(u)
}
