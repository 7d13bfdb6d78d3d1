//! The maintenance page (`/alerts/maintenance`, web layer): an organization's open and
//! coming maintenance windows (planned downtime: no alert opens for the target, nothing
//! of it is notified), a form that opens one on a node, a server, or every node or
//! server, and an End button per window. Everything goes through the
//! `/v1/alerts/maintenance` API as the user.

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
use crate::alerts::maintenance::{WindowBody, WindowView};
use crate::instances::view::InstanceView;
use crate::nodes::store::Node;
use crate::orgs::store::OrgWithRole;
use crate::pagination::Page;

/// Windows, nodes and servers the page lists (the API's largest page).
const LISTED: usize = 100;

/// The lengths the form offers, in minutes.
const DURATIONS: &[(i64, &str)] = &[
    (30, "30 minutes"),
    (60, "1 hour"),
    (120, "2 hours"),
    (240, "4 hours"),
    (480, "8 hours"),
    (1440, "1 day"),
    (10080, "1 week"),
];

/// The routes of this page.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/alerts/maintenance", get(maintenance).post(open_window))
        .route("/alerts/maintenance/{id}/end", post(end_window))
}

/// `?organization_id=&done=` of the page.
#[derive(Debug, Default, Deserialize)]
pub struct MaintenanceQuery {
    #[serde(default)]
    organization_id: String,
    done: Option<String>,
}

/// One target the form offers: `node:<id>`, `instance:<id>`, or `node:` / `instance:`
/// for every node or server.
#[derive(Debug, Serialize)]
struct TargetOption {
    value: String,
    label: String,
}

/// One window as listed, with its target's name.
#[derive(Debug, Serialize)]
struct WindowRow {
    #[serde(flatten)]
    window: WindowView,
    target_name: String,
}

/// The form's fields (kept after a refusal).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WindowForm {
    #[serde(default)]
    organization_id: String,
    /// `node:<id>`, `instance:<id>`, `node:` or `instance:`.
    #[serde(default)]
    target: String,
    #[serde(default)]
    duration_minutes: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Default, Serialize)]
struct MaintenancePage {
    flash: Flash,
    windows: Vec<WindowRow>,
    organization_id: String,
    organizations: Vec<OrgWithRole>,
    targets: Vec<TargetOption>,
    durations: Vec<(i64, &'static str)>,
    form: WindowForm,
}

/// Renders the page for `org` with `flash` and the form's `form`.
async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    org: &str,
    (flash, form): (Flash, WindowForm),
) -> WebResult<Response> {
    let per_page = LISTED.to_string();
    let windows: Page<WindowView> = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/alerts/maintenance?{}",
            kit::query(&[("organization_id", org), ("per_page", &per_page)])
        ),
    )
    .await?;
    let nodes: Vec<Node> = kit::read(
        web,
        browser,
        user,
        &format!("/v1/nodes?{}", kit::query(&[("organization_id", org)])),
    )
    .await
    .unwrap_or_default();
    let instances: Vec<InstanceView> = kit::read::<Page<InstanceView>>(
        web,
        browser,
        user,
        &format!(
            "/v1/instances?{}",
            kit::query(&[("organization_id", org), ("per_page", &per_page)])
        ),
    )
    .await
    .map(|p| p.data)
    .unwrap_or_default();
    let organizations = kit::organizations(web, browser, user)
        .await
        .unwrap_or_default();
    let name_of = |kind: &str, id: Option<&str>| match (kind, id) {
        ("node", None) => "every node".to_owned(),
        (_, None) => "every server".to_owned(),
        ("node", Some(id)) => nodes
            .iter()
            .find(|n| n.id == id)
            .map_or_else(|| id.to_owned(), |n| format!("node {}", n.name)),
        (_, Some(id)) => instances
            .iter()
            .find(|i| i.id == id)
            .map_or_else(|| id.to_owned(), |i| format!("server {}", i.name)),
    };
    let windows = windows
        .data
        .into_iter()
        .map(|window| WindowRow {
            target_name: name_of(&window.target_type, window.target_id.as_deref()),
            window,
        })
        .collect();
    let mut targets = vec![
        TargetOption {
            value: "node:".into(),
            label: "Every node (and its servers)".into(),
        },
        TargetOption {
            value: "instance:".into(),
            label: "Every server".into(),
        },
    ];
    targets.extend(nodes.iter().map(|n| TargetOption {
        value: format!("node:{}", n.id),
        label: format!("Node {} (and its servers)", n.name),
    }));
    targets.extend(instances.iter().map(|i| TargetOption {
        value: format!("instance:{}", i.id),
        label: format!("Server {}", i.name),
    }));
    let page = MaintenancePage {
        flash,
        windows,
        organization_id: org.to_owned(),
        organizations,
        targets,
        durations: DURATIONS.to_vec(),
        form,
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Maintenance", "alerts"),
        "alert_maintenance.html.tera",
        &page,
    )
    .await
}

/// `GET /alerts/maintenance`.
pub async fn maintenance(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<MaintenanceQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/alerts/maintenance");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let org = kit::org_param(&q.organization_id);
    let flash = Flash::from_done(&kit::Done { done: q.done });
    let form = WindowForm {
        duration_minutes: "60".into(),
        ..WindowForm::default()
    };
    show(&web, &browser, &user, &org, (flash, form)).await
}

/// The API body of the form (a target or duration the form cannot send is left for the
/// API to refuse, naming the field).
fn body_of(form: &WindowForm, org: &str) -> WindowBody {
    let (target_type, target_id) =
        form.target
            .split_once(':')
            .map_or((form.target.clone(), None), |(kind, id)| {
                (
                    kind.to_owned(),
                    Some(id.to_owned()).filter(|i| !i.is_empty()),
                )
            });
    WindowBody {
        organization_id: Some(org.to_owned()).filter(|o| !o.is_empty()),
        target_type,
        target_id,
        starts_at: None,
        ends_at: None,
        // Not a number: 0, which the API refuses naming `duration_minutes`.
        duration_minutes: Some(form.duration_minutes.trim().parse().unwrap_or(0)),
        reason: Some(form.reason.clone()),
    }
}

/// `POST /alerts/maintenance`: opens a window now.
pub async fn open_window(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<WindowForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/alerts/maintenance");
    let org = kit::org_param(&form.organization_id);
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/alerts/maintenance",
        Some(&body_of(&form, &org)),
    )
    .await;
    match shown(answer)? {
        Ok(()) => kit::done_in("/alerts/maintenance", &org, "maintenance"),
        Err(error) if error.status == StatusCode::NOT_FOUND && form.target.is_empty() => Err(error),
        Err(error) => show(&web, &browser, &user, &org, (Flash::error(error), form)).await,
    }
}

/// The organization of the End form: the page to go back to.
#[derive(Debug, Default, Deserialize)]
pub struct EndForm {
    #[serde(default)]
    organization_id: String,
}

/// `POST /alerts/maintenance/{id}/end`: ends a window (deletes it).
pub async fn end_window(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<EndForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/alerts/maintenance");
    let org = kit::org_param(&form.organization_id);
    kit::act(
        &web,
        &browser,
        &user,
        Method::DELETE,
        &format!("/v1/alerts/maintenance/{id}"),
        None::<&()>,
    )
    .await?;
    kit::done_in("/alerts/maintenance", &org, "maintenance-ended")
}
