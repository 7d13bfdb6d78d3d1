//! The reconciler: once per cluster (under the job lease), every zone the panel has
//! records in is read once from its provider and compared with `dns_records`:
//!
//! - a record deleted by hand is written again, a changed one is put back and marked
//!   `drifted` with what was found (the next clean pass marks it `synced`);
//! - `pending` records (a provider was down) are written, `deleting` ones removed;
//! - a manual record that follows a node takes the node's current address;
//! - a record whose name someone else took (no marker of ours) is `failed`, untouched.
//!
//! Per zone that is one record list and, when anything differs, one write; nothing per
//! record, so a pass over 10,000 unchanged records sends one list call per zone.

use std::collections::HashMap;

use std::time::Duration;

use tokio::sync::watch;

use super::handlers::{owner_of, target_of};
use super::owner::{self, ZoneView};
use super::provider::{DnsProvider, RecordSet};
use super::store::{self, Record};
use crate::db::now_ms;
use crate::state::AppState;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    /// Zones read (one record list each).
    pub zones: usize,
    /// Records compared.
    pub records: usize,
    /// Records written again (missing, changed, pending) or removed (deleting).
    pub repaired: usize,
    /// Records the provider refused or could not be reached for, or whose name
    /// someone else holds.
    pub failed: usize,
}

/// Runs [`pass`] every `dns.reconcile_interval_secs` while this replica holds the job
/// lease.
pub async fn run_until_stopped(
    state: AppState,
    mut lease: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(state.config.dns.reconcile_interval_secs.max(1));
    while crate::jobs::lease::until_held(&mut lease, &mut stop).await {
        let report = pass(&state).await;
        if report.repaired > 0 || report.failed > 0 {
            tracing::info!(?report, "DNS reconciliation");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One pass over every organization's records.
pub async fn pass(state: &AppState) -> PassReport {
    let mut report = PassReport::default();
    let Ok(zones) = store::zones(&state.db.pool).await else {
        return report;
    };
    for (credential_id, zone_id, _) in zones {
        match zone(state, &credential_id, &zone_id, &mut report).await {
            Ok(()) => {}
            Err(e) => tracing::warn!(credential.id = %credential_id, zone.id = %zone_id,
                error = %e, "DNS reconciliation of a zone"),
        }
    }
    report
}

/// What the pass decided for one record.
struct Verdict {
    /// The row's index in the zone's rows.
    row: usize,
    status: &'static str,
    error: Option<String>,
    /// The content it now has (a node's new address).
    content: Option<String>,
    /// Its change goes in this pass's write.
    written: bool,
}

/// Reconciles one zone of one credential.
async fn zone(
    state: &AppState,
    credential_id: &str,
    zone_id: &str,
    report: &mut PassReport,
) -> crate::error::AppResult<()> {
    let rows = store::of_zone(&state.db.pool, credential_id, zone_id).await?;
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let me = owner_of(state, &first.org_id);
    let now = now_ms();
    report.zones += 1;
    report.records += rows.len();
    let t = match target_of(state, first).await {
        Ok(t) => t,
        Err(e) => {
            mark_all(state, &rows, &e.to_string(), now, report).await?;
            return Ok(());
        }
    };
    let sets = match t.provider.records(&t.zone).await {
        Ok(s) => s,
        Err(e) => {
            mark_all(state, &rows, &e.to_string(), now, report).await?;
            return Ok(());
        }
    };
    let addresses = node_addresses(state, &rows).await?;
    let before = ZoneView::new(&sets);
    let mut after = before.clone();
    let mut touched = Vec::new();
    let mut verdicts = Vec::with_capacity(rows.len());
    let mut gone = Vec::new();
    // A server's address records before its SRV record, whose target they are: an SRV
    // whose server's name someone else holds is not written (it would send players
    // there).
    let mut order: Vec<(usize, &Record)> = rows.iter().enumerate().collect();
    order.sort_by_key(|(_, r)| r.record_type == "SRV");
    let mut clashed: Vec<&str> = Vec::new();
    for (row, r) in order {
        if r.record_type == "SRV"
            && r.instance_id
                .as_deref()
                .is_some_and(|s| clashed.contains(&s))
        {
            verdicts.push(Verdict {
                row,
                status: "failed",
                error: Some("its target's name is held by a record the panel did not make".into()),
                content: None,
                written: false,
            });
            continue;
        }
        if r.status == "deleting" {
            let c = owner::plan_remove(&after, &me, &r.name, &r.record_type);
            after.apply(&c);
            touched.extend(owner::keys(&c));
            gone.push(r.id.clone());
            continue;
        }
        let mut want = r.set();
        let mut content = None;
        if r.origin == "manual"
            && let Some(node) = &r.node_id
            && let Some(address) = addresses.get(node).and_then(|(v4, v6)| {
                if r.record_type == "AAAA" {
                    v6.clone()
                } else {
                    v4.clone()
                }
            })
            && want.contents != [address.clone()]
        {
            want.contents = vec![address.clone()];
            content = Some(address);
        }
        let found = after.get(&want.name, &want.record_type).cloned();
        match owner::plan_write(&after, &me, &want) {
            Err(clash) => {
                if let Some(server) = r.instance_id.as_deref() {
                    clashed.push(server);
                }
                verdicts.push(Verdict {
                    row,
                    status: "failed",
                    error: Some(clash.to_string()),
                    content,
                    written: false,
                });
            }
            Ok(c) if c.is_empty() => verdicts.push(Verdict {
                row,
                status: "synced",
                error: None,
                content,
                written: false,
            }),
            Ok(c) => {
                after.apply(&c);
                touched.extend(owner::keys(&c));
                let drift = (r.status == "synced" || r.status == "drifted") && content.is_none();
                let error = drift.then(|| drifted(&want, found.as_ref()));
                verdicts.push(Verdict {
                    row,
                    status: if drift { "drifted" } else { "synced" },
                    error,
                    content,
                    written: true,
                });
            }
        }
    }
    let changes = owner::diff(&before, &after, &touched);
    let applied = if changes.is_empty() {
        Ok(())
    } else {
        t.provider.apply(&t.zone, &changes).await
    };
    let failure = applied.as_ref().err().map(ToString::to_string);
    for v in verdicts {
        let r = &rows[v.row];
        let (status, error) = match (&failure, v.written) {
            (Some(e), true) => ("pending", Some(e.clone())),
            _ => (v.status, v.error),
        };
        if v.written && failure.is_none() {
            report.repaired += 1;
        }
        if status == "failed" || status == "pending" {
            report.failed += 1;
        }
        if let Some(content) = v.content.filter(|_| failure.is_none()) {
            let mut updated = r.clone();
            updated.content = content;
            updated.status = status.into();
            updated.last_error = error;
            updated.checked_at = Some(now);
            updated.updated_at = now;
            store::update(&state.db.pool, &updated).await?;
        } else if r.status != status || r.last_error != error || v.written {
            store::set_status(&state.db.pool, &r.id, status, error.as_deref(), now).await?;
        }
    }
    for id in gone {
        if let Some(e) = &failure {
            report.failed += 1;
            store::set_status(&state.db.pool, &id, "deleting", Some(e), now).await?;
        } else {
            report.repaired += 1;
            store::delete(&state.db.pool, &id).await?;
        }
    }
    Ok(())
}

/// What drift was found, in a line.
fn drifted(want: &RecordSet, found: Option<&RecordSet>) -> String {
    match found {
        None => format!(
            "the {} record of {} was gone at the provider; written again",
            want.record_type, want.name
        ),
        Some(f) => format!(
            "the {} record of {} was changed at the provider ({} ttl {}); put back",
            want.record_type,
            want.name,
            f.contents.join(", "),
            f.ttl
        ),
    }
}

/// Every row of a zone whose provider could not be read keeps its status, with the
/// error (a `pending` or `deleting` one stays so for the next pass).
async fn mark_all(
    state: &AppState,
    rows: &[Record],
    error: &str,
    now: i64,
    report: &mut PassReport,
) -> sqlx::Result<()> {
    for r in rows {
        report.failed += 1;
        store::set_status(&state.db.pool, &r.id, &r.status, Some(error), now).await?;
    }
    Ok(())
}

/// The public addresses of the nodes `rows` follow.
async fn node_addresses(
    state: &AppState,
    rows: &[Record],
) -> sqlx::Result<HashMap<String, (Option<String>, Option<String>)>> {
    let mut out = HashMap::new();
    for node in rows
        .iter()
        .filter(|r| r.origin == "manual")
        .filter_map(|r| r.node_id.as_ref())
    {
        if out.contains_key(node) {
            continue;
        }
        if let Some(f) = super::handlers::node_addresses(state, node, &rows[0].org_id).await? {
            out.insert(node.clone(), f);
        }
    }
    Ok(out)
}
