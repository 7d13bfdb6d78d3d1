//! `GET /v1/admin/metrics`: the platform at a glance, counted in the database (users,
//! organizations, nodes online and offline, instances by state, backups, sessions), plus
//! the agents connected to this replica.

use std::collections::BTreeMap;

use axum::extract::State;
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

use crate::auth::extract::AdminUser;
use crate::db::now_ms;
use crate::error::{AppJson, AppResult};
use crate::state::AppState;

/// One number.
async fn count(pool: &AnyPool, sql: &'static str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sql).fetch_one(pool).await
}

/// Counts per value of a column (`SELECT key, n ... GROUP BY key`).
async fn count_by(pool: &AnyPool, sql: &'static str) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>("k")?, r.try_get::<i64, _>("n")?)))
        .collect()
}

async fn users(pool: &AnyPool) -> Result<Value, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS total, \
         CAST(COALESCE(SUM(CASE WHEN is_admin = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS admins, \
         CAST(COALESCE(SUM(CASE WHEN suspended_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS suspended, \
         CAST(COALESCE(SUM(CASE WHEN mfa_enabled = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS mfa_enabled \
         FROM users",
    )
    .fetch_one(pool)
    .await?;
    Ok(json!({
        "total": row.try_get::<i64, _>("total")?,
        "admins": row.try_get::<i64, _>("admins")?,
        "suspended": row.try_get::<i64, _>("suspended")?,
        "mfa_enabled": row.try_get::<i64, _>("mfa_enabled")?,
    }))
}

async fn nodes(pool: &AnyPool) -> Result<Value, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS total, \
         CAST(COALESCE(SUM(CASE WHEN connected = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS online, \
         CAST(COALESCE(SUM(CASE WHEN cordoned = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS cordoned \
         FROM nodes",
    )
    .fetch_one(pool)
    .await?;
    let total: i64 = row.try_get("total")?;
    let online: i64 = row.try_get("online")?;
    Ok(json!({
        "total": total,
        "online": online,
        "offline": total - online,
        "cordoned": row.try_get::<i64, _>("cordoned")?,
    }))
}

async fn instances(pool: &AnyPool) -> Result<Value, sqlx::Error> {
    let by_state = count_by(
        pool,
        "SELECT state AS k, CAST(COUNT(*) AS BIGINT) AS n FROM instances GROUP BY state",
    )
    .await?;
    Ok(json!({"total": by_state.values().sum::<i64>(), "by_state": by_state}))
}

async fn backups(pool: &AnyPool) -> Result<Value, sqlx::Error> {
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
    Ok(json!({
        "total": by_status.values().sum::<i64>(),
        "by_status": by_status,
        "size_bytes": bytes,
    }))
}

/// The dashboard figures.
pub async fn get(State(state): State<AppState>, _admin: AdminUser) -> AppResult<AppJson<Value>> {
    let pool = &state.db.pool;
    let sessions: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms())
    .fetch_one(pool)
    .await?;
    Ok(AppJson(json!({
        "users": users(pool).await?,
        "organizations": {
            "total": count(pool, "SELECT CAST(COUNT(*) AS BIGINT) FROM organizations").await?,
        },
        "nodes": nodes(pool).await?,
        "instances": instances(pool).await?,
        "backups": backups(pool).await?,
        "sessions": {"active": sessions},
        "tunnels": {"connected_here": state.tunnels.list().len()},
        "generated_at": crate::db::rfc3339(now_ms()),
    })))
}
