//! Stats, metrics history, install logs and console history of an instance.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shardlyn_proto::instance::{InstanceState, InstanceStats, LogLines};
use shardlyn_proto::metrics::NodeSample;
use sqlx::AnyPool;

use super::power::connected;
use crate::auth::extract::AdminUser;
use crate::authz::{Authorized, perm};
use crate::db::now_ms;
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::instances::{Instance, store};
use crate::nodes::metrics::{bucket_secs, int};
use crate::state::AppState;
use crate::types::Timestamp;
use shardlyn_proto::agent_api as api;

/// How long instance samples are kept.
const RETENTION_MS: i64 = 8 * 24 * 3600 * 1000;
/// Most history lines one request returns.
const MAX_LINES: u32 = 5000;

/// `GET /v1/instances/{id}/stats`: live figures from the agent.
pub async fn stats(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesRead>,
) -> AppResult<AppJson<InstanceStats>> {
    let conn = connected(&state, &instance.node_id).await?;
    Ok(AppJson(
        conn.request::<api::InstanceStatsRoute>(&instance.id.as_str(), &(), &())
            .await?,
    ))
}

/// Stores the per-instance figures of a node's heartbeat sample (its `instances`) and
/// drops samples past retention. Only the node's own instances count: figures naming
/// another node's instance are dropped and logged; ids the panel does not know are
/// skipped.
///
/// # Errors
/// Database failures.
pub async fn record(pool: &AnyPool, node_id: &str, sample: &NodeSample) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let own: std::collections::HashSet<String> =
        sqlx::query_scalar("SELECT id FROM instances WHERE node_id = $1")
            .bind(node_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    for item in &sample.instances {
        let id = item.id.as_str();
        if !own.contains(id) {
            if let Some(other) = store::find(pool, id).await? {
                tracing::warn!(
                    node.id = %node_id,
                    instance.id = %id,
                    instance.node_id = %other.node_id,
                    "dropping metrics about another node's instance"
                );
            }
            continue;
        }
        sqlx::query(
            "INSERT INTO instance_metrics (instance_id, at, cpu_percent, memory_bytes, disk_bytes, \
             net_rx_bytes, net_tx_bytes) \
             SELECT id, $2, $3, $4, $5, $6, $7 FROM instances WHERE id = $1 AND node_id = $8 \
             ON CONFLICT (instance_id, at) DO NOTHING",
        )
        .bind(id)
        .bind(now)
        .bind(item.cpu_absolute.max(0.0))
        .bind(int(item.memory_bytes))
        .bind(int(item.disk_bytes))
        .bind(int(item.network.rx_bytes))
        .bind(int(item.network.tx_bytes))
        .bind(node_id)
        .execute(pool)
        .await?;
    }
    sqlx::query(
        "DELETE FROM instance_metrics WHERE at < $1 AND instance_id IN \
         (SELECT id FROM instances WHERE node_id = $2)",
    )
    .bind(now - RETENTION_MS)
    .bind(node_id)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    range: Option<String>,
}

/// One point of an instance's history: a raw sample or a bucket's average (network
/// counters are the bucket's largest value).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct InstanceMetricsPoint {
    #[sqlx(rename = "bucket", try_from = "i64")]
    pub at: Timestamp,
    #[sqlx(rename = "cpu")]
    pub cpu_percent: f64,
    #[sqlx(rename = "mem")]
    pub memory_bytes: i64,
    #[sqlx(rename = "disk")]
    pub disk_bytes: i64,
    #[sqlx(rename = "rx")]
    pub net_rx_bytes: i64,
    #[sqlx(rename = "tx")]
    pub net_tx_bytes: i64,
}

/// An instance's metrics over a range, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceMetricsHistory {
    /// `1h`, `24h` or `7d`.
    pub range: String,
    /// Width of one point: 10 (raw samples), 300 or 3600.
    pub bucket_secs: i64,
    pub points: Vec<InstanceMetricsPoint>,
}

/// The output of an instance's last install.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallLogs {
    pub id: String,
    pub state: InstanceState,
    pub lines: Vec<String>,
}

/// The last console lines of an instance, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogHistory {
    pub id: String,
    pub lines: Vec<String>,
}

/// `GET /v1/instances/{id}/metrics/history?range=1h|24h|7d`: raw 10 s samples for an
/// hour, 5-minute averages for a day, hourly averages for a week.
pub async fn history(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesRead>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> AppResult<AppJson<InstanceMetricsHistory>> {
    let name = q.range.unwrap_or_else(|| "1h".into());
    let (span, bucket) = crate::nodes::metrics::range(&name)?;
    let width = bucket.max(1);
    let points: Vec<InstanceMetricsPoint> = sqlx::query_as(
        "SELECT CAST((at / $3) * $3 AS BIGINT) AS bucket, \
         CAST(AVG(cpu_percent) AS DOUBLE PRECISION) AS cpu, \
         CAST(AVG(memory_bytes) AS BIGINT) AS mem, CAST(AVG(disk_bytes) AS BIGINT) AS disk, \
         CAST(MAX(net_rx_bytes) AS BIGINT) AS rx, CAST(MAX(net_tx_bytes) AS BIGINT) AS tx \
         FROM instance_metrics WHERE instance_id = $1 AND at >= $2 GROUP BY (at / $3) ORDER BY bucket",
    )
    .bind(&instance.id)
    .bind(now_ms() - span)
    .bind(width)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(AppJson(InstanceMetricsHistory {
        range: name,
        bucket_secs: bucket_secs(bucket),
        points,
    }))
}

/// `GET /v1/instances/{id}/install-logs`: the output of the last install.
pub async fn install_logs(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesLogs>,
) -> AppResult<AppJson<InstallLogs>> {
    let conn = connected(&state, &instance.node_id).await?;
    let answer: LogLines = conn
        .request::<api::InstanceInstallLogs>(
            &instance.id.as_str(),
            &api::LinesQuery::default(),
            &(),
        )
        .await?;
    Ok(AppJson(InstallLogs {
        id: instance.id,
        state: instance.state,
        lines: answer.lines,
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinesQuery {
    lines: Option<u32>,
}

/// `GET /v1/instances/{id}/logs/history?lines=N`: the last N console lines (default
/// 100, at most 5000), oldest first.
pub async fn history_lines(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesLogs>,
    AppQuery(q): AppQuery<LinesQuery>,
) -> AppResult<AppJson<LogHistory>> {
    let lines = q.lines.unwrap_or(100);
    if lines == 0 || lines > MAX_LINES {
        return Err(AppError::invalid_field(
            "lines",
            format!("lines must be between 1 and {MAX_LINES}"),
        ));
    }
    let conn = connected(&state, &instance.node_id).await?;
    let query = api::LinesQuery {
        lines: Some(lines as usize),
    };
    let answer: LogLines = conn
        .request::<api::InstanceLogs>(&instance.id.as_str(), &query, &())
        .await?;
    Ok(AppJson(LogHistory {
        id: instance.id,
        lines: answer.lines,
    }))
}

/// `GET /v1/instances/{id}/logs/download`: the whole console log as a text file,
/// streamed from the node.
pub async fn download(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesLogs>,
) -> AppResult<Response> {
    let conn = connected(&state, &instance.node_id).await?;
    let upstream = conn
        .stream::<api::InstanceLogsDownload>(&instance.id.as_str(), &())
        .await?;
    let mut response = Body::new(upstream.into_body()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let file: String = instance
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}-console.log\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `DELETE /v1/instances/{id}/logs/clear` (platform admins): empties the console log.
pub async fn clear(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<String>,
) -> AppResult<StatusCode> {
    let instance = store::find(&state.db.pool, &id)
        .await?
        .ok_or_else(|| AppError::not_found("instance"))?;
    let conn = connected(&state, &instance.node_id).await?;
    conn.request::<api::InstanceLogsClear>(&instance.id.as_str(), &(), &())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
