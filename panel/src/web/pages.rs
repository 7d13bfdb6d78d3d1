//! The signed-in pages: dashboard, nodes, instances and the instance page with its live
//! console (`static/console.js`). Their data comes from the `/v1` API, read with the
//! session's access token.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::WebState;
use super::api::is_plain_id;
use super::error::{WebError, WebResult};
use super::session::{Browser, WebUser};
use super::view::{csrf_of, html, require_user, user_layout};
use crate::audit::store::Entry;
use crate::instances::view::InstanceView;
use crate::nodes::store::Node;
use crate::pagination::Page;
use crate::workloads::view::WorkloadSummary;

/// Instances a list page reads (the API's largest page).
const LIST_LIMIT: &str = "per_page=100";
/// Audit entries the dashboard shows.
const AUDIT_ENTRIES: &str = "per_page=8";

/// Reads `path` from the API as `user`, as the API's response type `T`.
async fn read_as<T: serde::de::DeserializeOwned>(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    path: &str,
) -> WebResult<T> {
    web.fetch(browser, Method::GET, path, Some(&user.access), None::<&()>)
        .await
}

/// Node names by id, for lists that show where instances run.
fn node_names(nodes: Vec<Node>) -> BTreeMap<String, String> {
    nodes.into_iter().map(|n| (n.id, n.name)).collect()
}

macro_rules! signed_in {
    ($web:expr, $browser:expr, $here:expr) => {
        match require_user(&$web, &$browser, $here).await? {
            Ok(user) => user,
            Err(redirect) => return Ok(redirect),
        }
    };
}

#[derive(Serialize)]
struct StateCount {
    state: String,
    count: usize,
}

#[derive(Serialize)]
struct DashboardPage {
    nodes_online: usize,
    nodes_offline: usize,
    nodes_total: usize,
    nodes_cordoned: usize,
    /// Offline nodes, so the dashboard links to them.
    offline: Vec<Node>,
    instances_total: u64,
    workloads_total: u64,
    states: Vec<StateCount>,
    show_audit: bool,
    audit: Vec<Entry>,
}

/// `GET /`: nodes online and offline, instances by state, recent audit entries (admins).
pub async fn dashboard(State(web): State<WebState>, browser: Browser) -> WebResult<Response> {
    let user = signed_in!(web, browser, "/");
    let nodes: Vec<Node> = read_as(&web, &browser, &user, "/v1/nodes").await?;
    let instances: Page<InstanceView> = read_as(
        &web,
        &browser,
        &user,
        &format!("/v1/instances?{LIST_LIMIT}"),
    )
    .await?;
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for i in &instances.data {
        *by_state.entry(i.state.as_str().to_owned()).or_default() += 1;
    }
    let show_audit = user.current.user.is_admin;
    let audit = if show_audit {
        let page: Page<Entry> = read_as(
            &web,
            &browser,
            &user,
            &format!("/v1/admin/audit-logs?{AUDIT_ENTRIES}"),
        )
        .await?;
        page.data
    } else {
        Vec::new()
    };
    let total = nodes.len();
    let cordoned = nodes.iter().filter(|n| n.cordoned).count();
    let (online, offline): (Vec<Node>, Vec<Node>) =
        nodes.into_iter().partition(|n| n.status == "online");
    // Members who may not read workloads still get their dashboard.
    let workloads: Option<Page<WorkloadSummary<'static>>> =
        read_as(&web, &browser, &user, "/v1/workloads?per_page=1")
            .await
            .ok();
    let page = DashboardPage {
        nodes_online: online.len(),
        nodes_offline: offline.len(),
        nodes_total: total,
        nodes_cordoned: cordoned,
        offline,
        workloads_total: workloads.map_or(0, |w| u64::try_from(w.pagination.total).unwrap_or(0)),
        instances_total: u64::try_from(instances.pagination.total).unwrap_or(0),
        states: by_state
            .into_iter()
            .map(|(state, count)| StateCount { state, count })
            .collect(),
        show_audit,
        audit,
    };
    let (token, cookies) = csrf_of(&web, &browser)?;
    html(
        StatusCode::OK,
        "dashboard.html.tera",
        &user_layout(&web, &browser, ("Dashboard", "dashboard"), &token, &user).await,
        &page,
        cookies,
    )
}

/// `GET /nodes`: status and usage bars, and "Add node" (see [`super::node_pages`]).
pub async fn nodes(
    State(web): State<WebState>,
    browser: Browser,
    done: Result<axum::extract::Query<super::kit::Done>, axum::extract::rejection::QueryRejection>,
) -> WebResult<Response> {
    let done = done.map(|q| q.0).unwrap_or_default();
    super::node_pages::list(&web, &browser, &done).await
}

#[derive(Serialize)]
struct InstancesPage {
    instances: Vec<InstanceView>,
    nodes: BTreeMap<String, String>,
}

/// `GET /instances`.
pub async fn instances(State(web): State<WebState>, browser: Browser) -> WebResult<Response> {
    let user = signed_in!(web, browser, "/instances");
    let page: Page<InstanceView> = read_as(
        &web,
        &browser,
        &user,
        &format!("/v1/instances?{LIST_LIMIT}"),
    )
    .await?;
    let nodes: Vec<Node> = read_as(&web, &browser, &user, "/v1/nodes").await?;
    let mut names = node_names(nodes);
    // Platform nodes the servers run on, by their public names.
    if let Ok(shared) = read_as::<crate::nodes::platform::PlatformNodeList>(
        &web,
        &browser,
        &user,
        "/v1/platform-nodes",
    )
    .await
    {
        names.extend(shared.data.into_iter().map(|n| (n.id, n.name)));
    }
    let page = InstancesPage {
        instances: page.data,
        nodes: names,
    };
    let (token, cookies) = csrf_of(&web, &browser)?;
    html(
        StatusCode::OK,
        "instances.html.tera",
        &user_layout(&web, &browser, ("Instances", "instances"), &token, &user).await,
        &page,
        cookies,
    )
}

/// The public name of the node of another organization (a platform node) `instance`
/// runs on, as its organization sees it.
async fn shared_node_name(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    instance: &InstanceView,
) -> Option<String> {
    if !is_plain_id(&instance.organization_id) {
        return None;
    }
    let list: crate::nodes::platform::PlatformNodeList = read_as(
        web,
        browser,
        user,
        &format!(
            "/v1/platform-nodes?organization_id={}",
            instance.organization_id
        ),
    )
    .await
    .ok()?;
    list.data
        .into_iter()
        .find(|n| n.id == instance.node_id)
        .map(|n| n.name)
}

#[derive(Serialize)]
struct InstancePage {
    instance: InstanceView,
    node_name: String,
    primary: Option<String>,
    #[serde(flatten)]
    extras: super::instance_pages::Extras,
}

/// `GET /instances/{id}`: details, power buttons and live console, and tabs for files
/// (with tus uploads), backups, schedules and settings (see [`super::instance_pages`]).
pub async fn instance(
    State(web): State<WebState>,
    browser: Browser,
    Path(id): Path<String>,
) -> WebResult<Response> {
    if !is_plain_id(&id) {
        return Err(WebError::not_found());
    }
    let user = signed_in!(web, browser, &format!("/instances/{id}"));
    let instance: InstanceView =
        read_as(&web, &browser, &user, &format!("/v1/instances/{id}")).await?;
    let node_id = instance.node_id.clone();
    let node: Option<Node> = if is_plain_id(&node_id) {
        read_as(&web, &browser, &user, &format!("/v1/nodes/{node_id}"))
            .await
            .ok()
    } else {
        None
    };
    let node_name = match &node {
        Some(n) => n.name.clone(),
        // A node of another organization (a platform node): its public name.
        None => shared_node_name(&web, &browser, &user, &instance)
            .await
            .unwrap_or(node_id),
    };
    let primary = instance
        .allocations
        .iter()
        .find(|a| a.primary)
        .map(|a| format!("{}:{}", a.ip, a.port));
    let extras =
        super::instance_pages::extras(&web, &browser, &user, &instance, node.as_ref()).await;
    let title = instance.name.clone();
    let page = InstancePage {
        instance,
        node_name,
        primary,
        extras,
    };
    let (token, cookies) = csrf_of(&web, &browser)?;
    html(
        StatusCode::OK,
        "instance.html.tera",
        &user_layout(&web, &browser, (&title, "instances"), &token, &user).await,
        &page,
        cookies,
    )
}
