//! The integrations page (`/integrations`, web layer): an organization's notification
//! integrations (type, enabled, health with the last error) and a "New integration" form
//! with every type's fields in a fieldset of its own (only the chosen type's are sent);
//! per integration a Test form (the receiver's answer is shown on the page), Enable or
//! Disable, Delete and, for generic webhooks, Rotate secret. A webhook's `whsec_`
//! signing secret is shown once, in the answer to the form that created or rotated it,
//! never in an address. Everything goes through the `/v1/integrations` API as the user.

use std::collections::HashMap;

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
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use crate::integrations::kinds::{self, FieldKind};
use crate::integrations::{
    CreateBody, CreatedIntegration, IntegrationList, IntegrationView, RotatedSecret, TestResult,
    UpdateBody,
};
use crate::orgs::store::OrgWithRole;

/// The routes of this page.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/integrations", get(integrations).post(create))
        .route("/integrations/{id}/test", post(test))
        .route("/integrations/{id}/rotate-secret", post(rotate_secret))
        .route("/integrations/{id}/enable", post(enable))
        .route("/integrations/{id}/disable", post(disable))
        .route("/integrations/{id}/delete", post(delete))
}

/// `?organization_id=&done=` of `/integrations`.
#[derive(Debug, Default, Deserialize)]
pub struct IntegrationsQuery {
    #[serde(default)]
    organization_id: String,
    done: Option<String>,
}

/// One field of a type in the "New integration" form.
#[derive(Debug, Serialize)]
struct FieldForm {
    /// The input's name: `config.<type>.<field>`.
    input: String,
    /// The input's id: `f-<type>-<field>`.
    id: String,
    label: &'static str,
    /// `url`, `text` or `password` (secret fields, never shown back).
    input_type: &'static str,
    required: bool,
    secret: bool,
    help: &'static str,
    /// What was typed before a refused create (empty for secret fields).
    value: String,
}

/// One type in the "New integration" form: its fieldset.
#[derive(Debug, Serialize)]
struct TypeForm {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    fields: Vec<FieldForm>,
}

/// A signing secret to show this once.
#[derive(Debug, Serialize)]
struct ShownSecret {
    /// The integration it belongs to.
    id: String,
    name: String,
    secret: String,
}

/// What the receiver answered the Test form.
#[derive(Debug, Serialize)]
struct ShownTest {
    /// The integration tested.
    id: String,
    name: String,
    #[serde(flatten)]
    result: TestResult,
}

#[derive(Debug, Default, Serialize)]
struct IntegrationsPage {
    flash: Flash,
    integrations: Vec<IntegrationView>,
    /// The organization shown (empty: the personal one).
    organization_id: String,
    organizations: Vec<OrgWithRole>,
    types: Vec<TypeForm>,
    /// The type chosen in the form (kept after a refused create).
    chosen: String,
    /// The name typed in the form (kept after a refused create).
    name: String,
    new_secret: Option<ShownSecret>,
    test: Option<ShownTest>,
}

/// The form's name of `field` of `kind`.
fn input_name(kind: &str, field: &str) -> String {
    format!("config.{kind}.{field}")
}

/// The types and their fields, with the public values of `typed` filled back in.
fn type_forms(typed: &HashMap<String, String>) -> Vec<TypeForm> {
    kinds::KINDS
        .iter()
        .map(|k| TypeForm {
            id: k.id,
            name: k.name,
            description: k.description,
            fields: k
                .fields
                .iter()
                .map(|f| {
                    let input = input_name(k.id, f.name);
                    FieldForm {
                        id: format!("f-{}-{}", k.id, f.name),
                        label: f.label,
                        input_type: match (f.secret, f.kind) {
                            (true, _) => "password",
                            (false, FieldKind::Url) => "url",
                            (false, _) => "text",
                        },
                        required: f.required,
                        secret: f.secret,
                        help: f.help,
                        value: if f.secret {
                            String::new()
                        } else {
                            typed.get(&input).cloned().unwrap_or_default()
                        },
                        input,
                    }
                })
                .collect(),
        })
        .collect()
}

/// Renders the page of `org` with `page`'s flash, form values, secret and test result.
async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    org: &str,
    typed: &HashMap<String, String>,
    mut page: IntegrationsPage,
) -> WebResult<Response> {
    let list: IntegrationList = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/integrations?{}",
            kit::query(&[("organization_id", org)])
        ),
    )
    .await?;
    page.integrations = list.data;
    page.organizations = kit::organizations(web, browser, user)
        .await
        .unwrap_or_default();
    page.organization_id = org.to_owned();
    page.types = type_forms(typed);
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Integrations", "alerts"),
        "integrations.html.tera",
        &page,
    )
    .await
}

/// `GET /integrations`.
pub async fn integrations(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<IntegrationsQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/integrations");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let org = kit::org_param(&q.organization_id);
    let page = IntegrationsPage {
        flash: Flash::from_done(&kit::Done { done: q.done }),
        ..IntegrationsPage::default()
    };
    show(&web, &browser, &user, &org, &HashMap::new(), page).await
}

/// The chosen type's configuration from the form's `config.<type>.<field>` inputs:
/// empty inputs left out (a required one is then refused by the API), a list of
/// addresses split at commas and white space.
fn config_of(kind: &str, form: &HashMap<String, String>) -> Map<String, Value> {
    let mut config = Map::new();
    let Some(k) = kinds::find(kind) else {
        return config;
    };
    for field in k.fields {
        let raw = form
            .get(&input_name(k.id, field.name))
            .map(|v| v.trim())
            .unwrap_or_default();
        if raw.is_empty() {
            continue;
        }
        let value = if field.kind == FieldKind::Emails {
            Value::Array(
                raw.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            )
        } else {
            Value::String(raw.to_owned())
        };
        config.insert(field.name.to_owned(), value);
    }
    config
}

/// `POST /integrations`: creates the integration of the chosen type; a generic
/// webhook's signing secret is shown in this answer, once.
pub async fn create(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<HashMap<String, String>>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/integrations");
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let org = kit::org_param(field("organization_id"));
    let kind = field("type").to_owned();
    let name = field("name").to_owned();
    let body = CreateBody {
        organization_id: (!org.is_empty()).then(|| org.clone()),
        name: Some(name.clone()),
        kind: Some(kind.clone()),
        config: Some(config_of(&kind, &form)),
        enabled: Some(true),
    };
    let answer: WebResult<CreatedIntegration> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/integrations",
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(created) => match created.signing_secret {
            Some(secret) => {
                let page = IntegrationsPage {
                    flash: Flash {
                        notice: Some("The integration was created.".to_owned()),
                        error: None,
                    },
                    new_secret: Some(ShownSecret {
                        id: created.integration.id,
                        name: created.integration.name,
                        secret,
                    }),
                    ..IntegrationsPage::default()
                };
                show(&web, &browser, &user, &org, &HashMap::new(), page).await
            }
            None => kit::done_in("/integrations", &org, "integration-created"),
        },
        Err(error) => {
            let page = IntegrationsPage {
                flash: Flash::error(error),
                chosen: kind,
                name,
                ..IntegrationsPage::default()
            };
            show(&web, &browser, &user, &org, &form, page).await
        }
    }
}

/// The fields of the per-integration forms: the page to go back to.
#[derive(Debug, Default, Deserialize)]
pub struct IntegrationForm {
    #[serde(default)]
    organization_id: String,
}

/// `POST /integrations/{id}/test`: sends a test notification now and shows what the
/// receiver answered.
pub async fn test(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<IntegrationForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/integrations");
    let org = kit::org_param(&form.organization_id);
    let answer: WebResult<TestResult> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/integrations/{id}/test"),
        None::<&()>,
    )
    .await;
    let page = match shown(answer)? {
        Ok(result) => {
            let tested: WebResult<IntegrationView> =
                kit::read(&web, &browser, &user, &format!("/v1/integrations/{id}")).await;
            IntegrationsPage {
                test: Some(ShownTest {
                    id: id.to_owned(),
                    name: tested.map(|i| i.name).unwrap_or_default(),
                    result,
                }),
                ..IntegrationsPage::default()
            }
        }
        Err(error) => refused(error)?,
    };
    show(&web, &browser, &user, &org, &HashMap::new(), page).await
}

/// `POST /integrations/{id}/rotate-secret`: a generic webhook's new signing secret,
/// shown in this answer, once.
pub async fn rotate_secret(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<IntegrationForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/integrations");
    let org = kit::org_param(&form.organization_id);
    let answer: WebResult<RotatedSecret> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/integrations/{id}/rotate-secret"),
        None::<&()>,
    )
    .await;
    let page = match shown(answer)? {
        Ok(rotated) => {
            let named: WebResult<IntegrationView> =
                kit::read(&web, &browser, &user, &format!("/v1/integrations/{id}")).await;
            IntegrationsPage {
                flash: Flash {
                    notice: Some(
                        "The signing secret was rotated: deliveries are signed with the new one."
                            .to_owned(),
                    ),
                    error: None,
                },
                new_secret: Some(ShownSecret {
                    id: rotated.id,
                    name: named.map(|i| i.name).unwrap_or_default(),
                    secret: rotated.signing_secret,
                }),
                ..IntegrationsPage::default()
            }
        }
        Err(error) => refused(error)?,
    };
    show(&web, &browser, &user, &org, &HashMap::new(), page).await
}

/// `POST /integrations/{id}/enable`.
pub async fn enable(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<IntegrationForm>,
) -> WebResult<Response> {
    switch(&web, &id, &browser, &form, true).await
}

/// `POST /integrations/{id}/disable`: nothing is delivered to it until enabled again.
pub async fn disable(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<IntegrationForm>,
) -> WebResult<Response> {
    switch(&web, &id, &browser, &form, false).await
}

/// Enables or disables the integration `id`.
async fn switch(
    web: &WebState,
    id: &str,
    browser: &Browser,
    form: &IntegrationForm,
    enabled: bool,
) -> WebResult<Response> {
    let id = plain(id)?;
    let user = page_user!(web, browser, "/integrations");
    let body = UpdateBody {
        enabled: Some(enabled),
        ..UpdateBody::default()
    };
    let answer = kit::act(
        web,
        browser,
        &user,
        Method::PUT,
        &format!("/v1/integrations/{id}"),
        Some(&body),
    )
    .await;
    let done = if enabled {
        "integration-enabled"
    } else {
        "integration-disabled"
    };
    after(web, browser, &user, form, answer, done).await
}

/// `POST /integrations/{id}/delete`.
pub async fn delete(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<IntegrationForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/integrations");
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::DELETE,
        &format!("/v1/integrations/{id}"),
        None::<&()>,
    )
    .await;
    after(&web, &browser, &user, &form, answer, "integration-deleted").await
}

/// A refused form shown on the page; a 404 (not the caller's integration) is the 404
/// page.
fn refused(error: WebError) -> WebResult<IntegrationsPage> {
    if error.status == StatusCode::NOT_FOUND {
        return Err(error);
    }
    Ok(IntegrationsPage {
        flash: Flash::error(error),
        ..IntegrationsPage::default()
    })
}

/// Back to the page the form came from: with the notice `done`, or the API's refusal.
async fn after(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    form: &IntegrationForm,
    answer: WebResult<()>,
    done: &str,
) -> WebResult<Response> {
    let org = kit::org_param(&form.organization_id);
    match shown(answer)? {
        Ok(()) => kit::done_in("/integrations", &org, done),
        Err(error) => {
            let page = refused(error)?;
            show(web, browser, user, &org, &HashMap::new(), page).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_chosen_types_fields_are_sent() {
        let form: HashMap<String, String> = [
            ("config.discord.webhook_url", " https://discord.example/x "),
            ("config.webhook.url", "https://other.example/"),
            ("config.ntfy.topic", "t"),
            ("config.ntfy.server_url", ""),
            ("config.email.recipients", "a@b.c, d@e.f\ng@h.i"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let discord = config_of("discord", &form);
        assert_eq!(discord.len(), 1);
        assert_eq!(
            discord.get("webhook_url").and_then(Value::as_str),
            Some("https://discord.example/x")
        );
        let ntfy = config_of("ntfy", &form);
        assert_eq!(ntfy.keys().collect::<Vec<_>>(), ["topic"]);
        let email = config_of("email", &form);
        assert_eq!(
            email
                .get("recipients")
                .and_then(Value::as_array)
                .map(Vec::len),
            Some(3)
        );
        assert!(config_of("nope", &form).is_empty());
    }

    #[test]
    fn secrets_are_never_filled_back_in() {
        let typed: HashMap<String, String> = [
            (
                "config.discord.webhook_url",
                "https://discord.example/secret",
            ),
            ("config.telegram.chat_id", "@chan"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let forms = type_forms(&typed);
        let values: Vec<(&str, &str, &str)> = forms
            .iter()
            .flat_map(|t| {
                t.fields
                    .iter()
                    .map(|f| (f.input.as_str(), f.input_type, f.value.as_str()))
            })
            .collect();
        assert!(values.contains(&("config.discord.webhook_url", "password", "")));
        assert!(values.contains(&("config.telegram.chat_id", "text", "@chan")));
        assert!(values.contains(&("config.webhook.url", "url", "")));
    }
}
