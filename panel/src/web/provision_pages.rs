//! The cloud node pages (web layer, issue 17): `/provision` lists an organization's
//! provision requests (status, price, node); `/provision/new` is the wizard (provider
//! and region, then the organization's credential for that provider, an instance type
//! from the planner's price table with its size and price, ARM types shown but not
//! choosable, the name and image) that creates a request and plans it at once;
//! `/provision/{id}` is one request: its plan to review (counts per action, each
//! change), Apply (behind a confirmation naming the price), Plan again, Destroy or
//! Discard, the server and node once they exist, a Resize form once provisioned, the
//! runs, and the latest run's log (`provision.js` follows it while it runs, from
//! `/v1/provision/{id}/logs`, and loads the page again when it ends). Everything goes
//! through the `/v1/provision`, `/v1/credentials` and `/v1/planner/pricing` API as the
//! user.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use crate::credentials::{CredentialList, CredentialView};
use crate::orgs::store::OrgWithRole;
use crate::planner::PricingList;
use crate::planner::catalog::{InstanceType, NO_ARM, Region};
use crate::provision::{
    CreateBody, LogView, ProviderInfo, ProviderList, RequestList, RequestView, ResizeBody,
};

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/provision", get(list))
        .route("/provision/new", get(new).post(create))
        .route("/provision/{id}", get(request))
        .route("/provision/{id}/plan", post(plan))
        .route("/provision/{id}/apply", post(apply))
        .route("/provision/{id}/delete", post(delete))
        .route("/provision/{id}/resize", post(resize))
}

/// The statuses while a Terraform run goes.
const RUNNING: &[&str] = &["planning", "applying", "destroying", "resizing"];

/// `?organization_id=&done=` of `/provision`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    organization_id: String,
    done: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct ListPage {
    flash: Flash,
    requests: Vec<RequestView>,
    /// The organization shown (empty: the personal one).
    organization_id: String,
    organizations: Vec<OrgWithRole>,
}

/// `GET /provision`.
pub async fn list(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/provision");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let org = kit::org_param(&q.organization_id);
    let requests: RequestList = kit::read(
        &web,
        &browser,
        &user,
        &format!("/v1/provision?{}", kit::query(&[("organization_id", &org)])),
    )
    .await?;
    let page = ListPage {
        flash: Flash::from_done(&kit::Done { done: q.done }),
        requests: requests.data,
        organizations: kit::organizations(&web, &browser, &user)
            .await
            .unwrap_or_default(),
        organization_id: org,
    };
    kit::page(
        &web,
        &browser,
        &user,
        StatusCode::OK,
        ("Cloud nodes", "nodes"),
        "provision.html.tera",
        &page,
    )
    .await
}

/// The wizard's fields, from the address (a link from the planner) or a refused form.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct NewForm {
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    credential_id: String,
    #[serde(default)]
    instance_type: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: String,
}

/// An instance type as the wizard and the Resize form offer it.
#[derive(Debug, Serialize)]
struct TypeRow {
    name: String,
    vcpus: u32,
    /// `4 GB`, `0.5 GB`.
    memory: String,
    disk_gb: Option<i64>,
    architecture: String,
    hourly: String,
    monthly: String,
    /// An agent build exists for its architecture.
    available: bool,
    /// Why not, when not.
    unavailable: Option<&'static str>,
}

/// Megabytes as gigabytes to read: whole when whole, else one decimal.
fn gigabytes(mb: i64) -> String {
    if mb % 1024 == 0 {
        format!("{} GB", mb / 1024)
    } else {
        #[expect(clippy::cast_precision_loss, reason = "a size to read")]
        let gb = mb as f64 / 1024.0;
        format!("{gb:.1} GB")
    }
}

/// The types of `types` sold in `region`, cheapest first.
fn type_rows(types: &[InstanceType], region: &str) -> Vec<TypeRow> {
    let mut rows: Vec<(f64, TypeRow)> = types
        .iter()
        .filter_map(|t| {
            let price = t.prices.get(region)?;
            let available = t.available();
            Some((
                t.monthly_in(region).unwrap_or(f64::MAX),
                TypeRow {
                    name: t.name.clone(),
                    vcpus: t.vcpus,
                    memory: gigabytes(t.memory_mb),
                    disk_gb: t.disk_gb,
                    architecture: t.architecture.clone(),
                    hourly: price.hourly.clone(),
                    monthly: price.monthly.clone(),
                    available,
                    unavailable: (!available).then_some(NO_ARM),
                },
            ))
        })
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    rows.into_iter().map(|(_, row)| row).collect()
}

#[derive(Debug, Default, Serialize)]
struct NewPage {
    flash: Flash,
    /// The field the API's refusal named (`name`, `instance_type`...).
    error_field: String,
    organizations: Vec<OrgWithRole>,
    providers: Vec<ProviderInfo>,
    /// The chosen provider's entry.
    chosen: Option<ProviderInfo>,
    regions: Vec<Region>,
    currency: String,
    types: Vec<TypeRow>,
    /// The organization's credentials for the chosen provider.
    credentials: Vec<CredentialView>,
    /// Why the price table could not be read.
    pricing_error: Option<String>,
    /// What is chosen or typed (the region and provider defaulted).
    form: NewForm,
}

/// Renders the wizard for `form` (its organization, provider and region chosen or
/// defaulted) with `page`'s flash.
async fn show_new(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    mut form: NewForm,
    mut page: NewPage,
) -> WebResult<Response> {
    form.organization_id = kit::org_param(&form.organization_id);
    let org = form.organization_id.clone();
    let providers: ProviderList = kit::read(web, browser, user, "/v1/provision/providers").await?;
    if !providers.data.iter().any(|p| p.id == form.provider) {
        form.provider = providers
            .data
            .first()
            .map(|p| p.id.clone())
            .unwrap_or_default();
    }
    let provider = form.provider.clone();
    page.chosen = providers
        .data
        .iter()
        .find(|p| p.id == provider)
        .map(|p| ProviderInfo {
            id: p.id.clone(),
            name: p.name.clone(),
            default_image: p.default_image.clone(),
            available: p.available,
            note: p.note.clone(),
        });
    page.providers = providers.data;
    let credentials: CredentialList = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/credentials?{}",
            kit::query(&[("organization_id", &org), ("provider", &provider)])
        ),
    )
    .await?;
    page.credentials = credentials.data;
    let pricing: WebResult<PricingList> = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/planner/pricing?{}",
            kit::query(&[("organization_id", &org), ("provider", &provider)])
        ),
    )
    .await;
    match shown(pricing)? {
        Ok(list) => {
            if let Some(table) = list.data.into_iter().find(|t| t.provider == provider) {
                if !table.regions.iter().any(|r| r.id == form.region) {
                    form.region = table
                        .regions
                        .first()
                        .map(|r| r.id.clone())
                        .unwrap_or_default();
                }
                page.types = type_rows(&table.types, &form.region);
                page.regions = table.regions;
                page.currency = table.currency;
            }
        }
        Err(e) => page.pricing_error = Some(e.message),
    }
    if form.image.is_empty()
        && let Some(p) = &page.chosen
    {
        form.image.clone_from(&p.default_image);
    }
    page.form = form;
    page.organizations = kit::organizations(web, browser, user)
        .await
        .unwrap_or_default();
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("New cloud node", "nodes"),
        "provision_new.html.tera",
        &page,
    )
    .await
}

/// `GET /provision/new?organization_id=&provider=&region=&instance_type=&name=`.
pub async fn new(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<NewForm>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/provision/new");
    let form = query.map(|Query(q)| q).unwrap_or_default();
    show_new(&web, &browser, &user, form, NewPage::default()).await
}

/// `Some(text)` unless blank.
fn given(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// `POST /provision/new`: creates the request, plans it, and shows it.
pub async fn create(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<NewForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/provision/new");
    let org = kit::org_param(&form.organization_id);
    let body = CreateBody {
        organization_id: given(&org),
        name: form.name.trim().to_owned(),
        provider: form.provider.clone(),
        region: form.region.clone(),
        instance_type: form.instance_type.clone(),
        image: given(&form.image),
        credential_id: given(&form.credential_id),
    };
    let answer: WebResult<RequestView> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/provision",
        Some(&body),
    )
    .await;
    let created = match shown(answer)? {
        Ok(created) => created,
        Err(error) => {
            let page = NewPage {
                error_field: error.field.clone().unwrap_or_default(),
                flash: Flash::error(error),
                ..NewPage::default()
            };
            return show_new(&web, &browser, &user, form, page).await;
        }
    };
    let planned = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/provision/{}/plan", created.id),
        None::<&()>,
    )
    .await;
    after(
        &web,
        &browser,
        &user,
        &created.id,
        planned,
        "provision-planning",
    )
    .await
}

/// A change of the plan awaiting approval.
#[derive(Debug, Deserialize, Serialize)]
struct Change {
    address: Option<String>,
    /// The resource type (`hcloud_server`).
    #[serde(rename(deserialize = "type"))]
    kind: Option<String>,
    action: String,
}

/// The plan awaiting approval, as `RequestView::plan` holds it.
#[derive(Debug, Default, Deserialize)]
struct PlanSummary {
    #[serde(default)]
    terraform_version: Option<String>,
    #[serde(default)]
    counts: BTreeMap<String, i64>,
    #[serde(default)]
    changes: Vec<Change>,
}

/// One count of the plan review.
#[derive(Debug, Serialize)]
struct Count {
    action: String,
    count: i64,
}

/// The plan as reviewed: counts in the order Terraform prints them, then each change.
#[derive(Debug, Serialize)]
struct PlanShown {
    terraform_version: Option<String>,
    counts: Vec<Count>,
    changes: Vec<Change>,
}

impl From<PlanSummary> for PlanShown {
    fn from(mut p: PlanSummary) -> Self {
        let mut counts = Vec::new();
        for action in ["create", "update", "replace", "delete"] {
            if let Some(count) = p.counts.remove(action) {
                counts.push(Count {
                    action: action.to_owned(),
                    count,
                });
            }
        }
        counts.extend(
            p.counts
                .into_iter()
                .map(|(action, count)| Count { action, count }),
        );
        Self {
            terraform_version: p.terraform_version,
            counts,
            changes: p.changes,
        }
    }
}

/// A line of Terraform's `-json` output: what is shown of it.
#[derive(Debug, Deserialize)]
struct MachineLine {
    #[serde(rename = "@message")]
    message: String,
    #[serde(rename = "@level", default)]
    level: String,
}

/// A log line as shown.
#[derive(Debug, Serialize)]
struct LogLine {
    seq: i64,
    /// `info`, `warn`, `error`... (empty for a line that is not Terraform's JSON).
    level: String,
    text: String,
}

/// `@message` and `@level` of a Terraform JSON line; the line itself otherwise.
fn log_line(seq: i64, line: &str) -> LogLine {
    match serde_json::from_str::<MachineLine>(line) {
        Ok(m) => LogLine {
            seq,
            level: m.level,
            text: m.message,
        },
        Err(_) => LogLine {
            seq,
            level: String::new(),
            text: line.to_owned(),
        },
    }
}

/// The latest run's log as the page starts it (the script follows from `next`).
#[derive(Debug, Default, Serialize)]
struct LogShown {
    /// The run's kind and status, when there is one.
    kind: Option<String>,
    status: Option<String>,
    lines: Vec<LogLine>,
    next: i64,
    done: bool,
}

#[derive(Debug, Default, Serialize)]
struct RequestPage {
    flash: Flash,
    error_field: String,
    request: Option<RequestView>,
    plan: Option<PlanShown>,
    /// A run goes: the page follows its log.
    running: bool,
    currency: String,
    log: LogShown,
    /// The types the node can be resized to (its own left out).
    resize_types: Vec<TypeRow>,
}

/// Renders request `id` with `page`'s flash; a 404 for another organization's.
async fn show_request(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    id: &str,
    mut page: RequestPage,
) -> WebResult<Response> {
    let r: RequestView = kit::read(web, browser, user, &format!("/v1/provision/{id}")).await?;
    let log: LogView = kit::read(
        web,
        browser,
        user,
        &format!("/v1/provision/{id}/logs?after=0"),
    )
    .await?;
    page.log = LogShown {
        kind: log.run.as_ref().map(|run| run.kind.clone()),
        status: log.run.as_ref().map(|run| run.status.clone()),
        lines: log.lines.iter().map(|l| log_line(l.seq, &l.line)).collect(),
        next: log.next,
        done: log.done,
    };
    page.running = RUNNING.contains(&r.status.as_str()) || !log.done;
    page.plan = r
        .plan
        .clone()
        .and_then(|v| serde_json::from_value::<PlanSummary>(v).ok())
        .map(PlanShown::from);
    let pricing: WebResult<PricingList> = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/planner/pricing?{}",
            kit::query(&[
                ("organization_id", &r.organization_id),
                ("provider", &r.provider)
            ])
        ),
    )
    .await;
    // Without the price table (no `nodes.read`), the page shows the request's own
    // prices, with no currency, and no Resize form.
    if let Ok(list) = pricing
        && let Some(table) = list.data.into_iter().find(|t| t.provider == r.provider)
    {
        page.currency = table.currency;
        if r.status == "provisioned" {
            page.resize_types = type_rows(&table.types, &r.region)
                .into_iter()
                .filter(|t| t.name != r.instance_type)
                .collect();
        }
    }
    let title = format!("Cloud node {}", r.name);
    page.request = Some(r);
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        (&title, "nodes"),
        "provision_request.html.tera",
        &page,
    )
    .await
}

/// `?done=` of `/provision/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct RequestQuery {
    done: Option<String>,
}

/// `GET /provision/{id}`.
pub async fn request(
    State(web): State<WebState>,
    browser: Browser,
    Path(id): Path<String>,
    query: Result<Query<RequestQuery>, QueryRejection>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, &format!("/provision/{id}"));
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let page = RequestPage {
        flash: Flash::from_done(&kit::Done { done: q.done }),
        ..RequestPage::default()
    };
    show_request(&web, &browser, &user, id, page).await
}

/// Back to request `id`: with the notice `done`, or the API's refusal shown on it.
async fn after(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    id: &str,
    answer: WebResult<()>,
    done: &str,
) -> WebResult<Response> {
    match shown(answer)? {
        Ok(()) => kit::done(&format!("/provision/{id}"), done),
        Err(error) => {
            if error.status == StatusCode::NOT_FOUND {
                return Err(error);
            }
            let page = RequestPage {
                error_field: error.field.clone().unwrap_or_default(),
                flash: Flash::error(error),
                ..RequestPage::default()
            };
            show_request(web, browser, user, id, page).await
        }
    }
}

/// The fields of the per-request forms (the CSRF token only).
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {}

/// `POST /provision/{id}/{action}` of the API, then back to the request.
async fn request_action(
    web: &WebState,
    browser: &Browser,
    id: &str,
    action: &str,
    done: &str,
) -> WebResult<Response> {
    let id = plain(id)?;
    let user = page_user!(web, browser, &format!("/provision/{id}"));
    let answer = kit::act(
        web,
        browser,
        &user,
        Method::POST,
        &format!("/v1/provision/{id}/{action}"),
        None::<&()>,
    )
    .await;
    after(web, browser, &user, id, answer, done).await
}

/// `POST /provision/{id}/plan`: plans again.
pub async fn plan(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<ActionForm>,
) -> WebResult<Response> {
    request_action(&web, &browser, &id, "plan", "provision-planning").await
}

/// `POST /provision/{id}/apply`: applies the plan awaiting approval.
pub async fn apply(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<ActionForm>,
) -> WebResult<Response> {
    request_action(&web, &browser, &id, "apply", "provision-applying").await
}

/// `POST /provision/{id}/delete`: discards a request that made nothing (back to the
/// list), or destroys what it made (the request shows the run).
pub async fn delete(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<ActionForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, &format!("/provision/{id}"));
    let answer: WebResult<Option<RequestView>> = kit::write(
        &web,
        &browser,
        &user,
        Method::DELETE,
        &format!("/v1/provision/{id}"),
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(Some(_)) => kit::done(&format!("/provision/{id}"), "provision-destroying"),
        Ok(None) => kit::done("/provision", "provision-discarded"),
        Err(error) => after(&web, &browser, &user, id, Err(error), "").await,
    }
}

/// The Resize form: the new type.
#[derive(Debug, Default, Deserialize)]
pub struct ResizeForm {
    #[serde(default)]
    instance_type: String,
}

/// `POST /provision/{id}/resize`: resizes the request's node.
pub async fn resize(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<ResizeForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, &format!("/provision/{id}"));
    let r: RequestView = kit::read(&web, &browser, &user, &format!("/v1/provision/{id}")).await?;
    let Some(node) = r.node_id.as_deref() else {
        let error = WebError::new(
            StatusCode::CONFLICT,
            "NOT_PROVISIONED",
            "the request has no node yet: resize it once it is provisioned",
        );
        return after(&web, &browser, &user, id, Err(error), "").await;
    };
    let body = ResizeBody {
        instance_type: form.instance_type.trim().to_owned(),
    };
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/nodes/{node}/resize"),
        Some(&body),
    )
    .await;
    after(&web, &browser, &user, id, answer, "provision-resizing").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraform_json_lines_show_their_message_and_level() {
        let l = log_line(
            3,
            r#"{"@level":"info","@message":"Plan: 2 to add, 0 to change, 0 to destroy.","type":"change_summary"}"#,
        );
        assert_eq!(
            (l.seq, l.level.as_str(), l.text.as_str()),
            (3, "info", "Plan: 2 to add, 0 to change, 0 to destroy.")
        );
        let raw = log_line(4, "panel: planning with terraform 1.9.8");
        assert_eq!(raw.level, "");
        assert_eq!(raw.text, "panel: planning with terraform 1.9.8");
        assert_eq!(log_line(5, r#"{"other": 1}"#).text, r#"{"other": 1}"#);
    }

    #[test]
    fn plan_counts_come_in_terraforms_order() {
        let p: PlanSummary = serde_json::from_value(serde_json::json!({
            "terraform_version": "1.9.8",
            "counts": {"delete": 1, "create": 2, "other": 1, "update": 3},
            "changes": [{"address": "hcloud_server.node", "type": "hcloud_server",
                "action": "create"}]}))
        .expect("summary");
        let shown = PlanShown::from(p);
        let order: Vec<(&str, i64)> = shown
            .counts
            .iter()
            .map(|c| (c.action.as_str(), c.count))
            .collect();
        assert_eq!(
            order,
            [("create", 2), ("update", 3), ("delete", 1), ("other", 1)]
        );
        assert_eq!(shown.changes[0].kind.as_deref(), Some("hcloud_server"));
    }

    #[test]
    fn types_are_sold_in_the_region_cheapest_first_arm_not_choosable() {
        let types: Vec<InstanceType> = serde_json::from_value(serde_json::json!([
            {"name": "cx33", "vcpus": 4, "memory_mb": 8192, "disk_gb": 80,
             "architecture": "x86", "prices": {"fsn1": {"hourly": "0.0088", "monthly": "5.49"}}},
            {"name": "cx23", "vcpus": 2, "memory_mb": 4096, "disk_gb": 40,
             "architecture": "x86", "prices": {"fsn1": {"hourly": "0.0056", "monthly": "3.49"}}},
            {"name": "cax11", "vcpus": 2, "memory_mb": 4096, "disk_gb": 40,
             "architecture": "arm64", "prices": {"fsn1": {"hourly": "0.0064", "monthly": "3.99"}}},
            {"name": "ccx13", "vcpus": 2, "memory_mb": 8192, "disk_gb": 80,
             "architecture": "x86", "prices": {"ash": {"hourly": "0.02", "monthly": "12.49"}}}
        ]))
        .expect("types");
        let rows = type_rows(&types, "fsn1");
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["cx23", "cax11", "cx33"]);
        assert_eq!(rows[0].memory, "4 GB");
        assert!(!rows[1].available);
        assert_eq!(rows[1].unavailable, Some(NO_ARM));
        assert_eq!(gigabytes(512), "0.5 GB");
    }
}
