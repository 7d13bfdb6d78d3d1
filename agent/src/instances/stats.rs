//! Live resource use of an instance: Docker's one-shot stats (memory, CPU from the
//! delta to the previous sample, network summed over interfaces), uptime, and the size
//! of the server files (walked at most every 30 s).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::container::StatsOptions;
use futures_util::StreamExt;
use shardlyn_proto::instance::{InstanceState, InstanceStats, NetworkStats};

use super::container::container_name;
use super::{Instance, InstanceError, Manager, lock, now_ms, store};

const STATS_TTL: Duration = Duration::from_secs(1);
const DISK_TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
struct CacheInner {
    last: Option<(Instant, InstanceStats)>,
    /// `(container total, system total)` CPU nanoseconds of the previous sample.
    cpu: Option<(u64, u64)>,
    disk: Option<(Instant, u64)>,
}

/// Per-instance stats cache.
#[derive(Default)]
pub(crate) struct Cache(Mutex<CacheInner>);

impl Manager {
    pub(crate) async fn stats_of(&self, inst: &Instance) -> Result<InstanceStats, InstanceError> {
        if let Some((at, s)) = &lock(&inst.stats.0).last
            && at.elapsed() < STATS_TTL
            && s.state == inst.state()
        {
            return Ok(s.clone());
        }
        let state = inst.state();
        let disk_bytes = self.disk_bytes(inst).await;
        let mut stats = InstanceStats {
            memory_bytes: 0,
            memory_limit_bytes: 0,
            cpu_absolute: 0.0,
            network: NetworkStats::default(),
            uptime: 0,
            state,
            disk_bytes,
        };
        if matches!(
            state,
            InstanceState::Starting | InstanceState::Running | InstanceState::Stopping
        ) {
            let docker = self.docker()?;
            let mut stream = docker.stats(
                &container_name(&self.0.tag, &inst.id),
                Some(StatsOptions {
                    stream: false,
                    one_shot: true,
                }),
            );
            if let Some(Ok(s)) = stream.next().await {
                stats.memory_bytes = s.memory_stats.usage.unwrap_or(0);
                stats.memory_limit_bytes = s.memory_stats.limit.unwrap_or(0);
                let total = s.cpu_stats.cpu_usage.total_usage;
                let system = s.cpu_stats.system_cpu_usage.unwrap_or(0);
                let cpus = s.cpu_stats.online_cpus.unwrap_or(1).max(1);
                let previous = lock(&inst.stats.0).cpu.replace((total, system));
                if let Some((pt, ps)) = previous {
                    let dt = total.saturating_sub(pt);
                    let ds = system.saturating_sub(ps);
                    if ds > 0 {
                        #[expect(clippy::cast_precision_loss, reason = "a percentage")]
                        let pct = dt as f64 / ds as f64 * cpus as f64 * 100.0;
                        stats.cpu_absolute = (pct * 1000.0).round() / 1000.0;
                    }
                }
                for n in s.networks.unwrap_or_default().values() {
                    stats.network.rx_bytes += n.rx_bytes;
                    stats.network.tx_bytes += n.tx_bytes;
                }
            }
            if let Some(started) = lock(&inst.run).started_at {
                stats.uptime = u64::try_from(now_ms().saturating_sub(started)).unwrap_or(0);
            }
        }
        lock(&inst.stats.0).last = Some((Instant::now(), stats.clone()));
        Ok(stats)
    }

    async fn disk_bytes(&self, inst: &Instance) -> u64 {
        if let Some((at, bytes)) = lock(&inst.stats.0).disk
            && at.elapsed() < DISK_TTL
        {
            return bytes;
        }
        let path = self.0.paths.volume(&inst.id);
        let bytes = tokio::task::spawn_blocking(move || store::disk_usage(&path))
            .await
            .unwrap_or(0);
        lock(&inst.stats.0).disk = Some((Instant::now(), bytes));
        bytes
    }
}
