//! Cloud costs (issue 19 §7): `/v1/billing/org/cloud-costs*`. What an organization's
//! provisioned nodes cost it at their provider: each node life's started hours × its
//! hourly price from the planner's table, capped at its monthly price per month, kept in
//! a ledger (`cloud_cost_entries`) that outlives the node, answered by node and provider
//! for a month, forecast to the month's end, and re-priced from the provider's API where
//! one gives prices (Hetzner's, through the planner's refresh).
//!
//! Domain layer. The provisioning runner calls the hooks here when an apply made a
//! server ([`on_applied`]), a resize changed its type ([`on_resized`]) and a destroy
//! removed it ([`on_destroyed`]); deleting a node calls [`on_node_deleted`]. A hook
//! never fails what called it: a ledger write that fails is logged.
//!
//! - `money`: nano-unit prices, four-place decimal strings.
//! - `period`: months, started hours, an entry's share of a month.
//! - `ledger`: SQL of `cloud_cost_entries`.
//! - `handlers`: the three routes.

mod handlers;
pub mod ledger;
pub mod money;
pub mod period;

pub use handlers::{CostsView, ForecastView, RefreshView};

use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The cloud-cost routes (merged into the billing router).
pub fn router() -> Routes {
    Routes::new("billing")
        .get(
            "/v1/billing/org/cloud-costs",
            Access::User,
            "Cloud cost tracking",
            handlers::costs,
        )
        .get(
            "/v1/billing/org/cloud-costs/forecast",
            Access::User,
            "Cost forecast",
            handlers::forecast,
        )
        .post(
            "/v1/billing/org/cloud-costs/refresh",
            Access::User,
            "Refresh costs",
            handlers::refresh,
        )
}

/// The price of `request`'s type in its region as the planner has it for the request's
/// organization now (Hetzner's API when it can, else the bundled table), and the
/// currency its prices are in.
async fn table_price(
    state: &AppState,
    request: &crate::provision::store::Request,
) -> (Option<crate::planner::Price>, String) {
    let live = crate::planner::price_for(
        state,
        &request.org_id,
        &request.provider,
        &request.region,
        &request.instance_type,
    )
    .await;
    let currency = live.as_ref().map_or_else(
        || {
            crate::planner::catalog::bundled_table(&request.provider)
                .map_or_else(|| "USD".to_owned(), |t| t.currency.clone())
        },
        |p| p.currency.clone(),
    );
    (live, currency)
}

/// Opens the ledger entry of request `request_id` at `at`: its cloud server exists now.
/// Priced as the plan was (the price the user approved), else as the planner's table
/// prices the type now. Nothing when it already has an open entry.
pub async fn on_applied(state: &AppState, request_id: &str, at: i64) {
    if let Err(e) = open_entry(state, request_id, at, true).await {
        tracing::warn!(provision.id = %request_id, error = %e, "cloud costs: opening a ledger entry failed");
    }
}

/// A resize gave request `request_id`'s server a new type at `at`: its entry ends and
/// the next one, priced for the new type, starts.
pub async fn on_resized(state: &AppState, request_id: &str, at: i64) {
    let result = async {
        ledger::end_for_request(&state.db.pool, request_id, at).await?;
        open_entry(state, request_id, at, false).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(provision.id = %request_id, error = %e, "cloud costs: a resize's ledger entries failed");
    }
}

/// Request `request_id`'s server was destroyed at `at`: its entry ends.
pub async fn on_destroyed(state: &AppState, request_id: &str, at: i64) {
    if let Err(e) = ledger::end_for_request(&state.db.pool, request_id, at).await {
        tracing::warn!(provision.id = %request_id, error = %e, "cloud costs: ending a ledger entry failed");
    }
}

/// Node `node_id` is being deleted at `at`: its open entries end (their rows stay).
pub async fn on_node_deleted(state: &AppState, node_id: &str, at: i64) {
    if let Err(e) = ledger::end_for_node(&state.db.pool, node_id, at).await {
        tracing::warn!(node.id = %node_id, error = %e, "cloud costs: ending a deleted node's entries failed");
    }
}

/// Opens request `request_id`'s entry; `planned_price`: price it as its plan was
/// (after a resize the plan's price is the old type's, so the table's is used).
async fn open_entry(
    state: &AppState,
    request_id: &str,
    at: i64,
    planned_price: bool,
) -> crate::error::AppResult<()> {
    let Some(request) = crate::provision::store::find(&state.db.pool, request_id).await? else {
        return Ok(());
    };
    let (live, currency) = table_price(state, &request).await;
    let planned = planned_price
        .then(|| request.price_hourly.as_deref().and_then(money::parse))
        .flatten();
    let (hourly, monthly) = match planned {
        Some(hourly) => (
            Some(hourly),
            request.price_monthly.as_deref().and_then(money::parse),
        ),
        None => (
            live.as_ref().and_then(|p| money::parse(&p.hourly)),
            live.as_ref().and_then(|p| money::parse(&p.monthly)),
        ),
    };
    ledger::open(
        &state.db.pool,
        &ledger::NewEntry {
            org_id: &request.org_id,
            node_id: request.node_id.as_deref(),
            provision_request_id: &request.id,
            node_name: &request.name,
            provider: &request.provider,
            instance_type: &request.instance_type,
            location: &request.region,
            currency: &currency,
            hourly_nanos: hourly,
            monthly_nanos: monthly,
            started_at: at,
        },
    )
    .await?;
    Ok(())
}
