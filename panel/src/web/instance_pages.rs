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
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::WebState;
use super::api::is_plain_id;
use super::error::WebResult;
use super::session::{Browser, WebUser};
use super::view::{csrf_of, html, layout, require_user};
use crate::instances::view::InstanceView;
use crate::schedules::ScheduleList;

/// Workloads and nodes the create form offers (the API's largest page).
const LIST_LIMIT: &str = "per_page=100";
/// The SFTP port of a node that does not say otherwise.
pub const SFTP_PORT: u64 = 2022;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new().route("/instances/new", get(new_instance))
}

/// Reads `path` from the API as `user`.
async fn read(web: &WebState, browser: &Browser, user: &WebUser, path: &str) -> WebResult<Value> {
    web.call(browser, Method::GET, path, Some(&user.access), None)
        .await
}

fn array(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
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

/// The form fields of a workload's variables: `values` (the instance's, where known)
/// over the egg defaults. Variables a user may not see are left out when `values` is
/// given and holds `null` for them.
#[must_use]
pub fn variable_fields(
    workload: &Value,
    values: Option<&BTreeMap<String, Option<String>>>,
    may_edit_locked: bool,
) -> Vec<VariableField> {
    array(&workload["variables"])
        .iter()
        .filter_map(|v| {
            let env = v["env_variable"].as_str()?.to_owned();
            let rules = v["rules"].as_str().unwrap_or("").to_owned();
            let (value, hidden) = match values {
                Some(values) => match values.get(&env) {
                    Some(Some(s)) => (s.clone(), false),
                    _ => (String::new(), true),
                },
                None => (v["default_value"].as_str().unwrap_or("").to_owned(), false),
            };
            let user_editable = v["user_editable"].as_bool().unwrap_or(false);
            Some(VariableField {
                name: v["name"].as_str().unwrap_or(&env).to_owned(),
                description: v["description"].as_str().unwrap_or("").to_owned(),
                required: rules.split('|').any(|r| r == "required"),
                editable: !hidden && (user_editable || may_edit_locked),
                hidden,
                env,
                rules,
                value,
            })
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
    images: Vec<Value>,
    variables: Vec<VariableField>,
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
    let nodes = array(&read(&web, &browser, &user, "/v1/nodes").await?);
    let workloads = read(
        &web,
        &browser,
        &user,
        &format!("/v1/workloads?{LIST_LIMIT}"),
    )
    .await?;
    let workloads = array(&workloads["data"]);
    let templates = array(&read(&web, &browser, &user, "/v1/templates").await?);
    let wanted = query.workload.unwrap_or_default();
    let template_of = |id: &str| templates.iter().find(|t| t["id"] == id).cloned();
    // A template asked for by `template:{id}`; else a workload of the organization; else
    // (a new organization) the first bundled template, so a first server needs no egg.
    let (chosen, template, workload) =
        if let Some(t) = wanted.strip_prefix("template:").and_then(template_of) {
            (wanted.clone(), text(&t["id"]), t)
        } else if let Some(id) = Some(wanted.as_str())
            .filter(|w| is_plain_id(w) && workloads.iter().any(|x| x["id"] == *w))
            .or_else(|| workloads.first().and_then(|w| w["id"].as_str()))
        {
            let workload = read(&web, &browser, &user, &format!("/v1/workloads/{id}")).await?;
            (id.to_owned(), String::new(), workload)
        } else if let Some(t) = templates.first() {
            (
                format!("template:{}", text(&t["id"])),
                text(&t["id"]),
                t.clone(),
            )
        } else {
            (String::new(), String::new(), Value::Null)
        };
    let page = NewPage {
        nodes: nodes
            .iter()
            .filter_map(|n| {
                Some(Choice {
                    id: n["id"].as_str()?.to_owned(),
                    name: n["name"].as_str().unwrap_or("").to_owned(),
                    detail: n["status"].as_str().unwrap_or("").to_owned(),
                })
            })
            .collect(),
        workloads: workloads
            .iter()
            .filter_map(|w| {
                Some(Choice {
                    id: w["id"].as_str()?.to_owned(),
                    name: w["name"].as_str().unwrap_or("").to_owned(),
                    detail: w["description"].as_str().unwrap_or("").to_owned(),
                })
            })
            .collect(),
        templates: templates
            .iter()
            .map(|t| TemplateChoice {
                value: format!("template:{}", text(&t["id"])),
                name: text(&t["name"]),
                description: text(&t["description"]),
                category: text(&t["category"]),
            })
            .collect(),
        description: text(&workload["description"]),
        workload_id: chosen,
        template,
        node_id: query.node.filter(|n| is_plain_id(n)).unwrap_or_default(),
        images: array(&workload["images"]),
        variables: variable_fields(&workload, None, true),
    };
    let (token, cookies) = csrf_of(&web, &browser)?;
    html(
        StatusCode::OK,
        "instance_new.html.tera",
        &layout("New instance", "instances", &token, Some(&user)),
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
    /// Owners and admins may change variables the egg locks.
    pub locked_variables: bool,
}

impl Can {
    /// From a `…/members/{id}/permissions` answer; everything when unknown (the API
    /// still decides every call, this only hides controls that would be refused).
    #[must_use]
    pub fn from_permissions(answer: Option<&Value>) -> Self {
        let Some(answer) = answer else {
            return Self::all();
        };
        let keys = array(&answer["permissions"]);
        let has = |key: &str| keys.iter().any(|k| k == key);
        let role = answer["role"].as_str().unwrap_or("");
        Self {
            update: has("instances.update"),
            files_read: has("instances.files.read"),
            files_write: has("instances.files.write"),
            backups_read: has("instances.backups.read"),
            backups_write: has("instances.backups.write"),
            backups_restore: has("instances.backups.restore"),
            schedules: has("instances.schedules"),
            sftp: has("instances.sftp"),
            locked_variables: role == "owner" || role == "admin",
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
            locked_variables: true,
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

/// SFTP details: the node's host and SFTP port (2022 unless the node says otherwise),
/// and the username `<email>.<suffix>`, the suffix being the instance id's first 8
/// characters or the longer prefix that tells it from the node's other instances.
#[must_use]
pub fn sftp(node: &Value, email: &str, suffix: &str) -> Sftp {
    let host = ["fqdn", "hostname", "name"]
        .iter()
        .find_map(|k| node[*k].as_str().filter(|s| !s.is_empty()))
        .unwrap_or("")
        .to_owned();
    Sftp {
        host,
        port: node["sftp_port"].as_u64().unwrap_or(SFTP_PORT),
        username: format!("{email}.{suffix}"),
    }
}

/// What the instance page shows besides the instance itself.
#[derive(Debug, Serialize)]
pub struct Extras {
    pub can: Can,
    pub sftp: Sftp,
    pub images: Vec<Value>,
    pub variables: Vec<VariableField>,
    /// Whether `/v1/instances/{id}/schedules` answers (the schedules section).
    pub schedules: bool,
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
    node: Option<&Value>,
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
    let workload = if is_plain_id(workload_id) {
        read(web, browser, user, &format!("/v1/workloads/{workload_id}"))
            .await
            .unwrap_or(Value::Null)
    } else {
        Value::Null
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
    let suffix = crate::sftp::auth::username_suffix(&web.app, node_id, id)
        .await
        .unwrap_or_else(|_| id.chars().take(8).collect());
    Extras {
        sftp: sftp(
            node.unwrap_or(&Value::Null),
            &user.current.user.email,
            &suffix,
        ),
        images: array(&workload["images"]),
        variables: variable_fields(&workload, Some(&instance.variables), can.locked_variables),
        schedules,
        can,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn workload() -> Value {
        json!({"variables": [
            {"name": "Greeting", "env_variable": "GREETING", "default_value": "hi",
             "description": "d", "user_editable": true, "rules": "required|string|max:64"},
            {"name": "Key", "env_variable": "KEY", "default_value": "k",
             "user_editable": false, "rules": "nullable|string"},
            {"name": "no env"}
        ]})
    }

    #[test]
    fn variable_fields_follow_the_egg_and_the_caller() {
        let fields = variable_fields(&workload(), None, false);
        assert_eq!(fields.len(), 2, "a variable without env is skipped");
        assert_eq!(fields[0].value, "hi");
        assert!(fields[0].required && fields[0].editable);
        assert!(!fields[1].required && !fields[1].editable);
        let mut values = BTreeMap::from([
            ("GREETING".to_owned(), Some("hello".to_owned())),
            ("KEY".to_owned(), None),
        ]);
        let fields = variable_fields(&workload(), Some(&values), true);
        assert_eq!(fields[0].value, "hello");
        assert!(
            fields[1].hidden && !fields[1].editable,
            "hidden is never editable"
        );
        values.insert("KEY".to_owned(), Some("k2".to_owned()));
        assert!(variable_fields(&workload(), Some(&values), true)[1].editable);
    }

    #[test]
    fn permissions_decide_the_controls() {
        let viewer = json!({"role": "viewer", "permissions": ["instances.read"]});
        let can = Can::from_permissions(Some(&viewer));
        assert!(!can.files_read && !can.update && !can.locked_variables);
        let admin =
            json!({"role": "admin", "permissions": ["instances.update", "instances.files.read"]});
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
            asset_version: "v1",
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
        let variables = variable_fields(&workload(), None, true);
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
            "sftp": sftp(&json!({"hostname": "h"}), "a@b.c", "i1"),
            "images": [{"label": "A", "image": "a"}],
            "variables": variable_fields(
                &workload(),
                Some(&BTreeMap::from([
                    ("GREETING".to_owned(), Some("<b>x</b>".to_owned())),
                    ("KEY".to_owned(), None),
                ])),
                true,
            ),
            "schedules": false,
        });
        let html = render_checked("instance.html.tera", &page);
        for needle in [
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
        let viewer = json!({"role": "viewer", "permissions": ["instances.read"]});
        page["can"] = serde_json::to_value(Can::from_permissions(Some(&viewer))).expect("json");
        page["schedules"] = json!(true);
        let html = render_checked("instance.html.tera", &page);
        assert!(!html.contains("panel-files") && !html.contains("panel-backups"));
        assert!(
            !html.contains("settings-save"),
            "no save without instances.update"
        );
        assert!(html.contains("panel-schedules"));
    }

    #[test]
    fn sftp_details() {
        let node = json!({"hostname": "node1.example.com"});
        let s = sftp(&node, "ada@example.com", "0193e0c4");
        assert_eq!(
            s,
            Sftp {
                host: "node1.example.com".into(),
                port: 2022,
                username: "ada@example.com.0193e0c4".into(),
            }
        );
        let s = sftp(&json!({"fqdn": "f", "sftp_port": 2200}), "a@b", "x");
        assert_eq!(
            (s.host.as_str(), s.port, s.username.as_str()),
            ("f", 2200, "a@b.x")
        );
    }
}
