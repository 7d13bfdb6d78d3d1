//! The cloud credentials page (`/credentials`, web layer): an organization's credentials
//! (provider, public fields, masked hints of the secrets, the default badge, the last
//! verify) and an "Add a credential" form with every provider's fields in a fieldset of
//! its own (only the chosen provider's are sent); per credential a Verify form (the
//! provider's answer is shown on the page), Make default and Delete. Secrets are typed,
//! sent to the API and never shown again, nor filled back in after a refusal. Everything
//! goes through the `/v1/credentials` API as the user.

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
use crate::credentials::{CreateBody, CredentialList, CredentialView, ProviderList, VerifyResult};
use crate::orgs::store::OrgWithRole;

/// The routes of this page.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/credentials", get(credentials).post(create))
        .route("/credentials/{id}/verify", post(verify))
        .route("/credentials/{id}/default", post(make_default))
        .route("/credentials/{id}/delete", post(delete))
}

/// `?organization_id=&done=` of `/credentials`.
#[derive(Debug, Default, Deserialize)]
pub struct CredentialsQuery {
    #[serde(default)]
    organization_id: String,
    done: Option<String>,
}

/// One field of a provider in the "Add a credential" form.
#[derive(Debug, Serialize)]
struct FieldForm {
    /// The input's name: `config.<provider>.<field>`.
    input: String,
    /// The input's id: `f-<provider>-<field>`.
    id: String,
    label: String,
    required: bool,
    /// Sent once, never shown again (`type=password`, or a textarea left empty).
    secret: bool,
    /// A `<textarea>` (a key file).
    multiline: bool,
    /// What was typed before a refused create (empty for secret fields).
    value: String,
    /// The API's refusal when it named this field.
    error: Option<String>,
}

/// One provider in the "Add a credential" form: its fieldset.
#[derive(Debug, Serialize)]
struct ProviderForm {
    id: String,
    name: String,
    fields: Vec<FieldForm>,
}

/// A field of a credential as shown in the table: its label and its value (or hint).
#[derive(Debug, Serialize)]
struct Shown {
    label: String,
    value: String,
}

/// A credential as shown in the table.
#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    credential: CredentialView,
    /// The provider's name (`Hetzner Cloud`).
    provider_name: String,
    /// The public fields, by label.
    public: Vec<Shown>,
    /// The masked hints of the secret fields, by label.
    secrets: Vec<Shown>,
}

/// What the provider answered the Verify form.
#[derive(Debug, Serialize)]
struct ShownVerify {
    /// The credential verified.
    id: String,
    name: String,
    ok: bool,
    status: Option<u16>,
    message: String,
}

#[derive(Debug, Default, Serialize)]
struct CredentialsPage {
    flash: Flash,
    /// The field the API's refusal named (`name`, `provider`, `config.token`...).
    error_field: String,
    credentials: Vec<Row>,
    /// The organization shown (empty: the personal one).
    organization_id: String,
    organizations: Vec<OrgWithRole>,
    providers: Vec<ProviderForm>,
    /// The provider chosen in the form (kept after a refused create).
    chosen: String,
    /// The name typed in the form (kept after a refused create).
    name: String,
    /// "Make default" as ticked (kept after a refused create).
    is_default: bool,
    verify: Option<ShownVerify>,
}

/// The form's name of `field` of `provider`.
fn input_name(provider: &str, field: &str) -> String {
    format!("config.{provider}.{field}")
}

/// A field's value as text (every field is text).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The providers' fieldsets, with the public values of `typed` filled back in and the
/// refusal `error` (for `error_field`) beside the chosen provider's field it named.
fn provider_forms(
    providers: &ProviderList,
    typed: &HashMap<String, String>,
    chosen: &str,
    error_field: &str,
    error: Option<&str>,
) -> Vec<ProviderForm> {
    providers
        .data
        .iter()
        .map(|p| ProviderForm {
            id: p.id.clone(),
            name: p.name.clone(),
            fields: p
                .fields
                .iter()
                .map(|f| {
                    let input = input_name(&p.id, &f.name);
                    let named = p.id == chosen && error_field == format!("config.{}", f.name);
                    FieldForm {
                        id: format!("f-{}-{}", p.id, f.name),
                        label: f.label.clone(),
                        required: f.required,
                        secret: f.secret,
                        multiline: f.multiline,
                        value: if f.secret {
                            String::new()
                        } else {
                            typed.get(&input).cloned().unwrap_or_default()
                        },
                        error: error.filter(|_| named).map(str::to_owned),
                        input,
                    }
                })
                .collect(),
        })
        .collect()
}

/// The rows of the table: each credential with its provider's name and field labels.
fn rows(list: CredentialList, providers: &ProviderList) -> Vec<Row> {
    list.data
        .into_iter()
        .map(|c| {
            let provider = providers.data.iter().find(|p| p.id == c.provider);
            let label = |name: &str| {
                provider
                    .and_then(|p| p.fields.iter().find(|f| f.name == name))
                    .map_or_else(|| name.to_owned(), |f| f.label.clone())
            };
            let shown = |map: &Map<String, Value>| {
                map.iter()
                    .map(|(k, v)| Shown {
                        label: label(k),
                        value: text(v),
                    })
                    .collect()
            };
            Row {
                provider_name: provider.map_or_else(|| c.provider.clone(), |p| p.name.clone()),
                public: shown(&c.config),
                secrets: shown(&c.hints),
                credential: c,
            }
        })
        .collect()
}

/// Renders the page of `org` with `page`'s flash, form values and verify answer.
async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    org: &str,
    typed: &HashMap<String, String>,
    mut page: CredentialsPage,
) -> WebResult<Response> {
    let list: CredentialList = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/credentials?{}",
            kit::query(&[("organization_id", org)])
        ),
    )
    .await?;
    let providers: ProviderList =
        kit::read(web, browser, user, "/v1/credentials/providers").await?;
    page.credentials = rows(list, &providers);
    page.organizations = kit::organizations(web, browser, user)
        .await
        .unwrap_or_default();
    page.organization_id = org.to_owned();
    let error = page.flash.error.as_ref().map(|e| e.message.clone());
    page.providers = provider_forms(
        &providers,
        typed,
        &page.chosen,
        &page.error_field,
        error.as_deref(),
    );
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Cloud credentials", "orgs"),
        "credentials.html.tera",
        &page,
    )
    .await
}

/// `GET /credentials`.
pub async fn credentials(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<CredentialsQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/credentials");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let org = kit::org_param(&q.organization_id);
    let page = CredentialsPage {
        flash: Flash::from_done(&kit::Done { done: q.done }),
        ..CredentialsPage::default()
    };
    show(&web, &browser, &user, &org, &HashMap::new(), page).await
}

/// The chosen provider's fields from the form's `config.<provider>.<field>` inputs,
/// as `<field>` (empty inputs left out: a required one is then refused by the API).
fn config_of(provider: &str, form: &HashMap<String, String>) -> Map<String, Value> {
    let prefix = format!("config.{provider}.");
    form.iter()
        .filter_map(|(k, v)| {
            let field = k.strip_prefix(&prefix)?;
            let value = v.trim();
            (!field.is_empty() && !value.is_empty())
                .then(|| (field.to_owned(), Value::String(value.to_owned())))
        })
        .collect()
}

/// `POST /credentials`: creates the credential of the chosen provider.
pub async fn create(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<HashMap<String, String>>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/credentials");
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let org = kit::org_param(field("organization_id"));
    let provider = field("provider").to_owned();
    let name = field("name").to_owned();
    let is_default = !field("is_default").is_empty();
    let body = CreateBody {
        organization_id: (!org.is_empty()).then(|| org.clone()),
        name: name.clone(),
        provider: provider.clone(),
        config: config_of(&provider, &form),
        is_default,
    };
    let answer: WebResult<CredentialView> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/credentials",
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(_) => kit::done_in("/credentials", &org, "credential-created"),
        Err(error) => {
            let page = CredentialsPage {
                error_field: error.field.clone().unwrap_or_default(),
                flash: Flash::error(error),
                chosen: provider,
                name,
                is_default,
                ..CredentialsPage::default()
            };
            show(&web, &browser, &user, &org, &form, page).await
        }
    }
}

/// The fields of the per-credential forms: the page to go back to.
#[derive(Debug, Default, Deserialize)]
pub struct CredentialForm {
    #[serde(default)]
    organization_id: String,
}

/// `POST /credentials/{id}/verify`: calls the provider now and shows what it answered.
pub async fn verify(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<CredentialForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/credentials");
    let org = kit::org_param(&form.organization_id);
    let answer: WebResult<VerifyResult> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/credentials/{id}/verify"),
        None::<&()>,
    )
    .await;
    let page = match shown(answer)? {
        Ok(result) => CredentialsPage {
            verify: Some(ShownVerify {
                id: result.credential.id,
                name: result.credential.name,
                ok: result.verified.ok,
                status: result.verified.status,
                message: result.verified.message,
            }),
            ..CredentialsPage::default()
        },
        Err(error) => refused(error)?,
    };
    show(&web, &browser, &user, &org, &HashMap::new(), page).await
}

/// `POST /credentials/{id}/default`: the organization's default for its provider.
pub async fn make_default(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<CredentialForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/credentials");
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/credentials/{id}/default"),
        None::<&()>,
    )
    .await;
    after(&web, &browser, &user, &form, answer, "credential-default").await
}

/// `POST /credentials/{id}/delete`.
pub async fn delete(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<CredentialForm>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, "/credentials");
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::DELETE,
        &format!("/v1/credentials/{id}"),
        None::<&()>,
    )
    .await;
    after(&web, &browser, &user, &form, answer, "credential-deleted").await
}

/// A refused form shown on the page; a 404 (not the caller's credential) is the 404
/// page.
fn refused(error: WebError) -> WebResult<CredentialsPage> {
    if error.status == StatusCode::NOT_FOUND {
        return Err(error);
    }
    Ok(CredentialsPage {
        flash: Flash::error(error),
        ..CredentialsPage::default()
    })
}

/// Back to the page the form came from: with the notice `done`, or the API's refusal.
async fn after(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    form: &CredentialForm,
    answer: WebResult<()>,
    done: &str,
) -> WebResult<Response> {
    let org = kit::org_param(&form.organization_id);
    match shown(answer)? {
        Ok(()) => kit::done_in("/credentials", &org, done),
        Err(error) => {
            let page = refused(error)?;
            show(web, browser, user, &org, &HashMap::new(), page).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn providers() -> ProviderList {
        serde_json::from_value(serde_json::json!({"data": [
            {"id": "hetzner", "name": "Hetzner Cloud", "fields": [
                {"name": "token", "label": "API token", "required": true, "secret": true,
                 "multiline": false}]},
            {"id": "aws", "name": "Amazon Web Services", "fields": [
                {"name": "access_key_id", "label": "Access key ID", "required": true,
                 "secret": false, "multiline": false},
                {"name": "region", "label": "Region", "required": false, "secret": false,
                 "multiline": false}]},
            {"id": "oci", "name": "Oracle Cloud Infrastructure", "fields": [
                {"name": "region", "label": "Region", "required": true, "secret": false,
                 "multiline": false},
                {"name": "private_key", "label": "Key", "required": true, "secret": true,
                 "multiline": true}]}]}))
        .expect("providers")
    }

    #[test]
    fn only_the_chosen_providers_fields_are_sent() {
        let typed = form(&[
            ("config.aws.access_key_id", " AKIA1 "),
            ("config.aws.region", ""),
            ("config.oci.region", "eu-frankfurt-1"),
            ("config.hetzner.token", "t"),
            ("name", "x"),
        ]);
        let aws = config_of("aws", &typed);
        assert_eq!(aws.keys().collect::<Vec<_>>(), ["access_key_id"]);
        assert_eq!(
            aws.get("access_key_id").and_then(Value::as_str),
            Some("AKIA1")
        );
        assert_eq!(
            config_of("oci", &typed).keys().collect::<Vec<_>>(),
            ["region"]
        );
        assert!(config_of("nope", &typed).is_empty());
        assert!(config_of("", &typed).is_empty());
    }

    #[test]
    fn secrets_are_never_filled_back_in_and_errors_sit_by_their_field() {
        let typed = form(&[
            ("config.hetzner.token", "secret-token"),
            ("config.aws.region", "eu-west-1"),
            ("config.oci.region", "eu-frankfurt-1"),
            ("config.oci.private_key", "-----BEGIN PRIVATE KEY-----"),
        ]);
        let forms = provider_forms(&providers(), &typed, "oci", "config.region", Some("bad"));
        let fields: Vec<&FieldForm> = forms.iter().flat_map(|p| &p.fields).collect();
        let by = |input: &str| {
            fields
                .iter()
                .find(|f| f.input == input)
                .unwrap_or_else(|| panic!("{input}"))
        };
        assert_eq!(by("config.hetzner.token").value, "");
        assert_eq!(by("config.oci.private_key").value, "");
        assert!(by("config.oci.private_key").multiline);
        assert_eq!(by("config.aws.region").value, "eu-west-1");
        assert_eq!(by("config.oci.region").error.as_deref(), Some("bad"));
        assert_eq!(by("config.aws.region").error, None, "only the chosen one's");
    }
}
