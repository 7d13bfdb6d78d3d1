//! Instances (game servers) on the wire between panel and agent: the spec the panel
//! pushes, the state the agent reports, power actions, stats and the console event
//! vocabulary (Wings' `{"event": ..., "args": [...]}` shape).
//!
//! Agent API (served over the tunnel; every body is JSON):
//!
//! | Method | Path | Body → Answer |
//! |---|---|---|
//! | GET | `/v1/instances` | → `[InstanceStatus]` |
//! | PUT | `/v1/instances/{id}` | `InstanceSpec` → `InstanceStatus` (stores the spec, then reconciles toward `desired`) |
//! | GET | `/v1/instances/{id}` | → `InstanceStatus` |
//! | DELETE | `/v1/instances/{id}` | → 204 (kills and removes the container and the server files) |
//! | POST | `/v1/instances/{id}/install` | → 202 `InstanceStatus` (runs the install script, wiping nothing) |
//! | POST | `/v1/instances/{id}/power` | `PowerRequest` → 202 `InstanceStatus` |
//! | POST | `/v1/instances/{id}/command` | `CommandRequest` → 204 (409 when not running) |
//! | GET | `/v1/instances/{id}/stats` | → `InstanceStats` |
//! | GET | `/v1/instances/{id}/logs?lines=N` | → `LogLines` (console history, newest last) |
//! | GET | `/v1/instances/{id}/logs/download` | → `text/plain` whole console log |
//! | DELETE | `/v1/instances/{id}/logs` | → 204 |
//! | GET | `/v1/instances/{id}/install-logs` | → `LogLines` |
//! | GET | `/v1/instances/{id}/events?replay=N` | → NDJSON stream of `Event` (console, install, status, stats) |
//! | GET | `/v1/events` | → NDJSON stream of `StateEvent` (every instance's state changes) |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the server files are mounted in the container (and its working directory).
pub const CONTAINER_ROOT: &str = "/home/container";
/// Where the server files are mounted in the install container.
pub const INSTALL_ROOT: &str = "/mnt/server";
/// Label on every container the agent manages: the instance id.
pub const INSTANCE_LABEL: &str = "io.shardlyn.instance";
/// Label on every container the agent manages: the agent's tag (several agents may share
/// one Docker engine).
pub const AGENT_LABEL: &str = "io.shardlyn.agent";
/// Label on install containers: `install`.
pub const ROLE_LABEL: &str = "io.shardlyn.role";
/// Lines `send logs` replays.
pub const REPLAY_LINES: usize = 150;

/// Runtime state of an instance, as the agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Installing,
    InstallFailed,
    Offline,
    Starting,
    Running,
    Stopping,
}

impl InstanceState {
    /// The stored and shown name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Installing => "installing",
            Self::InstallFailed => "install_failed",
            Self::Offline => "offline",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "installing" => Self::Installing,
            "install_failed" => Self::InstallFailed,
            "offline" => Self::Offline,
            "starting" => Self::Starting,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            _ => return None,
        })
    }
}

/// A stored name read back (the panel's rows); the error names the unknown value.
impl TryFrom<String> for InstanceState {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        Self::parse(&stored).ok_or_else(|| format!("stored state `{stored}` is not known"))
    }
}

/// The power state the panel wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    Running,
    Stopped,
}

/// A stored name (`running`, `stopped`) read back; the error names the unknown value.
impl TryFrom<String> for DesiredState {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        match stored.as_str() {
            "running" => Ok(Self::Running),
            "stopped" => Ok(Self::Stopped),
            _ => Err(format!("stored desired state `{stored}` is not known")),
        }
    }
}

/// A power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    Start,
    Stop,
    Restart,
    Kill,
}

impl PowerAction {
    /// Parses `start`, `stop`, `restart` or `kill`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "start" => Self::Start,
            "stop" => Self::Stop,
            "restart" => Self::Restart,
            "kill" => Self::Kill,
            _ => return None,
        })
    }

    /// The name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Kill => "kill",
        }
    }
}

/// Resource limits. Zero means unlimited where noted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Limits {
    /// Memory in MiB; 0 = unlimited.
    pub memory_mb: i64,
    /// Swap in MiB on top of memory; 0 = none, -1 = unlimited.
    pub swap_mb: i64,
    /// CPU in percent of one core (200 = two cores); 0 = unlimited.
    pub cpu_percent: i64,
    /// Disk in MiB; 0 = unlimited (reported, enforced by the agent's disk check).
    pub disk_mb: i64,
    /// Most processes; 0 = the agent's default.
    pub pids: i64,
    /// Block IO weight, 10..=1000.
    pub io_weight: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 1024,
            swap_mb: 0,
            cpu_percent: 100,
            disk_mb: 10_240,
            pids: 512,
            io_weight: 500,
        }
    }
}

/// One port the instance listens on (TCP and UDP are both published).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Allocation {
    /// Host address to bind, `0.0.0.0` for all.
    pub ip: String,
    pub port: u16,
    /// The primary allocation is `SERVER_PORT`.
    pub primary: bool,
}

/// The egg's install step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallSpec {
    /// Image the script runs in, e.g. `ghcr.io/pterodactyl/installers:debian`.
    pub image: String,
    /// Interpreter, e.g. `bash` or `ash`.
    pub entrypoint: String,
    /// The script (CRLF already normalized to LF).
    pub script: String,
}

/// One `config.files` entry of the egg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigFileSpec {
    /// Path relative to the server root.
    pub path: String,
    /// `properties`, `file`, `yaml`, `yml`, `json`, `ini` or `xml`.
    pub parser: String,
    /// Key → replacement (a string with `{{...}}` placeholders, or an object of
    /// `regex:`/value pairs as Pelican allows).
    pub find: BTreeMap<String, Value>,
}

/// How the server is stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum StopSpec {
    /// Written to stdin, e.g. `stop`.
    Command(String),
    /// A signal name, e.g. `SIGINT` (from `^C`) or `SIGTERM`.
    Signal(String),
}

/// Everything the agent needs to run an instance; pushed by the panel on create,
/// update, power changes and every tunnel connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceSpec {
    pub id: String,
    pub name: String,
    /// Image to run, one of the egg's images.
    pub image: String,
    /// The egg's raw startup line, passed in `STARTUP`.
    pub startup: String,
    /// Every egg variable plus `SERVER_MEMORY`, `SERVER_IP`, `SERVER_PORT`, `STARTUP`
    /// is added by the agent.
    pub environment: BTreeMap<String, String>,
    pub limits: Limits,
    pub allocations: Vec<Allocation>,
    /// `None` when the egg has no install script.
    pub install: Option<InstallSpec>,
    pub config_files: Vec<ConfigFileSpec>,
    /// Console substrings (or `regex:` patterns) meaning "started".
    pub done: Vec<String>,
    pub stop: StopSpec,
    /// Seconds between the stop request and SIGKILL.
    pub stop_grace_secs: u64,
    pub desired: DesiredState,
    /// Restart after an exit that was not asked for (Wings' crash detection).
    pub crash_restart: bool,
    /// The egg's `file_denylist`: gitignore-like globs of files the file manager
    /// refuses to read, write, delete or rename (Wings semantics).
    #[serde(default)]
    pub file_denylist: Vec<String>,
}

/// What the agent reports about an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceStatus {
    pub id: String,
    pub state: InstanceState,
    /// The Docker container, once created.
    pub container_id: Option<String>,
    /// Whether the install finished successfully at least once.
    pub installed: bool,
    /// Unix ms the server last started.
    pub started_at: Option<i64>,
    /// Unix ms of the last crash.
    pub crashed_at: Option<i64>,
    /// Exit code of the last run.
    pub exit_code: Option<i64>,
    pub desired: DesiredState,
    /// The version of `state` (see [`StateEvent::version`]).
    #[serde(default)]
    pub state_version: u64,
}

/// Body of `POST /v1/instances/{id}/power`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerRequest {
    pub action: PowerAction,
}

/// Body of `POST /v1/instances/{id}/command`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommandRequest {
    pub command: String,
}

/// Console or log history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogLines {
    pub lines: Vec<String>,
}

/// Network counters of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Live resource use (`stats` event and `GET .../stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceStats {
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// CPU in percent of one core.
    pub cpu_absolute: f64,
    pub network: NetworkStats,
    /// Milliseconds since the server started; 0 when not running.
    pub uptime: u64,
    pub state: InstanceState,
    pub disk_bytes: u64,
}

/// A console event, Wings' vocabulary: `{"event": "console output", "args": ["line"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    pub event: String,
    #[serde(default)]
    pub args: Vec<Value>,
}

impl Event {
    /// An event with string arguments.
    #[must_use]
    pub fn new(event: &str, args: &[&str]) -> Self {
        Self {
            event: event.to_owned(),
            args: args.iter().map(|a| Value::from(*a)).collect(),
        }
    }
}

/// One state change, on the agent's `/v1/events` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StateEvent {
    pub instance: String,
    pub state: InstanceState,
    /// Set when the agent itself changed the desired state (a crash loop stops it).
    pub desired: Option<DesiredState>,
    pub at: i64,
    /// The state's version: strictly increasing per agent (and past the previous run of
    /// the agent: microseconds of wall clock), so the panel keeps the newest of reports
    /// that arrive out of order (an event and a power call's answer).
    #[serde(default)]
    pub version: u64,
}

/// Event names (server → client and client → server).
pub mod events {
    pub const AUTH: &str = "auth";
    pub const AUTH_SUCCESS: &str = "auth success";
    pub const SET_STATE: &str = "set state";
    pub const SEND_COMMAND: &str = "send command";
    pub const SEND_LOGS: &str = "send logs";
    pub const SEND_STATS: &str = "send stats";
    pub const CONSOLE_OUTPUT: &str = "console output";
    pub const INSTALL_OUTPUT: &str = "install output";
    pub const INSTALL_STARTED: &str = "install started";
    pub const INSTALL_COMPLETED: &str = "install completed";
    pub const STATUS: &str = "status";
    pub const STATS: &str = "stats";
    pub const DAEMON_MESSAGE: &str = "daemon message";
    pub const DAEMON_ERROR: &str = "daemon error";
    /// A move's state (`crate::transfer::Notice`), as Wings names it.
    pub const TRANSFER_STATUS: &str = "transfer status";
    /// A line about a move, as Wings names it.
    pub const TRANSFER_LOGS: &str = "transfer logs";
    pub const JWT_ERROR: &str = "jwt error";
    pub const TOKEN_EXPIRING: &str = "token expiring";
    pub const TOKEN_EXPIRED: &str = "token expired";
    /// Agent → panel on `/v1/events`: an SFTP login to check (see `crate::sftp`).
    pub const SFTP_AUTH: &str = crate::sftp::SFTP_AUTH;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_by_name() {
        for s in [
            InstanceState::Installing,
            InstanceState::InstallFailed,
            InstanceState::Offline,
            InstanceState::Starting,
            InstanceState::Running,
            InstanceState::Stopping,
        ] {
            assert_eq!(InstanceState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                Value::from(s.as_str())
            );
        }
        assert_eq!(InstanceState::parse("exploded"), None);
    }

    #[test]
    fn events_use_the_wings_shape() {
        let e = Event::new(events::CONSOLE_OUTPUT, &["hello"]);
        assert_eq!(
            serde_json::to_value(&e).expect("json"),
            serde_json::json!({"event": "console output", "args": ["hello"]})
        );
        let stop: StopSpec =
            serde_json::from_value(serde_json::json!({"type": "signal", "value": "SIGINT"}))
                .expect("stop");
        assert_eq!(stop, StopSpec::Signal("SIGINT".into()));
    }
}
