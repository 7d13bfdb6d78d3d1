//! Instances: game servers placed on nodes, built from a workload (egg).
//!
//! This area owns the `instances` and `allocations` tables (`store.rs`), the CRUD routes
//! (`handlers.rs`), input checks (`input.rs`), placement on nodes (`placement.rs`), the
//! JSON shape (`view.rs`) and the spec pushed to agents (`spec.rs`). What runs through
//! the agent (power, console, stats, keeping specs in step) lives in `ops/`.
//!
//! Requests reach an instance through [`crate::authz::Authorized`] (`Instance` is
//! [`crate::authz::OrgScoped`]); background work uses
//! `store::{find, list_for_node, set_state, set_desired, mark_installed}` to read and record
//! state; [`spec::build_spec`] builds the spec to push.

pub mod access;
pub mod create;
mod handlers;
pub mod input;
pub mod ops;
pub mod placement;
mod quota;
pub mod spec;
pub mod store;
pub mod view;

pub use store::Instance;

use crate::routes::{Access, Routes};

/// `/v1/instances` CRUD.
pub fn router() -> Routes {
    Routes::new("instances")
        .get(
            "/v1/instances",
            Access::User,
            "List instances",
            handlers::list,
        )
        .post(
            "/v1/instances",
            Access::User,
            "Create instance",
            create::create,
        )
        .errors(&[(
            402,
            "PLAN_LIMIT: the organization's plan does not allow it (limit, usage, cap)",
        )])
        .get(
            "/v1/instances/{id}",
            Access::User,
            "Get instance",
            handlers::get,
        )
        .put(
            "/v1/instances/{id}",
            Access::User,
            "Update instance",
            handlers::update,
        )
        .errors(&[(
            402,
            "PLAN_LIMIT: the organization's plan does not allow it (limit, usage, cap)",
        )])
        .delete(
            "/v1/instances/{id}",
            Access::User,
            "Delete instance",
            handlers::delete,
        )
        .get(
            "/v1/instances/{id}/access",
            Access::User,
            "List per-server access",
            access::list_access,
        )
        .post(
            "/v1/instances/{id}/access",
            Access::User,
            "Grant per-server access",
            access::grant,
        )
        .errors(&[
            (404, "USER_NOT_FOUND: no account has this email"),
            (409, "ALREADY_MEMBER: the account sees every server already"),
            (
                402,
                "PLAN_LIMIT: the organization's plan does not allow another member",
            ),
        ])
        .put(
            "/v1/instances/{id}/access/{userId}",
            Access::User,
            "Change per-server access",
            access::update,
        )
        .delete(
            "/v1/instances/{id}/access/{userId}",
            Access::User,
            "Remove per-server access",
            access::revoke,
        )
}
