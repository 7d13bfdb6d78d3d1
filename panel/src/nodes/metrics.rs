//! Node metrics: one sample per heartbeat (10 s) kept for 8 days, read back as raw points
//! for the last hour, 5-minute averages for a day, hourly averages for a week.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use shardlyn_proto::metrics::NodeSample;
use sqlx::AnyPool;

use super::store::Node;
use crate::authz::{Authorized, perm};
use crate::db::now_ms;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::state::AppState;
use crate::types::Timestamp;

/// How long samples are kept.
const RETENTION_MS: i64 = 8 * 24 * 3600 * 1000;

/// A counter as the BIGINT column stores it.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Stores a sample from the agent and drops this node's samples past retention.
///
/// # Errors
/// Database failures.
pub async fn record(pool: &AnyPool, node_id: &str, sample: &NodeSample) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO node_metrics (node_id, at, cpu_percent, memory_used_bytes, memory_total_bytes, \
         disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (node_id, at) DO NOTHING",
    )
    .bind(node_id)
    .bind(now)
    .bind(sample.cpu_percent.clamp(0.0, 100.0))
    .bind(int(sample.memory_used_bytes))
    .bind(int(sample.memory_total_bytes))
    .bind(int(sample.disk_used_bytes))
    .bind(int(sample.disk_total_bytes))
    .bind(int(sample.net_rx_bytes))
    .bind(int(sample.net_tx_bytes))
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

/// One point of a node's history: a raw sample, or the average of a bucket (counters and
/// totals are the bucket's largest value).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct NodeMetricsPoint {
    /// Start of the bucket (the sample's time for raw samples).
    #[sqlx(rename = "bucket", try_from = "i64")]
    pub at: Timestamp,
    #[sqlx(rename = "cpu")]
    pub cpu_percent: f64,
    #[sqlx(rename = "mem")]
    pub memory_used_bytes: i64,
    #[sqlx(rename = "mem_total")]
    pub memory_total_bytes: i64,
    #[sqlx(rename = "disk")]
    pub disk_used_bytes: i64,
    #[sqlx(rename = "disk_total")]
    pub disk_total_bytes: i64,
    #[sqlx(rename = "rx")]
    pub net_rx_bytes: i64,
    #[sqlx(rename = "tx")]
    pub net_tx_bytes: i64,
}

/// A node's metrics over a range, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeMetricsHistory {
    /// `1h`, `24h` or `7d`.
    pub range: String,
    /// Width of one point: 10 (raw samples), 300 or 3600.
    pub bucket_secs: i64,
    pub points: Vec<NodeMetricsPoint>,
}

/// Seconds one point of a range stands for (`bucket` in ms, 0 for raw samples).
#[must_use]
pub(crate) fn bucket_secs(bucket: i64) -> i64 {
    if bucket == 0 { 10 } else { bucket / 1000 }
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
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesRead>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> AppResult<AppJson<NodeMetricsHistory>> {
    let name = q.range.unwrap_or_else(|| "1h".into());
    let (span, bucket) = range(&name)?;
    let id = node.id;
    // Raw samples are buckets of one millisecond: the same query serves every range.
    let width = bucket.max(1);
    let points: Vec<NodeMetricsPoint> = sqlx::query_as(
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
    Ok(AppJson(NodeMetricsHistory {
        range: name,
        bucket_secs: bucket_secs(bucket),
        points,
    }))
}
