//! The per-server access page (web layer, issue 20): `/instances/{id}/access` lists the
//! people who reach this one server only (a grant: a scoped member of the server's
//! organization with their own instance permission keys), each with the keys as
//! checkboxes to change and a Remove button, and a form that grants an account access
//! by email with the keys ticked. Everything goes through `/v1/instances/{id}/access` as
//! the signed-in user (permission `members.permissions` in the server's organization);
//! the API's refusals (`USER_NOT_FOUND`, `ALREADY_MEMBER`, a `permissions` the API
//! refuses) are shown beside the form that caused them, with what was typed kept.
//!
//! Checkboxes are named `perm.<key>`: the form reader keeps one value per name, so
//! every key has a name of its own.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use crate::instances::view::InstanceView;
use crate::types::Timestamp;

/// The routes of this page.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/instances/{id}/access", get(access).post(add))
        .route("/instances/{id}/access/{user}", post(save))
        .route("/instances/{id}/access/{user}/remove", post(remove))
}

/// The prefix of a permission checkbox's name.
const PERM: &str = "perm.";

// --- The API's answers (`GET /v1/instances/{id}/access` and its grant). ---

/// One grant: an account's access to this server and its keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub user_id: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
}

/// An instance permission key a grant may hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantableKey {
    pub key: String,
    #[serde(default)]
    pub description: String,
}

/// `GET /v1/instances/{id}/access`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantList {
    pub data: Vec<Grant>,
    pub grantable: Vec<GrantableKey>,
}

/// The body of `POST /v1/instances/{id}/access`.
#[derive(Debug, Serialize)]
struct AddBody<'a> {
    email: &'a str,
    permissions: Vec<String>,
}

/// The body of `PUT /v1/instances/{id}/access/{userId}`.
#[derive(Debug, Serialize)]
struct SaveBody {
    permissions: Vec<String>,
}

// --- The page. ---

/// One key as a checkbox.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
struct KeyBox {
    key: String,
    description: String,
    checked: bool,
}

/// A grant as the list shows it.
#[derive(Debug, Serialize)]
struct GrantRow {
    user_id: String,
    email: String,
    name: String,
    since: Option<Timestamp>,
    keys: Vec<KeyBox>,
    /// The refusal of this row's last form.
    error: Option<WebError>,
}

/// The add form as typed.
#[derive(Debug, Default, Serialize)]
struct AddForm {
    email: String,
    keys: Vec<KeyBox>,
}

/// The server the page is about.
#[derive(Debug, Default, Serialize)]
struct Server {
    id: String,
    name: String,
    organization_id: String,
}

#[derive(Debug, Default, Serialize)]
struct AccessPage {
    flash: Flash,
    /// Where the flash's error belongs: `add`, or the user id of a grant's row.
    error_for: String,
    /// The field the error names (`email`, `permissions`), for the add form.
    error_field: String,
    instance: Server,
    grants: Vec<GrantRow>,
    add: AddForm,
}

/// The keys of `perm.<key>` checkboxes that are ticked in `form`.
fn ticked(form: &BTreeMap<String, String>) -> Vec<String> {
    form.iter()
        .filter(|(_, v)| !v.is_empty())
        .filter_map(|(name, _)| name.strip_prefix(PERM))
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checkboxes of every grantable key, ticked when in `held`; a key held but no longer
/// grantable is listed too (ticked), so saving shows what the grant holds.
fn boxes(grantable: &[GrantableKey], held: &[String]) -> Vec<KeyBox> {
    let held_set: BTreeSet<&str> = held.iter().map(String::as_str).collect();
    let mut out: Vec<KeyBox> = grantable
        .iter()
        .map(|g| KeyBox {
            key: g.key.clone(),
            description: g.description.clone(),
            checked: held_set.contains(g.key.as_str()),
        })
        .collect();
    for key in held {
        if !grantable.iter().any(|g| &g.key == key) {
            out.push(KeyBox {
                key: key.clone(),
                description: String::new(),
                checked: true,
            });
        }
    }
    out
}

/// The notice of `?done=` (fixed texts: nothing from the address is echoed).
fn notice(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "access-added" => "Access granted: they see this server only, with the keys ticked.",
        "access-saved" => "The keys were saved.",
        "access-removed" => "Access removed: they no longer see this server.",
        _ => return None,
    };
    Some(text.to_owned())
}

/// Where an error of the add form belongs: the field the API named, else the email for
/// the refusals about the account.
fn add_field(error: &WebError) -> String {
    match (&error.field, error.code.as_str()) {
        (Some(field), _) => field.clone(),
        (None, "USER_NOT_FOUND" | "ALREADY_MEMBER" | "ALREADY_GRANTED") => "email".to_owned(),
        (None, _) => String::new(),
    }
}

/// What a re-render keeps of the last form: its error and where it belongs, and the
/// add form as typed.
#[derive(Debug, Default)]
struct Outcome {
    flash: Flash,
    error_for: String,
    /// Email and ticked keys of a refused add.
    typed: Option<(String, Vec<String>)>,
    /// Ticked keys of a refused save, with the user id.
    row: Option<(String, Vec<String>)>,
}

/// Renders the page for instance `id` with `outcome`.
async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    id: &str,
    outcome: Outcome,
) -> WebResult<Response> {
    let instance: InstanceView =
        kit::read(web, browser, user, &format!("/v1/instances/{id}")).await?;
    let list: GrantList =
        kit::read(web, browser, user, &format!("/v1/instances/{id}/access")).await?;
    let Outcome {
        flash,
        error_for,
        typed,
        row,
    } = outcome;
    let error_field = if error_for == "add" {
        flash.error.as_ref().map(add_field).unwrap_or_default()
    } else {
        String::new()
    };
    let grants = list
        .data
        .iter()
        .map(|g| {
            let mine = row.as_ref().filter(|(u, _)| u == &g.user_id);
            let held = mine.map_or(&g.permissions, |(_, keys)| keys);
            GrantRow {
                user_id: g.user_id.clone(),
                email: g.email.clone(),
                name: g.name.clone(),
                since: g.created_at,
                keys: boxes(&list.grantable, held),
                error: flash.error.clone().filter(|_| error_for == g.user_id),
            }
        })
        .collect();
    let add = match typed {
        Some((email, keys)) => AddForm {
            email,
            keys: boxes(&list.grantable, &keys),
        },
        None => AddForm {
            email: String::new(),
            keys: boxes(&list.grantable, &["instances.read".to_owned()]),
        },
    };
    let page = AccessPage {
        flash,
        error_for,
        error_field,
        instance: Server {
            id: instance.id,
            name: instance.name,
            organization_id: instance.organization_id,
        },
        grants,
        add,
    };
    let title = format!("Access to {}", page.instance.name);
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        (&title, "instances"),
        "instance_access.html.tera",
        &page,
    )
    .await
}

/// `GET /instances/{id}/access`.
pub async fn access(
    State(web): State<WebState>,
    Path(id): Path<String>,
    browser: Browser,
    query: Result<Query<kit::Done>, QueryRejection>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/instances/{id}/access"));
    let done = query.map(|Query(q)| q).unwrap_or_default();
    let outcome = Outcome {
        flash: Flash {
            notice: notice(done.done.as_deref()),
            error: None,
        },
        ..Outcome::default()
    };
    show(&web, &browser, &user, &id, outcome).await
}

/// `303` back to the page with notice `done`.
fn back(id: &str, done: &str) -> WebResult<Response> {
    kit::done(&format!("/instances/{id}/access"), done)
}

/// `POST /instances/{id}/access`: grants the account with this email access.
pub async fn add(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<BTreeMap<String, String>>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/instances/{id}/access"));
    let email = form.get("email").map(|e| e.trim()).unwrap_or_default();
    let keys = ticked(&form);
    let body = AddBody {
        email,
        permissions: keys.clone(),
    };
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/instances/{id}/access"),
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(()) => back(&id, "access-added"),
        Err(error) => {
            let outcome = Outcome {
                flash: Flash::error(error),
                error_for: "add".to_owned(),
                typed: Some((email.to_owned(), keys)),
                row: None,
            };
            show(&web, &browser, &user, &id, outcome).await
        }
    }
}

/// `POST /instances/{id}/access/{user}`: saves the grant's keys as ticked.
pub async fn save(
    State(web): State<WebState>,
    Path((id, member)): Path<(String, String)>,
    CsrfForm { browser, form }: CsrfForm<BTreeMap<String, String>>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let member = plain(&member)?.to_owned();
    let user = page_user!(web, browser, &format!("/instances/{id}/access"));
    let keys = ticked(&form);
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::PUT,
        &format!("/v1/instances/{id}/access/{member}"),
        Some(&SaveBody {
            permissions: keys.clone(),
        }),
    )
    .await;
    match shown(answer)? {
        Ok(()) => back(&id, "access-saved"),
        Err(error) => {
            let outcome = Outcome {
                flash: Flash::error(error),
                error_for: member.clone(),
                typed: None,
                row: Some((member, keys)),
            };
            show(&web, &browser, &user, &id, outcome).await
        }
    }
}

/// `POST /instances/{id}/access/{user}/remove`.
pub async fn remove(
    State(web): State<WebState>,
    Path((id, member)): Path<(String, String)>,
    CsrfForm { browser, .. }: CsrfForm<BTreeMap<String, String>>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let member = plain(&member)?.to_owned();
    let user = page_user!(web, browser, &format!("/instances/{id}/access"));
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::DELETE,
        &format!("/v1/instances/{id}/access/{member}"),
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(()) => back(&id, "access-removed"),
        Err(error) => {
            let outcome = Outcome {
                flash: Flash::error(error),
                error_for: member,
                ..Outcome::default()
            };
            show(&web, &browser, &user, &id, outcome).await
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn grantable() -> Vec<GrantableKey> {
        ["instances.read", "instances.console", "instances.power"]
            .iter()
            .map(|k| GrantableKey {
                key: (*k).to_owned(),
                description: format!("d {k}"),
            })
            .collect()
    }

    #[test]
    fn ticked_boxes_become_the_keys() {
        let form: BTreeMap<String, String> = [
            ("email", "a@b.c"),
            ("perm.instances.console", "on"),
            ("perm.instances.read", "on"),
            ("perm.", "on"),
            ("perm.instances.power", ""),
            ("permissions", "instances.files.write"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(ticked(&form), ["instances.console", "instances.read"]);
    }

    #[test]
    fn every_grantable_key_is_a_box_and_stale_keys_stay_visible() {
        let held = vec!["instances.console".to_owned(), "instances.gone".to_owned()];
        let b = boxes(&grantable(), &held);
        let shown: Vec<(&str, bool)> = b.iter().map(|k| (k.key.as_str(), k.checked)).collect();
        assert_eq!(
            shown,
            [
                ("instances.read", false),
                ("instances.console", true),
                ("instances.power", false),
                ("instances.gone", true),
            ]
        );
    }

    #[test]
    fn refusals_land_beside_their_field() {
        let e = WebError::new(StatusCode::NOT_FOUND, "USER_NOT_FOUND", "no account");
        assert_eq!(add_field(&e), "email");
        let e = WebError::new(StatusCode::CONFLICT, "ALREADY_MEMBER", "member");
        assert_eq!(add_field(&e), "email");
        let e = WebError {
            field: Some("permissions".into()),
            ..WebError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "x")
        };
        assert_eq!(add_field(&e), "permissions");
        let e = WebError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "no");
        assert_eq!(add_field(&e), "");
    }

    #[test]
    fn only_known_notices_are_shown() {
        assert!(notice(Some("access-added")).is_some());
        assert!(notice(Some("<script>")).is_none());
        assert!(notice(None).is_none());
    }

    /// The page as the handler builds it renders, escapes what it shows, and puts the
    /// refusal beside the field it names.
    #[test]
    fn the_page_renders_from_its_struct() {
        let xss = "<script>alert(1)</script>";
        let layout = super::super::view::layout("Access", "instances", "c", None);
        let error = WebError {
            field: Some("permissions".into()),
            ..WebError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", xss)
        };
        let page = AccessPage {
            flash: Flash::error(error.clone()),
            error_for: "add".into(),
            error_field: add_field(&error),
            instance: Server {
                id: "i1".into(),
                name: xss.into(),
                organization_id: "o1".into(),
            },
            grants: vec![GrantRow {
                user_id: "u2".into(),
                email: "helper@example.com".into(),
                name: xss.into(),
                since: Some(Timestamp(0)),
                keys: boxes(&grantable(), &["instances.console".to_owned()]),
                error: None,
            }],
            add: AddForm {
                email: xss.into(),
                keys: boxes(&grantable(), &[]),
            },
        };
        let html = super::super::templates::render("instance_access.html.tera", &layout, &page)
            .expect("renders");
        assert!(!html.contains("<script>alert"), "escaped");
        assert!(html.contains(r#"id="grant-permissions-error""#), "{html}");
        assert!(html.contains(r#"id="grant-u2""#), "{html}");
        assert!(
            html.contains(
                r#"name="perm.instances.console" value="on" data-key="instances.console" checked"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/instances/i1/access/u2/remove""#),
            "{html}"
        );
    }

    #[test]
    fn the_api_answer_reads() {
        let list: GrantList = serde_json::from_value(serde_json::json!({
            "data": [{"user_id": "u1", "email": "a@b.c", "name": "A",
                "permissions": ["instances.console"],
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}],
            "grantable": [{"key": "instances.console", "description": "Console"}]
        }))
        .expect("reads");
        assert_eq!(list.data[0].permissions, ["instances.console"]);
        assert_eq!(list.grantable[0].key, "instances.console");
    }
}
