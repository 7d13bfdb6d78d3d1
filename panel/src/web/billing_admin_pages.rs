//! The platform admin's billing pages (web layer, issue 19), through the admin API as
//! the signed-in user (the API answers anyone else 403, shown as an error page):
//!
//! - `/admin/plans`: every plan with its subscribers, a form that creates one (prices
//!   typed in major units and sent in minor units, optional existing Stripe price ids,
//!   limits where empty is unlimited, the node pools, default, archived) and edits one
//!   (`?edit=<id>`); Archive, and Delete with a confirmation (a plan with subscribers
//!   answers 409 `PLAN_HAS_SUBSCRIBERS`: the page says to archive it instead).
//! - `/admin/subscriptions`: every organization's subscription; change its plan, cancel
//!   now, cancel at the period's end, resume.
//! - `/admin/platform-nodes`: the nodes shared by every organization whose plan allows
//!   the platform pool; mark a node the platform's (with the public name and location
//!   tenants see) or take it back.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::billing_answers::{
    AdminPlatformNode, AdminPlatformNodeList, AdminSubscriptionList, Plan, PlanLimits, PlanList,
    major_units, minor_units, money,
};
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/admin/plans", get(plans).post(create_plan))
        .route("/admin/plans/{id}", post(update_plan))
        .route("/admin/plans/{id}/archive", post(archive_plan))
        .route("/admin/plans/{id}/delete", post(delete_plan))
        .route("/admin/subscriptions", get(subscriptions))
        .route("/admin/subscriptions/{id}", post(change_subscription))
        .route("/admin/platform-nodes", get(platform_nodes))
        .route("/admin/platform-nodes/{id}", post(set_platform))
}

/// The limits of the plan form: (form input and API field under `limits`, label).
const LIMITS: &[(&str, &str)] = &[
    ("servers", "Servers"),
    ("memory_mb", "Total memory (MB)"),
    ("cpu_percent", "Total CPU (%, 100 = one core)"),
    ("disk_mb", "Total disk (MB)"),
    ("nodes", "Own nodes"),
    ("backups_per_server", "Backups per server"),
    ("members", "Members"),
];

/// `?edit=&done=` of `/admin/plans`.
#[derive(Debug, Default, Deserialize)]
pub struct PlansQuery {
    #[serde(default)]
    edit: String,
    done: Option<String>,
}

/// The plan form's fields, as typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanForm {
    name: String,
    description: String,
    currency: String,
    price_month: String,
    price_year: String,
    stripe_price_month: String,
    stripe_price_year: String,
    limit_servers: String,
    limit_memory_mb: String,
    limit_cpu_percent: String,
    limit_disk_mb: String,
    limit_nodes: String,
    limit_backups_per_server: String,
    limit_members: String,
    pool_own: String,
    pool_platform: String,
    is_default: String,
    archived: String,
}

impl PlanForm {
    /// The typed value of limit `name`.
    fn limit(&self, name: &str) -> &str {
        match name {
            "servers" => &self.limit_servers,
            "memory_mb" => &self.limit_memory_mb,
            "cpu_percent" => &self.limit_cpu_percent,
            "disk_mb" => &self.limit_disk_mb,
            "nodes" => &self.limit_nodes,
            "backups_per_server" => &self.limit_backups_per_server,
            "members" => &self.limit_members,
            _ => "",
        }
    }

    /// The form filled in from `plan` (to edit it).
    fn of(plan: &Plan) -> Self {
        let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let on = |b: bool| if b { "on".to_owned() } else { String::new() };
        let l = &plan.limits;
        Self {
            name: plan.name.clone(),
            description: plan.description.clone(),
            currency: plan.currency.clone(),
            price_month: major_units(plan.price_month, &plan.currency),
            price_year: major_units(plan.price_year, &plan.currency),
            stripe_price_month: plan.stripe_price_month.clone().unwrap_or_default(),
            stripe_price_year: plan.stripe_price_year.clone().unwrap_or_default(),
            limit_servers: n(l.servers),
            limit_memory_mb: n(l.memory_mb),
            limit_cpu_percent: n(l.cpu_percent),
            limit_disk_mb: n(l.disk_mb),
            limit_nodes: n(l.nodes),
            limit_backups_per_server: n(l.backups_per_server),
            limit_members: n(l.members),
            pool_own: on(plan.pools.iter().any(|p| p == "own")),
            pool_platform: on(plan.pools.iter().any(|p| p == "platform")),
            is_default: on(plan.is_default),
            archived: on(plan.archived),
        }
    }
}

/// The body of `POST /v1/admin/plans` and `PUT /v1/admin/plans/{id}`.
#[derive(Debug, Serialize)]
struct PlanBody {
    name: String,
    description: String,
    currency: String,
    price_month: i64,
    price_year: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stripe_price_month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stripe_price_year: Option<String>,
    limits: PlanLimits,
    pools: Vec<String>,
    is_default: bool,
    archived: bool,
}

/// A refusal of the form before it reaches the API, beside `field`.
fn invalid(field: &str, message: &str) -> WebError {
    WebError {
        field: Some(field.to_owned()),
        ..WebError::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("{field}: {message}"),
        )
    }
}

/// The API body of a typed form.
///
/// # Errors
/// A price or limit that is not a number, beside its field.
fn plan_body(form: &PlanForm) -> Result<PlanBody, WebError> {
    let currency = form.currency.trim().to_ascii_lowercase();
    let price =
        |field: &str, typed: &str| minor_units(typed, &currency).map_err(|m| invalid(field, &m));
    let limit = |name: &str| -> Result<Option<i64>, WebError> {
        let typed = form.limit(name).trim();
        if typed.is_empty() {
            return Ok(None);
        }
        typed
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    &format!("limits.{name}"),
                    "a whole number, or empty for unlimited",
                )
            })
    };
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let mut pools = Vec::new();
    if !form.pool_own.is_empty() {
        pools.push("own".to_owned());
    }
    if !form.pool_platform.is_empty() {
        pools.push("platform".to_owned());
    }
    Ok(PlanBody {
        name: form.name.trim().to_owned(),
        description: form.description.trim().to_owned(),
        price_month: price("price_month", &form.price_month)?,
        price_year: price("price_year", &form.price_year)?,
        currency,
        stripe_price_month: text(&form.stripe_price_month),
        stripe_price_year: text(&form.stripe_price_year),
        limits: PlanLimits {
            servers: limit("servers")?,
            memory_mb: limit("memory_mb")?,
            cpu_percent: limit("cpu_percent")?,
            disk_mb: limit("disk_mb")?,
            nodes: limit("nodes")?,
            backups_per_server: limit("backups_per_server")?,
            members: limit("members")?,
        },
        pools,
        is_default: !form.is_default.is_empty(),
        archived: !form.archived.is_empty(),
    })
}

/// One limit input of the form.
#[derive(Debug, Serialize)]
struct LimitInput {
    name: &'static str,
    label: &'static str,
    value: String,
    /// The refusal, when it named this limit.
    error: Option<String>,
}

/// A plan as the admin table shows it.
#[derive(Debug, Serialize)]
struct PlanRow {
    #[serde(flatten)]
    plan: Plan,
    price_month_text: String,
    price_year_text: String,
}

#[derive(Debug, Default, Serialize)]
struct PlansPage {
    flash: Flash,
    error_field: String,
    plans: Vec<PlanRow>,
    /// The plan being edited (the form then saves it).
    editing: Option<String>,
    form: PlanForm,
    limit_inputs: Vec<LimitInput>,
    billing_enabled: bool,
}

/// Whether `field` (as the API or the form named it) is limit `name`'s.
fn names_limit(field: &str, name: &str) -> bool {
    field == format!("limits.{name}") || field == name || field == format!("max_{name}")
}

/// Renders `/admin/plans` with `page`'s flash and form.
async fn show_plans(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    mut page: PlansPage,
) -> WebResult<Response> {
    let list: PlanList = kit::read(web, browser, user, "/v1/admin/plans").await?;
    page.billing_enabled = list.billing_enabled;
    page.plans = list
        .data
        .into_iter()
        .map(|plan| PlanRow {
            price_month_text: money(plan.price_month, &plan.currency),
            price_year_text: money(plan.price_year, &plan.currency),
            plan,
        })
        .collect();
    if let Some(id) = &page.editing
        && page.flash.error.is_none()
    {
        let Some(row) = page.plans.iter().find(|r| &r.plan.id == id) else {
            return Err(WebError::not_found());
        };
        page.form = PlanForm::of(&row.plan);
    }
    if page.form.currency.is_empty() {
        "usd".clone_into(&mut page.form.currency);
    }
    if page.editing.is_none() && page.flash.error.is_none() && page.form.name.is_empty() {
        "on".clone_into(&mut page.form.pool_own);
    }
    let message = page.flash.error.as_ref().map(|e| e.message.clone());
    page.limit_inputs = LIMITS
        .iter()
        .map(|(name, label)| LimitInput {
            name,
            label,
            value: page.form.limit(name).to_owned(),
            error: message
                .clone()
                .filter(|_| names_limit(&page.error_field, name)),
        })
        .collect();
    let title = if page.editing.is_some() {
        "Edit plan"
    } else {
        "Plans"
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        (title, "admin"),
        "admin_plans.html.tera",
        &page,
    )
    .await
}

/// `GET /admin/plans?edit=`.
pub async fn plans(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<PlansQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/plans");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let editing = if q.edit.is_empty() {
        None
    } else {
        Some(plain(&q.edit)?.to_owned())
    };
    let page = PlansPage {
        flash: Flash::from_done(&kit::Done { done: q.done }),
        editing,
        ..PlansPage::default()
    };
    show_plans(&web, &browser, &user, page).await
}

/// Sends the plan form to `method path`; back to the list, or the form with the refusal.
async fn save_plan(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    (method, path): (Method, &str),
    editing: Option<String>,
    form: PlanForm,
    done: &str,
) -> WebResult<Response> {
    let answer = match plan_body(&form) {
        Ok(body) => kit::act(web, browser, user, method, path, Some(&body)).await,
        Err(e) => Err(e),
    };
    match shown(answer)? {
        Ok(()) => kit::done("/admin/plans", done),
        Err(error) => {
            let page = PlansPage {
                error_field: error.field.clone().unwrap_or_default(),
                flash: Flash::error(error),
                editing,
                form,
                ..PlansPage::default()
            };
            show_plans(web, browser, user, page).await
        }
    }
}

/// `POST /admin/plans`: creates a plan.
pub async fn create_plan(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<PlanForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/plans");
    save_plan(
        &web,
        &browser,
        &user,
        (Method::POST, "/v1/admin/plans"),
        None,
        form,
        "plan-created",
    )
    .await
}

/// `POST /admin/plans/{id}`: saves the edited plan.
pub async fn update_plan(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<PlanForm>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, "/admin/plans");
    let path = format!("/v1/admin/plans/{id}");
    save_plan(
        &web,
        &browser,
        &user,
        (Method::PUT, &path),
        Some(id),
        form,
        "plan-saved",
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}

/// A plan action's refusal shown on the list: a plan with subscribers says to archive
/// it instead.
fn plan_refusal(mut error: WebError) -> WebError {
    if error.code == "PLAN_HAS_SUBSCRIBERS" {
        error.message = format!(
            "{} Organizations are subscribed to this plan: archive it instead (it then takes no new subscribers).",
            error.message
        );
    }
    error
}

/// `POST /admin/plans/{id}/archive`: the plan as it is, archived.
pub async fn archive_plan(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, "/admin/plans");
    let list: PlanList = kit::read(&web, &browser, &user, "/v1/admin/plans").await?;
    let Some(plan) = list.data.iter().find(|p| p.id == id) else {
        return Err(WebError::not_found());
    };
    let form = PlanForm {
        archived: "on".into(),
        ..PlanForm::of(plan)
    };
    let path = format!("/v1/admin/plans/{id}");
    save_plan(
        &web,
        &browser,
        &user,
        (Method::PUT, &path),
        None,
        form,
        "plan-archived",
    )
    .await
}

/// `POST /admin/plans/{id}/delete`.
pub async fn delete_plan(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/admin/plans");
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::DELETE,
        &format!("/v1/admin/plans/{id}"),
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(()) => kit::done("/admin/plans", "plan-deleted"),
        Err(error) => {
            let page = PlansPage {
                flash: Flash::error(plan_refusal(error)),
                ..PlansPage::default()
            };
            show_plans(&web, &browser, &user, page).await
        }
    }
}

/// A subscription as the admin table shows it, with the plans it may change to.
#[derive(Debug, Default, Serialize)]
struct SubscriptionsPage {
    flash: Flash,
    subscriptions: Vec<super::billing_answers::AdminSubscription>,
    plans: Vec<Plan>,
}

/// Renders `/admin/subscriptions` with `flash`.
async fn show_subscriptions(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    flash: Flash,
) -> WebResult<Response> {
    let subs: AdminSubscriptionList =
        kit::read(web, browser, user, "/v1/admin/subscriptions").await?;
    let plans = kit::read::<PlanList>(web, browser, user, "/v1/admin/plans")
        .await
        .map(|l| l.data)
        .unwrap_or_default();
    let page = SubscriptionsPage {
        flash,
        subscriptions: subs.data,
        plans: plans.into_iter().filter(|p| !p.archived).collect(),
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Subscriptions", "admin"),
        "admin_subscriptions.html.tera",
        &page,
    )
    .await
}

/// `GET /admin/subscriptions`.
pub async fn subscriptions(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<kit::Done>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/subscriptions");
    let done = query.map(|Query(q)| q).unwrap_or_default();
    show_subscriptions(&web, &browser, &user, Flash::from_done(&done)).await
}

/// The fields of a subscription's forms: a plan (and interval) to change to, or an
/// action (`cancel_now`, `cancel_at_period_end`, `resume`).
#[derive(Debug, Default, Deserialize)]
pub struct SubscriptionForm {
    #[serde(default)]
    plan_id: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    action: String,
}

/// `PUT /v1/admin/subscriptions/{id}`'s body.
#[derive(Debug, Default, Serialize)]
struct SubscriptionBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
}

/// The body of a subscription form (unknown actions are left out: the API refuses an
/// empty change).
fn subscription_body(form: &SubscriptionForm) -> SubscriptionBody {
    let action = match form.action.as_str() {
        "cancel_now" => Some("cancel_now"),
        "cancel_at_period_end" => Some("cancel_at_period_end"),
        "resume" => Some("resume"),
        _ => None,
    };
    let plan = kit::org_param(&form.plan_id);
    SubscriptionBody {
        plan_id: (action.is_none() && !plan.is_empty()).then_some(plan),
        interval: match form.interval.as_str() {
            "month" if action.is_none() => Some("month"),
            "year" if action.is_none() => Some("year"),
            _ => None,
        },
        action,
    }
}

/// `POST /admin/subscriptions/{id}`.
pub async fn change_subscription(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<SubscriptionForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/admin/subscriptions");
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::PUT,
        &format!("/v1/admin/subscriptions/{id}"),
        Some(&subscription_body(&form)),
    )
    .await;
    match shown(answer)? {
        Ok(()) => kit::done("/admin/subscriptions", "subscription-changed"),
        Err(error) => show_subscriptions(&web, &browser, &user, Flash::error(error)).await,
    }
}

#[derive(Debug, Default, Serialize)]
struct PlatformNodesPage {
    flash: Flash,
    nodes: Vec<AdminPlatformNode>,
}

/// Renders `/admin/platform-nodes` with `flash`.
async fn show_platform_nodes(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    flash: Flash,
) -> WebResult<Response> {
    let list: AdminPlatformNodeList =
        kit::read(web, browser, user, "/v1/admin/platform-nodes?all=true").await?;
    let page = PlatformNodesPage {
        flash,
        nodes: list.data,
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Platform nodes", "admin"),
        "admin_platform_nodes.html.tera",
        &page,
    )
    .await
}

/// `GET /admin/platform-nodes`.
pub async fn platform_nodes(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<kit::Done>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/platform-nodes");
    let done = query.map(|Query(q)| q).unwrap_or_default();
    show_platform_nodes(&web, &browser, &user, Flash::from_done(&done)).await
}

/// The platform form of a node.
#[derive(Debug, Default, Deserialize)]
pub struct PlatformForm {
    #[serde(default)]
    platform: String,
    #[serde(default)]
    public_name: String,
    #[serde(default)]
    location: String,
}

/// `PUT /v1/admin/nodes/{id}/platform`'s body.
#[derive(Debug, Serialize)]
struct PlatformBody {
    platform: bool,
    public_name: Option<String>,
    location: Option<String>,
}

/// `POST /admin/platform-nodes/{id}`: marks the node the platform's, or takes it back.
pub async fn set_platform(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<PlatformForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/admin/platform-nodes");
    // Empty is sent as empty: the API then shows the node's name and no location.
    let text = |s: &str| Some(s.trim().to_owned());
    let body = PlatformBody {
        platform: matches!(form.platform.as_str(), "on" | "true" | "1"),
        public_name: text(&form.public_name),
        location: text(&form.location),
    };
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::PUT,
        &format!("/v1/admin/nodes/{id}/platform"),
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(()) => kit::done("/admin/platform-nodes", "platform-node-saved"),
        Err(error) => show_platform_nodes(&web, &browser, &user, Flash::error(error)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed() -> PlanForm {
        PlanForm {
            name: " Pro ".into(),
            currency: "EUR".into(),
            price_month: "9.99".into(),
            price_year: "99".into(),
            limit_servers: "3".into(),
            limit_memory_mb: String::new(),
            pool_platform: "on".into(),
            ..PlanForm::default()
        }
    }

    #[test]
    fn the_form_becomes_minor_units_and_optional_limits() {
        let body = plan_body(&typed()).expect("valid");
        assert_eq!(body.name, "Pro");
        assert_eq!(body.currency, "eur");
        assert_eq!((body.price_month, body.price_year), (999, 9900));
        assert_eq!(body.limits.servers, Some(3));
        assert_eq!(body.limits.memory_mb, None, "empty is unlimited");
        assert_eq!(body.pools, ["platform"]);
        assert!(body.stripe_price_month.is_none());
        let json = serde_json::to_value(&body).expect("json");
        assert!(json.get("stripe_price_month").is_none());
        assert!(
            json.get("limits")
                .and_then(|l| l.get("members"))
                .is_some_and(serde_json::Value::is_null)
        );
    }

    #[test]
    fn bad_numbers_are_refused_beside_their_field() {
        let e = plan_body(&PlanForm {
            limit_disk_mb: "-5".into(),
            ..typed()
        })
        .expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("limits.disk_mb"));
        let e = plan_body(&PlanForm {
            price_year: "9.999".into(),
            ..typed()
        })
        .expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("price_year"));
        assert!(names_limit("limits.disk_mb", "disk_mb"));
        assert!(names_limit("max_disk_mb", "disk_mb"));
        assert!(!names_limit("limits.disk_mb", "memory_mb"));
    }

    #[test]
    fn an_edited_plan_fills_the_form_back_in() {
        let body = serde_json::to_value(plan_body(&typed()).expect("valid")).expect("json");
        let mut plan = serde_json::json!({"id": "p1", "stripe_product_id": null,
            "stripe_price_month": null, "stripe_price_year": null,
            "subscribers": 0, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z"});
        for (k, v) in body.as_object().expect("object") {
            plan[k] = v.clone();
        }
        let plan: Plan = serde_json::from_value(plan).expect("plan");
        let form = PlanForm::of(&plan);
        assert_eq!(
            (form.price_month.as_str(), form.price_year.as_str()),
            ("9.99", "99.00")
        );
        assert_eq!(
            (form.limit_servers.as_str(), form.limit_memory_mb.as_str()),
            ("3", "")
        );
        assert_eq!(
            (form.pool_own.as_str(), form.pool_platform.as_str()),
            ("", "on")
        );
    }

    #[test]
    fn subscription_forms_send_one_change() {
        let body = |plan: &str, interval: &str, action: &str| {
            serde_json::to_value(subscription_body(&SubscriptionForm {
                plan_id: plan.into(),
                interval: interval.into(),
                action: action.into(),
            }))
            .expect("json")
        };
        assert_eq!(
            body("plan-pro", "year", ""),
            serde_json::json!({"plan_id": "plan-pro", "interval": "year"})
        );
        assert_eq!(
            body("plan-pro", "year", "cancel_now"),
            serde_json::json!({"action": "cancel_now"})
        );
        assert_eq!(body("", "", "drop_tables"), serde_json::json!({}));
        assert_eq!(body("../x", "week", ""), serde_json::json!({}));
    }

    #[test]
    fn plans_with_subscribers_say_to_archive() {
        let e = plan_refusal(WebError::new(
            StatusCode::CONFLICT,
            "PLAN_HAS_SUBSCRIBERS",
            "plan has subscribers",
        ));
        assert!(e.message.contains("archive it instead"));
        let e = plan_refusal(WebError::new(StatusCode::CONFLICT, "OTHER", "x"));
        assert_eq!(e.message, "x");
    }
}
