//! The billing pages of an organization (web layer, issue 19), all through the
//! `/v1/billing/*` API as the signed-in user:
//!
//! - `/billing`: the plan and its status, usage against the plan's caps (an "over" row
//!   says why creates are refused after a downgrade), the plans to choose from with a
//!   month/year toggle and Subscribe/Change, Cancel at the period's end, "Manage billing"
//!   (Stripe's billing portal), the invoices from Stripe. With billing off it says so.
//! - `/billing/success` (Checkout's `success_url`) only reads the status: a plan becomes
//!   active from Stripe's event, never from the browser coming back. It refreshes itself
//!   until the plan chosen is active (or gives up after a while and says so).
//! - `/billing/cancelled` (Checkout's `cancel_url`).
//! - The past-due banner of every page ([`banners`], in the layout).
//!
//! Checkout's and the portal's addresses are Stripe's: the form's answer is a small page
//! that sends the browser there (`billing.js`, with a link as fallback), because the
//! pages' CSP (`form-action 'self'`) refuses a form's redirect to another site.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::billing_answers::{
    CostsView, ForecastView, InvoiceList, Limits, Plan, PlanList, PortalAnswer, SubscribeAnswer,
    Subscription, limit_label, money, over_text,
};
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, shown};
use super::session::{self, Browser, WebUser};
use super::view::{csrf_of, html, user_layout};
use crate::error::AppError;
use crate::orgs::store::OrgWithRole;

/// The cookie remembering, between the Subscribe form and Checkout's return, which
/// organization and plan the browser is waiting for (`<org>.<plan>`; no secret).
const PENDING_COOKIE: &str = "shardlyn_billing_pending";
/// How many times `/billing/success` reloads itself (every [`SUCCESS_REFRESH_SECS`])
/// before it stops and says Stripe has not confirmed yet.
const SUCCESS_TRIES: u32 = 40;
const SUCCESS_REFRESH_SECS: u32 = 3;
/// Organizations whose subscription the banner reads, at most.
const BANNER_ORGS: usize = 10;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/billing", get(index))
        .route("/billing/subscribe", post(subscribe))
        .route("/billing/cancel", post(cancel))
        .route("/billing/portal", post(portal))
        .route("/billing/cloud-costs/refresh", post(refresh_costs))
        .route("/billing/success", get(success))
        .route("/billing/cancelled", get(cancelled))
}

/// `?organization_id=&interval=&done=` of `/billing`.
#[derive(Debug, Default, Deserialize)]
pub struct BillingQuery {
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    interval: String,
    done: Option<String>,
}

/// `month` or `year` from the address or a form (anything else: `month`).
fn interval_param(interval: &str) -> &'static str {
    if interval == "year" { "year" } else { "month" }
}

/// `/v1/billing/org/<what>` of `org` (empty: the personal one).
fn org_path(what: &str, org: &str) -> String {
    let q = kit::query(&[("organization_id", org)]);
    if q.is_empty() {
        format!("/v1/billing/org/{what}")
    } else {
        format!("/v1/billing/org/{what}?{q}")
    }
}

/// A limit against its cap, as the usage table shows it.
#[derive(Debug, Serialize)]
struct UsageRow {
    limit: String,
    label: &'static str,
    cap: Option<i64>,
    usage: i64,
    over: bool,
    /// The bar's fill (`usage` clamped to `cap`).
    bar: i64,
    /// Why creates are refused, when over.
    over_text: Option<String>,
}

/// A plan offered on the page.
#[derive(Debug, Serialize)]
struct PlanOffer {
    #[serde(flatten)]
    plan: Plan,
    /// The price for the chosen interval (`USD 9.00`).
    price: String,
    /// Its limits in words (`3 servers`, `unlimited memory`...).
    limits: Vec<String>,
    /// The organization is on it.
    current: bool,
    /// It can be picked: not the default plan, and not the plan and interval the
    /// organization already has.
    offered: bool,
}

/// An invoice with its amounts in words.
#[derive(Debug, Serialize)]
struct InvoiceRow {
    #[serde(flatten)]
    invoice: super::billing_answers::Invoice,
    amount_due_text: String,
    amount_paid_text: String,
}

#[derive(Debug, Default, Serialize)]
struct BillingPage {
    flash: Flash,
    organization_id: String,
    organizations: Vec<OrgWithRole>,
    billing_enabled: bool,
    subscription: Option<Subscription>,
    /// The plan's price for its interval.
    price: Option<String>,
    usage: Vec<UsageRow>,
    plans: Vec<PlanOffer>,
    /// The toggle: `month` or `year`.
    interval: &'static str,
    invoices: Vec<InvoiceRow>,
    /// Why the invoices could not be read (Stripe unreachable...).
    invoices_error: Option<String>,
    /// The provisioned nodes' costs this month, and the forecast to its end.
    costs: Option<CostsView>,
    costs_error: Option<String>,
    forecast: Option<ForecastView>,
}

/// A plan's limits in words.
fn limit_words(plan: &Plan) -> Vec<String> {
    let l = &plan.limits;
    [
        (l.servers, " servers", "servers"),
        (l.memory_mb, " MB memory", "memory"),
        (l.cpu_percent, "% CPU", "CPU"),
        (l.disk_mb, " MB disk", "disk"),
        (l.nodes, " own nodes", "own nodes"),
        (l.backups_per_server, " backups per server", "backups"),
        (l.members, " members", "members"),
    ]
    .into_iter()
    .map(|(cap, unit, what)| match cap {
        Some(n) => format!("{n}{unit}"),
        None => format!("unlimited {what}"),
    })
    .chain(
        plan.pools
            .iter()
            .any(|p| p == "platform")
            .then(|| "servers on the platform's nodes".to_owned()),
    )
    .collect()
}

/// The price of `plan` for `interval`.
fn price_of(plan: &Plan, interval: &str) -> String {
    let (amount, per) = if interval == "year" {
        (plan.price_year, "year")
    } else {
        (plan.price_month, "month")
    };
    if amount == 0 {
        "free".to_owned()
    } else {
        format!("{} / {per}", money(amount, &plan.currency))
    }
}

/// The usage rows of a limits answer.
fn usage_rows(limits: Limits) -> Vec<UsageRow> {
    limits
        .limits
        .into_iter()
        .map(|row| UsageRow {
            label: limit_label(&row.limit),
            bar: row.cap.map_or(0, |cap| row.usage.clamp(0, cap.max(0))),
            over_text: row
                .cap
                .filter(|_| row.over)
                .map(|cap| over_text(&row.limit, cap, row.usage)),
            limit: row.limit,
            cap: row.cap,
            usage: row.usage,
            over: row.over,
        })
        .collect()
}

/// Renders `/billing` of `org` with `page`'s flash.
async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    org: &str,
    interval: &'static str,
    mut page: BillingPage,
) -> WebResult<Response> {
    let subscription: Subscription =
        kit::read(web, browser, user, &org_path("subscription", org)).await?;
    page.billing_enabled = subscription.billing_enabled;
    page.organizations = kit::organizations(web, browser, user)
        .await
        .unwrap_or_default();
    page.organization_id = org.to_owned();
    page.interval = interval;
    if subscription.billing_enabled {
        let limits: Limits = kit::read(web, browser, user, &org_path("limits", org)).await?;
        page.usage = usage_rows(limits);
        let plans: PlanList = kit::read(web, browser, user, "/v1/billing/plans").await?;
        let current = subscription.plan.as_ref().map(|p| p.id.clone());
        page.plans = plans
            .data
            .into_iter()
            .filter(|p| !p.archived || current.as_deref() == Some(p.id.as_str()))
            .map(|plan| {
                let current = current.as_deref() == Some(plan.id.as_str());
                PlanOffer {
                    price: price_of(&plan, interval),
                    limits: limit_words(&plan),
                    offered: !(plan.is_default || current && subscription.interval == interval),
                    current,
                    plan,
                }
            })
            .collect();
        match kit::read::<InvoiceList>(web, browser, user, &org_path("invoices", org)).await {
            Ok(list) => {
                page.invoices = list
                    .data
                    .into_iter()
                    .map(|invoice| {
                        let currency = invoice.currency.clone().unwrap_or_default();
                        InvoiceRow {
                            amount_due_text: money(invoice.amount_due, &currency),
                            amount_paid_text: money(invoice.amount_paid, &currency),
                            invoice,
                        }
                    })
                    .collect();
            }
            // The page still shows the rest when Stripe cannot be reached.
            Err(e) => page.invoices_error = Some(e.message),
        }
        page.price = subscription
            .plan
            .as_ref()
            .map(|p| price_of(p, &subscription.interval));
    }
    page.subscription = Some(subscription);
    match kit::read::<CostsView>(web, browser, user, &org_path("cloud-costs", org)).await {
        Ok(costs) => page.costs = Some(costs),
        Err(e) => page.costs_error = Some(e.message),
    }
    page.forecast =
        kit::read::<ForecastView>(web, browser, user, &org_path("cloud-costs/forecast", org))
            .await
            .ok();
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Billing", "billing"),
        "billing.html.tera",
        &page,
    )
    .await
}

/// `GET /billing`.
pub async fn index(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<BillingQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/billing");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let org = kit::org_param(&q.organization_id);
    let page = BillingPage {
        flash: Flash::from_done(&kit::Done { done: q.done }),
        ..BillingPage::default()
    };
    show(
        &web,
        &browser,
        &user,
        &org,
        interval_param(&q.interval),
        page,
    )
    .await
}

/// The fields of the billing forms.
#[derive(Debug, Default, Deserialize)]
pub struct BillingForm {
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    plan_id: String,
    #[serde(default)]
    interval: String,
}

/// `POST /v1/billing/org/subscribe`'s body.
#[derive(Debug, Serialize)]
struct SubscribeBody<'a> {
    plan_id: &'a str,
    interval: &'a str,
}

/// An address of Stripe's the browser may be sent to: `https` (or `http`, a fake's in
/// tests), nothing else (no `javascript:`).
fn outside_url(url: &str) -> WebResult<&str> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(url)
    } else {
        Err(WebError::from(AppError::Internal(anyhow::anyhow!(
            "Stripe answered an address that is not http(s)"
        ))))
    }
}

#[derive(Debug, Serialize)]
struct LeavingPage<'a> {
    url: &'a str,
    /// `checkout` or `portal`.
    to: &'a str,
}

/// The page that sends the browser to `url` (Checkout or the portal), with `cookies`.
async fn leave(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    url: &str,
    to: &str,
    cookies: Vec<axum::http::HeaderValue>,
) -> WebResult<Response> {
    let url = outside_url(url)?;
    let (token, mut all) = csrf_of(web, browser)?;
    all.extend(cookies);
    let title = if to == "checkout" {
        "Checkout"
    } else {
        "Manage billing"
    };
    html(
        StatusCode::OK,
        "billing_leave.html.tera",
        &user_layout(web, browser, (title, "billing"), &token, user).await,
        &LeavingPage { url, to },
        all,
    )
}

/// A refused form shown on `/billing`.
async fn refused(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    org: &str,
    interval: &'static str,
    error: WebError,
) -> WebResult<Response> {
    show(
        web,
        browser,
        user,
        org,
        interval,
        BillingPage {
            flash: Flash::error(error),
            ..BillingPage::default()
        },
    )
    .await
}

/// `POST /billing/subscribe`: Checkout (the browser is sent there), or the plan changed
/// at once when the organization already pays for one.
pub async fn subscribe(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<BillingForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/billing");
    let org = kit::org_param(&form.organization_id);
    let interval = interval_param(&form.interval);
    let plan = kit::org_param(&form.plan_id);
    let body = SubscribeBody {
        plan_id: &plan,
        interval,
    };
    let answer: WebResult<SubscribeAnswer> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        &org_path("subscribe", &org),
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(a) if a.action == "checkout" => {
            let url = a.url.unwrap_or_default();
            let pending = session::cookie(
                &web.app,
                PENDING_COOKIE,
                &format!("{org}.{plan}"),
                Some(3600),
            )?;
            leave(&web, &browser, &user, &url, "checkout", vec![pending]).await
        }
        Ok(_) => redirect_done(&org, interval, "plan-changed"),
        Err(error) => refused(&web, &browser, &user, &org, interval, error).await,
    }
}

/// `303` to `/billing` of `org` with the notice `done`.
fn redirect_done(org: &str, interval: &str, done: &str) -> WebResult<Response> {
    let interval = if interval == "year" { "year" } else { "" };
    super::view::redirect(
        &format!(
            "/billing?{}",
            kit::query(&[
                ("organization_id", org),
                ("interval", interval),
                ("done", done)
            ])
        ),
        [],
    )
}

/// `POST /billing/cancel`: cancels at the end of the period.
pub async fn cancel(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<BillingForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/billing");
    let org = kit::org_param(&form.organization_id);
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        &org_path("cancel", &org),
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(()) => redirect_done(&org, "month", "billing-cancelled"),
        Err(error) => refused(&web, &browser, &user, &org, "month", error).await,
    }
}

/// `POST /billing/portal`: the browser is sent to Stripe's billing portal.
pub async fn portal(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<BillingForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/billing");
    let org = kit::org_param(&form.organization_id);
    let answer: WebResult<PortalAnswer> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        &org_path("portal", &org),
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(a) => leave(&web, &browser, &user, &a.url, "portal", Vec::new()).await,
        Err(error) => refused(&web, &browser, &user, &org, "month", error).await,
    }
}

/// `POST /billing/cloud-costs/refresh`: prices read again where a provider's API gives
/// them.
pub async fn refresh_costs(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<BillingForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/billing");
    let org = kit::org_param(&form.organization_id);
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        &org_path("cloud-costs/refresh", &org),
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(()) => redirect_done(&org, "month", "costs-refreshed"),
        Err(error) => refused(&web, &browser, &user, &org, "month", error).await,
    }
}

/// `?tries=` of `/billing/success` (Checkout's `session_id` is not used: the page only
/// reads the organization's status).
#[derive(Debug, Default, Deserialize)]
pub struct SuccessQuery {
    #[serde(default)]
    tries: u32,
}

#[derive(Debug, Default, Serialize)]
struct ReturnPage {
    /// `success` or `cancelled`.
    outcome: &'static str,
    organization_id: String,
    subscription: Option<Subscription>,
    /// The plan chosen is active: the page stops refreshing.
    settled: bool,
    /// The page refreshes itself to this address, after `refresh_secs`.
    refresh: Option<String>,
    refresh_secs: u32,
    /// It stopped refreshing before Stripe confirmed.
    gave_up: bool,
}

/// The organization and plan the browser waits for (from [`PENDING_COOKIE`]).
fn pending(browser: &Browser) -> (String, String) {
    browser
        .cookie(PENDING_COOKIE)
        .and_then(|v| v.split_once('.'))
        .map(|(org, plan)| (kit::org_param(org), kit::org_param(plan)))
        .unwrap_or_default()
}

/// Whether `subscription` has `plan` (any paid plan when `plan` is empty) in a status
/// Stripe calls paid.
fn settled(subscription: &Subscription, plan: &str) -> bool {
    let on_plan = subscription.plan.as_ref().is_some_and(|p| {
        if plan.is_empty() {
            !p.is_default
        } else {
            p.id == plan
        }
    });
    on_plan && matches!(subscription.status.as_str(), "active" | "trialing")
}

/// `GET /billing/success`: what Stripe has confirmed so far; never activates anything.
pub async fn success(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<SuccessQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/billing/success");
    let tries = query.map(|Query(q)| q.tries).unwrap_or_default();
    let (org, plan) = pending(&browser);
    let subscription: Subscription =
        kit::read(&web, &browser, &user, &org_path("subscription", &org)).await?;
    let done = settled(&subscription, &plan);
    let more = !done && tries < SUCCESS_TRIES;
    let page = ReturnPage {
        outcome: "success",
        settled: done,
        refresh: more.then(|| format!("/billing/success?tries={}", tries + 1)),
        refresh_secs: SUCCESS_REFRESH_SECS,
        gave_up: !done && !more,
        organization_id: org,
        subscription: Some(subscription),
    };
    kit::page(
        &web,
        &browser,
        &user,
        StatusCode::OK,
        ("Payment received", "billing"),
        "billing_return.html.tera",
        &page,
    )
    .await
}

/// `GET /billing/cancelled`: Checkout was left without paying.
pub async fn cancelled(State(web): State<WebState>, browser: Browser) -> WebResult<Response> {
    let user = page_user!(web, browser, "/billing/cancelled");
    let (org, _) = pending(&browser);
    let page = ReturnPage {
        outcome: "cancelled",
        organization_id: org,
        ..ReturnPage::default()
    };
    kit::page(
        &web,
        &browser,
        &user,
        StatusCode::OK,
        ("Checkout cancelled", "billing"),
        "billing_return.html.tera",
        &page,
    )
    .await
}

/// An organization of the user that is past due or suspended, for the banner every page
/// shows.
#[derive(Debug, Clone, Serialize)]
pub struct BillingBanner {
    pub organization_id: String,
    pub organization_name: String,
    /// Its servers are suspended for non-payment (else: past due, in its grace period).
    pub suspended: bool,
    /// When the grace period ends (RFC 3339).
    pub grace_ends_at: Option<String>,
}

/// The banner of `subscription` of `org`, if it is past due or suspended.
fn banner_of(org: &OrgWithRole, subscription: &Subscription) -> Option<BillingBanner> {
    let suspended = subscription.suspended_at.is_some();
    let past_due = subscription.past_due_since.is_some()
        || matches!(subscription.status.as_str(), "past_due" | "unpaid");
    (suspended || past_due).then(|| BillingBanner {
        organization_id: org.org.id.clone(),
        organization_name: org.org.name.clone(),
        suspended,
        grace_ends_at: subscription.grace_ends_at.map(crate::db::rfc3339),
    })
}

/// The user's organizations that are past due or suspended (none while billing is off:
/// then no API call is made). Read through the API as the user, so an organization whose
/// billing the user may not read shows no banner.
pub async fn banners(web: &WebState, browser: &Browser, user: &WebUser) -> Vec<BillingBanner> {
    if web.app.config.stripe.secret_key.expose().is_empty() {
        return Vec::new();
    }
    let Ok(orgs) = kit::organizations(web, browser, user).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for org in orgs.iter().take(BANNER_ORGS) {
        let path = org_path("subscription", &org.org.id);
        if let Ok(subscription) = kit::read::<Subscription>(web, browser, user, &path).await
            && let Some(banner) = banner_of(org, &subscription)
        {
            out.push(banner);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_org_paths() {
        assert_eq!(interval_param("year"), "year");
        assert_eq!(interval_param("week"), "month");
        assert_eq!(
            org_path("limits", ""),
            "/v1/billing/org/limits",
            "the personal organization"
        );
        assert_eq!(
            org_path("limits", "o-1"),
            "/v1/billing/org/limits?organization_id=o-1"
        );
    }

    #[test]
    fn only_web_addresses_are_followed() {
        assert!(outside_url("https://checkout.stripe.com/c/pay/cs_1").is_ok());
        assert!(outside_url("http://127.0.0.1:4000/checkout/cs_1").is_ok());
        assert!(outside_url("javascript:alert(1)").is_err());
        assert!(outside_url("https://x y").is_err());
        assert!(outside_url("").is_err());
    }

    fn subscription(plan: Option<&serde_json::Value>, status: &str) -> Subscription {
        serde_json::from_value(serde_json::json!({"billing_enabled": true,
            "organization_id": "o1", "unlimited": false, "plan": plan, "status": status,
            "interval": "month", "current_period_end": null, "cancel_at_period_end": false,
            "past_due_since": null, "grace_ends_at": null, "suspended_at": null}))
        .expect("subscription")
    }

    fn plan(id: &str, is_default: bool) -> serde_json::Value {
        serde_json::json!({"id": id, "name": id, "description": "", "currency": "usd",
            "price_month": 900, "price_year": 9000, "stripe_product_id": null,
            "stripe_price_month": null, "stripe_price_year": null,
            "limits": {"servers": 3, "memory_mb": null, "cpu_percent": 200, "disk_mb": null,
                "nodes": null, "backups_per_server": null, "members": null},
            "pools": ["own", "platform"], "is_default": is_default, "archived": false,
            "subscribers": 0, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn over_rows_are_explained_and_bars_clamped() {
        let rows = usage_rows(
            serde_json::from_value(serde_json::json!({"billing_enabled": true,
                "unlimited": false, "plan_id": "p", "plan_name": "P", "limits": [
                    {"limit": "servers", "cap": 1, "usage": 2, "over": true},
                    {"limit": "memory_mb", "cap": null, "usage": 512, "over": false}]}))
            .expect("limits"),
        );
        assert_eq!(rows[0].bar, 1);
        assert!(
            rows[0]
                .over_text
                .as_deref()
                .is_some_and(|t| t.starts_with("Your plan allows 1 server; you have 2."))
        );
        assert_eq!((rows[1].bar, rows[1].over_text.is_none()), (0, true));
    }

    #[test]
    fn the_success_page_waits_for_the_plan_chosen() {
        assert!(settled(
            &subscription(Some(&plan("pro", false)), "active"),
            "pro"
        ));
        assert!(!settled(
            &subscription(Some(&plan("free", true)), "free"),
            "pro"
        ));
        assert!(!settled(
            &subscription(Some(&plan("pro", false)), "incomplete"),
            "pro"
        ));
        assert!(settled(
            &subscription(Some(&plan("pro", false)), "trialing"),
            ""
        ));
        assert!(!settled(
            &subscription(Some(&plan("free", true)), "active"),
            ""
        ));
        assert!(!settled(&subscription(None, "active"), ""));
    }

    #[test]
    fn prices_and_limits_in_words() {
        let p: Plan = serde_json::from_value(plan("pro", false)).expect("plan");
        assert_eq!(price_of(&p, "month"), "USD 9.00 / month");
        assert_eq!(price_of(&p, "year"), "USD 90.00 / year");
        let words = limit_words(&p);
        assert!(words.contains(&"3 servers".to_owned()), "{words:?}");
        assert!(words.contains(&"200% CPU".to_owned()), "{words:?}");
        assert!(words.contains(&"unlimited memory".to_owned()), "{words:?}");
        assert!(words.last().is_some_and(|w| w.contains("platform")));
    }
}
