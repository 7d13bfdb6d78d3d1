//! The Shardlyn node agent.
//!
//! The agent registers with a panel (`register`), then dials out and serves the agent API
//! over an HTTP/2 tunnel carried by a WebSocket (`tunnel`). The API (`api`) is a plain
//! axum router, testable without a panel.

pub mod api;
pub mod backups;
pub mod config;
pub mod error;
pub mod files;
pub mod git;
pub mod instances;
pub mod register;
pub mod runtime;
pub mod sftp;
pub mod shell;
pub mod ssh_trust;
pub mod tls;
pub mod transfers;
pub mod tunnel;

/// The agent's version, as printed by `shardlyn-agent --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The panel/agent protocol version this build speaks.
#[must_use]
pub fn protocol_version() -> u32 {
    shardlyn_proto::PROTOCOL_VERSION
}

pub use shardlyn_net::shutdown::shutdown_signal;
