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

mod create;
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
}
