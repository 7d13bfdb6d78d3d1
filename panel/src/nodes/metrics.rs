//! Node metrics: one sample per heartbeat (10 s) kept for 8 days, read back as raw points
//! for the last hour, 5-minute averages for a day, hourly averages for a week.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

use crate::auth::extract::CurrentUser;
use crate::db::{now_ms, rfc3339};
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::state::AppState;

/// How long samples are kept.
const RETENTION_MS: i64 = 8 * 24 * 3600 * 1000;

fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_u64()
        .and_then(|n| i64::try_from(n).ok())
        .unwrap_or(0)
}

/// Stores a sample from the agent and drops this node's samples past retention.
///
/// # Errors
/// Database failures.
pub async fn record(pool: &AnyPool, node_id: &str, sample: &Value) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO node_metrics (node_id, at, cpu_percent, memory_used_bytes, memory_total_bytes, \
         disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (node_id, at) DO NOTHING",
    )
    .bind(node_id)
    .bind(now)
    .bind(sample["cpu_percent"].as_f64().unwrap_or(0.0).clamp(0.0, 100.0))
    .bind(int(sample, "memory_used_bytes"))
    .bind(int(sample, "memory_total_bytes"))
    .bind(int(sample, "disk_used_bytes"))
    .bind(int(sample, "disk_total_bytes"))
    .bind(int(sample, "net_rx_bytes"))
    .bind(int(sample, "net_tx_bytes"))
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM node_metrics WHERE node_id = $1 AND at < $2")
        .bind(node_id)
        .bind(now - RETENTION_MS)
        .execute(pool)
        .await?;
    Ok(())
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct HistoryQuery {
    range: Option<String>,
}

/// `(span, bucket)` in ms for a range name; bucket 0 means raw samples.
pub(crate) fn range(name: &str) -> AppResult<(i64, i64)> {
    match name {
        "1h" => Ok((3_600_000, 0)),
        "24h" => Ok((86_400_000, 300_000)),
        "7d" => Ok((7 * 86_400_000, 3_600_000)),
        _ => Err(AppError::Validation("range must be 1h, 24h or 7d".into())),
    }
}

/// `GET /v1/nodes/{id}/metrics/history?range=1h|24h|7d`.
pub async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> AppResult<AppJson<Value>> {
    let name = q.range.unwrap_or_else(|| "1h".into());
    let (span, bucket) = range(&name)?;
    super::handlers::node_for(&state, &user, &id, "nodes.read").await?;
    // Raw samples are buckets of one millisecond: the same query serves every range.
    let width = bucket.max(1);
    let rows = sqlx::query(
        "SELECT CAST((at / $3) * $3 AS BIGINT) AS bucket, \
         CAST(AVG(cpu_percent) AS DOUBLE PRECISION) AS cpu, \
         CAST(AVG(memory_used_bytes) AS BIGINT) AS mem, CAST(MAX(memory_total_bytes) AS BIGINT) AS mem_total, \
         CAST(AVG(disk_used_bytes) AS BIGINT) AS disk, CAST(MAX(disk_total_bytes) AS BIGINT) AS disk_total, \
         CAST(MAX(net_rx_bytes) AS BIGINT) AS rx, CAST(MAX(net_tx_bytes) AS BIGINT) AS tx \
         FROM node_metrics WHERE node_id = $1 AND at >= $2 GROUP BY (at / $3) ORDER BY bucket",
    )
    .bind(&id)
    .bind(now_ms() - span)
    .bind(width)
    .fetch_all(&state.db.pool)
    .await?;
    let points = rows
        .iter()
        .map(|r| {
            Ok(json!({
                "at": rfc3339(r.try_get("bucket")?),
                "cpu_percent": r.try_get::<f64, _>("cpu")?,
                "memory_used_bytes": r.try_get::<i64, _>("mem")?,
                "memory_total_bytes": r.try_get::<i64, _>("mem_total")?,
                "disk_used_bytes": r.try_get::<i64, _>("disk")?,
                "disk_total_bytes": r.try_get::<i64, _>("disk_total")?,
                "net_rx_bytes": r.try_get::<i64, _>("rx")?,
                "net_tx_bytes": r.try_get::<i64, _>("tx")?,
            }))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(AppJson(json!({
        "range": name,
        "bucket_secs": if bucket == 0 { 10 } else { bucket / 1000 },
        "points": points,
    })))
}
