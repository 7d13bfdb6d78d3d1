//! The capacity planner: `/v1/planner/*` (issue 17). Which node of the fleet a workload
//! fits best and why (`fit.rs`, over the fleet read by `fleet.rs`), whether the fleet
//! holds `count` copies and, if not, the cheapest instance type that would
//! (`advise.rs`), the versioned price tables kept in the repository (`prices/*.json`,
//! `catalog.rs`) refreshed from Hetzner's pricing API when the organization has a
//! Hetzner credential (`refresh.rs`), and the bundled workload templates
//! (`templates.json`). Domain layer: reads nodes, instances and credentials, owns only
//! `planner_prices`.

mod advise;
pub mod catalog;
pub mod fit;
mod fleet;
mod handlers;
pub mod refresh;

pub use advise::{SYSTEM_RESERVE_MB, TypeOption};
pub use catalog::{InstanceType, Price, PriceTable};
pub use handlers::{
    DemandView, NodeReason, PricingList, RecommendBody, Recommendation, SuggestFit, SuggestFitBody,
    TemplateBody, TemplateList, TemplateRecommendation, suggest,
};

use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The planner routes.
pub fn router() -> Routes {
    Routes::new("planner")
        .post(
            "/v1/planner/suggest-fit",
            Access::User,
            "Find best node for workload",
            handlers::suggest_fit,
        )
        .post(
            "/v1/planner/recommend",
            Access::User,
            "General recommendations",
            handlers::recommend,
        )
        .post(
            "/v1/planner/recommend-for-template",
            Access::User,
            "Recommendation for specific template",
            handlers::recommend_for_template,
        )
        .get(
            "/v1/planner/pricing",
            Access::User,
            "Provider pricing data",
            handlers::pricing,
        )
        .errors(&[(422, "Unknown provider or region")])
        .get(
            "/v1/planner/templates",
            Access::User,
            "Supported workload templates",
            handlers::templates,
        )
}

/// The bundled price of `instance_type` in `region` of `provider`.
#[must_use]
pub fn price(provider: &str, region: &str, instance_type: &str) -> Option<Price> {
    catalog::bundled_table(provider)?.price(region, instance_type)
}

/// The price for an organization: Hetzner's as its API answered (with the
/// organization's credential, cached an hour) when it can, else the bundled one.
pub async fn price_for(
    state: &AppState,
    org_id: &str,
    provider: &str,
    region: &str,
    instance_type: &str,
) -> Option<Price> {
    refresh::table(state, org_id, provider)
        .await?
        .table
        .price(region, instance_type)
        .or_else(|| price(provider, region, instance_type))
}

/// A bundled instance type: its vCPUs, memory, disk and architecture
/// (`available()` is false for ARM: no ARM agent build yet).
#[must_use]
pub fn instance_type(provider: &str, instance_type: &str) -> Option<&'static InstanceType> {
    catalog::bundled_table(provider)?.find(instance_type)
}
