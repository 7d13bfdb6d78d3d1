//! Instances: game servers placed on nodes, built from a workload (egg).
//!
//! This area owns the `instances` and `allocations` tables (`store.rs`), the CRUD routes
//! (`handlers.rs`), input checks (`input.rs`), placement on nodes (`placement.rs`), the
//! JSON shape (`view.rs`) and the spec pushed to agents (`spec.rs`). What runs through
//! the agent (power, console, stats, keeping specs in step) lives in `ops/`.
//!
//! For `ops/` and other areas: [`instance_for`] loads and authorizes an instance;
//! `store::{find, list_for_node, set_state, set_desired, mark_installed}` read and record
//! state; [`spec::build_spec`] builds the spec to push.

mod create;
mod handlers;
pub mod input;
pub mod ops;
pub mod placement;
pub mod spec;
pub mod store;
pub mod view;

use store::Instance;

use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::orgs::permissions::{Membership, authorize};
use crate::routes::{Access, Routes};
use crate::state::AppState;

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
        .delete(
            "/v1/instances/{id}",
            Access::User,
            "Delete instance",
            handlers::delete,
        )
}

/// Loads an instance and checks `permission` (e.g. `instances.power`) in its
/// organization. An instance of an organization the caller is not a member of answers
/// 404 `instance`, like a missing one; a member without the permission gets 403.
///
/// # Errors
/// 404, 403 or a database failure.
pub async fn instance_for(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    permission: &str,
) -> AppResult<Instance> {
    Ok(load(state, user, id, permission).await?.0)
}

/// [`instance_for`] that also hands back the caller's membership.
pub(crate) async fn load(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    permission: &str,
) -> AppResult<(Instance, Membership)> {
    let instance = store::find(&state.db.pool, id)
        .await?
        .ok_or_else(|| AppError::not_found("instance"))?;
    let member = authorize(state, user, &instance.org_id, permission)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::not_found("instance"),
            other => other,
        })?;
    Ok((instance, member))
}
