//! SQL of `alerts`: opening, the conditional transitions one replica wins, the list.

use sqlx::AnyPool;

use crate::db::row::Flag;

/// An alert as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Alert {
    pub id: String,
    pub org_id: String,
    pub rule_id: String,
    pub target_type: String,
    pub target_id: String,
    pub node_id: Option<String>,
    pub metric: String,
    pub severity: String,
    pub state: String,
    pub value: Option<f64>,
    pub message: String,
    pub pending_since: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub false_since: Option<i64>,
    #[sqlx(try_from = "Flag")]
    pub no_data: bool,
    #[sqlx(try_from = "Flag")]
    pub notified: bool,
    pub acked_by: Option<String>,
    pub acked_at: Option<i64>,
    pub silenced_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! alert_columns {
    () => {
        "id, org_id, rule_id, target_type, target_id, node_id, metric, severity, state, value, \
         message, pending_since, fired_at, resolved_at, false_since, no_data, notified, \
         acked_by, acked_at, silenced_until, created_at, updated_at"
    };
}

/// Opens a pending alert; `false` when another one is open for the rule and target (a
/// replica opened it first).
///
/// # Errors
/// Database failures.
pub async fn insert_alert(pool: &AnyPool, a: &Alert) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO alerts (id, org_id, rule_id, target_type, target_id, node_id, metric, \
         severity, state, value, message, pending_since, no_data, notified, created_at, \
         updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $14) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&a.id)
    .bind(&a.org_id)
    .bind(&a.rule_id)
    .bind(&a.target_type)
    .bind(&a.target_id)
    .bind(&a.node_id)
    .bind(&a.metric)
    .bind(&a.severity)
    .bind(&a.state)
    .bind(a.value)
    .bind(&a.message)
    .bind(a.pending_since)
    .bind(i64::from(a.no_data))
    .bind(a.created_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The open (pending or firing) alerts on a target, of every rule.
///
/// # Errors
/// Database failures.
pub async fn open_alerts_on(pool: &AnyPool, target_id: &str) -> sqlx::Result<Vec<Alert>> {
    sqlx::query_as(concat!(
        "SELECT ",
        alert_columns!(),
        " FROM alerts WHERE target_id = $1 AND state <> 'resolved'"
    ))
    .bind(target_id)
    .fetch_all(pool)
    .await
}

/// An alert by id.
///
/// # Errors
/// Database failures.
pub async fn find_alert(pool: &AnyPool, id: &str) -> sqlx::Result<Option<Alert>> {
    sqlx::query_as(concat!(
        "SELECT ",
        alert_columns!(),
        " FROM alerts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Filters of the alert list.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub state: Option<&'a str>,
    pub severity: Option<&'a str>,
    pub target_id: Option<&'a str>,
}

/// One page of an organization's alerts (newest first) and how many match.
///
/// # Errors
/// Database failures.
pub async fn list_alerts(
    pool: &AnyPool,
    org_id: &str,
    f: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Alert>, i64)> {
    macro_rules! filtered {
        () => {
            " FROM alerts WHERE org_id = $1 AND ($2 IS NULL OR state = $2) \
             AND ($3 IS NULL OR severity = $3) AND ($4 IS NULL OR target_id = $4)"
        };
    }
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        alert_columns!(),
        filtered!(),
        " ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(org_id)
    .bind(f.state)
    .bind(f.severity)
    .bind(f.target_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(concat!("SELECT CAST(COUNT(*) AS BIGINT)", filtered!()))
        .bind(org_id)
        .bind(f.state)
        .bind(f.severity)
        .bind(f.target_id)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// Records a sample that still meets the condition: the value, and a firing alert's
/// pending resolution called off.
///
/// # Errors
/// Database failures.
pub async fn still_true(pool: &AnyPool, id: &str, value: f64, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE alerts SET value = $2, false_since = NULL, no_data = 0, updated_at = $3 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(value)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a firing alert's first sample that no longer meets the condition.
///
/// # Errors
/// Database failures.
pub async fn now_false(pool: &AnyPool, id: &str, value: f64, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE alerts SET value = $2, false_since = COALESCE(false_since, $3), no_data = 0, \
         updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(value)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops a pending alert whose condition ended before it fired. Whether it was pending.
///
/// # Errors
/// Database failures.
pub async fn drop_pending(pool: &AnyPool, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM alerts WHERE id = $1 AND state = 'pending'")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Pending → firing; `false` when another replica did it first. `notified` says whether
/// its notifications go out (not in the rule's cooldown).
///
/// # Errors
/// Database failures.
pub async fn fire(pool: &AnyPool, id: &str, notified: bool, now: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE alerts SET state = 'firing', fired_at = $2, notified = $3, updated_at = $2 \
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(now)
    .bind(i64::from(notified))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Firing → resolved; `false` when another replica did it first.
///
/// # Errors
/// Database failures.
pub async fn resolve(pool: &AnyPool, id: &str, now: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE alerts SET state = 'resolved', resolved_at = $2, updated_at = $2 \
         WHERE id = $1 AND state = 'firing'",
    )
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether the rule notified a firing on this target since `since` (its cooldown).
///
/// # Errors
/// Database failures.
pub async fn notified_since(
    pool: &AnyPool,
    rule_id: &str,
    target_id: &str,
    since: i64,
) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM alerts WHERE rule_id = $1 AND target_id = $2 \
         AND notified = 1 AND fired_at >= $3",
    )
    .bind(rule_id)
    .bind(target_id)
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// Pending alerts (with data) whose rule's duration has passed by `now`.
///
/// # Errors
/// Database failures.
pub async fn due_to_fire(pool: &AnyPool, now: i64) -> sqlx::Result<Vec<Alert>> {
    sqlx::query_as(
        "SELECT a.id, a.org_id, a.rule_id, a.target_type, a.target_id, a.node_id, a.metric, \
         a.severity, a.state, a.value, a.message, a.pending_since, a.fired_at, a.resolved_at, \
         a.false_since, a.no_data, a.notified, a.acked_by, a.acked_at, a.silenced_until, \
         a.created_at, a.updated_at \
         FROM alerts a JOIN alert_rules r ON r.id = a.rule_id \
         WHERE a.state = 'pending' AND a.no_data = 0 \
         AND a.pending_since + r.duration_seconds * 1000 <= $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await
}

/// Firing alerts (with data) that have been false for their rule's `resolve_after`.
///
/// # Errors
/// Database failures.
pub async fn due_to_resolve(pool: &AnyPool, now: i64) -> sqlx::Result<Vec<Alert>> {
    sqlx::query_as(
        "SELECT a.id, a.org_id, a.rule_id, a.target_type, a.target_id, a.node_id, a.metric, \
         a.severity, a.state, a.value, a.message, a.pending_since, a.fired_at, a.resolved_at, \
         a.false_since, a.no_data, a.notified, a.acked_by, a.acked_at, a.silenced_until, \
         a.created_at, a.updated_at \
         FROM alerts a JOIN alert_rules r ON r.id = a.rule_id \
         WHERE a.state = 'firing' AND a.no_data = 0 AND a.false_since IS NOT NULL \
         AND a.false_since + r.resolve_after_seconds * 1000 <= $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await
}

/// Marks (or clears) "no data" on the open alerts that depend on node `node_id`'s
/// reports, except its own `node_offline` alerts.
///
/// # Errors
/// Database failures.
pub async fn set_no_data(
    pool: &AnyPool,
    node_id: &str,
    no_data: bool,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE alerts SET no_data = $2, false_since = NULL, updated_at = $3 \
         WHERE node_id = $1 AND state <> 'resolved' AND metric <> 'node_offline' AND no_data <> $2",
    )
    .bind(node_id)
    .bind(i64::from(no_data))
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records who acknowledged an alert and when (the first acknowledgement stands).
///
/// # Errors
/// Database failures.
pub async fn ack(pool: &AnyPool, id: &str, user_id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE alerts SET acked_by = $2, acked_at = $3, updated_at = $3 \
         WHERE id = $1 AND acked_at IS NULL",
    )
    .bind(id)
    .bind(user_id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

impl crate::authz::OrgScoped for Alert {
    const NAME: &'static str = "alert";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find_alert(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}

/// Whether node `node_id` has a pending or firing `node_offline` alert.
///
/// # Errors
/// Database failures.
pub async fn node_offline_open(pool: &AnyPool, node_id: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM alerts WHERE target_id = $1 \
         AND metric = 'node_offline' AND state <> 'resolved'",
    )
    .bind(node_id)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}
