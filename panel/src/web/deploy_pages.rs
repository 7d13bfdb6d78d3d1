//! The one-click deploy pages (web layer, issue 20 §5), over `/v1/templates` and
//! `/v1/deploy`:
//!
//! - `/deploy`: the templates grouped by category as cards, each with a Deploy button
//!   that opens a small form (name, optional subdomain, the template's variables with
//!   their defaults), and the organization's recent deployments. The form posts to
//!   `/deploy`, which starts the deployment and goes to its page; a refusal (a taken
//!   name, a plan without room) is shown on the gallery, next to the field it names.
//!   Platform admins also get the switch of the platform setting that lists the
//!   `testing` templates (`POST /deploy/testing`, `PUT /v1/settings`).
//! - `/deploy/{id}`: the deployment's steps with their status and messages, refreshing
//!   itself (a `<meta http-equiv="refresh">`: no script) while it runs, and a link to
//!   the server once it succeeded.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::WebResult;
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use super::view::redirect;
use crate::deploy::view::DeploymentView;
use crate::orgs::store::OrgWithRole;
use crate::pagination::Page;
use crate::settings::platform::PlatformSettings;
use crate::workloads::templates::TemplateView;

/// How often a running deployment's page refreshes itself, in seconds.
const REFRESH_SECS: u32 = 2;
/// How many recent deployments the gallery lists.
const RECENT: usize = 10;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/deploy", get(gallery).post(create))
        .route("/deploy/testing", post(testing))
        .route("/deploy/{id}", get(deployment))
}

/// `?organization_id=` of `/deploy`.
#[derive(Debug, Default, Deserialize)]
pub struct OrgQuery {
    #[serde(default)]
    organization_id: String,
}

/// The templates of one category.
#[derive(Debug, Serialize)]
struct Category {
    name: String,
    templates: Vec<TemplateView>,
}

#[derive(Debug, Default, Serialize)]
struct GalleryPage {
    categories: Vec<Category>,
    recent: Vec<DeploymentView>,
    /// The organization deployed to (empty: the personal one).
    organization_id: String,
    organizations: Vec<OrgWithRole>,
    flash: Flash,
    /// The form shown open again after a refusal: its template and values.
    form: BTreeMap<String, String>,
    error_field: String,
    /// The caller is a platform admin: the page offers the `testing` switch.
    is_admin: bool,
    /// The platform lists the `testing` templates.
    shows_testing: bool,
}

/// The templates grouped by category, categories in name order.
fn by_category(templates: Vec<TemplateView>) -> Vec<Category> {
    let mut groups: BTreeMap<String, Vec<TemplateView>> = BTreeMap::new();
    for t in templates {
        groups.entry(t.category.clone()).or_default().push(t);
    }
    groups
        .into_iter()
        .map(|(name, templates)| Category { name, templates })
        .collect()
}

async fn show_gallery(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    mut page: GalleryPage,
) -> WebResult<Response> {
    let templates: Vec<TemplateView> = kit::read(web, browser, user, "/v1/templates").await?;
    page.categories = by_category(templates);
    let recent: WebResult<Page<DeploymentView>> = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/deploy?{}",
            kit::query(&[
                ("organization_id", &page.organization_id),
                ("per_page", &RECENT.to_string())
            ])
        ),
    )
    .await;
    // A member who may not read the servers still sees the gallery.
    page.recent = recent.map(|p| p.data).unwrap_or_default();
    page.organizations = kit::organizations(web, browser, user)
        .await
        .unwrap_or_default();
    page.is_admin = user.current.user.is_admin;
    let settings: PlatformSettings = kit::read(web, browser, user, "/v1/settings").await?;
    page.shows_testing = settings.show_testing_templates;
    let status = page.flash.status();
    kit::page(
        web,
        browser,
        user,
        status,
        ("Deploy", "deploy"),
        "deploy_gallery.html.tera",
        &page,
    )
    .await
}

/// `GET /deploy`.
pub async fn gallery(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<OrgQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/deploy");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let page = GalleryPage {
        organization_id: kit::org_param(&q.organization_id),
        ..GalleryPage::default()
    };
    show_gallery(&web, &browser, &user, page).await
}

/// The body `POST /deploy` sends to `POST /v1/deploy`.
#[derive(Debug, Serialize)]
struct DeployBody {
    template: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_id: Option<String>,
    variables: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subdomain: Option<String>,
}

/// `Some(text)` unless blank.
fn given(text: Option<&String>) -> Option<String> {
    text.map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The form's fields as the API's body: `var_<ENV>` fields are the variables.
fn body_of(form: &BTreeMap<String, String>, org: &str) -> DeployBody {
    let variables = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("var_")
                .map(|env| (env.to_owned(), Value::String(v.clone())))
        })
        .collect();
    DeployBody {
        template: form.get("template").cloned().unwrap_or_default(),
        name: form
            .get("name")
            .map(|n| n.trim().to_owned())
            .unwrap_or_default(),
        organization_id: (!org.is_empty()).then(|| org.to_owned()),
        variables,
        subdomain: given(form.get("subdomain")),
    }
}

/// `POST /deploy`: starts the deployment and goes to its page.
pub async fn create(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<BTreeMap<String, String>>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/deploy");
    let org = kit::org_param(form.get("organization_id").map_or("", String::as_str));
    let body = body_of(&form, &org);
    let answer: WebResult<DeploymentView> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/deploy",
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(d) => redirect(&format!("/deploy/{}", d.id), []),
        Err(error) => {
            let page = GalleryPage {
                organization_id: org,
                error_field: error
                    .field
                    .clone()
                    .map(|f| f.replace('.', "_"))
                    .unwrap_or_default(),
                flash: Flash::error(error),
                form,
                ..GalleryPage::default()
            };
            show_gallery(&web, &browser, &user, page).await
        }
    }
}

/// The `testing` switch's form.
#[derive(Debug, Deserialize)]
pub struct TestingForm {
    /// `true` or `false`.
    show: String,
}

/// The body of `PUT /v1/settings` the switch sends.
#[derive(Debug, Serialize)]
struct TestingBody {
    show_testing_templates: bool,
}

/// `POST /deploy/testing`: lists the `testing` templates or hides them again (platform
/// admins; the API refuses anyone else).
pub async fn testing(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<TestingForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/deploy");
    let body = TestingBody {
        show_testing_templates: form.show == "true",
    };
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::PUT,
        "/v1/settings",
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(()) => redirect("/deploy", []),
        Err(error) => {
            let page = GalleryPage {
                flash: Flash::error(error),
                ..GalleryPage::default()
            };
            show_gallery(&web, &browser, &user, page).await
        }
    }
}

#[derive(Debug, Serialize)]
struct DeploymentPage {
    deployment: DeploymentView,
    /// The page refreshes itself while the deployment runs.
    refresh_secs: Option<u32>,
}

/// `GET /deploy/{id}`.
pub async fn deployment(
    State(web): State<WebState>,
    browser: Browser,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/deploy/{id}"));
    let d: DeploymentView = kit::read(&web, &browser, &user, &format!("/v1/deploy/{id}")).await?;
    let running = d.status == "pending" || d.status == "running";
    let title = format!("Deploying {}", d.name);
    let page = DeploymentPage {
        deployment: d,
        refresh_secs: running.then_some(REFRESH_SECS),
    };
    kit::page(
        &web,
        &browser,
        &user,
        StatusCode::OK,
        (&title, "deploy"),
        "deploy_deployment.html.tera",
        &page,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_come_from_var_fields() {
        let form: BTreeMap<String, String> = [
            ("template", "busybox-test"),
            ("name", " one "),
            ("subdomain", " "),
            ("var_GREETING", "hi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let body = body_of(&form, "");
        assert_eq!(body.name, "one");
        assert_eq!(body.subdomain, None);
        assert_eq!(body.organization_id, None);
        assert_eq!(
            body.variables.get("GREETING"),
            Some(&Value::String("hi".into()))
        );
    }
}
