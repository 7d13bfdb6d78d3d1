//! One-click deploys (issue 20 §5): `POST /v1/deploy` makes a server from a bundled
//! template in one request, as a persisted job whose steps (`workload`, `limits`,
//! `place`, `create`, `dns`, `install`, `start`) `GET /v1/deploy[/{id}]` shows.
//!
//! This area owns the `deployments` table (`store.rs`), the routes (`handlers.rs`), the
//! JSON shape (`view.rs`) and the job (`runner.rs`: the steps, the clean-up of a failed
//! deployment, and `run_until_stopped`, which resumes deployments whose replica died).
//! It makes servers through the instances area's own create, so every rule of
//! `POST /v1/instances` (permissions, plan limits, ports, variables) applies.

pub mod handlers;
pub mod runner;
pub mod store;
pub mod view;

use crate::routes::{Access, Routes};
use crate::state::AppState;

/// `/v1/deploy`.
pub fn router() -> Routes {
    Routes::new("deploy")
        .get(
            "/v1/deploy",
            Access::User,
            "List deployments",
            handlers::list,
        )
        .post(
            "/v1/deploy",
            Access::User,
            "Create deployment",
            handlers::create,
        )
        .errors(&[(
            402,
            "PLAN_LIMIT: the organization's plan has no room for one more server",
        )])
        .get(
            "/v1/deploy/{id}",
            Access::User,
            "Get deployment",
            handlers::get,
        )
}

impl crate::authz::OrgScoped for store::Deployment {
    const NAME: &'static str = "deployment";

    async fn find(state: &AppState, id: &str) -> crate::error::AppResult<Option<Self>> {
        Ok(store::find(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}
