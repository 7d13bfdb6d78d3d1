//! What a node's agent reports about its host: system, network interfaces, disks, users,
//! processes and Docker containers, and the requests that act on the last two. The agent
//! answers with these types and the panel passes them on, so the two cannot drift.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The host: operating system, CPU, memory, uptime and load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SystemInfo {
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub kernel: Option<String>,
    /// CPU architecture, e.g. `x86_64`.
    pub arch: String,
    pub uptime_secs: u64,
    pub cpu_count: u64,
    pub cpu_brand: Option<String>,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub load_average: LoadAverage,
}

/// Load averages over one, five and fifteen minutes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// One network interface with its addresses and byte counters since boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NetworkInterface {
    pub name: String,
    pub mac: String,
    /// `address/prefix`, e.g. `10.0.0.2/24`.
    pub addresses: Vec<String>,
    pub received_bytes: u64,
    pub transmitted_bytes: u64,
}

/// One mounted disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DiskInfo {
    pub name: String,
    pub mount_point: String,
    pub file_system: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub removable: bool,
}

/// One account of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SystemUser {
    pub name: String,
    pub uid: String,
    pub gid: String,
}

/// One running process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessInfo {
    pub pid: u32,
    pub name: String,
    pub memory_bytes: u64,
    pub cpu_percent: f32,
    pub status: String,
    /// Start time in seconds since the Unix epoch.
    pub started_at_unix: u64,
}

/// The whole inventory at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Inventory {
    pub system: SystemInfo,
    pub network: Vec<NetworkInterface>,
    pub disks: Vec<DiskInfo>,
    pub users: Vec<SystemUser>,
    pub processes: Vec<ProcessInfo>,
}

/// One Docker container of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerInfo {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    pub state: String,
    pub status: String,
    pub created_unix: i64,
    /// The Shardlyn instance it runs, if any.
    pub instance_id: Option<String>,
    pub labels: HashMap<String, String>,
}

/// The last lines a container wrote (stdout and stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerLogs {
    pub lines: Vec<String>,
}

/// `POST /v1/processes/{pid}/kill` on the agent: the signal, `SIGTERM` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillProcessRequest {
    pub signal: Option<String>,
}
