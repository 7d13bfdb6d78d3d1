//! Nodes: registration tokens, agent registration, CRUD, cordon, inventory read from
//! the agent through the tunnel (`inventory`), and platform nodes (`platform`).

pub mod firewall;
mod handlers;
pub mod inventory;
pub use handlers::{node_scope, public_ipv4, public_ipv6};
pub mod metrics;
pub mod platform;
pub mod power;
pub mod presence;
pub mod register;
pub mod store;

use crate::routes::{Access, Routes};
use crate::tunnel::AGENT_ERRORS;

/// `/v1/nodes/*` and `/v1/agent/register`.
pub fn router() -> Routes {
    Routes::new("nodes")
        .get("/v1/nodes", Access::User, "List nodes", handlers::list)
        .get(
            "/v1/platform-nodes",
            Access::User,
            "List platform nodes",
            platform::list,
        )
        .get(
            "/v1/admin/platform-nodes",
            Access::Admin,
            "List platform nodes (admin)",
            platform::admin_list,
        )
        .put(
            "/v1/admin/nodes/{id}/platform",
            Access::Admin,
            "Mark platform node",
            platform::mark,
        )
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
        .errors(&[
            (401, "Registration token invalid, used or expired"),
            (
                402,
                "PLAN_LIMIT: the organization's plan does not allow it (limit, usage, cap)",
            ),
        ])
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
        .post(
            "/v1/nodes/{id}/power/start",
            Access::User,
            "Start server",
            power::start,
        )
        .errors(crate::cloud::CLOUD_ERRORS)
        .post(
            "/v1/nodes/{id}/power/stop",
            Access::User,
            "Stop server",
            power::stop,
        )
        .errors(crate::cloud::CLOUD_ERRORS)
        .post(
            "/v1/nodes/{id}/power/reboot",
            Access::User,
            "Reboot server",
            power::reboot,
        )
        .errors(crate::cloud::CLOUD_ERRORS)
        .get(
            "/v1/nodes/{id}/power/status",
            Access::User,
            "Get power status",
            power::status,
        )
        .errors(crate::cloud::CLOUD_ERRORS)
        .get(
            "/v1/nodes/{id}/firewall/rules",
            Access::User,
            "List rules",
            firewall::rules,
        )
        .errors(crate::cloud::CLOUD_ERRORS)
        .post(
            "/v1/nodes/{id}/firewall/rules",
            Access::User,
            "Add rule",
            firewall::add,
        )
        .errors(crate::cloud::CLOUD_ERRORS)
        .delete(
            "/v1/nodes/{id}/firewall/rules",
            Access::User,
            "Remove rule",
            firewall::remove,
        )
        .errors(crate::cloud::CLOUD_ERRORS)
        .get(
            "/v1/nodes/{id}/inventory",
            Access::User,
            "Full inventory",
            inventory::inventory_all,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/nodes/{id}/inventory/system",
            Access::User,
            "System info",
            inventory::inventory_system,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/nodes/{id}/inventory/network",
            Access::User,
            "Network interfaces",
            inventory::inventory_network,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/nodes/{id}/inventory/disks",
            Access::User,
            "Disk info",
            inventory::inventory_disks,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/nodes/{id}/inventory/users",
            Access::User,
            "System users",
            inventory::inventory_users,
        )
        .errors(AGENT_ERRORS)
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
            inventory::inventory_containers,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/nodes/{id}/containers/{containerId}/logs",
            Access::User,
            "Stream logs",
            inventory::container_logs,
        )
        .errors(AGENT_ERRORS)
        .post(
            "/v1/nodes/{id}/containers/{containerId}/start",
            Access::User,
            "Start container",
            inventory::container_start,
        )
        .errors(AGENT_ERRORS)
        .post(
            "/v1/nodes/{id}/containers/{containerId}/stop",
            Access::User,
            "Stop container",
            inventory::container_stop,
        )
        .errors(AGENT_ERRORS)
        .post(
            "/v1/nodes/{id}/containers/{containerId}/restart",
            Access::User,
            "Restart container",
            inventory::container_restart,
        )
        .errors(AGENT_ERRORS)
        .post(
            "/v1/nodes/{id}/containers/{containerId}/kill",
            Access::User,
            "Kill container",
            inventory::container_kill,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/nodes/{id}/inventory/processes",
            Access::User,
            "Running processes",
            inventory::inventory_processes,
        )
        .errors(AGENT_ERRORS)
}
