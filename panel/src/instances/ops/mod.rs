//! What runs through the agent: power, stats, logs, console WebSockets, and keeping the
//! agent's specs in step with the panel's desired state.

pub mod console;
pub mod logs;
pub mod nodes;
pub mod power;
pub mod presence;
pub mod sync;
pub mod tickets;

use crate::routes::{Access, Routes};
use crate::tunnel::AGENT_ERRORS;

/// Power, stats, logs and console routes.
pub fn router() -> Routes {
    Routes::new("instances")
        .post(
            "/v1/instances/{id}/start",
            Access::User,
            "Start",
            power::start,
        )
        .post("/v1/instances/{id}/stop", Access::User, "Stop", power::stop)
        .post(
            "/v1/instances/{id}/restart",
            Access::User,
            "Restart",
            power::restart,
        )
        .post(
            "/v1/instances/{id}/kill",
            Access::User,
            "Kill (SIGKILL)",
            power::kill,
        )
        .post(
            "/v1/instances/{id}/reinstall",
            Access::User,
            "Run the install script again",
            power::reinstall,
        )
        .get(
            "/v1/instances/{id}/stats",
            Access::User,
            "Real-time stats",
            logs::stats,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/instances/{id}/metrics/history",
            Access::User,
            "Metrics history",
            logs::history,
        )
        .get(
            "/v1/instances/{id}/install-logs",
            Access::User,
            "Install/startup logs",
            logs::install_logs,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/instances/{id}/logs/history",
            Access::User,
            "Log history",
            logs::history_lines,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/instances/{id}/logs/download",
            Access::User,
            "Download logs",
            logs::download,
        )
        .errors(AGENT_ERRORS)
        .delete(
            "/v1/instances/{id}/logs/clear",
            Access::Admin,
            "Clear logs",
            logs::clear,
        )
        .get(
            "/v1/instances/{id}/console",
            Access::Socket,
            "WebSocket: interactive console",
            console::console,
        )
        .get(
            "/v1/instances/{id}/logs",
            Access::Socket,
            "WebSocket: live logs",
            console::logs,
        )
        .post(
            "/v1/instances/{id}/console/tickets",
            Access::User,
            "Single-use 30-second ticket for the console and logs WebSockets",
            tickets::create,
        )
        .merge(
            Routes::new("nodes")
                .post(
                    "/v1/nodes/{id}/drain",
                    Access::User,
                    "Evict all instances",
                    nodes::drain,
                )
                .post(
                    "/v1/nodes/{id}/processes/{pid}/kill",
                    Access::User,
                    "Kill process",
                    nodes::kill_process,
                )
                .errors(AGENT_ERRORS),
        )
}
