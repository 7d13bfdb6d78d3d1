//! An organization's billing: `/v1/billing/org/*` (`?organization_id=`, the caller's
//! personal organization by default). Reading needs `billing.read`, subscribing,
//! cancelling and the portal `billing.manage`.
//!
//! Subscribing starts a Stripe Checkout Session and answers its URL; nothing is granted
//! until Stripe says so (an event, or a re-fetch). Subscribing while subscribed changes
//! the plan of the existing subscription, prorated by Stripe, instead of charging twice.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::limits::{self, Limit, Usage};
use super::plans::{self, Plan};
use super::subscriptions::{self, Row};
use crate::auth::extract::CurrentUser;
use crate::authz::{Permission, perm};
use crate::db::{rfc3339, ts};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::state::AppState;

const DAY_MS: i64 = 86_400_000;

/// An organization's subscription as its members see it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubscriptionView {
    pub billing_enabled: bool,
    pub organization_id: String,
    /// Nothing is capped (billing off, or a platform admin's organization).
    pub unlimited: bool,
    /// The plan whose caps apply (null: none).
    pub plan: Option<Plan>,
    /// `free` (the default plan), Stripe's status (`active`, `trialing`, `past_due`,
    /// `unpaid`, `canceled`, `incomplete`...) or `manual` (given by an admin).
    pub status: String,
    /// `month` or `year`.
    pub interval: String,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub current_period_end: Option<i64>,
    /// Ends at the period's end.
    pub cancel_at_period_end: bool,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub past_due_since: Option<i64>,
    /// When the servers are suspended if the invoice stays unpaid.
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub grace_ends_at: Option<i64>,
    /// Since when the servers are suspended for non-payment.
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub suspended_at: Option<i64>,
}

/// The view of `org_id`'s subscription.
///
/// # Errors
/// Database failures.
pub async fn view_of(state: &AppState, org_id: &str) -> AppResult<SubscriptionView> {
    let mut conn = state.db.pool.acquire().await?;
    let row = subscriptions::by_org(&mut *conn, org_id).await?;
    let capped = limits::plan_for(&mut conn, state, org_id).await?;
    let held = match &capped {
        Some(p) => Some(p.clone()),
        None => limits::held_plan(&mut conn, org_id).await?,
    };
    let on_paid = row
        .as_ref()
        .is_some_and(|r| subscriptions::holds_plan(&r.status) && r.plan_id.is_some());
    let status = match &row {
        Some(r) if on_paid => r.status.clone(),
        _ => "free".to_owned(),
    };
    let grace = i64::try_from(state.config.billing.grace_days).unwrap_or(7) * DAY_MS;
    Ok(SubscriptionView {
        billing_enabled: super::enabled(state),
        organization_id: org_id.to_owned(),
        unlimited: capped.is_none(),
        plan: held.map(|mut p| {
            p.subscribers = 0;
            p
        }),
        status,
        interval: row
            .as_ref()
            .map_or_else(|| "month".to_owned(), |r| r.billing_interval.clone()),
        current_period_end: row.as_ref().and_then(|r| r.current_period_end),
        cancel_at_period_end: row.as_ref().is_some_and(|r| r.cancel_at_period_end),
        past_due_since: row.as_ref().and_then(|r| r.past_due_since),
        grace_ends_at: row
            .as_ref()
            .and_then(|r| r.past_due_since)
            .map(|t| t + grace),
        suspended_at: row.as_ref().and_then(|r| r.suspended_at),
    })
}

/// `GET /v1/billing/org/subscription`.
pub async fn subscription(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<SubscriptionView>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingRead::KEY,
    )
    .await?;
    Ok(AppJson(view_of(&state, &member.org_id).await?))
}

/// `GET /v1/billing/org/usage`.
pub async fn usage(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<Usage>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingRead::KEY,
    )
    .await?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(AppJson(limits::usage(&mut conn, &member.org_id).await?))
}

/// One limit against its use.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitView {
    /// `servers`, `memory_mb`, `cpu_percent`, `disk_mb`, `nodes`, `backups_per_server`
    /// or `members`.
    pub limit: String,
    /// Null: unlimited.
    pub cap: Option<i64>,
    /// `backups_per_server`: the server with the most.
    pub usage: i64,
    /// Above the cap (after a downgrade): nothing is deleted, adding is refused.
    pub over: bool,
}

/// `GET /v1/billing/org/limits`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitsView {
    pub billing_enabled: bool,
    pub unlimited: bool,
    pub plan_id: Option<String>,
    pub plan_name: Option<String>,
    pub limits: Vec<LimitView>,
}

/// `GET /v1/billing/org/limits`.
pub async fn limits(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<LimitsView>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingRead::KEY,
    )
    .await?;
    let mut conn = state.db.pool.acquire().await?;
    let plan = limits::plan_for(&mut conn, &state, &member.org_id).await?;
    let used = limits::usage(&mut conn, &member.org_id).await?;
    let rows = Limit::ALL
        .iter()
        .map(|&l| {
            let cap = plan.as_ref().and_then(|p| l.cap(&p.limits));
            let usage = used.of(l);
            LimitView {
                limit: l.key().to_owned(),
                cap,
                usage,
                over: cap.is_some_and(|c| usage > c),
            }
        })
        .collect();
    Ok(AppJson(LimitsView {
        billing_enabled: super::enabled(&state),
        unlimited: plan.is_none(),
        plan_id: plan.as_ref().map(|p| p.id.clone()),
        plan_name: plan.map(|p| p.name),
        limits: rows,
    }))
}

fn disabled() -> AppError {
    AppError::coded(
        StatusCode::CONFLICT,
        "BILLING_DISABLED",
        "billing is off on this panel (no Stripe key): organizations are unlimited",
    )
}

/// The organization's Stripe customer, made on first use (one per organization).
async fn customer(
    state: &AppState,
    stripe: &super::stripe::Stripe,
    org_id: &str,
    email: &str,
) -> AppResult<String> {
    if let Some(id) = subscriptions::by_org(&state.db.pool, org_id)
        .await?
        .and_then(|r| r.stripe_customer_id)
    {
        return Ok(id);
    }
    let name = crate::orgs::store::find(&state.db.pool, org_id)
        .await?
        .map_or_else(|| org_id.to_owned(), |o| o.name);
    let id = stripe.create_customer(org_id, &name, Some(email)).await?;
    subscriptions::set_customer(&state.db.pool, org_id, &id, state.clock.now_ms()).await?;
    // Another request may have recorded one first: that one stands.
    Ok(subscriptions::by_org(&state.db.pool, org_id)
        .await?
        .and_then(|r| r.stripe_customer_id)
        .unwrap_or(id))
}

/// `POST /v1/billing/org/subscribe`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    /// The organization (as `?organization_id=`; both must agree).
    #[serde(default)]
    pub organization_id: Option<String>,
    pub plan_id: String,
    /// `month` (default) or `year`.
    #[serde(default)]
    pub interval: Option<String>,
}

/// What subscribing did.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubscribeAnswer {
    /// `checkout`: open `url` to pay; `changed`: the existing subscription moved to the
    /// plan (prorated).
    pub action: String,
    pub url: Option<String>,
    pub subscription: Option<SubscriptionView>,
}

/// `POST /v1/billing/org/subscribe`.
pub async fn subscribe(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<SubscribeBody>,
) -> AppResult<AppJson<SubscribeAnswer>> {
    let requested =
        crate::orgs::scope::requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(
        &state,
        &user,
        requested.as_deref(),
        perm::BillingManage::KEY,
    )
    .await?;
    let stripe = super::client(&state).ok_or_else(disabled)?;
    let interval = body.interval.as_deref().unwrap_or("month");
    if interval != "month" && interval != "year" {
        return Err(AppError::invalid_field(
            "interval",
            "interval must be month or year",
        ));
    }
    let mut plan = plans::find(&state.db.pool, &body.plan_id)
        .await?
        .filter(|p| !p.archived)
        .ok_or_else(|| AppError::not_found("plan"))?;
    if plan.price(interval) == 0 {
        return Err(AppError::invalid_field(
            "plan_id",
            format!(
                "the {} plan has no {interval}ly price: it is not sold (the free plan needs no subscription)",
                plan.name
            ),
        ));
    }
    if plan.price_id(interval).is_none() {
        plans::ensure_prices(&state, &mut plan).await?;
        sqlx::query(
            "UPDATE plans SET stripe_product_id = $1, stripe_price_month = $2, \
             stripe_price_year = $3 WHERE id = $4",
        )
        .bind(&plan.stripe_product_id)
        .bind(&plan.stripe_price_month)
        .bind(&plan.stripe_price_year)
        .bind(&plan.id)
        .execute(&state.db.pool)
        .await?;
    }
    let price = plan
        .price_id(interval)
        .ok_or_else(|| AppError::invalid_field("plan_id", "the plan has no Stripe price"))?
        .to_owned();
    let row = subscriptions::by_org(&state.db.pool, &member.org_id).await?;
    // Subscribed already: change the plan of that subscription (Stripe prorates).
    if let Some(sub_id) = row
        .as_ref()
        .filter(|r| subscriptions::holds_plan(&r.status) && r.status != "manual")
        .and_then(|r| r.stripe_subscription_id.clone())
    {
        let current = stripe.subscription(&sub_id).await?;
        if current.price_id() == Some(price.as_str()) {
            return Err(AppError::coded(
                StatusCode::CONFLICT,
                "ALREADY_SUBSCRIBED",
                format!(
                    "the organization is already on the {} plan ({interval}ly)",
                    plan.name
                ),
            ));
        }
        let changed = stripe.change_price(&current, &price, &plan.id).await?;
        super::events::apply_now(&state, &changed).await?;
        return Ok(AppJson(SubscribeAnswer {
            action: "changed".into(),
            url: None,
            subscription: Some(view_of(&state, &member.org_id).await?),
        }));
    }
    let customer = customer(&state, &stripe, &member.org_id, &user.user.email).await?;
    let base = state.base_url();
    let base = base.trim_end_matches('/');
    let success = format!("{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}");
    let cancel = format!("{base}/billing/cancelled");
    let session = stripe
        .create_checkout(&super::stripe::CheckoutRequest {
            customer: &customer,
            price: &price,
            org_id: &member.org_id,
            plan_id: &plan.id,
            success_url: &success,
            cancel_url: &cancel,
            automatic_tax: state.config.stripe.automatic_tax,
        })
        .await?;
    let url = session.url.ok_or_else(|| {
        AppError::from(super::stripe::StripeFailure::Refused {
            status: 200,
            message: "the Checkout Session has no URL".into(),
        })
    })?;
    Ok(AppJson(SubscribeAnswer {
        action: "checkout".into(),
        url: Some(url),
        subscription: None,
    }))
}

/// The organization's Stripe subscription, or 409 `NO_SUBSCRIPTION`.
fn live_subscription(row: Option<&Row>) -> AppResult<String> {
    row.filter(|r| subscriptions::holds_plan(&r.status))
        .and_then(|r| r.stripe_subscription_id.clone())
        .ok_or_else(|| {
            AppError::coded(
                StatusCode::CONFLICT,
                "NO_SUBSCRIPTION",
                "the organization has no paid subscription",
            )
        })
}

/// `POST /v1/billing/org/cancel`: ends the subscription at the end of the paid period.
pub async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<SubscriptionView>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingManage::KEY,
    )
    .await?;
    let stripe = super::client(&state).ok_or_else(disabled)?;
    let row = subscriptions::by_org(&state.db.pool, &member.org_id).await?;
    let sub_id = live_subscription(row.as_ref())?;
    let sub = stripe.set_cancel_at_period_end(&sub_id, true).await?;
    super::events::apply_now(&state, &sub).await?;
    Ok(AppJson(view_of(&state, &member.org_id).await?))
}

/// A URL to open.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UrlAnswer {
    pub url: String,
}

/// `POST /v1/billing/org/portal`: Stripe's billing portal for the organization's
/// customer (payment methods, invoices, cancel), coming back to `/billing`.
pub async fn portal(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<UrlAnswer>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingManage::KEY,
    )
    .await?;
    let stripe = super::client(&state).ok_or_else(disabled)?;
    let customer = customer(&state, &stripe, &member.org_id, &user.user.email).await?;
    let back = format!("{}/billing", state.base_url().trim_end_matches('/'));
    let session = stripe.portal(&customer, &back).await?;
    Ok(AppJson(UrlAnswer { url: session.url }))
}

/// An invoice.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvoiceView {
    pub id: String,
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: Option<String>,
    pub currency: Option<String>,
    /// Minor units.
    pub amount_due: i64,
    /// Minor units.
    pub amount_paid: i64,
    pub created: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
}

/// `GET /v1/billing/org/invoices` (an addition to the reference).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvoiceList {
    pub billing_enabled: bool,
    pub data: Vec<InvoiceView>,
}

/// `GET /v1/billing/org/invoices`: the customer's invoices, read from Stripe.
pub async fn invoices(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<InvoiceList>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::BillingRead::KEY,
    )
    .await?;
    let Some(stripe) = super::client(&state) else {
        return Ok(AppJson(InvoiceList {
            billing_enabled: false,
            data: Vec::new(),
        }));
    };
    let customer = subscriptions::by_org(&state.db.pool, &member.org_id)
        .await?
        .and_then(|r| r.stripe_customer_id);
    let data = match customer {
        None => Vec::new(),
        Some(c) => stripe
            .invoices(&c)
            .await?
            .data
            .into_iter()
            .map(|i| InvoiceView {
                id: i.id,
                number: i.number,
                status: i.status,
                currency: i.currency,
                amount_due: i.amount_due.unwrap_or(0),
                amount_paid: i.amount_paid.unwrap_or(0),
                created: i.created.map(|s| rfc3339(s * 1000)),
                hosted_invoice_url: i.hosted_invoice_url,
                invoice_pdf: i.invoice_pdf,
            })
            .collect(),
    };
    Ok(AppJson(InvoiceList {
        billing_enabled: true,
        data,
    }))
}
