//! The lease of the cluster's jobs: one replica at a time runs the jobs that must run
//! once per cluster (audit retention, upload expiry), the one that holds lease
//! [`CLUSTER_JOBS`] in the shared database.
//!
//! A replica takes the lease when it is free or lapsed and renews it every tick while it
//! lives; a replica that stops gives it back, and one that dies (`kill -9`) leaves it to
//! lapse within [`TTL_MS`], after which another takes it. A conditional upsert makes the
//! take and the renewal one statement, the same on SQLite and PostgreSQL. Jobs under the
//! lease are idempotent (they delete what has expired), so the short overlap a paused
//! holder could cause does no harm. The lease's clock is the panel's [`Clock`], so a
//! test can let a lease lapse without waiting.
//!
//! [`Clock`]: crate::clock::Clock

use std::future::Future;
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::watch;

use crate::state::AppState;

/// The lease under which the once-per-cluster jobs run.
pub const CLUSTER_JOBS: &str = "cluster-jobs";
/// How long a lease lasts without a renewal.
pub const TTL_MS: i64 = 30_000;
/// The longest time between two renewals (a third of the lifetime).
const RENEW_AT_MOST: Duration = Duration::from_secs(10);

/// Takes lease `name` for `holder` (or renews it) until `now + ttl_ms`, unless another
/// holder's lease is still running; whether `holder` holds it now.
///
/// # Errors
/// Database failures.
pub async fn try_hold(
    pool: &AnyPool,
    name: &str,
    holder: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4",
    )
    .bind(name)
    .bind(holder)
    .bind(now.saturating_add(ttl_ms))
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives lease `name` back if `holder` holds it.
///
/// # Errors
/// Database failures.
pub async fn release(pool: &AnyPool, name: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM job_leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

/// Who holds lease `name` at `now`, if anyone.
///
/// # Errors
/// Database failures.
pub async fn holder(pool: &AnyPool, name: &str, now: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT holder FROM job_leases WHERE name = $1 AND expires_at > $2")
        .bind(name)
        .bind(now)
        .fetch_optional(pool)
        .await
}

/// Keeps [`CLUSTER_JOBS`] for this replica while it can, every `tick` (at most every
/// 10 s), and says on `held` whether it holds it; gives it back at `stop`.
pub async fn keep(
    state: AppState,
    tick: Duration,
    held: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let me = state.replica_id.clone();
    let tick = tick.min(RENEW_AT_MOST);
    loop {
        let now = state.clock.now_ms();
        let holds = match try_hold(&state.db.pool, CLUSTER_JOBS, &me, now, TTL_MS).await {
            Ok(holds) => holds,
            Err(e) => {
                // Unconfirmed: better no run than a second one.
                tracing::warn!(error = %e, "renewing the job lease");
                false
            }
        };
        held.send_if_modified(|h| {
            if *h == holds {
                return false;
            }
            tracing::info!(replica = %me, holds, "job lease changed hands");
            *h = holds;
            true
        });
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    held.send_replace(false);
    if let Err(e) = release(&state.db.pool, CLUSTER_JOBS, &me).await {
        tracing::warn!(error = %e, "giving the job lease back");
    }
}

/// Waits until this replica holds the lease (`true`) or the jobs stop (`false`).
pub async fn until_held(
    held: &mut watch::Receiver<bool>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        r = held.wait_for(|h| *h) => r.is_ok(),
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// The rows of a job each leased by one replica (deployments, imports).
#[derive(Debug, Clone, Copy)]
pub struct Leased {
    /// What they are, for the log.
    pub what: &'static str,
    /// How long a lease lasts without a renewal.
    pub lease_ms: i64,
}

/// Takes over, on every replica, the rows of a [`Leased`] job whose lease lapsed because
/// their replica died: every `poll` until `stop`, `lapsed` lists them, `take_over` claims
/// each for this replica until `now + lease_ms` (`false` when another replica was first)
/// and `run` goes on with it in a task of its own.
pub async fn resume_lapsed<L, LF, T, TF, R, RF>(
    state: AppState,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
    Leased { what, lease_ms }: Leased,
    lapsed: L,
    take_over: T,
    run: R,
) where
    L: Fn(AnyPool, i64) -> LF,
    LF: Future<Output = Result<Vec<String>, sqlx::Error>>,
    T: Fn(AnyPool, String, String, i64, i64) -> TF,
    TF: Future<Output = Result<bool, sqlx::Error>>,
    R: Fn(AppState, String) -> RF,
    RF: Future<Output = ()> + Send + 'static,
{
    let tick = poll.max(Duration::from_millis(200));
    loop {
        let now = state.clock.now_ms();
        match lapsed(state.db.pool.clone(), now).await {
            Ok(ids) => {
                for id in ids {
                    let claimed = take_over(
                        state.db.pool.clone(),
                        id.clone(),
                        state.replica_id.clone(),
                        now,
                        now + lease_ms,
                    )
                    .await;
                    match claimed {
                        Ok(true) => {
                            tracing::info!(id = %id, what, "resuming after its replica died");
                            tokio::spawn(run(state.clone(), id));
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, what, "taking a lapsed lease over"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, what, "looking for lapsed leases"),
        }
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}
