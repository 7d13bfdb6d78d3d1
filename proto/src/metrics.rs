//! The heartbeat sample: what the agent answers on `GET /v1/metrics` every 10 s and the
//! panel records as node and server usage history.
//!
//! Reading is lenient on purpose: a field an older (or simulated) agent leaves out reads
//! as zero, so a heartbeat never fails on a missing figure; a renamed field still fails
//! to compile on both sides.

use serde::{Deserialize, Serialize};

use crate::instance::{InstanceStats, NetworkStats};

/// One resource sample of a node and of its running servers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct NodeSample {
    /// CPU use of the whole node since the previous sample, 0-100.
    pub cpu_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    /// Summed over mounted filesystems, each device once.
    pub disk_used_bytes: u64,
    pub disk_total_bytes: u64,
    /// Totals since boot over every interface but loopback.
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// The servers running on the node.
    pub instances: Vec<InstanceSample>,
}

/// One running server's figures within a [`NodeSample`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct InstanceSample {
    /// The instance id.
    pub id: String,
    /// CPU in percent of one core.
    pub cpu_absolute: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub disk_bytes: u64,
    pub network: NetworkStats,
    /// Milliseconds since the server started.
    pub uptime: u64,
}

impl InstanceSample {
    /// The figures of `stats` for instance `id`.
    #[must_use]
    pub fn new(id: String, stats: &InstanceStats) -> Self {
        Self {
            id,
            cpu_absolute: stats.cpu_absolute,
            memory_bytes: stats.memory_bytes,
            memory_limit_bytes: stats.memory_limit_bytes,
            disk_bytes: stats.disk_bytes,
            network: stats.network.clone(),
            uptime: stats.uptime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_sample_reads_with_zeros() {
        let sample: NodeSample = serde_json::from_str(
            r#"{"cpu_percent": 1.5, "instances": [{"id": "a", "memory_bytes": 7}]}"#,
        )
        .expect("sample");
        assert!((sample.cpu_percent - 1.5).abs() < f64::EPSILON);
        assert_eq!(sample.memory_total_bytes, 0);
        assert_eq!(sample.instances.len(), 1);
        assert_eq!(sample.instances[0].id, "a");
        assert_eq!(sample.instances[0].memory_bytes, 7);
        assert_eq!(sample.instances[0].network, NetworkStats::default());
    }
}
