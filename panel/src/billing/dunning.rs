//! Dunning: what happens to an organization whose subscription is `past_due` or `unpaid`
//! (issue 19 §6). Billing domain, above `instances` (it stops, starts and deletes servers
//! through their own paths) and below the Stripe event code, which calls [`restore`].
//!
//! - **Grace.** From `subscriptions.past_due_since`, for `billing.grace_days`, the
//!   organization's owners and admins get a reminder every
//!   `billing.dunning_mail_interval_hours` (`subscriptions.last_dunning_mail_at`); the
//!   banner is the web's, from the subscription's `past_due_since` and `grace_ends_at`.
//! - **Suspension.** Then every server of the organization keeps the desired state it had
//!   (`instances.state_before_suspension`), gets `billing_suspended_at` and the desired
//!   state `stopped`, and is stopped through the power path (a node offline gets the
//!   desired state when its agent connects). Files stay. Every start path refuses with
//!   409 `SERVER_SUSPENDED` ([`refuse_if_suspended`], called by `power::act` for start and
//!   restart, which the API, the console, schedules, git deploys and migrations all use,
//!   and by reinstall); a new server is refused too ([`refuse_if_org_suspended`]). The
//!   agent's crash restart needs nothing: it only restarts a run that ended without a
//!   stop request, and the suspension's stop is one.
//! - **Termination** (optional): `billing.terminate_after_days` after the suspension
//!   (0, the default: never) the servers are deleted like `DELETE /v1/instances/{id}`
//!   and `subscriptions.terminated_at` is set once none is left.
//! - **Restore.** Paying puts every server back in the desired state it had (those that
//!   ran start again). The Stripe event code calls [`restore`]; each [`pass`] also restores
//!   an organization whose subscription is good again but still marked suspended (a crash
//!   between the two, or a suspension that raced the payment).
//!
//! With billing off (no Stripe key) a pass does nothing. The job runs once per cluster,
//! under the job lease, every `billing.dunning_interval_secs`.

use std::time::Duration;

use axum::http::StatusCode;
use shardlyn_proto::instance::PowerAction;
use tokio::sync::watch;

use crate::db::rfc3339;
use crate::error::{AppError, AppResult};
use crate::instances::ops::{power, sync};
use crate::instances::store as instances;
use crate::mailer::Template;
use crate::state::AppState;

/// What the console and every refused start say.
pub const SUSPENDED_MESSAGE: &str = "This server is suspended: the organization's payment is \
     overdue. Pay the open invoice to restore it.";

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    /// Reminder mails sent (one per organization, to each owner and admin).
    pub mailed: usize,
    /// Organizations suspended.
    pub suspended: usize,
    /// Servers deleted by terminations.
    pub terminated: usize,
    /// Organizations restored (good again but still marked suspended).
    pub restored: usize,
    /// Organizations whose step failed (retried by the next pass).
    pub failed: usize,
}

/// 409 `SERVER_SUSPENDED`.
#[must_use]
pub fn refusal() -> AppError {
    AppError::coded(StatusCode::CONFLICT, "SERVER_SUSPENDED", SUSPENDED_MESSAGE)
}

/// Refuses with 409 `SERVER_SUSPENDED` when the server is suspended for non-payment (a
/// server that does not exist passes: its caller answers for that).
///
/// # Errors
/// 409 `SERVER_SUSPENDED`; database failures.
pub async fn refuse_if_suspended(state: &AppState, instance_id: &str) -> AppResult<()> {
    if is_suspended(state, instance_id).await? {
        return Err(refusal());
    }
    Ok(())
}

/// Whether the server is suspended for non-payment.
///
/// # Errors
/// Database failures.
pub async fn is_suspended(state: &AppState, instance_id: &str) -> Result<bool, sqlx::Error> {
    let at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT billing_suspended_at FROM instances WHERE id = $1")
            .bind(instance_id)
            .fetch_optional(&state.db.pool)
            .await?;
    Ok(at.flatten().is_some())
}

/// Refuses with 409 `SERVER_SUSPENDED` a new server in an organization whose servers are
/// suspended.
///
/// # Errors
/// 409 `SERVER_SUSPENDED`; database failures.
pub async fn refuse_if_org_suspended(state: &AppState, org_id: &str) -> AppResult<()> {
    let at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT suspended_at FROM subscriptions WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&state.db.pool)
            .await?;
    if at.flatten().is_some() {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "SERVER_SUSPENDED",
            "The organization's servers are suspended: its payment is overdue. Pay the open \
             invoice to restore them and create servers again.",
        ));
    }
    Ok(())
}

/// Suspends every server of `org_id` not suspended yet: in one transaction each keeps its
/// desired state in `state_before_suspension`, gets `billing_suspended_at = now` and the
/// desired state `stopped`, and the subscription gets `suspended_at`; then the servers are
/// stopped through the power path. Idempotent. Returns the servers suspended now.
///
/// # Errors
/// Database failures (stopping is best effort: an unreachable node gets the desired
/// state when its agent connects).
pub async fn suspend(state: &AppState, org_id: &str, now: i64) -> anyhow::Result<usize> {
    let mut tx = state.db.pool.begin().await?;
    let n = sqlx::query(
        "UPDATE instances SET state_before_suspension = desired_state, \
         billing_suspended_at = $1, desired_state = 'stopped', updated_at = $1 \
         WHERE org_id = $2 AND billing_suspended_at IS NULL",
    )
    .bind(now)
    .bind(org_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE subscriptions SET suspended_at = $1, updated_at = $1 \
         WHERE org_id = $2 AND suspended_at IS NULL",
    )
    .bind(now)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for id in suspended_ids(state, org_id).await? {
        stop(state, &id).await;
    }
    tracing::info!(org.id = %org_id, servers = n, "billing: servers suspended for non-payment");
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Stops one suspended server on its node, if the node is connected.
async fn stop(state: &AppState, id: &str) {
    let Ok(Some(instance)) = instances::find(&state.db.pool, id).await else {
        return;
    };
    if state.tunnels.find(&instance.node_id).await.is_none() {
        return; // its agent gets the desired state `stopped` when it connects
    }
    if let Err(e) = power::act(state, &instance, PowerAction::Stop).await {
        // Not running (offline, installing): the agent still learns the desired state,
        // so nothing starts it after an install or a reconnect.
        tracing::debug!(instance.id = %id, error = %e, "billing: stop refused; pushing the spec");
        if let Err(e) = sync::push_instance(state, &instance).await {
            tracing::warn!(instance.id = %id, error = %e, "billing: pushing a suspended server's spec");
        }
    }
}

async fn suspended_ids(state: &AppState, org_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM instances WHERE org_id = $1 AND billing_suspended_at IS NOT NULL \
         ORDER BY created_at, id",
    )
    .bind(org_id)
    .fetch_all(&state.db.pool)
    .await
}

/// Lifts the suspension of `org_id`: every suspended server gets back the desired state it
/// had, those that ran are started, and the subscription's `suspended_at` (and a past
/// `terminated_at`, so a later episode is dunned again) is cleared. Idempotent. Returns
/// the servers restored.
///
/// # Errors
/// Database failures (starting is best effort: a node offline starts the server when its
/// agent connects, the desired state being `running` again).
pub async fn restore(state: &AppState, org_id: &str) -> anyhow::Result<usize> {
    let mut tx = state.db.begin_write().await?;
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT id, state_before_suspension FROM instances \
         WHERE org_id = $1 AND billing_suspended_at IS NOT NULL ORDER BY created_at, id",
    )
    .bind(org_id)
    .fetch_all(&mut *tx)
    .await?;
    let now = state.clock.now_ms();
    sqlx::query(
        "UPDATE instances SET desired_state = COALESCE(state_before_suspension, desired_state), \
         billing_suspended_at = NULL, state_before_suspension = NULL, updated_at = $1 \
         WHERE org_id = $2 AND billing_suspended_at IS NOT NULL",
    )
    .bind(now)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE subscriptions SET suspended_at = NULL, terminated_at = NULL, updated_at = $1 \
         WHERE org_id = $2 AND suspended_at IS NOT NULL",
    )
    .bind(now)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for (id, before) in &rows {
        if before.as_deref() != Some("running") {
            continue;
        }
        let Ok(Some(instance)) = instances::find(&state.db.pool, id).await else {
            continue;
        };
        if state.tunnels.find(&instance.node_id).await.is_none() {
            continue; // its agent starts it when it connects (desired `running`)
        }
        if let Err(e) = power::act(state, &instance, PowerAction::Start).await {
            tracing::warn!(instance.id = %id, error = %e, "billing: starting a restored server");
        }
    }
    if !rows.is_empty() {
        tracing::info!(org.id = %org_id, servers = rows.len(), "billing: suspension lifted");
    }
    Ok(rows.len())
}

/// Deletes the suspended servers of `org_id` as `DELETE /v1/instances/{id}` does (files on
/// the node first; a server whose node is offline waits for the next pass), then sets the
/// subscription's `terminated_at` once none is left. Returns the servers deleted now.
///
/// # Errors
/// Database failures.
pub async fn terminate(state: &AppState, org_id: &str, now: i64) -> anyhow::Result<usize> {
    let mut deleted = 0;
    let mut left = 0;
    for id in suspended_ids(state, org_id).await? {
        let Some(instance) = instances::find(&state.db.pool, &id).await? else {
            continue;
        };
        match sync::remove(state, &instance.node_id, &id).await {
            Ok(true) => {}
            Ok(false) => {
                left += 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(instance.id = %id, error = %e, "billing: removing a terminated server from its node");
                left += 1;
                continue;
            }
        }
        crate::backups::forget_remote(state, &instance).await;
        crate::dns::auto::instance_removed(state, &id).await;
        if instances::delete(&state.db.pool, &id).await? {
            deleted += 1;
        }
        crate::nodes::firewall::instance_removed(state, &instance.node_id, &id).await;
    }
    if left == 0 {
        sqlx::query(
            "UPDATE subscriptions SET terminated_at = $1, updated_at = $1 \
             WHERE org_id = $2 AND terminated_at IS NULL",
        )
        .bind(now)
        .bind(org_id)
        .execute(&state.db.pool)
        .await?;
    }
    tracing::warn!(org.id = %org_id, servers = deleted, waiting = left, "billing: servers of an unpaid organization deleted");
    Ok(deleted)
}

/// A past-due organization, as a pass sees it.
#[derive(sqlx::FromRow)]
struct PastDue {
    org_id: String,
    org_name: String,
    past_due_since: i64,
    suspended_at: Option<i64>,
}

/// One pass at `now`: reminders due, suspensions due (grace over), terminations due (if
/// on), and restores of organizations good again but still marked suspended.
///
/// # Errors
/// Database failures listing the organizations (one organization's failure is counted in
/// [`PassReport::failed`] and retried by the next pass).
pub async fn pass(state: &AppState, now: i64) -> anyhow::Result<PassReport> {
    let mut report = PassReport::default();
    if !crate::billing::enabled(state) {
        return Ok(report);
    }
    let config = &state.config.billing;
    let grace = days(config.grace_days);
    let terminate_after = days(config.terminate_after_days);
    // Paid up (`subscriptions::is_good`) yet still marked suspended.
    let marked: Vec<(String, String)> = sqlx::query_as(
        "SELECT org_id, status FROM subscriptions WHERE suspended_at IS NOT NULL ORDER BY org_id",
    )
    .fetch_all(&state.db.pool)
    .await?;
    let good = marked
        .into_iter()
        .filter(|(_, status)| super::subscriptions::is_good(status))
        .map(|(org_id, _)| org_id);
    for org_id in good {
        match restore(state, &org_id).await {
            Ok(_) => report.restored += 1,
            Err(e) => {
                report.failed += 1;
                tracing::warn!(org.id = %org_id, error = %e, "billing: restoring a paid organization");
            }
        }
    }
    // Overdue (`subscriptions::is_overdue`) since `now` or before, not terminated.
    let due: Vec<PastDue> = sqlx::query_as(
        "SELECT s.org_id, o.name AS org_name, s.past_due_since, s.suspended_at \
         FROM subscriptions s JOIN organizations o ON o.id = s.org_id \
         WHERE s.status IN ('past_due', 'unpaid') AND s.past_due_since <= $1 \
         AND s.terminated_at IS NULL ORDER BY s.past_due_since, s.org_id",
    )
    .bind(now)
    .fetch_all(&state.db.pool)
    .await?;
    for org in due {
        let mut suspended_at = org.suspended_at;
        let mut just_suspended = false;
        if suspended_at.is_none() && now >= org.past_due_since.saturating_add(grace) {
            match suspend(state, &org.org_id, now).await {
                Ok(_) => {
                    report.suspended += 1;
                    suspended_at = Some(now);
                    just_suspended = true;
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(org.id = %org.org_id, error = %e, "billing: suspending an unpaid organization");
                    continue;
                }
            }
        }
        let terminate_at = suspended_at
            .filter(|_| terminate_after > 0)
            .map(|at| at.saturating_add(terminate_after));
        if let Some(at) = terminate_at
            && now >= at
        {
            match terminate(state, &org.org_id, now).await {
                Ok(n) => report.terminated += n,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(org.id = %org.org_id, error = %e, "billing: terminating an unpaid organization");
                }
            }
            continue;
        }
        let deadline = match suspended_at {
            None => Some(org.past_due_since.saturating_add(grace)),
            Some(_) => terminate_at,
        };
        match remind(state, &org, now, just_suspended, deadline).await {
            Ok(true) => report.mailed += 1,
            Ok(false) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(org.id = %org.org_id, error = %e, "billing: dunning mail");
            }
        }
    }
    Ok(report)
}

fn days(n: u64) -> i64 {
    i64::try_from(n)
        .unwrap_or(i64::MAX / DAY_MS)
        .saturating_mul(DAY_MS)
}

/// Sends the reminder when one is due (none yet in this episode, the last one an
/// interval ago, or the servers were just suspended), claimed with a conditional UPDATE
/// so two passes never both send it. Whether it was sent.
async fn remind(
    state: &AppState,
    org: &PastDue,
    now: i64,
    just_suspended: bool,
    deadline: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let interval = i64::try_from(state.config.billing.dunning_mail_interval_hours)
        .unwrap_or(i64::MAX / HOUR_MS)
        .saturating_mul(HOUR_MS);
    let threshold = if just_suspended {
        now
    } else {
        now.saturating_sub(interval)
    };
    let claimed = sqlx::query(
        "UPDATE subscriptions SET last_dunning_mail_at = $1 WHERE org_id = $2 \
         AND (last_dunning_mail_at IS NULL OR last_dunning_mail_at < past_due_since \
         OR last_dunning_mail_at <= $3)",
    )
    .bind(now)
    .bind(&org.org_id)
    .bind(threshold)
    .execute(&state.db.pool)
    .await?
    .rows_affected()
        > 0;
    if !claimed {
        return Ok(false);
    }
    let to: Vec<String> = sqlx::query_scalar(
        "SELECT u.email FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.role IN ('owner', 'admin') AND u.suspended_at IS NULL \
         ORDER BY u.email",
    )
    .bind(&org.org_id)
    .fetch_all(&state.db.pool)
    .await?;
    let template = Template::PaymentOverdue {
        org_name: org.org_name.clone(),
        suspended: org.suspended_at.is_some() || just_suspended,
        deadline: deadline.map(rfc3339),
        link: format!(
            "{}/billing?organization_id={}",
            state.base_url(),
            org.org_id
        ),
    };
    for address in &to {
        state.mailer.send_template(address, &template);
    }
    Ok(true)
}

/// Runs [`pass`] every `billing.dunning_interval_secs` while this replica holds the job
/// lease.
pub async fn run_until_stopped(
    state: AppState,
    mut lease: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(state.config.billing.dunning_interval_secs.max(1));
    while crate::jobs::lease::until_held(&mut lease, &mut stop).await {
        match pass(&state, state.clock.now_ms()).await {
            Ok(report) if report != PassReport::default() => {
                tracing::info!(?report, "billing: dunning pass");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "billing: dunning pass failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_why() {
        let e = refusal();
        assert_eq!(e.code(), "SERVER_SUSPENDED");
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert!(e.to_string().contains("payment is overdue"));
    }

    #[test]
    fn days_saturate() {
        assert_eq!(days(2), 2 * DAY_MS);
        assert!(days(u64::MAX) > 0);
    }
}
