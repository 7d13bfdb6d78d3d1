//! The workloads page: the list, and importing a Pterodactyl egg from a file or pasted
//! JSON. A failed import shows the egg's fields with the error next to the one it
//! concerns: the egg is checked by the same parser the API uses
//! ([`crate::workloads::input::parse_egg_text`]), which names the field
//! (`variables[2].env_variable`, `docker_images`...); the import itself is the API's.
//! Each listed workload's SRV service (`_minecraft._tcp`, what auto-DNS names its
//! servers' SRV records after) is edited in its row.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use crate::error::AppError;
use crate::orgs::store::OrgWithRole;
use crate::pagination::Page;
use crate::workloads::view::{WorkloadSummary, WorkloadView};

/// Workloads the list shows (the API's largest page).
const LIST_LIMIT: &str = "per_page=100";
/// Top-level fields of an egg, in the order the outline shows them.
const EGG_ORDER: &[&str] = &[
    "meta",
    "name",
    "author",
    "description",
    "features",
    "docker_images",
    "images",
    "file_denylist",
    "startup",
    "config",
    "scripts",
    "variables",
];
/// Objects whose fields get a row each.
const EXPANDED: &[&str] = &["meta", "config", "scripts"];

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/workloads", get(list))
        .route("/workloads/import", post(import))
        .route("/workloads/{id}/srv", post(srv))
}

/// One field of the egg in the outline, with the import's error if it concerns it.
#[derive(Debug, Serialize, PartialEq)]
struct Row {
    path: String,
    anchor: String,
    summary: String,
    error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct WorkloadsPage {
    flash: Flash,
    workloads: Vec<WorkloadSummary<'static>>,
    organizations: Vec<OrgWithRole>,
    organization_id: String,
    /// The pasted egg, kept after a failed import.
    egg: String,
    /// An error about the document as a whole (not JSON, not an egg).
    egg_error: Option<String>,
    /// The egg's fields after a failed import.
    rows: Vec<Row>,
    /// The workload whose SRV service was refused, and what was typed.
    srv_error: Option<SrvError>,
}

/// A refused SRV service: the row it belongs to shows the typed value, marked invalid.
#[derive(Debug, Serialize)]
struct SrvError {
    workload_id: String,
    value: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    organization_id: Option<String>,
    done: Option<String>,
}

async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    mut page: WorkloadsPage,
) -> WebResult<Response> {
    let org = page.organization_id.trim().to_owned();
    let path = if org.is_empty() {
        format!("/v1/workloads?{LIST_LIMIT}")
    } else {
        format!(
            "/v1/workloads?{LIST_LIMIT}&{}",
            kit::query(&[("organization_id", &org)])
        )
    };
    let workloads: Page<WorkloadSummary<'static>> = kit::read(web, browser, user, &path).await?;
    page.workloads = workloads.data;
    page.organizations = kit::organizations(web, browser, user).await?;
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Workloads", "workloads"),
        "workloads.html.tera",
        &page,
    )
    .await
}

/// `GET /workloads?organization_id=`.
pub async fn list(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/workloads");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let page = WorkloadsPage {
        flash: Flash::from_done(&kit::Done { done: q.done }),
        organization_id: q.organization_id.unwrap_or_default(),
        ..WorkloadsPage::default()
    };
    show(&web, &browser, &user, page).await
}

#[derive(Debug, Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    egg: String,
}

/// `POST /workloads/import`: the egg checked for field errors, then
/// `POST /v1/workloads/import-egg`.
pub async fn import(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<ImportForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/workloads");
    let org = form.organization_id.trim().to_owned();
    let text = form.egg.trim();
    let checked = if text.is_empty() {
        Err(AppError::invalid_field(
            "",
            "paste the egg's JSON or choose its file",
        ))
    } else {
        crate::workloads::input::parse_egg_text(text).map(|_| ())
    };
    if let Err(e) = checked {
        return show_failure(&web, &browser, &user, &form, &e).await;
    }
    let body = json!({"egg": text, "organization_id": (!org.is_empty()).then_some(&org)});
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/workloads/import-egg",
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(()) if org.is_empty() => kit::done("/workloads", "imported"),
        Ok(()) => super::view::redirect(
            &format!(
                "/workloads?{}",
                kit::query(&[("organization_id", &org), ("done", "imported")])
            ),
            [],
        ),
        Err(error) => {
            let page = WorkloadsPage {
                flash: Flash::error(error),
                organization_id: org,
                egg: form.egg,
                ..WorkloadsPage::default()
            };
            show(&web, &browser, &user, page).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SrvForm {
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    dns_srv_service: String,
}

/// `POST /workloads/{id}/srv`: the workload read from the API and put back with its
/// new SRV service (empty: none); the list shows the outcome.
pub async fn srv(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<SrvForm>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, "/workloads");
    let path = format!("/v1/workloads/{id}");
    let mut workload: WorkloadView<'static> = kit::read(&web, &browser, &user, &path).await?;
    let typed = form.dns_srv_service.trim();
    workload.dns_srv_service = (!typed.is_empty()).then(|| typed.to_owned().into());
    let answer = kit::act(&web, &browser, &user, Method::PUT, &path, Some(&workload)).await;
    let page = match shown(answer)? {
        Ok(()) => WorkloadsPage {
            flash: Flash {
                notice: Some(format!(
                    "The SRV service of {} was saved.",
                    workload.egg.name
                )),
                error: None,
            },
            ..WorkloadsPage::default()
        },
        Err(error) if error.status == StatusCode::NOT_FOUND => return Err(error),
        Err(error) => WorkloadsPage {
            flash: Flash::error(error),
            srv_error: Some(SrvError {
                workload_id: id,
                value: typed.to_owned(),
            }),
            ..WorkloadsPage::default()
        },
    };
    let page = WorkloadsPage {
        organization_id: form.organization_id.trim().to_owned(),
        ..page
    };
    show(&web, &browser, &user, page).await
}

/// The form again with the egg's fields and the error next to the one it concerns.
async fn show_failure(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    form: &ImportForm,
    error: &AppError,
) -> WebResult<Response> {
    let (field, message) = match error {
        AppError::InvalidField { field, message } => (field.clone().unwrap_or_default(), message),
        other => (String::new(), &other.to_string()),
    };
    let rows = serde_json::from_str::<Value>(form.egg.trim())
        .ok()
        .filter(Value::is_object)
        .map(|doc| outline(&doc, &field, message))
        .unwrap_or_default();
    // An error no row shows is shown next to the egg itself.
    let egg_error = (!rows.iter().any(|r| r.error.is_some())).then(|| message.clone());
    let page = WorkloadsPage {
        flash: Flash::error(WebError::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "the egg was not imported: see the error next to its field below",
        )),
        organization_id: form.organization_id.trim().to_owned(),
        egg: form.egg.clone(),
        egg_error,
        rows,
        ..WorkloadsPage::default()
    };
    show(web, browser, user, page).await
}

/// A short description of a value.
fn summary(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 80 => {
            format!("{}…", s.chars().take(80).collect::<String>())
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("{} item(s)", a.len()),
        Value::Object(o) => format!("{} field(s)", o.len()),
        other => other.to_string(),
    }
}

fn anchor(path: &str) -> String {
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("egg-field-{slug}")
}

fn row(path: String, summary: String) -> Row {
    Row {
        anchor: anchor(&path),
        path,
        summary,
        error: None,
    }
}

/// Whether the error at `field` concerns the row at `path`.
fn concerns(field: &str, path: &str) -> bool {
    field == path
        || field
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// The rows of an egg document, the error put on the most precise row it concerns (a
/// row of its own when the field is missing).
fn outline(doc: &Value, field: &str, message: &str) -> Vec<Row> {
    let Some(map) = doc.as_object() else {
        return Vec::new();
    };
    let mut keys: Vec<&str> = EGG_ORDER
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    let mut others: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !EGG_ORDER.contains(k))
        .collect();
    others.sort_unstable();
    keys.extend(others);
    let mut rows = Vec::new();
    for key in keys {
        let value = &map[key];
        match value {
            Value::Object(inner) if EXPANDED.contains(&key) && !inner.is_empty() => {
                for (sub, v) in inner {
                    rows.push(row(format!("{key}.{sub}"), summary(v)));
                }
            }
            Value::Array(items) if key == "variables" && !items.is_empty() => {
                for (i, v) in items.iter().enumerate() {
                    let name = v["name"].as_str().unwrap_or("");
                    let env = v["env_variable"].as_str().unwrap_or("");
                    rows.push(row(format!("variables[{i}]"), format!("{name} ({env})")));
                }
            }
            _ => rows.push(row(key.to_owned(), summary(value))),
        }
    }
    if field.is_empty() {
        return rows;
    }
    let best = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| concerns(field, &r.path))
        .max_by_key(|(_, r)| r.path.len())
        .map(|(i, _)| i);
    match best {
        Some(i) => rows[i].error = Some(message.to_owned()),
        None => {
            let mut missing = row(field.to_owned(), "missing".into());
            missing.error = Some(message.to_owned());
            rows.push(missing);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egg() -> Value {
        json!({
            "meta": {"version": "PTDL_v2"}, "name": "Game", "author": "a@b.c",
            "docker_images": {"Java": "img"}, "startup": "run",
            "config": {"files": "{}", "startup": "{}", "logs": "{}", "stop": "stop"},
            "scripts": {"installation": {"script": "x", "container": "c", "entrypoint": "sh"}},
            "variables": [{"name": "Version", "env_variable": "VERSION"},
                          {"name": "Bad", "env_variable": "1X"}],
        })
    }

    #[test]
    fn the_error_sits_on_the_row_it_concerns() {
        let rows = outline(&egg(), "variables[1].env_variable", "bad name");
        let with_error: Vec<&str> = rows
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(with_error, ["variables[1]"]);
        assert!(rows.iter().any(|r| r.path == "config.files"));
        assert_eq!(rows[0].path, "meta.version");
        assert_eq!(anchor("variables[1]"), "egg-field-variables-1-");
    }

    #[test]
    fn a_missing_field_gets_its_own_row() {
        let mut doc = egg();
        doc.as_object_mut().map(|m| m.remove("startup"));
        let rows = outline(&doc, "startup", "startup is required");
        let last = rows.last().expect("a row");
        assert_eq!(
            (last.path.as_str(), last.summary.as_str()),
            ("startup", "missing")
        );
        assert!(!concerns("variables[10]", "variables[1]"));
        assert!(concerns("config.files[\"a\"].parser", "config.files"));
    }
}
