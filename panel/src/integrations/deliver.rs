//! The delivery API other areas notify through ([`enqueue`] a [`Notification`]) and the
//! `integration_deliveries` job that delivers the queue.
//!
//! The queue is the `integration_deliveries` table: one row per integration and
//! idempotency key (`UNIQUE (integration_id, dedup_key)`), so a notification (say an alert
//! transition) is queued once per channel whichever replica enqueues it, and survives a
//! restart. Every replica running jobs looks for due rows and claims each with a
//! conditional UPDATE (one replica wins; a claim of a replica that died lapses after
//! [`CLAIM_MS`]). A failed attempt (no answer, 408, 429, 5xx) is retried with exponential
//! backoff (`integrations.retry_base_ms`, doubled, at most `retry_max_ms`, at least what a
//! `Retry-After` asked); another 4xx, `max_attempts` attempts or `give_up_after_secs` give
//! it up and mark the integration unhealthy (`healthy`, `last_error`). A delivery keeps its
//! id across retries: the receiver's idempotency key (`webhook-id`, `Idempotency-Key`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::store::{self, Delivery};
use crate::db::new_id;
use crate::error::{AppError, AppResult};
use crate::metrics::DeliveryOutcome;
use crate::state::AppState;

/// Deliveries claimed per look.
const BATCH: i64 = 32;
/// How long a claim lasts: longer than an attempt can take (its timeout is 10 s).
pub const CLAIM_MS: i64 = 120_000;

/// One notification for one or more channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The idempotency key: one delivery per integration and key, e.g.
    /// `"<alert id>:<transition>"`.
    pub key: String,
    pub title: String,
    pub text: String,
    /// `info`, `warn`, `critical` or `resolved`.
    pub severity: String,
    /// A link back to the panel.
    pub link: Option<String>,
    /// Label and value pairs (node, server, value...).
    pub fields: Vec<(String, String)>,
}

/// Queues `n` for integration `integration_id`; `false` when a notification with the same
/// key is already queued (or was delivered) for it.
///
/// # Errors
/// 404 for an unknown integration; 400 for an empty key or an unknown severity; database
/// failures.
pub async fn enqueue(state: &AppState, integration_id: &str, n: &Notification) -> AppResult<bool> {
    if n.key.is_empty() || n.key.len() > 512 {
        return Err(AppError::invalid_field("key", "key must be 1 to 512 bytes"));
    }
    if !matches!(
        n.severity.as_str(),
        "info" | "warn" | "critical" | "resolved"
    ) {
        return Err(AppError::invalid_field(
            "severity",
            "severity must be info, warn, critical or resolved",
        ));
    }
    if store::find(&state.db.pool, integration_id).await?.is_none() {
        return Err(AppError::not_found("integration"));
    }
    let now = state.clock.now_ms();
    let delivery = Delivery {
        id: format!("msg_{}", new_id().replace('-', "")),
        integration_id: integration_id.to_owned(),
        dedup_key: n.key.clone(),
        payload: serde_json::to_string(n).map_err(|e| AppError::Internal(e.into()))?,
        state: "pending".into(),
        attempts: 0,
        next_attempt_at: now,
        last_status: None,
        last_error: None,
        created_at: now,
        delivered_at: None,
    };
    Ok(store::enqueue(&state.db.pool, &delivery).await?)
}

/// The `integration_deliveries` job: every `poll`, claims due deliveries and attempts
/// them; at stop, lets attempts in flight finish (each has a timeout).
pub async fn run_until_stopped(state: AppState, poll: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if let Err(e) = poll_once(&state).await {
            tracing::warn!(error = %e, "integration deliveries: poll failed");
        }
    }
}

/// One look: claims every due delivery (up to [`BATCH`]) and attempts them concurrently.
///
/// # Errors
/// Database failures while looking and claiming.
pub async fn poll_once(state: &AppState) -> Result<(), sqlx::Error> {
    let now = state.clock.now_ms();
    let ids = store::due(&state.db.pool, now, BATCH).await?;
    let mut attempts = JoinSet::new();
    for id in ids {
        let Some(delivery) =
            store::claim(&state.db.pool, &id, &state.replica_id, now, now + CLAIM_MS).await?
        else {
            continue;
        };
        let state = state.clone();
        attempts.spawn(async move {
            if let Err(e) = attempt(&state, &delivery).await {
                tracing::warn!(delivery.id = %delivery.id, error = %e, "integration delivery failed");
            }
        });
    }
    while attempts.join_next().await.is_some() {}
    Ok(())
}

/// The wait before attempt `attempts + 1` after `attempts` failed ones.
fn backoff_ms(state: &AppState, attempts: i64, retry_after_ms: Option<u64>) -> i64 {
    let c = &state.config.integrations;
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let wait = c
        .retry_base_ms
        .saturating_mul(1u64 << exp)
        .min(c.retry_max_ms.max(c.retry_base_ms));
    let wait = wait.max(retry_after_ms.unwrap_or(0));
    i64::try_from(wait).unwrap_or(i64::MAX)
}

async fn attempt(state: &AppState, d: &Delivery) -> AppResult<()> {
    let pool = &state.db.pool;
    let health = &state.metrics.health;
    let Some(integration) = store::find(pool, &d.integration_id).await? else {
        return Ok(());
    };
    let attempts = d.attempts + 1;
    if !integration.enabled {
        store::finish_attempt(
            pool,
            &d.id,
            "failed",
            d.attempts,
            d.next_attempt_at,
            None,
            Some("the integration is disabled"),
            None,
        )
        .await?;
        return Ok(());
    }
    let n: Notification =
        serde_json::from_str(&d.payload).map_err(|e| AppError::Internal(e.into()))?;
    let parts = super::open_parts(state, &integration)?;
    let outcome = super::send::send(state, &integration, &parts, &n, &d.id).await;
    let now = state.clock.now_ms();
    let status = outcome.status.map(i64::from);
    if outcome.ok {
        store::finish_attempt(
            pool,
            &d.id,
            "delivered",
            attempts,
            now,
            status,
            None,
            Some(now),
        )
        .await?;
        store::mark_delivered(pool, &integration.id, crate::db::now_ms()).await?;
        health.delivery_attempted(DeliveryOutcome::Delivered);
        return Ok(());
    }
    let error = outcome
        .error
        .unwrap_or_else(|| "the receiver refused it".to_owned());
    let c = &state.config.integrations;
    let out_of_time = now - d.created_at
        >= i64::try_from(c.give_up_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let give_up = !outcome.retryable || attempts >= i64::from(c.max_attempts.max(1)) || out_of_time;
    if give_up {
        let why = format!("gave up after {attempts} attempt(s): {error}");
        store::finish_attempt(
            pool,
            &d.id,
            "failed",
            attempts,
            now,
            status,
            Some(&why),
            None,
        )
        .await?;
        store::mark_unhealthy(pool, &integration.id, &why).await?;
        health.delivery_attempted(DeliveryOutcome::Failed);
        tracing::warn!(integration.id = %integration.id, delivery.id = %d.id, "integration delivery given up: {why}");
    } else {
        let next = now.saturating_add(backoff_ms(state, attempts, outcome.retry_after_ms));
        store::finish_attempt(
            pool,
            &d.id,
            "pending",
            attempts,
            next,
            status,
            Some(&error),
            None,
        )
        .await?;
        health.delivery_attempted(DeliveryOutcome::Retried);
    }
    Ok(())
}
