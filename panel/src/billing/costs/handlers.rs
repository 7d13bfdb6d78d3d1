//! `/v1/billing/org/cloud-costs*`: an organization's cloud costs for a month, the
//! forecast to the month's end, and the refresh of running nodes' prices. Reading needs
//! `billing.read`, refreshing `billing.manage`; both work with billing off (they are the
//! organization's own cloud spend, not the panel's plans). Money is decimal strings with
//! four places in the entry's currency; totals are per currency, and the single-currency
//! `currency`/`total` fields are null when an organization's providers bill in several.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::ledger::{self, Entry};
use super::money;
use super::period::{self, Month};
use crate::auth::extract::CurrentUser;
use crate::authz::{Permission, perm};
use crate::db::ts;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::state::AppState;

/// `?month=YYYY-MM` of the costs.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct MonthQuery {
    /// The month (UTC), `YYYY-MM`; the current month when left out.
    pub month: Option<String>,
}

/// One node life's cost in the month.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeCost {
    /// The ledger entry (a node has one per type it ran as).
    pub id: String,
    /// The node (null when its agent never joined).
    pub node_id: Option<String>,
    pub node_name: String,
    pub provision_request_id: Option<String>,
    pub provider: String,
    pub instance_type: String,
    /// The provider's region or location.
    pub location: String,
    /// ISO 4217, as the provider's price table has it.
    pub currency: String,
    /// Started hours in the month so far.
    pub hours: i64,
    /// Price per hour (null: the planner's table had none for the type).
    pub hourly: Option<String>,
    /// Price per month, the most a month costs (null: no cap known).
    pub monthly_cap: Option<String>,
    /// `hours` × `hourly`, capped at `monthly_cap`.
    pub cost: String,
    /// The server still exists.
    pub running: bool,
    /// The node was deleted (its cost stays).
    pub deleted: bool,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub started_at: i64,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub ended_at: Option<i64>,
}

/// A provider's cost in the month.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderCost {
    pub provider: String,
    pub currency: String,
    pub cost: String,
}

/// A currency's total.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    pub total: String,
}

/// An organization's cloud costs in a month.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostsView {
    pub organization_id: String,
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// When the costs were worked out (hours of running nodes count to here).
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub as_of: i64,
    /// The one currency of every cost (null when none or several).
    pub currency: Option<String>,
    /// The total in `currency` (null when several currencies: see `totals`).
    pub total: Option<String>,
    /// The total per currency.
    pub totals: Vec<CurrencyTotal>,
    pub by_node: Vec<NodeCost>,
    pub by_provider: Vec<ProviderCost>,
}

/// One node life's forecast for the month.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeForecast {
    pub id: String,
    pub node_id: Option<String>,
    pub node_name: String,
    pub provider: String,
    pub instance_type: String,
    pub location: String,
    pub currency: String,
    pub hourly: Option<String>,
    pub monthly_cap: Option<String>,
    pub running: bool,
    pub deleted: bool,
    /// Started hours so far, and their cost.
    pub hours_to_date: i64,
    pub cost_to_date: String,
    /// Started hours by the month's end if it keeps running (as far as it ran if it
    /// ended), and their cost, capped at `monthly_cap`.
    pub hours_forecast: i64,
    pub forecast: String,
}

/// A provider's forecast.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderForecast {
    pub provider: String,
    pub currency: String,
    pub cost_to_date: String,
    pub forecast: String,
}

/// A currency's forecast.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CurrencyForecast {
    pub currency: String,
    pub cost_to_date: String,
    pub forecast: String,
}

/// The current month's costs so far and forecast to its end.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ForecastView {
    pub organization_id: String,
    /// `YYYY-MM` (UTC), the current month.
    pub month: String,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub as_of: i64,
    /// The month's end, to which running nodes are forecast.
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub month_end: i64,
    /// The one currency (null when none or several).
    pub currency: Option<String>,
    /// Month to date in `currency` (null when several: see `totals`).
    pub cost_to_date: Option<String>,
    /// The whole month's forecast in `currency` (null when several).
    pub forecast: Option<String>,
    pub totals: Vec<CurrencyForecast>,
    pub by_node: Vec<NodeForecast>,
    pub by_provider: Vec<ProviderForecast>,
}

/// A provider whose prices were read again.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Refreshed {
    pub provider: String,
    /// Where the prices came from (`hetzner_api`).
    pub source: String,
    /// Running entries whose price changed.
    pub updated: i64,
}

/// A provider whose prices were not read again, and why.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Skipped {
    pub provider: String,
    pub reason: String,
}

/// What a refresh did, and the current month's costs after it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RefreshView {
    pub refreshed: Vec<Refreshed>,
    pub skipped: Vec<Skipped>,
    pub costs: CostsView,
}

fn month_of(state: &AppState, q: &MonthQuery) -> AppResult<Month> {
    match q.month.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => Month::parse(m)
            .ok_or_else(|| AppError::invalid_field("month", "month must be YYYY-MM (UTC)")),
        None => current_month(state),
    }
}

fn current_month(state: &AppState) -> AppResult<Month> {
    Month::of(state.clock.now_ms())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the clock is out of range")))
}

fn running(e: &Entry) -> bool {
    e.ended_at.is_none()
}

fn deleted(e: &Entry) -> bool {
    match &e.node_id {
        Some(_) => e.live_node_id.is_none(),
        None => e.ended_at.is_some(),
    }
}

/// The single currency of `totals`' keys, if exactly one.
fn single<T>(totals: &BTreeMap<String, T>) -> Option<&String> {
    let mut keys = totals.keys();
    match (keys.next(), keys.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// The costs of `org_id` in `month` at `now`.
async fn costs_of(state: &AppState, org_id: &str, month: &Month, now: i64) -> AppResult<CostsView> {
    let entries = ledger::in_period(&state.db.pool, org_id, month.start, month.end).await?;
    let mut by_node = Vec::new();
    let mut by_provider: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for e in entries.into_iter().filter(|e| e.started_at <= now) {
        let s = period::share(
            month,
            now,
            e.started_at,
            e.ended_at,
            e.hourly_nanos,
            e.monthly_nanos,
        );
        *by_provider
            .entry((e.provider.clone(), e.currency.clone()))
            .or_default() += s.cost;
        *totals.entry(e.currency.clone()).or_default() += s.cost;
        by_node.push(NodeCost {
            running: running(&e),
            deleted: deleted(&e),
            id: e.id,
            node_id: e.node_id,
            node_name: e.node_name,
            provision_request_id: e.provision_request_id,
            provider: e.provider,
            instance_type: e.instance_type,
            location: e.location,
            currency: e.currency,
            hours: s.hours,
            hourly: e.hourly_nanos.map(money::format),
            monthly_cap: e.monthly_nanos.map(money::format),
            cost: money::format(s.cost),
            started_at: e.started_at,
            ended_at: e.ended_at,
        });
    }
    let currency = single(&totals).cloned();
    let total = match (&currency, totals.is_empty()) {
        (Some(c), _) => Some(money::format(totals[c])),
        (None, true) => Some(money::format(0)),
        (None, false) => None,
    };
    Ok(CostsView {
        organization_id: org_id.to_owned(),
        month: month.label(),
        as_of: now,
        currency,
        total,
        totals: totals
            .into_iter()
            .map(|(currency, total)| CurrencyTotal {
                currency,
                total: money::format(total),
            })
            .collect(),
        by_node,
        by_provider: by_provider
            .into_iter()
            .map(|((provider, currency), cost)| ProviderCost {
                provider,
                currency,
                cost: money::format(cost),
            })
            .collect(),
    })
}

/// An organization's cloud costs in a month (the current one by default): each node
/// life's started hours × hourly price, capped at the monthly price; by node and by
/// provider. Deleted nodes keep their costs.
pub async fn costs(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(q): AppQuery<MonthQuery>,
) -> AppResult<AppJson<CostsView>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingRead::KEY,
    )
    .await?;
    let month = month_of(&state, &q)?;
    let now = state.clock.now_ms();
    Ok(AppJson(
        costs_of(&state, &member.org_id, &month, now).await?,
    ))
}

/// The current month's costs so far, and forecast to its end: every running node as if
/// it ran to the month's end, capped at its monthly price.
pub async fn forecast(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<ForecastView>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingRead::KEY,
    )
    .await?;
    let now = state.clock.now_ms();
    let month = current_month(&state)?;
    let entries = ledger::in_period(&state.db.pool, &member.org_id, month.start, month.end).await?;
    let mut by_node = Vec::new();
    let mut by_provider: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for e in entries.into_iter().filter(|e| e.started_at <= now) {
        let s = period::share(
            &month,
            now,
            e.started_at,
            e.ended_at,
            e.hourly_nanos,
            e.monthly_nanos,
        );
        let p = by_provider
            .entry((e.provider.clone(), e.currency.clone()))
            .or_default();
        p.0 += s.cost;
        p.1 += s.forecast;
        let t = totals.entry(e.currency.clone()).or_default();
        t.0 += s.cost;
        t.1 += s.forecast;
        by_node.push(NodeForecast {
            running: running(&e),
            deleted: deleted(&e),
            id: e.id,
            node_id: e.node_id,
            node_name: e.node_name,
            provider: e.provider,
            instance_type: e.instance_type,
            location: e.location,
            currency: e.currency,
            hourly: e.hourly_nanos.map(money::format),
            monthly_cap: e.monthly_nanos.map(money::format),
            hours_to_date: s.hours,
            cost_to_date: money::format(s.cost),
            hours_forecast: s.hours_forecast,
            forecast: money::format(s.forecast),
        });
    }
    let currency = single(&totals).cloned();
    let (cost_to_date, forecast) = match (&currency, totals.is_empty()) {
        (Some(c), _) => (
            Some(money::format(totals[c].0)),
            Some(money::format(totals[c].1)),
        ),
        (None, true) => (Some(money::format(0)), Some(money::format(0))),
        (None, false) => (None, None),
    };
    Ok(AppJson(ForecastView {
        organization_id: member.org_id,
        month: month.label(),
        as_of: now,
        month_end: month.end,
        currency,
        cost_to_date,
        forecast,
        totals: totals
            .into_iter()
            .map(|(currency, (to_date, forecast))| CurrencyForecast {
                currency,
                cost_to_date: money::format(to_date),
                forecast: money::format(forecast),
            })
            .collect(),
        by_node,
        by_provider: by_provider
            .into_iter()
            .map(
                |((provider, currency), (to_date, forecast))| ProviderForecast {
                    provider,
                    currency,
                    cost_to_date: money::format(to_date),
                    forecast: money::format(forecast),
                },
            )
            .collect(),
    }))
}

/// Reads the prices of the running nodes' providers again where the provider's API
/// gives them (Hetzner's `GET /pricing`, with the organization's Hetzner credential,
/// through the planner), updates the running entries' prices, and answers the current
/// month's costs. A provider without a price API, or without a credential, is skipped
/// with the reason.
pub async fn refresh(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<RefreshView>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingManage::KEY,
    )
    .await?;
    let org_id = member.org_id;
    let pool = &state.db.pool;
    let entries = ledger::running(pool, &org_id).await?;
    let mut providers: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in &entries {
        providers.entry(e.provider.as_str()).or_default().push(e);
    }
    let mut refreshed = Vec::new();
    let mut skipped = Vec::new();
    for (provider, entries) in providers {
        match reread(&state, &org_id, provider).await {
            Err(reason) => skipped.push(Skipped {
                provider: provider.to_owned(),
                reason,
            }),
            Ok(table) => {
                let now = state.clock.now_ms();
                let mut updated = 0;
                for e in entries {
                    let Some(price) = table.price(&e.location, &e.instance_type) else {
                        continue;
                    };
                    let Some(hourly) = money::parse(&price.hourly) else {
                        continue;
                    };
                    let monthly = money::parse(&price.monthly);
                    if (Some(hourly), monthly, price.currency.as_str())
                        == (e.hourly_nanos, e.monthly_nanos, e.currency.as_str())
                    {
                        continue;
                    }
                    if ledger::set_price(pool, &e.id, &price.currency, hourly, monthly, now).await?
                    {
                        updated += 1;
                    }
                }
                refreshed.push(Refreshed {
                    provider: provider.to_owned(),
                    source: "hetzner_api".into(),
                    updated,
                });
            }
        }
    }
    let month = current_month(&state)?;
    let costs = costs_of(&state, &org_id, &month, state.clock.now_ms()).await?;
    Ok(AppJson(RefreshView {
        refreshed,
        skipped,
        costs,
    }))
}

/// `provider`'s price table read again from its API for `org_id`, or why not.
async fn reread(
    state: &AppState,
    org_id: &str,
    provider: &str,
) -> Result<crate::planner::PriceTable, String> {
    if provider != "hetzner" {
        return Err(format!(
            "{provider} has no price API the panel reads: its prices are the planner's bundled table"
        ));
    }
    // The planner keeps what it read for an hour: forget it so the API is asked now.
    sqlx::query("DELETE FROM planner_prices WHERE org_id = $1 AND provider = $2")
        .bind(org_id)
        .bind(provider)
        .execute(&state.db.pool)
        .await
        .map_err(|e| format!("forgetting the cached prices failed: {e}"))?;
    let sourced = crate::planner::refresh::table(state, org_id, provider)
        .await
        .ok_or_else(|| "no price table".to_owned())?;
    if sourced.origin == "hetzner_api" {
        return Ok(sourced.table);
    }
    Err(sourced.note.unwrap_or_else(|| {
        "the organization has no Hetzner credential: add one to read Hetzner's prices".into()
    }))
}
