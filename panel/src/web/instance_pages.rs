//! Instance pages beyond the list: the create form (`/instances/new`) and what the
//! instance page (`/instances/{id}`) shows besides its console: files (with tus
//! uploads), backups, schedules and settings.
//!
//! Both pages read their data from the `/v1` API as the signed-in user; what the user
//! then does (create, upload, edit, back up, restore, change settings) is sent by the
//! page's ES modules straight to `/v1`, so the API's own validation answers, and its
//! errors (with their `field`) are shown next to the control they concern.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::WebState;
use super::api::is_plain_id;
use super::error::WebResult;
use super::session::{Browser, WebUser};
use super::view::{csrf_of, html, require_user, user_layout};
use crate::instances::view::InstanceView;
use crate::nodes::store::Node;
use crate::orgs::members::MemberPermissions;
use crate::pagination::Page;
use crate::schedules::ScheduleList;
use crate::workloads::templates::{TemplateVariable, TemplateView};
use crate::workloads::view::{ImageView, VariableView, WorkloadSummary, WorkloadView};

/// Workloads and nodes the create form offers (the API's largest page).
const LIST_LIMIT: &str = "per_page=100";
/// The SFTP port of a node (the agent's default; nodes do not report another).
pub const SFTP_PORT: u64 = 2022;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new().route("/instances/new", get(new_instance))
}

/// Reads `path` from the API as `user`, as the API's response type `T`.
async fn read<T: DeserializeOwned>(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    path: &str,
) -> WebResult<T> {
    web.fetch(browser, Method::GET, path, Some(&user.access), None::<&()>)
        .await
}

/// The signed-in user, or the answer that sends the browser to sign in first.
macro_rules! signed_in {
    ($web:expr, $browser:expr, $here:expr) => {
        match require_user(&$web, &$browser, $here).await? {
            Ok(user) => user,
            Err(redirect) => return Ok(redirect),
        }
    };
}

/// One egg variable as a form field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VariableField {
    pub name: String,
    pub description: String,
    pub env: String,
    /// Laravel rules, e.g. `required|string|max:64`, checked in the browser by `rules.js`.
    pub rules: String,
    pub value: String,
    pub required: bool,
    /// The caller may change it (`user_editable`, or an organization owner or admin).
    pub editable: bool,
    /// The value is hidden from the caller (not `user_viewable`, no `instances.secrets`).
    pub hidden: bool,
}

/// What a form field needs of a variable, from a workload's ([`VariableView`]) or a
/// bundled template's ([`TemplateVariable`]) answer.
#[derive(Debug, Clone, Copy)]
pub struct Variable<'a> {
    name: &'a str,
    description: &'a str,
    env: &'a str,
    default_value: &'a str,
    rules: &'a str,
    user_editable: bool,
}

impl<'a> From<&'a VariableView<'_>> for Variable<'a> {
    fn from(v: &'a VariableView<'_>) -> Self {
        Self {
            name: &v.name,
            description: &v.description,
            env: &v.env_variable,
            default_value: &v.default_value,
            rules: &v.rules,
            user_editable: v.user_editable,
        }
    }
}

impl<'a> From<&'a TemplateVariable> for Variable<'a> {
    fn from(v: &'a TemplateVariable) -> Self {
        Self {
            name: &v.name,
            description: "",
            env: &v.env_variable,
            default_value: &v.default_value,
            rules: &v.rules,
            user_editable: v.user_editable,
        }
    }
}

/// The form fields of a workload's variables: `values` (the instance's, where known)
/// over the egg defaults. Variables a user may not see are left out when `values` is
/// given and holds `null` for them.
pub fn variable_fields<'a>(
    variables: impl IntoIterator<Item = Variable<'a>>,
    values: Option<&BTreeMap<String, Option<String>>>,
    may_edit_locked: bool,
) -> Vec<VariableField> {
    variables
        .into_iter()
        .filter(|v| !v.env.is_empty())
        .map(|v| {
            let (value, hidden) = match values {
                Some(values) => match values.get(v.env) {
                    Some(Some(s)) => (s.clone(), false),
                    _ => (String::new(), true),
                },
                None => (v.default_value.to_owned(), false),
            };
            VariableField {
                name: if v.name.is_empty() { v.env } else { v.name }.to_owned(),
                description: v.description.to_owned(),
                required: v.rules.split('|').any(|r| r == "required"),
                editable: !hidden && (v.user_editable || may_edit_locked),
                hidden,
                env: v.env.to_owned(),
                rules: v.rules.to_owned(),
                value,
            }
        })
        .collect()
}

/// `?workload=&node=` of the create form.
#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    workload: Option<String>,
    #[serde(default)]
    node: Option<String>,
    /// The size the planner is asked about (and the limits prefilled): MiB, percent of
    /// one core, MiB. The form's defaults when absent.
    #[serde(default)]
    memory_mb: Option<i64>,
    #[serde(default)]
    cpu_percent: Option<i64>,
    #[serde(default)]
    disk_mb: Option<i64>,
}

/// The planner's advice when no node has room for the size asked.
#[derive(Serialize)]
struct Advice {
    message: String,
    /// The cheapest type that fits (`None`: no type would).
    option: Option<crate::planner::TypeOption>,
    /// The provisioning page with the type chosen.
    provision_url: String,
}

/// What the planner says about `size` (MiB, percent of a core, MiB): advice when no
/// node fits, nothing when one does or the caller may not read the fleet.
async fn advice(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    (memory_mb, cpu_percent, disk_mb): (i64, i64, i64),
) -> Option<Advice> {
    // 0 means unlimited: the planner is asked about the smallest real size.
    #[expect(clippy::cast_precision_loss, reason = "percent of a core")]
    let cpu = cpu_percent.max(1) as f64 / 100.0;
    let body = serde_json::json!({
        "memory_mb": memory_mb.max(1), "cpu": cpu, "disk_mb": disk_mb.max(1),
    });
    let fit: crate::planner::SuggestFit = super::kit::write(
        web,
        browser,
        user,
        Method::POST,
        "/v1/planner/suggest-fit",
        Some(&body),
    )
    .await
    .ok()?;
    if fit.node.is_some() {
        return None;
    }
    let option = fit.recommendation;
    let provision_url = option.as_ref().map_or_else(
        || "/provision/new".to_owned(),
        |o| {
            format!(
                "/provision/new?provider={}&region={}&instance_type={}",
                o.provider, o.region, o.instance_type
            )
        },
    );
    Some(Advice {
        message: fit.message,
        option,
        provision_url,
    })
}

#[derive(Serialize)]
struct Choice {
    id: String,
    name: String,
    detail: String,
}

/// A bundled template the create form offers next to the organization's workloads.
#[derive(Serialize)]
struct TemplateChoice {
    /// `template:{id}`, the form's value for it.
    value: String,
    name: String,
    description: String,
    category: String,
}

#[derive(Serialize)]
struct NewPage {
    /// The size the limits are prefilled with and the planner was asked about.
    memory_mb: i64,
    cpu_percent: i64,
    disk_mb: i64,
    /// The planner's advice when no node has room for that size.
    advice: Option<Advice>,
    nodes: Vec<Choice>,
    workloads: Vec<Choice>,
    templates: Vec<TemplateChoice>,
    /// The chosen entry of the form's select: a workload id or `template:{id}`.
    workload_id: String,
    /// The bundled template chosen (copied into the organization's workloads when the
    /// form is sent), or empty for a workload.
    template: String,
    /// What the chosen workload or template is.
    description: String,
    node_id: String,
    images: Vec<ImageView<'static>>,
    variables: Vec<VariableField>,
}

/// What the create form is filled from: a bundled template or a workload.
enum Chosen {
    Template(TemplateView),
    Workload(Box<WorkloadView<'static>>),
    Nothing,
}

impl Chosen {
    fn description(&self) -> String {
        match self {
            Self::Template(t) => t.description.clone(),
            Self::Workload(w) => w.egg.description.clone().into_owned(),
            Self::Nothing => String::new(),
        }
    }

    fn images(&self) -> Vec<ImageView<'static>> {
        match self {
            Self::Template(t) => t
                .images
                .iter()
                .map(|i| ImageView {
                    label: i.label.clone().into(),
                    image: i.image.clone().into(),
                })
                .collect(),
            Self::Workload(w) => w.egg.images.clone(),
            Self::Nothing => Vec::new(),
        }
    }

    fn variables(&self) -> Vec<VariableField> {
        match self {
            Self::Template(t) => {
                variable_fields(t.variables.iter().map(Variable::from), None, true)
            }
            Self::Workload(w) => {
                variable_fields(w.egg.variables.iter().map(Variable::from), None, true)
            }
            Self::Nothing => Vec::new(),
        }
    }
}

/// `GET /instances/new`: the create form. `?workload=` picks the workload whose
/// variables make the form's fields (the first one by default); `?node=` preselects a
/// node. The form is sent to `POST /v1/instances` by `instance_new.js`.
pub async fn new_instance(
    State(web): State<WebState>,
    browser: Browser,
    Query(query): Query<NewQuery>,
) -> WebResult<Response> {
    let user = signed_in!(web, browser, "/instances/new");
    let nodes: Vec<Node> = read(&web, &browser, &user, "/v1/nodes").await?;
    let workloads: Page<WorkloadSummary<'static>> = read(
        &web,
        &browser,
        &user,
        &format!("/v1/workloads?{LIST_LIMIT}"),
    )
    .await?;
    let workloads = workloads.data;
    let templates: Vec<TemplateView> = read(&web, &browser, &user, "/v1/templates").await?;
    let wanted = query.workload.unwrap_or_default();
    let template_of = |id: &str| templates.iter().find(|t| t.id == id).cloned();
    // A template asked for by `template:{id}`; else a workload of the organization; else
    // (a new organization) the first bundled template, so a first server needs no egg.
    let (value, template, chosen) =
        if let Some(t) = wanted.strip_prefix("template:").and_then(template_of) {
            (wanted.clone(), t.id.clone(), Chosen::Template(t))
        } else if let Some(id) = Some(wanted.as_str())
            .filter(|w| is_plain_id(w) && workloads.iter().any(|x| x.id == *w))
            .or_else(|| workloads.first().map(|w| &*w.id))
        {
            let workload: WorkloadView<'static> =
                read(&web, &browser, &user, &format!("/v1/workloads/{id}")).await?;
            (
                id.to_owned(),
                String::new(),
                Chosen::Workload(Box::new(workload)),
            )
        } else if let Some(t) = templates.first() {
            (
                format!("template:{}", t.id),
                t.id.clone(),
                Chosen::Template(t.clone()),
            )
        } else {
            (String::new(), String::new(), Chosen::Nothing)
        };
    let size = (
        query
            .memory_mb
            .filter(|m| (0..=1 << 30).contains(m))
            .unwrap_or(1024),
        query
            .cpu_percent
            .filter(|c| (0..=6400).contains(c))
            .unwrap_or(100),
        query
            .disk_mb
            .filter(|d| (0..=1 << 30).contains(d))
            .unwrap_or(10_240),
    );
    let page = NewPage {
        memory_mb: size.0,
        cpu_percent: size.1,
        disk_mb: size.2,
        advice: advice(&web, &browser, &user, size).await,
        nodes: nodes
            .into_iter()
            .map(|n| Choice {
                id: n.id,
                name: n.name,
                detail: n.status.into_owned(),
            })
            .collect(),
        workloads: workloads
            .into_iter()
            .map(|w| Choice {
                id: w.id.into_owned(),
                name: w.name.into_owned(),
                detail: w.description.into_owned(),
            })
            .collect(),
        templates: templates
            .into_iter()
            .map(|t| TemplateChoice {
                value: format!("template:{}", t.id),
                name: t.name,
                description: t.description,
                category: t.category,
            })
            .collect(),
        description: chosen.description(),
        workload_id: value,
        template,
        node_id: query.node.filter(|n| is_plain_id(n)).unwrap_or_default(),
        images: chosen.images(),
        variables: chosen.variables(),
    };
    let (token, cookies) = csrf_of(&web, &browser)?;
    html(
        StatusCode::OK,
        "instance_new.html.tera",
        &user_layout(&web, &browser, ("New instance", "instances"), &token, &user).await,
        &page,
        cookies,
    )
}

/// What the caller may do on an instance, from their effective permission keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Can {
    pub update: bool,
    pub files_read: bool,
    pub files_write: bool,
    pub backups_read: bool,
    pub backups_write: bool,
    pub backups_restore: bool,
    pub schedules: bool,
    pub sftp: bool,
    /// Move the server to another node.
    pub migrate: bool,
    /// Owners and admins may change variables the egg locks.
    pub locked_variables: bool,
    /// Manage who reaches this server alone (the Access page).
    pub access: bool,
}

impl Can {
    /// From a `…/members/{id}/permissions` answer; everything when unknown (the API
    /// still decides every call, this only hides controls that would be refused).
    #[must_use]
    pub fn from_permissions(answer: Option<&MemberPermissions>) -> Self {
        let Some(answer) = answer else {
            return Self::all();
        };
        let has = |key: &str| answer.permissions.iter().any(|k| k == key);
        let role = answer.role.as_str();
        Self {
            update: has("instances.update"),
            files_read: has("instances.files.read"),
            files_write: has("instances.files.write"),
            backups_read: has("instances.backups.read"),
            backups_write: has("instances.backups.write"),
            backups_restore: has("instances.backups.restore"),
            schedules: has("instances.schedules"),
            sftp: has("instances.sftp"),
            migrate: has("instances.migrate"),
            locked_variables: role == "owner" || role == "admin",
            access: has("members.permissions"),
        }
    }

    fn all() -> Self {
        Self {
            update: true,
            files_read: true,
            files_write: true,
            backups_read: true,
            backups_write: true,
            backups_restore: true,
            schedules: true,
            sftp: true,
            migrate: true,
            locked_variables: true,
            access: true,
        }
    }
}

/// How to reach an instance's files over SFTP.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Sftp {
    pub host: String,
    pub port: u64,
    pub username: String,
}

/// SFTP details: the node's host (its hostname, else its name) and the SFTP port, and
/// the username `<email>.<suffix>`, the suffix being the instance id's first 8
/// characters or the longer prefix that tells it from the node's other instances.
#[must_use]
pub fn sftp(node: Option<&Node>, email: &str, suffix: &str) -> Sftp {
    let host = node
        .and_then(|n| [&n.hostname, &n.name].into_iter().find(|s| !s.is_empty()))
        .cloned()
        .unwrap_or_default();
    Sftp {
        host,
        port: SFTP_PORT,
        username: format!("{email}.{suffix}"),
    }
}

/// What the instance page shows besides the instance itself.
#[derive(Debug, Serialize)]
pub struct Extras {
    pub can: Can,
    pub sftp: Sftp,
    pub images: Vec<ImageView<'static>>,
    pub variables: Vec<VariableField>,
    /// Whether `/v1/instances/{id}/schedules` answers (the schedules section).
    pub schedules: bool,
    /// The organization's other nodes, where the server may be moved.
    pub nodes: Vec<NodeChoice>,
}

/// A node the server may be moved to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeChoice {
    pub id: String,
    pub name: String,
    pub status: String,
}

/// The nodes of a `GET /v1/nodes` answer other than `except`.
fn node_choices(nodes: Vec<Node>, except: &str) -> Vec<NodeChoice> {
    nodes
        .into_iter()
        .filter(|n| n.id != except)
        .map(|n| NodeChoice {
            id: n.id,
            name: n.name,
            status: n.status.into_owned(),
        })
        .collect()
}

/// Reads what the instance page needs beyond the instance: the caller's permissions in
/// its organization, its workload (images, variables), its node (SFTP host) and
/// whether schedules are available. None of these reads fails the page: a missing
/// piece hides its section (the API still decides every call).
pub async fn extras(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    instance: &InstanceView,
    node: Option<&Node>,
) -> Extras {
    let id = instance.id.as_str();
    let org = instance.organization_id.as_str();
    let me = &user.current.user.id;
    let permissions = if is_plain_id(org) && is_plain_id(me) {
        read(
            web,
            browser,
            user,
            &format!("/v1/organizations/{org}/members/{me}/permissions"),
        )
        .await
        .ok()
    } else {
        None
    };
    let can = Can::from_permissions(permissions.as_ref());
    let workload_id = instance.workload_id.as_str();
    let workload: Option<WorkloadView<'static>> = if is_plain_id(workload_id) {
        read(web, browser, user, &format!("/v1/workloads/{workload_id}"))
            .await
            .ok()
    } else {
        None
    };
    let schedules = can.schedules
        && is_plain_id(id)
        && web
            .fetch::<ScheduleList, ()>(
                browser,
                Method::GET,
                &format!("/v1/instances/{id}/schedules"),
                Some(&user.access),
                None,
            )
            .await
            .is_ok();
    let node_id = instance.node_id.as_str();
    let nodes = if can.migrate && is_plain_id(org) {
        read::<Vec<Node>>(
            web,
            browser,
            user,
            &format!("/v1/nodes?organization_id={org}"),
        )
        .await
        .map(|nodes| node_choices(nodes, node_id))
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    let suffix = crate::sftp::auth::username_suffix(&web.app, node_id, id)
        .await
        .unwrap_or_else(|_| id.chars().take(8).collect());
    Extras {
        sftp: sftp(node, &user.current.user.email, &suffix),
        variables: variable_fields(
            workload
                .iter()
                .flat_map(|w| w.egg.variables.iter().map(Variable::from)),
            Some(&instance.variables),
            can.locked_variables,
        ),
        images: workload.map(|w| w.egg.images).unwrap_or_default(),
        schedules,
        nodes,
        can,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn variable(
        name: &str,
        env: &str,
        default: &str,
        editable: bool,
        rules: &str,
    ) -> VariableView<'static> {
        VariableView {
            name: name.to_owned().into(),
            description: "d".into(),
            env_variable: env.to_owned().into(),
            default_value: default.to_owned().into(),
            user_viewable: true,
            user_editable: editable,
            rules: rules.to_owned(),
            field_type: "text".into(),
            sort: None,
        }
    }

    fn workload() -> Vec<VariableView<'static>> {
        vec![
            variable("Greeting", "GREETING", "hi", true, "required|string|max:64"),
            variable("Key", "KEY", "k", false, "nullable|string"),
            variable("no env", "", "", false, ""),
        ]
    }

    fn fields(
        values: Option<&BTreeMap<String, Option<String>>>,
        may_edit_locked: bool,
    ) -> Vec<VariableField> {
        variable_fields(
            workload().iter().map(Variable::from),
            values,
            may_edit_locked,
        )
    }

    fn permissions(role: &str, keys: &[&str]) -> MemberPermissions {
        MemberPermissions {
            user_id: "u1".into(),
            role: role.into(),
            overrides: Vec::new(),
            permissions: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    fn node(hostname: &str, name: &str) -> Node {
        serde_json::from_value(json!({
            "id": "n1", "organization_id": "o1", "name": name, "hostname": hostname,
            "agent_version": "0.1.0", "status": "online", "cordoned": false,
            "last_seen_at": null, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }))
        .expect("a node as the API answers it")
    }

    #[test]
    fn variable_fields_follow_the_egg_and_the_caller() {
        let defaults = fields(None, false);
        assert_eq!(defaults.len(), 2, "a variable without env is skipped");
        assert_eq!(defaults[0].value, "hi");
        assert!(defaults[0].required && defaults[0].editable);
        assert!(!defaults[1].required && !defaults[1].editable);
        let mut values = BTreeMap::from([
            ("GREETING".to_owned(), Some("hello".to_owned())),
            ("KEY".to_owned(), None),
        ]);
        let shown = fields(Some(&values), true);
        assert_eq!(shown[0].value, "hello");
        assert!(
            shown[1].hidden && !shown[1].editable,
            "hidden is never editable"
        );
        values.insert("KEY".to_owned(), Some("k2".to_owned()));
        assert!(fields(Some(&values), true)[1].editable);
    }

    #[test]
    fn permissions_decide_the_controls() {
        let viewer = permissions("viewer", &["instances.read"]);
        let can = Can::from_permissions(Some(&viewer));
        assert!(!can.files_read && !can.update && !can.locked_variables);
        let admin = permissions("admin", &["instances.update", "instances.files.read"]);
        let can = Can::from_permissions(Some(&admin));
        assert!(can.update && can.files_read && can.locked_variables && !can.files_write);
        assert!(Can::from_permissions(None).backups_restore);
    }

    fn layout() -> crate::web::templates::Layout {
        crate::web::templates::Layout {
            title: "T".into(),
            active: "instances",
            csrf_token: "c".repeat(64),
            user: None,
            alerts_unread: None,
            asset_version: "v1",
            billing_banners: Vec::new(),
        }
    }

    /// Renders `template` with `page`, checking what the CSP and escaping require.
    fn render_checked(template: &str, page: &Value) -> String {
        let html = crate::web::templates::render(template, &layout(), page)
            .unwrap_or_else(|e| panic!("{template}: {e}"));
        assert!(!html.contains("<script>"), "{template}: inline script");
        assert!(!html.contains(" style="), "{template}: inline style");
        assert!(!html.contains("<b>x</b>"), "{template}: unescaped data");
        html
    }

    #[test]
    fn the_create_form_renders_its_workload() {
        let variables = fields(None, true);
        let page = json!({
            "nodes": [{"id": "n1", "name": "<b>x</b>", "detail": "online"}],
            "workloads": [{"id": "w1", "name": "Busybox", "detail": ""}],
            "workload_id": "w1", "node_id": "n1",
            "images": [{"label": "A", "image": "a"}, {"label": "B", "image": "b"}],
            "variables": variables,
        });
        let html = render_checked("instance_new.html.tera", &page);
        for needle in [
            "id=\"ni-name\"",
            "data-field=\"variables.GREETING\"",
            "data-rules=\"required|string|max:64\"",
            "id=\"ni-image\"",
            "data-field=\"ports[0]\"",
            "value=\"n1\" selected",
            "/static/instance_new.js?v=v1",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        let empty = json!({"nodes": [], "workloads": [], "workload_id": "", "node_id": "",
            "images": [], "variables": []});
        assert!(render_checked("instance_new.html.tera", &empty).contains("no-workloads"));
    }

    #[test]
    fn the_instance_page_renders_its_sections_as_permitted() {
        let instance = json!({
            "id": "i1", "name": "<b>x</b>", "state": "running", "image": "a",
            "description": "", "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256},
            "variables": {"GREETING": "<b>x</b>", "KEY": null},
        });
        let mut page = json!({
            "instance": instance, "node_name": "n", "primary": "0.0.0.0:25565",
            "can": Can::from_permissions(None),
            "sftp": sftp(Some(&node("h", "n")), "a@b.c", "i1"),
            "images": [{"label": "A", "image": "a"}],
            "variables": fields(
                Some(&BTreeMap::from([
                    ("GREETING".to_owned(), Some("<b>x</b>".to_owned())),
                    ("KEY".to_owned(), None),
                ])),
                true,
            ),
            "schedules": false,
            "nodes": [{"id": "n2", "name": "<b>second</b>", "status": "online"}],
        });
        let html = render_checked("instance.html.tera", &page);
        for needle in [
            "id=\"migrate-start\"",
            "value=\"n2\"",
            "id=\"panel-files\"",
            "id=\"panel-backups\"",
            "id=\"settings-save\"",
            "id=\"dropzone\"",
            "a@b.c.i1",
            "/static/files.js?v=v1",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert!(!html.contains("panel-schedules"));
        let viewer = permissions("viewer", &["instances.read"]);
        page["can"] = serde_json::to_value(Can::from_permissions(Some(&viewer))).expect("json");
        page["schedules"] = json!(true);
        let html = render_checked("instance.html.tera", &page);
        assert!(!html.contains("panel-files") && !html.contains("panel-backups"));
        assert!(
            !html.contains("migrate-start"),
            "no move without instances.migrate"
        );
        assert!(
            !html.contains("settings-save"),
            "no save without instances.update"
        );
        assert!(html.contains("panel-schedules"));
    }

    #[test]
    fn sftp_details() {
        let s = sftp(
            Some(&node("node1.example.com", "one")),
            "ada@example.com",
            "0193e0c4",
        );
        assert_eq!(
            s,
            Sftp {
                host: "node1.example.com".into(),
                port: 2022,
                username: "ada@example.com.0193e0c4".into(),
            }
        );
        let s = sftp(Some(&node("", "named")), "a@b", "x");
        assert_eq!((s.host.as_str(), s.username.as_str()), ("named", "a@b.x"));
        assert_eq!(sftp(None, "a@b", "x").host, "");
    }
}
