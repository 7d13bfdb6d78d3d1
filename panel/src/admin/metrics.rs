//! `GET /v1/admin/metrics`: the platform at a glance, counted in the database (users,
//! organizations, nodes online and offline, instances by state, backups, sessions), plus
//! the agents connected to this replica.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::auth::extract::AdminUser;
use crate::db::now_ms;
use crate::error::{AppJson, AppResult};
use crate::state::AppState;

/// Users by kind.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct UserCounts {
    pub total: i64,
    pub admins: i64,
    pub suspended: i64,
    pub mfa_enabled: i64,
}

/// Nodes by connection.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct NodeCounts {
    pub total: i64,
    pub online: i64,
    // `total - online`: not a column.
    #[sqlx(skip)]
    pub offline: i64,
    pub cordoned: i64,
}

/// A total.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Total {
    pub total: i64,
}

/// Instances by state.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceCounts {
    pub total: i64,
    pub by_state: BTreeMap<String, i64>,
}

/// Backups by status, and their stored size.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackupCounts {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub size_bytes: i64,
}

/// Sessions not revoked nor expired.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionCounts {
    pub active: i64,
}

/// Agents connected to this replica.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TunnelCounts {
    pub connected_here: usize,
}

/// The admin dashboard's figures.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlatformMetrics {
    pub users: UserCounts,
    pub organizations: Total,
    pub nodes: NodeCounts,
    pub instances: InstanceCounts,
    pub backups: BackupCounts,
    pub sessions: SessionCounts,
    pub tunnels: TunnelCounts,
    /// When the figures were counted (RFC 3339).
    pub generated_at: String,
}

/// One number.
async fn count(pool: &AnyPool, sql: &'static str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sql).fetch_one(pool).await
}

/// Counts per value of a column (`SELECT key, n ... GROUP BY key`).
async fn count_by(pool: &AnyPool, sql: &'static str) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(pool).await?;
    Ok(rows.into_iter().collect())
}

async fn users(pool: &AnyPool) -> Result<UserCounts, sqlx::Error> {
    sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) AS total, \
         CAST(COALESCE(SUM(CASE WHEN is_admin = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS admins, \
         CAST(COALESCE(SUM(CASE WHEN suspended_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS suspended, \
         CAST(COALESCE(SUM(CASE WHEN mfa_enabled = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS mfa_enabled \
         FROM users",
    )
    .fetch_one(pool)
    .await
}

async fn nodes(pool: &AnyPool) -> Result<NodeCounts, sqlx::Error> {
    let mut counts: NodeCounts = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) AS total, \
         CAST(COALESCE(SUM(CASE WHEN connected = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS online, \
         CAST(COALESCE(SUM(CASE WHEN cordoned = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS cordoned \
         FROM nodes",
    )
    .fetch_one(pool)
    .await?;
    counts.offline = counts.total - counts.online;
    Ok(counts)
}

async fn instances(pool: &AnyPool) -> Result<InstanceCounts, sqlx::Error> {
    let by_state = count_by(
        pool,
        "SELECT state AS k, CAST(COUNT(*) AS BIGINT) AS n FROM instances GROUP BY state",
    )
    .await?;
    Ok(InstanceCounts {
        total: by_state.values().sum(),
        by_state,
    })
}

async fn backups(pool: &AnyPool) -> Result<BackupCounts, sqlx::Error> {
    let by_status = count_by(
        pool,
        "SELECT status AS k, CAST(COUNT(*) AS BIGINT) AS n FROM backups GROUP BY status",
    )
    .await?;
    let bytes = count(
        pool,
        "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM backups",
    )
    .await?;
    Ok(BackupCounts {
        total: by_status.values().sum(),
        by_status,
        size_bytes: bytes,
    })
}

/// The dashboard figures.
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<PlatformMetrics>> {
    let pool = &state.db.pool;
    let sessions: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms())
    .fetch_one(pool)
    .await?;
    Ok(AppJson(PlatformMetrics {
        users: users(pool).await?,
        organizations: Total {
            total: count(pool, "SELECT CAST(COUNT(*) AS BIGINT) FROM organizations").await?,
        },
        nodes: nodes(pool).await?,
        instances: instances(pool).await?,
        backups: backups(pool).await?,
        sessions: SessionCounts { active: sessions },
        tunnels: TunnelCounts {
            connected_here: state.tunnels.list().len(),
        },
        generated_at: crate::db::rfc3339(now_ms()),
    }))
}
