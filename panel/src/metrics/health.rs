//! The panel's own health in `/metrics`: its build, the agents' tunnels and the nodes,
//! the cluster's job lease and the leased jobs, overdue schedules, the notification
//! queue, the event bus and the database. Counters move where the event happens
//! (a tunnel accepted, a heartbeat failed, a delivery attempted); gauges are read at
//! scrape time, from memory or with the few bounded queries of [`super::counts`], under
//! one timeout so a slow database cannot hang the scrape (`shardlyn_database_up` then
//! says 0 and the gauges keep their last values).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::counts;
use crate::state::AppState;

/// How long the scrape-time queries may take together.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// A schedule due longer ago than this and still not claimed is overdue (the runner
/// looks every `jobs.poll_interval_ms`, 1 s by default).
const SCHEDULE_OVERDUE_MS: i64 = 60_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BusLabel {
    backend: &'static str,
}

/// How an attempt to deliver a notification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver took it.
    Delivered,
    /// It failed and will be retried.
    Retried,
    /// It failed and was given up (its integration is marked unhealthy).
    Failed,
}

impl DeliveryOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Failed => "failed",
        }
    }
}

/// The health metrics (registered into the panel's registry by [`Health::register`]).
#[derive(Default)]
pub struct Health {
    start_time: Gauge<f64, AtomicU64>,
    tunnels_connected: Gauge,
    tunnel_connections: Counter,
    heartbeat_failures: Counter,
    nodes: Family<StateLabel, Gauge>,
    nodes_cordoned: Gauge,
    jobs_enabled: Gauge,
    job_lease_held: Gauge,
    jobs: Family<JobLabels, Gauge>,
    schedules_overdue: Gauge,
    deliveries_pending: Gauge,
    deliveries_oldest_due: Gauge<f64, AtomicU64>,
    delivery_attempts: Family<OutcomeLabel, Counter>,
    event_bus_healthy: Family<BusLabel, Gauge>,
    pool_max: Gauge,
    database_up: Gauge,
}

impl Health {
    /// Adds every health metric to `registry` (prefixed `shardlyn_` there).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "build",
            "The panel's version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        registry.register(
            "start_time_seconds",
            "When this panel process started, unix seconds",
            self.start_time.clone(),
        );
        registry.register(
            "tunnels_connected",
            "Agents whose tunnel this replica holds",
            self.tunnels_connected.clone(),
        );
        registry.register(
            "tunnel_connections",
            "Agent tunnels this replica accepted",
            self.tunnel_connections.clone(),
        );
        registry.register(
            "tunnel_heartbeat_failures",
            "Heartbeats that failed, each closing its tunnel",
            self.heartbeat_failures.clone(),
        );
        registry.register(
            "nodes",
            "Nodes by their agent's connection (online, offline), cluster-wide",
            self.nodes.clone(),
        );
        registry.register(
            "nodes_cordoned",
            "Nodes cordoned (no new servers placed), cluster-wide",
            self.nodes_cordoned.clone(),
        );
        registry.register(
            "jobs_enabled",
            "1 when this replica runs background jobs (jobs.enabled)",
            self.jobs_enabled.clone(),
        );
        registry.register(
            "job_lease_held",
            "1 when this replica holds the cluster's job lease (sweeps, retention, DNS, billing)",
            self.job_lease_held.clone(),
        );
        registry.register(
            "jobs",
            "Leased jobs in progress (deployments, Pterodactyl imports, Terraform runs, moves) \
             by kind and state: running, or lapsed (their replica died and none took them over yet)",
            self.jobs.clone(),
        );
        registry.register(
            "schedules_overdue",
            "Enabled schedules whose run is due for more than a minute and not started",
            self.schedules_overdue.clone(),
        );
        registry.register(
            "deliveries_pending",
            "Notification deliveries queued or waiting for a retry, cluster-wide",
            self.deliveries_pending.clone(),
        );
        registry.register(
            "deliveries_oldest_due_seconds",
            "How long the longest-due pending notification delivery has waited (0: none due)",
            self.deliveries_oldest_due.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Notification delivery attempts of this replica by outcome: delivered, retried, failed (given up)",
            self.delivery_attempts.clone(),
        );
        registry.register(
            "event_bus_healthy",
            "1 while this replica hears the event bus (always, without Redis)",
            self.event_bus_healthy.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Largest size of the database pool (database_max_connections)",
            self.pool_max.clone(),
        );
        registry.register(
            "database_up",
            "1 when the scrape's database queries answered in time",
            self.database_up.clone(),
        );
        for outcome in [
            DeliveryOutcome::Delivered,
            DeliveryOutcome::Retried,
            DeliveryOutcome::Failed,
        ] {
            // Each outcome shows from the start, at 0.
            drop(self.delivery_attempts.get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            }));
        }
    }

    /// An agent's tunnel was accepted.
    pub fn tunnel_accepted(&self) {
        self.tunnel_connections.inc();
    }

    /// A heartbeat failed (its tunnel is closed).
    pub fn heartbeat_failed(&self) {
        self.heartbeat_failures.inc();
    }

    /// A delivery attempt ended.
    pub fn delivery_attempted(&self, outcome: DeliveryOutcome) {
        self.delivery_attempts
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Reads the gauges: memory first, then the database (under [`QUERY_TIMEOUT`]).
    pub async fn refresh(&self, state: &AppState) {
        #[expect(clippy::cast_precision_loss, reason = "unix ms fit f64 exactly")]
        let started = state.started_at_ms() as f64 / 1000.0;
        self.start_time.set(started);
        self.tunnels_connected
            .set(i64::try_from(state.tunnels.list().len()).unwrap_or(i64::MAX));
        self.jobs_enabled.set(i64::from(state.config.jobs.enabled));
        self.pool_max
            .set(i64::from(state.db.pool.options().get_max_connections()));
        let backend = if state.redis.is_some() {
            "redis"
        } else {
            "local"
        };
        let healthy = *state.events.healthy().borrow();
        self.event_bus_healthy
            .get_or_create(&BusLabel { backend })
            .set(i64::from(healthy));
        let read = tokio::time::timeout(QUERY_TIMEOUT, self.read_database(state)).await;
        let ok = match read {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: counting in the database");
                false
            }
            Err(_) => {
                tracing::warn!("metrics: the database did not answer in time");
                false
            }
        };
        self.database_up.set(i64::from(ok));
    }

    async fn read_database(&self, state: &AppState) -> Result<(), sqlx::Error> {
        let pool = &state.db.pool;
        let now = state.clock.now_ms();
        let nodes = counts::nodes(pool).await?;
        set_state(&self.nodes, "online", nodes.online);
        set_state(&self.nodes, "offline", nodes.offline);
        self.nodes_cordoned.set(nodes.cordoned);

        let holder =
            crate::jobs::lease::holder(pool, crate::jobs::lease::CLUSTER_JOBS, now).await?;
        self.job_lease_held.set(i64::from(
            holder.as_deref() == Some(state.replica_id.as_str()),
        ));

        let leased = [
            ("deployment", counts::deployments(pool, now).await?),
            (
                "pterodactyl_import",
                counts::pterodactyl_imports(pool, now).await?,
            ),
            ("provision_run", counts::provision_runs(pool, now).await?),
            (
                "migration",
                counts::migrations(
                    pool,
                    crate::db::now_ms() - crate::migrations::runner::STALE_MS,
                )
                .await?,
            ),
        ];
        for (kind, n) in leased {
            for (phase, value) in [("running", n.running), ("lapsed", n.lapsed)] {
                let labels = JobLabels { kind, state: phase };
                self.jobs.get_or_create(&labels).set(value);
            }
        }

        self.schedules_overdue
            .set(counts::schedules_overdue(pool, now - SCHEDULE_OVERDUE_MS).await?);

        let queue = counts::deliveries(pool).await?;
        self.deliveries_pending.set(queue.pending);
        #[expect(clippy::cast_precision_loss, reason = "waits far below 2^52 ms")]
        let waited = queue
            .first_due_at
            .map_or(0.0, |due| (now - due).max(0) as f64 / 1000.0);
        self.deliveries_oldest_due.set(waited);
        Ok(())
    }
}

fn set_state(family: &Family<StateLabel, Gauge>, state: &'static str, value: i64) {
    family.get_or_create(&StateLabel { state }).set(value);
}
