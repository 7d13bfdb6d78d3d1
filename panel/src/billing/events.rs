//! Stripe events, acted on once each.
//!
//! The receiver (`POST /v1/webhooks/stripe`, `webhooks::receive`) records a verified
//! delivery by its event id, then calls [`process`]. Processing re-fetches the object
//! the event is about from Stripe's API (events arrive unordered and at least once:
//! the object as it is now is the truth), then in one transaction claims the delivery
//! (`processed_at`, set only while it is still unset) and writes the subscription. A
//! crash anywhere before the commit leaves the delivery unprocessed: Stripe's retry, or
//! the retry worker here ([`run_until_stopped`]), acts on it. Two copies of one event
//! processed at once make one effect: the second claim finds it claimed.
//!
//! The same job reconciles every subscription with Stripe once per
//! `billing.reconcile_interval_secs` (under the cluster's job lease: one replica), and
//! records what differed (`subscriptions.drift`).

use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::stripe::{Stripe, Subscription};
use super::subscriptions::{self, Applied};
use crate::state::AppState;

/// What processing one delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acted on now.
    Processed,
    /// Already acted on (a duplicate, or another copy won the claim).
    Duplicate,
    /// An event type billing does not act on (recorded as processed).
    Ignored,
    /// Could not act yet (Stripe unreachable, no billing): left for a retry.
    Deferred(String),
}

/// The subscription an event is about: `data.object` is the subscription, or names it
/// (`subscription` of a checkout session or an invoice; the invoice's
/// `parent.subscription_details.subscription` since API version 2025-03-31).
fn subscription_id(kind: &str, object: &Value) -> Option<String> {
    let s = |v: &Value| v.as_str().map(str::to_owned);
    match kind {
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.paused"
        | "customer.subscription.resumed" => object.get("id").and_then(s),
        "checkout.session.completed"
        | "invoice.paid"
        | "invoice.payment_succeeded"
        | "invoice.payment_failed" => object
            .get("subscription")
            .and_then(|v| s(v).or_else(|| v.get("id").and_then(s)))
            .or_else(|| {
                object
                    .pointer("/parent/subscription_details/subscription")
                    .and_then(s)
            }),
        _ => None,
    }
}

/// Acts on the Stripe delivery `delivery_row` (a `webhook_deliveries` id).
///
/// # Errors
/// Database failures (the delivery stays unprocessed).
pub async fn process(state: &AppState, delivery_row: &str) -> anyhow::Result<Outcome> {
    let found: Option<(String, Option<i64>)> = sqlx::query_as(
        "SELECT payload, processed_at FROM webhook_deliveries WHERE id = $1 AND provider = 'stripe'",
    )
    .bind(delivery_row)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some((payload, processed)) = found else {
        return Ok(Outcome::Ignored);
    };
    if processed.is_some() {
        return Ok(Outcome::Duplicate);
    }
    let event: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let object = event
        .pointer("/data/object")
        .cloned()
        .unwrap_or(Value::Null);
    let sub_id = subscription_id(kind, &object);
    // Re-fetched before the transaction: no network wait while holding a write lock.
    let fetched: Option<Subscription> = match &sub_id {
        None => None,
        Some(id) => {
            let Some(stripe) = super::client(state) else {
                let why = "billing is off (no stripe.secret_key): kept for when it is on";
                note_failure(state, delivery_row, why).await?;
                return Ok(Outcome::Deferred(why.into()));
            };
            match stripe.subscription(id).await {
                Ok(sub) => Some(sub),
                // Gone at Stripe: a deleted event's own object says how it ended.
                Err(e) if e.is_missing() && kind == "customer.subscription.deleted" => {
                    from_payload(&object)
                }
                Err(e) => {
                    let why = e.to_string();
                    note_failure(state, delivery_row, &why).await?;
                    return Ok(Outcome::Deferred(why));
                }
            }
        }
    };
    let now = state.clock.now_ms();
    let mut tx = state.db.begin_write().await?;
    let claimed = sqlx::query(
        "UPDATE webhook_deliveries SET processed_at = $1, attempts = attempts + 1, \
         last_error = NULL WHERE id = $2 AND processed_at IS NULL",
    )
    .bind(now)
    .bind(delivery_row)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        tx.rollback().await?;
        return Ok(Outcome::Duplicate);
    }
    let applied = match &fetched {
        Some(sub) => subscriptions::apply(&mut tx, sub, now).await?,
        None => Applied::default(),
    };
    tx.commit().await?;
    after(state, &applied).await;
    Ok(if fetched.is_some() {
        Outcome::Processed
    } else {
        Outcome::Ignored
    })
}

/// A subscription read from an event's own object (only when Stripe no longer has it).
fn from_payload(object: &Value) -> Option<Subscription> {
    miniserde::json::from_str(&object.to_string()).ok()
}

/// Counts a failed attempt on the delivery, with why.
async fn note_failure(state: &AppState, delivery_row: &str, why: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $1 \
         WHERE id = $2 AND processed_at IS NULL",
    )
    .bind(why.chars().take(500).collect::<String>())
    .bind(delivery_row)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// What follows a committed change: servers suspended for non-payment come back when
/// the organization is paid up.
pub async fn after(state: &AppState, applied: &Applied) {
    if let (true, Some(org)) = (applied.restore, &applied.org_id) {
        match super::dunning::restore(state, org).await {
            Ok(n) => {
                tracing::info!(org.id = %org, servers = n, "billing: paid up, servers restored");
            }
            Err(e) => tracing::warn!(org.id = %org, error = %e, "billing: restoring servers"),
        }
    }
}

/// Applies subscription `sub` (read from Stripe now) outside any event: a re-fetch or
/// the reconciliation.
///
/// # Errors
/// Database failures.
pub async fn apply_now(state: &AppState, sub: &Subscription) -> anyhow::Result<Applied> {
    let now = state.clock.now_ms();
    let mut tx = state.db.begin_write().await?;
    let applied = subscriptions::apply(&mut tx, sub, now).await?;
    tx.commit().await?;
    after(state, &applied).await;
    Ok(applied)
}

/// Retries Stripe deliveries that could not be acted on (older than a few seconds, so
/// the receiver's own attempt is not raced). Returns how many were processed.
///
/// # Errors
/// Database failures.
pub async fn retry_pending(state: &AppState) -> anyhow::Result<usize> {
    let before = state.clock.now_ms() - 5_000;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM webhook_deliveries WHERE provider = 'stripe' AND processed_at IS NULL \
         AND received_at <= $1 ORDER BY received_at LIMIT 100",
    )
    .bind(before)
    .fetch_all(&state.db.pool)
    .await?;
    let mut done = 0;
    for id in ids {
        if process(state, &id).await? == Outcome::Processed {
            done += 1;
        }
    }
    Ok(done)
}

/// What a reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// Subscriptions Stripe listed.
    pub listed: usize,
    /// Rows that differed from Stripe and were put right.
    pub drifted: usize,
    /// Rows whose subscription Stripe no longer has.
    pub missing: usize,
}

/// Reads every subscription from Stripe and puts each organization's row right,
/// recording what differed.
///
/// # Errors
/// Stripe unreachable or refusing; database failures.
pub async fn reconcile(state: &AppState, stripe: &Stripe) -> anyhow::Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let mut seen = std::collections::HashSet::new();
    let mut after_id: Option<String> = None;
    loop {
        let page = stripe.subscriptions(after_id.as_deref()).await?;
        for sub in &page.data {
            report.listed += 1;
            seen.insert(sub.id.clone());
            let applied = apply_now(state, sub).await?;
            if !applied.drift.is_empty()
                && let Some(org) = &applied.org_id
            {
                report.drifted += 1;
                record_drift(state, org, &applied.drift.join(", ")).await?;
                tracing::warn!(org.id = %org, drift = %applied.drift.join(", "),
                    "billing: subscription differed from Stripe; put right");
            }
        }
        match (page.has_more, page.data.last()) {
            (Some(true), Some(last)) => after_id = Some(last.id.clone()),
            _ => break,
        }
    }
    // Rows naming a subscription Stripe did not list: read it alone.
    let rows = subscriptions::all(&state.db.pool).await?;
    for row in rows {
        let Some(id) = row.stripe_subscription_id.as_deref() else {
            continue;
        };
        if seen.contains(id) {
            continue;
        }
        match stripe.subscription(id).await {
            Ok(sub) => {
                apply_now(state, &sub).await?;
            }
            Err(e) if e.is_missing() => {
                report.missing += 1;
                sqlx::query(
                    "UPDATE subscriptions SET status = 'canceled', synced_at = $1, \
                     drift = 'the subscription is gone at Stripe' WHERE id = $2",
                )
                .bind(state.clock.now_ms())
                .bind(&row.id)
                .execute(&state.db.pool)
                .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

async fn record_drift(state: &AppState, org_id: &str, drift: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE subscriptions SET drift = $1 WHERE org_id = $2")
        .bind(format!(
            "{}: {drift}",
            crate::db::rfc3339(state.clock.now_ms())
        ))
        .bind(org_id)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

/// The billing job under the cluster's lease: retries deliveries not yet acted on every
/// `billing.event_retry_secs`, reconciles with Stripe every
/// `billing.reconcile_interval_secs`.
pub async fn run_until_stopped(
    state: AppState,
    mut lease: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(state.config.billing.event_retry_secs.max(1));
    let reconcile_every = state.config.billing.reconcile_interval_secs.max(60) * 1000;
    let mut last_reconcile: Option<i64> = None;
    while crate::jobs::lease::until_held(&mut lease, &mut stop).await {
        if super::enabled(&state) {
            if let Err(e) = retry_pending(&state).await {
                tracing::warn!(error = %e, "billing: retrying Stripe events");
            }
            let now = state.clock.now_ms();
            let due = last_reconcile
                .is_none_or(|t| now - t >= i64::try_from(reconcile_every).unwrap_or(i64::MAX));
            if due && let Some(stripe) = super::client(&state) {
                last_reconcile = Some(now);
                match reconcile(&state, &stripe).await {
                    Ok(r) => tracing::info!(?r, "billing: reconciled with Stripe"),
                    Err(e) => tracing::warn!(error = %e, "billing: reconciling with Stripe"),
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
