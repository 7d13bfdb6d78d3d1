//! Creating workloads from eggs: `POST /v1/workloads/import-egg` and
//! `POST /v1/workloads/from-template`.
//!
//! The import body is either the egg document itself (organization from
//! `?organization_id=`, else the personal one) or `{"egg": <object or JSON string>,
//! "organization_id": "..."}`. The body is read as text, not as a `serde_json::Value`, so
//! the order of `docker_images` (the first is the default image) survives.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

use super::input::{check_name, parse_egg_text};
use super::ordered::Doc;
use super::store::{self, NewWorkload, Source};
use super::templates::Template;
use super::view::WorkloadBody;
use crate::auth::extract::CurrentUser;
use crate::db::new_id;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::requested_org;
use crate::orgs::scope::{OrgQuery, scoped};
use crate::respond::Created;
use crate::state::AppState;

/// Imports a Pterodactyl egg (PTDL_v1 or PTDL_v2) as a workload (`source: "egg"`).
pub async fn import_egg(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> AppResult<Created<WorkloadBody>> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::BadRequest(e.body_text())
        }
    })?;
    if !is_json(&headers) {
        return Err(AppError::BadRequest(
            "expected Content-Type: application/json".into(),
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| AppError::invalid_field("", "the egg is not UTF-8 text"))?;
    let (egg_text, body_org) = unwrap_body(text)?;
    let requested = requested_org(body_org, org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), "workloads.write").await?;
    let egg = parse_egg_text(&egg_text)?;
    let workload = store::insert(
        &state.db.pool,
        &new_id(),
        &NewWorkload {
            org_id: &member.org_id,
            source: Source::Egg,
            template: None,
            egg: &egg,
            // An egg says nothing of SRV: set it on the workload afterwards.
            dns_srv_service: None,
            created_by: &user.user.id,
        },
    )
    .await?;
    Ok(Created(WorkloadBody(workload)))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"))
}

/// The egg text and the body's `organization_id`: a wrapper is an object with `egg` and
/// no `meta`; anything else is handed to the egg parser as is (which reports bad JSON
/// and non-eggs with their position).
fn unwrap_body(text: &str) -> AppResult<(String, Option<String>)> {
    let Ok(Doc::Object(pairs)) = serde_json::from_str::<Doc>(text) else {
        return Ok((text.to_owned(), None));
    };
    let has = |key: &str| pairs.iter().any(|(k, _)| k == key);
    if has("meta") || !has("egg") {
        return Ok((text.to_owned(), None));
    }
    let mut egg = None;
    let mut org = None;
    for (key, value) in pairs {
        match (key.as_str(), value) {
            ("egg", Doc::String(s)) => egg = Some(s),
            ("egg", doc @ Doc::Object(_)) => egg = Some(doc.to_json()),
            ("egg", _) => {
                return Err(AppError::invalid_field(
                    "egg",
                    "egg must be the egg document, as an object or a JSON string",
                ));
            }
            ("organization_id", Doc::String(s)) => org = Some(s),
            ("organization_id", Doc::Null) => {}
            ("organization_id", _) => {
                return Err(AppError::invalid_field(
                    "organization_id",
                    "organization_id must be a string",
                ));
            }
            (other, _) => {
                return Err(AppError::invalid_field(
                    other,
                    format!("unknown field `{other}` (expected `egg` and `organization_id`)"),
                ));
            }
        }
    }
    Ok((egg.unwrap_or_default(), org))
}

/// Body of `POST /v1/workloads/from-template`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromTemplate {
    /// Template id, as listed by `GET /v1/templates`.
    template: String,
    organization_id: Option<String>,
    /// A name for the copy; the template's by default.
    name: Option<String>,
}

/// Copies a bundled template into an organization (`source: "template"`).
pub async fn from_template(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<FromTemplate>,
) -> AppResult<Created<WorkloadBody>> {
    let requested = requested_org(body.organization_id, org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), "workloads.write").await?;
    let template = Template::find(&body.template)
        .ok_or_else(|| AppError::NotFound(format!("template `{}` not found", body.template)))?;
    let mut egg = template.egg()?;
    if let Some(name) = body.name {
        check_name(&name)?;
        egg.name = name.trim().to_owned();
    }
    let workload = store::insert(
        &state.db.pool,
        &new_id(),
        &NewWorkload {
            org_id: &member.org_id,
            source: Source::Template,
            template: Some(template.id),
            egg: &egg,
            dns_srv_service: template.dns_srv_service,
            created_by: &user.user.id,
        },
    )
    .await?;
    Ok(Created(WorkloadBody(workload)))
}

#[cfg(test)]
mod tests {
    use super::unwrap_body;

    #[test]
    fn wrapper_keeps_image_order() {
        let (egg, org) = unwrap_body(
            r#"{"organization_id": "o", "egg": {"meta": {"version": "PTDL_v2"},
                "docker_images": {"z": "img-z", "a": "img-a"}}}"#,
        )
        .expect("wrapper");
        assert_eq!(org.as_deref(), Some("o"));
        assert!(egg.find("img-z") < egg.find("img-a"), "{egg}");
        let (raw, org) = unwrap_body(r#"{"meta": {}, "egg": 1}"#).expect("an egg");
        assert!(raw.contains("\"egg\": 1") && org.is_none());
    }
}
