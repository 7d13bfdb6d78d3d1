//! `GET /v1/metrics`: one resource sample of the node. CPU usage is measured since the
//! previous sample (the panel asks every 10 s with its heartbeat), network counters are
//! totals since boot, disk is summed over mounted filesystems. `instances` lists the
//! stats of every instance that is running.

use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use shardlyn_proto::metrics::{InstanceSample, NodeSample};
use sysinfo::{Disks, Networks, System};

use super::AgentState;

/// Keeps the `System` between samples so CPU usage covers the interval.
pub struct Sampler {
    system: Mutex<System>,
}

impl Default for Sampler {
    fn default() -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        system.refresh_memory();
        Self {
            system: Mutex::new(system),
        }
    }
}

impl Sampler {
    fn sample(&self) -> NodeSample {
        let (cpu, used, total) = match self.system.lock() {
            Ok(mut sys) => {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                (
                    f64::from(sys.global_cpu_usage()),
                    sys.used_memory(),
                    sys.total_memory(),
                )
            }
            Err(_) => (0.0, 0, 0),
        };
        let disks = Disks::new_with_refreshed_list();
        let (mut disk_total, mut disk_free) = (0u64, 0u64);
        let mut seen = std::collections::HashSet::new();
        for d in disks.iter() {
            // The same device mounted twice counts once.
            if seen.insert(d.name().to_os_string()) {
                disk_total += d.total_space();
                disk_free += d.available_space();
            }
        }
        let networks = Networks::new_with_refreshed_list();
        let (rx, tx) = networks
            .iter()
            .filter(|(name, _)| name.as_str() != "lo")
            .fold((0u64, 0u64), |(rx, tx), (_, d)| {
                (rx + d.total_received(), tx + d.total_transmitted())
            });
        NodeSample {
            cpu_percent: cpu,
            memory_used_bytes: used,
            memory_total_bytes: total,
            disk_used_bytes: disk_total.saturating_sub(disk_free),
            disk_total_bytes: disk_total,
            net_rx_bytes: rx,
            net_tx_bytes: tx,
            instances: Vec::new(),
        }
    }
}

pub async fn sample(State(state): State<AgentState>) -> Json<NodeSample> {
    let sampler = state.sampler.clone();
    let mut sample = tokio::task::spawn_blocking(move || sampler.sample())
        .await
        .unwrap_or_default();
    sample.instances = state
        .instances
        .running_stats()
        .await
        .into_iter()
        .map(|(id, stats)| InstanceSample::new(id, &stats))
        .collect();
    Json(sample)
}
