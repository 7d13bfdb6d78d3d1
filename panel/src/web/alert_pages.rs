//! The alerts page (`/alerts`, web layer): an organization's alerts (newest first,
//! filtered by state) with their rule's name, who acknowledged them, and an Ack and a
//! "Silence 1 h" form per alert; opening the page marks the alerts seen (the unread
//! count drops to 0). Everything goes through the `/v1/alerts` API as the user.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::WebResult;
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use super::view::redirect;
use crate::alerts::handlers::{AlertView, SilenceBody};
use crate::alerts::rules::RuleView;
use crate::orgs::store::OrgWithRole;
use crate::pagination::Page;

/// Alerts and rules the page lists (the API's largest page).
const LISTED: usize = 100;

/// The states the filter offers.
const STATES: &[&str] = &["pending", "firing", "resolved"];

/// The routes of this page.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/alerts", get(alerts))
        .route("/alerts/{id}/ack", post(ack))
        .route("/alerts/{id}/silence", post(silence))
}

/// `?state=&organization_id=&done=` of `/alerts`.
#[derive(Debug, Default, Deserialize)]
pub struct AlertsQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    organization_id: String,
    done: Option<String>,
}

/// One alert as the page lists it.
#[derive(Debug, Serialize)]
struct AlertRow {
    #[serde(flatten)]
    alert: AlertView,
    /// Its rule's name (empty when the rule is gone or unreadable).
    rule_name: String,
}

/// One state filter link.
#[derive(Debug, Serialize)]
struct StateLink {
    /// Empty for "all".
    state: &'static str,
    href: String,
    current: bool,
}

#[derive(Debug, Default, Serialize)]
struct AlertsPage {
    flash: Flash,
    alerts: Vec<AlertRow>,
    total: i64,
    /// The organization shown (empty: the personal one).
    organization_id: String,
    organizations: Vec<OrgWithRole>,
    states: Vec<StateLink>,
    /// The state filter (empty: all).
    state: String,
}

/// The filter from the address: a known state, a plain organization id.
fn filter(q: &AlertsQuery) -> (String, String) {
    let state = if STATES.contains(&q.state.as_str()) {
        q.state.clone()
    } else {
        String::new()
    };
    let org = kit::org_param(&q.organization_id);
    (state, org)
}

/// Renders the page for `org` and `state` with `flash`, and marks the alerts seen.
async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    (org, state): (&str, &str),
    flash: Flash,
) -> WebResult<Response> {
    let list: Page<AlertView> = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/alerts?{}",
            kit::query(&[
                ("organization_id", org),
                ("state", state),
                ("per_page", &LISTED.to_string()),
            ])
        ),
    )
    .await?;
    let rules: Vec<RuleView> = kit::read::<Page<RuleView>>(
        web,
        browser,
        user,
        &format!(
            "/v1/alerts/rules?{}",
            kit::query(&[("organization_id", org), ("per_page", &LISTED.to_string())])
        ),
    )
    .await
    .map(|p| p.data)
    .unwrap_or_default();
    let organizations = kit::organizations(web, browser, user)
        .await
        .unwrap_or_default();
    // Seen now (before the layout reads the bell's count).
    if let Err(e) = kit::act(
        web,
        browser,
        user,
        Method::POST,
        "/v1/alerts/read",
        None::<&()>,
    )
    .await
    {
        tracing::warn!(error.code = %e.code, "marking alerts seen failed");
    }
    let alerts = list
        .data
        .into_iter()
        .map(|alert| AlertRow {
            rule_name: rules
                .iter()
                .find(|r| r.id == alert.rule_id)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            alert,
        })
        .collect();
    let states = std::iter::once("")
        .chain(STATES.iter().copied())
        .map(|s| StateLink {
            state: s,
            href: format!(
                "/alerts?{}",
                kit::query(&[("organization_id", org), ("state", s)])
            ),
            current: s == state,
        })
        .collect();
    let page = AlertsPage {
        flash,
        alerts,
        total: list.pagination.total,
        organization_id: org.to_owned(),
        organizations,
        states,
        state: state.to_owned(),
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Alerts", "alerts"),
        "alerts.html.tera",
        &page,
    )
    .await
}

/// `GET /alerts`.
pub async fn alerts(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/alerts");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let (state, org) = filter(&q);
    let flash = Flash::from_done(&kit::Done { done: q.done });
    show(&web, &browser, &user, (&org, &state), flash).await
}

/// The fields of the Ack and Silence forms: the page to go back to.
#[derive(Debug, Default, Deserialize)]
pub struct AlertForm {
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    state: String,
}

/// `POST /alerts/{id}/ack`.
pub async fn ack(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<AlertForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/alerts");
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/alerts/{id}/ack"),
        None::<&()>,
    )
    .await;
    after(&web, &browser, &user, &form, answer, "acked").await
}

/// `POST /alerts/{id}/silence`: no notifications for an hour.
pub async fn silence(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<AlertForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/alerts");
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/alerts/{id}/silence"),
        Some(&SilenceBody { minutes: 60 }),
    )
    .await;
    after(&web, &browser, &user, &form, answer, "silenced").await
}

/// Back to the page the form came from: with the notice `done`, or the API's refusal.
async fn after(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    form: &AlertForm,
    answer: WebResult<()>,
    done: &str,
) -> WebResult<Response> {
    let (state, org) = filter(&AlertsQuery {
        state: form.state.clone(),
        organization_id: form.organization_id.clone(),
        done: None,
    });
    match shown(answer)? {
        Ok(()) => redirect(
            &format!(
                "/alerts?{}",
                kit::query(&[("organization_id", &org), ("state", &state), ("done", done)])
            ),
            [],
        ),
        Err(error) if error.status == StatusCode::NOT_FOUND => Err(error),
        Err(error) => show(web, browser, user, (&org, &state), Flash::error(error)).await,
    }
}
