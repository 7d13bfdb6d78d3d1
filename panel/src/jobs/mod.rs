//! The background job runner: named tasks (`run_until_stopped` futures) started with the
//! server and stopped gracefully with it.
//!
//! Every job runs once per cluster, whatever the number of replicas, through the shared
//! database (so the same on SQLite and PostgreSQL, with no lock service): `schedules`
//! claims each run with a conditional UPDATE (see `schedules::runner`), so every replica
//! may look and exactly one runs it; the periodic sweeps run only on the replica that
//! holds the cluster's job lease (`lease`, kept by the `job_lease` job).
//!
//! Jobs today: `schedules` (due cron schedules and requested runs), `audit_retention`
//! (stored log level at start, on every replica; audit-log pruning under the lease; see
//! `admin::logs`), `upload_expiry` (records of expired resumable uploads, under the
//! lease; each agent drops their data itself), `migration_reaper` (moves whose replica
//! died are failed and undone, under the lease), `integration_deliveries` (the
//! notification queue; each delivery is claimed by one replica, see
//! `integrations::deliver`), `alerts` (alerts whose duration or hysteresis ran out
//! with no new event; on every replica, each transition won once), `provision_reaper`
//! (Terraform runs whose lease lapsed with their panel are failed, on every replica),
//! `dns_reconcile` (DNS drift repaired and failed changes retried, under the lease),
//! `billing_events` (Stripe events not yet acted on are retried, every subscription is
//! reconciled with Stripe nightly, under the lease), `billing_dunning` (reminders,
//! suspension and termination of unpaid organizations, under the lease; see
//! `billing::dunning`), `system_backup` (the panel's own scheduled backup, under the
//! lease; see `system_backup`), `deployments` (one-click deploys whose replica died are
//! resumed, on every replica, each taken over once; see `deploy::runner`), `pterodactyl_imports` (imports whose replica died are
//! resumed the same way; see `pterodactyl::run`).
//! `jobs.enabled = false` keeps a replica API-only; `jobs.poll_interval_ms` sets how
//! often they look.

pub mod lease;

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// How long [`Jobs::stop`] waits for one job before aborting it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The running jobs of this process.
pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Jobs {
    /// Starts every job (none when `jobs.enabled` is false).
    #[must_use]
    pub fn start(state: &AppState) -> Self {
        let (stop, rx) = watch::channel(false);
        let mut jobs = Self {
            stop,
            tasks: Vec::new(),
        };
        if !state.config.jobs.enabled {
            return jobs;
        }
        let poll = Duration::from_millis(state.config.jobs.poll_interval_ms.max(10));
        let (held, holds) = watch::channel(false);
        jobs.spawn(
            "job_lease",
            lease::keep(state.clone(), poll, held, rx.clone()),
        );
        jobs.spawn(
            "audit_retention",
            crate::admin::logs::run_until_stopped(state.clone(), holds.clone(), rx.clone()),
        );
        jobs.spawn(
            "upload_expiry",
            crate::uploads::store::sweep_until_stopped(
                state.clone(),
                Duration::from_secs(state.config.jobs.upload_sweep_secs.max(1)),
                holds.clone(),
                rx.clone(),
            ),
        );
        jobs.spawn(
            "migration_reaper",
            crate::migrations::runner::reap_until_stopped(state.clone(), holds.clone(), rx.clone()),
        );
        jobs.spawn(
            "dns_reconcile",
            crate::dns::reconcile::run_until_stopped(state.clone(), holds.clone(), rx.clone()),
        );
        jobs.spawn(
            "billing_events",
            crate::billing::events::run_until_stopped(state.clone(), holds.clone(), rx.clone()),
        );
        jobs.spawn(
            "billing_dunning",
            crate::billing::dunning::run_until_stopped(state.clone(), holds.clone(), rx.clone()),
        );
        jobs.spawn(
            "system_backup",
            crate::system_backup::run_until_stopped(state.clone(), poll, holds, rx.clone()),
        );
        jobs.spawn(
            "ssh_trust",
            crate::ssh::trust::run_until_stopped(state.clone(), rx.clone()),
        );
        jobs.spawn(
            "alerts",
            crate::alerts::evaluate::run_until_stopped(state.clone(), poll, rx.clone()),
        );
        jobs.spawn(
            "integration_deliveries",
            crate::integrations::deliver::run_until_stopped(state.clone(), poll, rx.clone()),
        );
        jobs.spawn(
            "provision_reaper",
            crate::provision::runner::reap_until_stopped(state.clone(), poll, rx.clone()),
        );
        jobs.spawn(
            "deployments",
            crate::deploy::runner::run_until_stopped(state.clone(), poll, rx.clone()),
        );
        jobs.spawn(
            "pterodactyl_imports",
            crate::pterodactyl::run::run_until_stopped(state.clone(), poll, rx.clone()),
        );
        jobs.spawn(
            "schedules",
            crate::schedules::runner::run_until_stopped(state.clone(), poll, rx),
        );
        jobs
    }

    fn spawn(&mut self, name: &'static str, job: impl Future<Output = ()> + Send + 'static) {
        tracing::info!(job = name, "job started");
        self.tasks.push((name, tokio::spawn(job)));
    }

    /// The names of the running jobs.
    #[must_use]
    pub fn names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|(n, _)| *n).collect()
    }

    /// Tells every job to stop and waits for each (aborting one that takes longer than
    /// 30 s).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, mut task) in self.tasks {
            match tokio::time::timeout(STOP_TIMEOUT, &mut task).await {
                Ok(Ok(())) => tracing::info!(job = name, "job stopped"),
                Ok(Err(e)) => tracing::error!(job = name, error = %e, "job ended abnormally"),
                Err(_) => {
                    tracing::warn!(job = name, "job did not stop in time; aborted");
                    task.abort();
                }
            }
        }
    }
}
