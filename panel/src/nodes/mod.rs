//! Nodes: registration tokens, agent registration, CRUD, cordon, and inventory read from
//! the agent through the tunnel.

mod handlers;
pub use handlers::{node_for, node_scoped};
pub mod metrics;
pub mod register;
pub mod store;

use crate::routes::{Access, Routes};

/// `/v1/nodes/*` and `/v1/agent/register`.
pub fn router() -> Routes {
    Routes::new("nodes")
        .get("/v1/nodes", Access::User, "List nodes", handlers::list)
        .post(
            "/v1/nodes/register-token",
            Access::User,
            "Create registration token",
            register::create_token,
        )
        .post(
            "/v1/agent/register",
            Access::Public,
            "Agent exchanges a registration token",
            register::agent_register,
        )
        .errors(&[(401, "Registration token invalid, used or expired")])
        .get(
            "/v1/nodes/{id}",
            Access::User,
            "Get node details",
            handlers::get,
        )
        .put(
            "/v1/nodes/{id}",
            Access::User,
            "Update node",
            handlers::update,
        )
        .delete(
            "/v1/nodes/{id}",
            Access::User,
            "Delete node",
            handlers::delete,
        )
        .post(
            "/v1/nodes/{id}/cordon",
            Access::User,
            "Disable scheduling",
            handlers::cordon,
        )
        .post(
            "/v1/nodes/{id}/uncordon",
            Access::User,
            "Re-enable scheduling",
            handlers::uncordon,
        )
        .get(
            "/v1/nodes/{id}/inventory",
            Access::User,
            "Full inventory",
            handlers::inventory_all,
        )
        .get(
            "/v1/nodes/{id}/inventory/system",
            Access::User,
            "System info",
            handlers::inventory_system,
        )
        .get(
            "/v1/nodes/{id}/inventory/network",
            Access::User,
            "Network interfaces",
            handlers::inventory_network,
        )
        .get(
            "/v1/nodes/{id}/inventory/disks",
            Access::User,
            "Disk info",
            handlers::inventory_disks,
        )
        .get(
            "/v1/nodes/{id}/inventory/users",
            Access::User,
            "System users",
            handlers::inventory_users,
        )
        .get(
            "/v1/nodes/{id}/metrics/history",
            Access::User,
            "Metrics history",
            metrics::history,
        )
        .get(
            "/v1/nodes/{id}/inventory/containers",
            Access::User,
            "Docker containers",
            handlers::inventory_containers,
        )
        .get(
            "/v1/nodes/{id}/containers/{containerId}/logs",
            Access::User,
            "Stream logs",
            handlers::container_logs,
        )
        .post(
            "/v1/nodes/{id}/containers/{containerId}/start",
            Access::User,
            "Start container",
            handlers::container_start,
        )
        .post(
            "/v1/nodes/{id}/containers/{containerId}/stop",
            Access::User,
            "Stop container",
            handlers::container_stop,
        )
        .post(
            "/v1/nodes/{id}/containers/{containerId}/restart",
            Access::User,
            "Restart container",
            handlers::container_restart,
        )
        .post(
            "/v1/nodes/{id}/containers/{containerId}/kill",
            Access::User,
            "Kill container",
            handlers::container_kill,
        )
        .get(
            "/v1/nodes/{id}/inventory/processes",
            Access::User,
            "Running processes",
            handlers::inventory_processes,
        )
}
