//! Evaluation: every sample and event is weighed against the rules that cover its target
//! as it arrives ([`observe`], called by the nodes' presence listener, the heartbeat's
//! sample and the instances' state reports), and [`tick`] moves on the alerts whose
//! time came with no new event (pending past its duration → firing; false past its
//! hysteresis → resolved).
//!
//! The state lives in the database, so any replica may evaluate and every transition
//! is a conditional UPDATE that exactly one wins (the winner notifies, see `notify`).
//! Semantics (Alertmanager's, plus what it lacks):
//! - a condition opens a `pending` alert; it fires once it has held `duration_seconds`;
//!   a pending alert whose condition ends first is dropped (it never fired);
//! - a firing alert resolves only after its condition has been false for
//!   `resolve_after_seconds` (a true sample in between starts that wait over), so a
//!   value hovering at the threshold does not flap;
//! - planned downtime is not an outage: no alert opens while a maintenance window
//!   covers the target (`maintenance`), nor for a stop someone asked for;
//! - missing data is not recovery: while a node is offline the alerts of the node and
//!   its servers gain a "no data" mark and stay as they are (no firing, no resolving),
//!   so the node's own `node_offline` alert is the one message of an outage.
//!
//! Times come from [`crate::clock::Clock`] so tests move them on.

use std::time::Duration;

use shardlyn_proto::instance::{DesiredState, InstanceState};
use shardlyn_proto::metrics::{InstanceSample, NodeSample};
use tokio::sync::watch;

use super::notify;
use super::store::{self, Alert, Rule};
use crate::db::new_id;
use crate::error::AppResult;
use crate::events::{Event, EventData};
use crate::instances::Instance;
use crate::state::AppState;

/// What a sample or event is about.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub org_id: &'a str,
    /// `node` or `instance`.
    pub kind: &'static str,
    pub id: &'a str,
    /// The node it depends on (itself for a node).
    pub node_id: &'a str,
}

/// Whether `value` meets `rule`'s condition (a condition metric: `value` 1 is true).
#[must_use]
pub fn holds(rule: &Rule, value: f64) -> bool {
    if super::rules::EVENT_METRICS.contains(&rule.metric.as_str()) {
        return value >= 1.0;
    }
    let t = rule.threshold;
    match rule.operator.as_str() {
        "gt" => value > t,
        "gte" => value >= t,
        "lt" => value < t,
        "lte" => value <= t,
        _ => (value - t).abs() < f64::EPSILON,
    }
}

/// Weighs `value` of `metric` on `target` against every rule covering it; failures are
/// logged (evaluation never fails what reported the value).
pub async fn observe(state: &AppState, target: Target<'_>, metric: &str, value: f64) {
    observe_all(state, target, &[(metric, value)]).await;
}

/// Weighs several metrics of one sample of `target` at once: one read of the rules that
/// cover the target and one of its open alerts, whatever the number of metrics (a
/// heartbeat carries five); failures are logged.
pub async fn observe_all(state: &AppState, target: Target<'_>, values: &[(&str, f64)]) {
    if let Err(e) = observe_inner(state, target, values).await {
        tracing::warn!(target.id = target.id, error = %e, "evaluating alert rules");
    }
}

async fn observe_inner(
    state: &AppState,
    target: Target<'_>,
    values: &[(&str, f64)],
) -> AppResult<()> {
    let pool = &state.db.pool;
    let value_of = |metric: &str| values.iter().find(|(m, _)| *m == metric).map(|(_, v)| *v);
    let rules: Vec<(Rule, f64)> =
        store::rules_for_target(pool, target.org_id, target.kind, target.id)
            .await?
            .into_iter()
            .filter_map(|rule| value_of(&rule.metric).map(|v| (rule, v)))
            .collect();
    if rules.is_empty() {
        return Ok(());
    }
    let mut open = store::open_alerts_on(pool, target.id).await?;
    for (rule, value) in rules {
        let alert = open
            .iter()
            .position(|a| a.rule_id == rule.id)
            .map(|i| open.swap_remove(i));
        let now = state.clock.now_ms();
        step(state, &rule, target, value, alert, now).await?;
    }
    Ok(())
}

/// One rule, one value, and the rule's open alert on the target if there is one.
async fn step(
    state: &AppState,
    rule: &Rule,
    target: Target<'_>,
    value: f64,
    open: Option<Alert>,
    now: i64,
) -> AppResult<()> {
    let pool = &state.db.pool;
    match (open, holds(rule, value)) {
        (None, false) => {}
        (None, true) => {
            if store::in_maintenance(
                pool,
                &rule.org_id,
                (target.kind, target.id, target.node_id),
                now,
            )
            .await?
            {
                tracing::debug!(rule.id = %rule.id, target.id = target.id, "no alert: the target is in maintenance");
                return Ok(());
            }
            let alert = Alert {
                id: new_id(),
                org_id: rule.org_id.clone(),
                rule_id: rule.id.clone(),
                target_type: target.kind.to_string(),
                target_id: target.id.to_string(),
                node_id: Some(target.node_id.to_string()),
                metric: rule.metric.clone(),
                severity: rule.severity.clone(),
                state: "pending".into(),
                value: Some(value),
                message: message(rule, target, value),
                pending_since: now,
                fired_at: None,
                resolved_at: None,
                false_since: None,
                no_data: false,
                notified: false,
                acked_by: None,
                acked_at: None,
                silenced_until: None,
                created_at: now,
                updated_at: now,
            };
            if store::insert_alert(pool, &alert).await? && rule.duration_seconds == 0 {
                fire(state, rule, &alert, now).await?;
            }
        }
        (Some(alert), true) => {
            store::still_true(pool, &alert.id, value, now).await?;
            if alert.state == "pending" && now - alert.pending_since >= rule.duration_seconds * 1000
            {
                fire(state, rule, &alert, now).await?;
            }
        }
        (Some(alert), false) => {
            if alert.state == "pending" {
                store::drop_pending(pool, &alert.id).await?;
                return Ok(());
            }
            store::now_false(pool, &alert.id, value, now).await?;
            let since = alert.false_since.unwrap_or(now);
            if now - since >= rule.resolve_after_seconds * 1000 {
                resolve(state, rule, &alert, now).await?;
            }
        }
    }
    Ok(())
}

fn message(rule: &Rule, target: Target<'_>, value: f64) -> String {
    let what = match rule.metric.as_str() {
        "instance_down" => "the server is down".to_string(),
        "node_offline" => "the node is offline".to_string(),
        "backup_failed" => "a backup failed".to_string(),
        "install_failed" => "the install failed".to_string(),
        metric => format!(
            "{metric} is {value:.1} ({} {})",
            rule.operator, rule.threshold
        ),
    };
    format!("{}: {what} ({} {})", rule.name, target.kind, target.id)
}

/// Pending → firing, notified unless within the rule's cooldown of the last notified
/// firing on the target.
async fn fire(state: &AppState, rule: &Rule, alert: &Alert, now: i64) -> AppResult<()> {
    let pool = &state.db.pool;
    let cooling = rule.cooldown_seconds > 0
        && store::notified_since(
            pool,
            &rule.id,
            &alert.target_id,
            now - rule.cooldown_seconds * 1000,
        )
        .await?;
    if store::fire(pool, &alert.id, !cooling, now).await? {
        tracing::info!(alert.id = %alert.id, alert.metric = %alert.metric, target.id = %alert.target_id, "alert firing");
        if !cooling {
            notify::transition(state, rule, &alert.id, "firing").await;
        }
        announce(state, alert, "firing").await;
    }
    Ok(())
}

/// Firing → resolved, notified when its firing was.
async fn resolve(state: &AppState, rule: &Rule, alert: &Alert, now: i64) -> AppResult<()> {
    if store::resolve(&state.db.pool, &alert.id, now).await? {
        tracing::info!(alert.id = %alert.id, alert.metric = %alert.metric, target.id = %alert.target_id, "alert resolved");
        if alert.notified {
            notify::transition(state, rule, &alert.id, "resolved").await;
        }
        announce(state, alert, "resolved").await;
    }
    Ok(())
}

/// Tells the event bus that `alert` is now `to` (the bell of the web pages hears it).
async fn announce(state: &AppState, alert: &Alert, to: &str) {
    state
        .events
        .publish(Event::now(
            alert.org_id.clone(),
            EventData::Alert {
                alert_id: alert.id.clone(),
                rule_id: alert.rule_id.clone(),
                state: to.to_owned(),
                severity: alert.severity.clone(),
                target_type: alert.target_type.clone(),
                target_id: alert.target_id.clone(),
            },
        ))
        .await;
}

/// Moves on the alerts whose time came: pending past the duration fire, firing ones
/// false past the hysteresis resolve (neither while marked "no data").
///
/// # Errors
/// Database failures.
pub async fn tick(state: &AppState) -> AppResult<()> {
    let pool = &state.db.pool;
    let now = state.clock.now_ms();
    for alert in store::due_to_fire(pool, now).await? {
        if let Some(rule) = store::find_rule(pool, &alert.rule_id).await? {
            fire(state, &rule, &alert, now).await?;
        }
    }
    for alert in store::due_to_resolve(pool, now).await? {
        if let Some(rule) = store::find_rule(pool, &alert.rule_id).await? {
            resolve(state, &rule, &alert, now).await?;
        }
    }
    Ok(())
}

/// The `alerts` job: [`tick`] every `poll` until stopped. Every replica may run it (each
/// transition is won once).
pub async fn run_until_stopped(state: AppState, poll: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = tick(&state).await {
            tracing::warn!(error = %e, "alert evaluation tick");
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A node's agent connected or its last connection ended: `node_offline`, and the "no
/// data" mark of the alerts depending on the node.
pub async fn on_node_status(state: &AppState, org_id: &str, node_id: &str, online: bool) {
    if let Err(e) = store::set_no_data(&state.db.pool, node_id, !online, state.clock.now_ms()).await
    {
        tracing::warn!(node.id = %node_id, error = %e, "marking alerts without data");
    }
    let target = Target {
        org_id,
        kind: "node",
        id: node_id,
        node_id,
    };
    observe(
        state,
        target,
        "node_offline",
        if online { 0.0 } else { 1.0 },
    )
    .await;
}

/// A node's heartbeat sample (recorded already): its CPU, memory and disk use in
/// percent, and its network rates (bytes/s) since the sample before.
pub async fn on_sample(state: &AppState, node_id: &str, sample: &NodeSample) {
    let pool = &state.db.pool;
    let org_id: Option<String> = match sqlx::query_scalar("SELECT org_id FROM nodes WHERE id = $1")
        .bind(node_id)
        .fetch_optional(pool)
        .await
    {
        Ok(org) => org,
        Err(e) => {
            tracing::warn!(node.id = %node_id, error = %e, "evaluating a node sample");
            return;
        }
    };
    let Some(org_id) = org_id else { return };
    let target = Target {
        org_id: &org_id,
        kind: "node",
        id: node_id,
        node_id,
    };
    #[expect(clippy::cast_precision_loss, reason = "percentages of byte counts")]
    let percent = |used: u64, total: u64| {
        if total == 0 {
            None
        } else {
            Some(used as f64 * 100.0 / total as f64)
        }
    };
    let mut values = vec![("cpu_usage", sample.cpu_percent.clamp(0.0, 100.0))];
    if let Some(p) = percent(sample.memory_used_bytes, sample.memory_total_bytes) {
        values.push(("memory_usage", p));
    }
    if let Some(p) = percent(sample.disk_used_bytes, sample.disk_total_bytes) {
        values.push(("disk_usage", p));
    }
    // The two latest samples give the rates (counters since boot; a reboot resets them).
    let last: Result<Vec<(i64, i64, i64)>, _> = sqlx::query_as(
        "SELECT at, net_rx_bytes, net_tx_bytes FROM node_metrics WHERE node_id = $1 \
         ORDER BY at DESC LIMIT 2",
    )
    .bind(node_id)
    .fetch_all(pool)
    .await;
    if let Ok(rows) = last
        && let [(at, rx, tx), (prev_at, prev_rx, prev_tx)] = rows[..]
        && at > prev_at
        && rx >= prev_rx
        && tx >= prev_tx
    {
        #[expect(clippy::cast_precision_loss, reason = "byte rates")]
        let rate = |now: i64, before: i64| (now - before) as f64 * 1000.0 / (at - prev_at) as f64;
        values.push(("network_rx", rate(rx, prev_rx)));
        values.push(("network_tx", rate(tx, prev_tx)));
    }
    observe_all(state, target, &values).await;
    on_instance_samples(state, node_id, &sample.instances).await;
}

/// An instance's state as its agent reported it, `before` the row as it was:
/// `instance_down` holds when it went offline from running or starting without being
/// asked (a crash; the agent's giving up after a second crash says `desired: stopped`
/// itself), and ends when it starts again or a stop was asked for (a stop, restart,
/// schedule or move sets the desired state, or the agent went through `stopping`).
/// `install_failed` holds while the install failed.
pub async fn on_instance_state(
    state: &AppState,
    before: &Instance,
    reported: InstanceState,
    desired: Option<DesiredState>,
) {
    let target = Target {
        org_id: &before.org_id,
        kind: "instance",
        id: &before.id,
        node_id: &before.node_id,
    };
    let down = match reported {
        InstanceState::Starting | InstanceState::Running => Some(false),
        InstanceState::Offline => {
            let crash_stop = desired == Some(DesiredState::Stopped);
            let planned = before.state == InstanceState::Stopping
                || (before.desired_state == DesiredState::Stopped && !crash_stop);
            if planned {
                Some(false)
            } else if matches!(
                before.state,
                InstanceState::Running | InstanceState::Starting
            ) {
                Some(true)
            } else {
                None
            }
        }
        InstanceState::Installing | InstanceState::InstallFailed | InstanceState::Stopping => None,
    };
    if let Some(down) = down {
        observe(state, target, "instance_down", if down { 1.0 } else { 0.0 }).await;
    }
    let failed = match reported {
        InstanceState::InstallFailed => Some(true),
        InstanceState::Installing | InstanceState::Starting | InstanceState::Running => Some(false),
        _ => None,
    };
    if let Some(failed) = failed {
        observe(
            state,
            target,
            "install_failed",
            if failed { 1.0 } else { 0.0 },
        )
        .await;
    }
}

/// A backup of server `instance_id` ended (recorded already): `backup_failed` holds
/// after a failed one and ends with the next completed one.
pub async fn on_backup_end(state: &AppState, instance_id: &str, failed: bool) {
    let instance = match crate::instances::store::find(&state.db.pool, instance_id).await {
        Ok(Some(instance)) => instance,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(instance.id = %instance_id, error = %e, "evaluating a backup's end");
            return;
        }
    };
    let target = Target {
        org_id: &instance.org_id,
        kind: "instance",
        id: &instance.id,
        node_id: &instance.node_id,
    };
    observe(
        state,
        target,
        "backup_failed",
        if failed { 1.0 } else { 0.0 },
    )
    .await;
}

/// The servers' figures of a heartbeat: CPU, memory and disk use in percent of their
/// limits (a server without a limit has no percentage). Looked at only while some rule
/// watches servers' use.
async fn on_instance_samples(state: &AppState, node_id: &str, samples: &[InstanceSample]) {
    const MIB: f64 = 1024.0 * 1024.0;
    if samples.is_empty() {
        return;
    }
    let pool = &state.db.pool;
    let watched: Result<i64, _> = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM alert_rules WHERE target_type = 'instance' \
         AND enabled = 1 AND metric IN ('cpu_usage', 'memory_usage', 'disk_usage')",
    )
    .fetch_one(pool)
    .await;
    if !matches!(watched, Ok(n) if n > 0) {
        return;
    }
    for s in samples {
        let instance = match crate::instances::store::find(pool, &s.id).await {
            Ok(Some(i)) if i.node_id == node_id => i,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(instance.id = %s.id, error = %e, "evaluating a server's sample");
                continue;
            }
        };
        let target = Target {
            org_id: &instance.org_id,
            kind: "instance",
            id: &instance.id,
            node_id,
        };
        #[expect(clippy::cast_precision_loss, reason = "percentages")]
        let (cpu_limit, memory_limit, disk_limit, memory, disk) = (
            instance.limits.cpu_percent as f64,
            if s.memory_limit_bytes > 0 {
                s.memory_limit_bytes as f64
            } else {
                instance.limits.memory_mb as f64 * MIB
            },
            instance.limits.disk_mb as f64 * MIB,
            s.memory_bytes as f64,
            s.disk_bytes as f64,
        );
        let mut values = Vec::with_capacity(3);
        if cpu_limit > 0.0 {
            values.push(("cpu_usage", s.cpu_absolute * 100.0 / cpu_limit));
        }
        if memory_limit > 0.0 {
            values.push(("memory_usage", memory * 100.0 / memory_limit));
        }
        if disk_limit > 0.0 {
            values.push(("disk_usage", disk * 100.0 / disk_limit));
        }
        observe_all(state, target, &values).await;
    }
}
