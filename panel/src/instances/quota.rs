//! Plan limits of servers (issue 19): what a create or a limits change adds to the
//! organization's servers, memory, CPU and disk, checked with
//! [`crate::billing::limits::check`] inside the transaction of
//! [`crate::billing::limits::lock`] that also writes the change.
//!
//! A size of 0 is unlimited for the container; under a plan that caps that resource a
//! server cannot be unlimited, so a change that makes it 0 is refused with the same 402
//! `PLAN_LIMIT`. A server already unlimited (made before the cap) may stay so.

use shardlyn_proto::instance::Limits;
use sqlx::AnyConnection;

use crate::billing::limits::{self, Ask, Limit};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The sized resources of a server and their values in `l`.
fn sizes(l: &Limits) -> [(Limit, i64); 3] {
    [
        (Limit::MemoryMb, l.memory_mb),
        (Limit::CpuPercent, l.cpu_percent),
        (Limit::DiskMb, l.disk_mb),
    ]
}

/// What a server with `new` limits adds over `old` (`None`: a new server).
fn asks(old: Option<&Limits>, new: &Limits) -> Vec<Ask<'static>> {
    let mut asks = Vec::with_capacity(4);
    if old.is_none() {
        asks.push(Ask::new(Limit::Servers, 1));
    }
    let before = old.map(sizes);
    for (i, (limit, value)) in sizes(new).into_iter().enumerate() {
        let was = before.map_or(0, |b| b[i].1);
        asks.push(Ask::new(limit, value - was));
    }
    asks
}

/// The resources `new` makes unlimited (0) that were sized in `old`.
fn unlimited(old: Option<&Limits>, new: &Limits) -> Vec<Limit> {
    let before = old.map(sizes);
    sizes(new)
        .into_iter()
        .enumerate()
        .filter(|(i, (_, value))| *value == 0 && before.is_none_or(|b| b[*i].1 != 0))
        .map(|(_, (limit, _))| limit)
        .collect()
}

/// Whether going from `old` to `new` adds anything a plan caps (so the change must take
/// the organization's lock and be checked).
#[must_use]
pub(super) fn grows(old: &Limits, new: &Limits) -> bool {
    asks(Some(old), new).iter().any(|a| a.adding > 0) || !unlimited(Some(old), new).is_empty()
}

/// Refuses with 402 `PLAN_LIMIT` a server (`old` `None`) or a limits change that does
/// not fit the plan of `org_id`. Call inside the lock's transaction, before the writes.
///
/// # Errors
/// 402 `PLAN_LIMIT`; database failures.
pub(super) async fn check(
    conn: &mut AnyConnection,
    state: &AppState,
    org_id: &str,
    old: Option<&Limits>,
    new: &Limits,
) -> AppResult<()> {
    let unlimited = unlimited(old, new);
    if !unlimited.is_empty()
        && let Some(plan) = limits::plan_for(&mut *conn, state, org_id).await?
    {
        for limit in unlimited {
            if let Some(cap) = limit.cap(&plan.limits) {
                let usage = limits::usage_of(&mut *conn, org_id, limit, None).await?;
                return Err(AppError::PlanLimit {
                    limit: limit.key(),
                    usage,
                    cap,
                    message: format!(
                        "the {} plan caps {} at {cap}: a server cannot be unlimited (0) \
                         under it; give it a size",
                        plan.name,
                        limit.key()
                    ),
                });
            }
        }
    }
    limits::check(conn, state, org_id, &asks(old, new)).await
}
