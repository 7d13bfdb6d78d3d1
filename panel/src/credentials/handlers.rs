//! `/v1/credentials*`: an organization's cloud credentials. Reading needs
//! `credentials.read`, writing `credentials.write`; secrets are never answered (a masked
//! hint of each instead); another organization's credential answers 404.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::providers::{self, PROVIDERS, Parts, Provider, Verified};
use super::store::{self, Credential};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, Permission, perm};
use crate::db::{new_id, ts};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::state::AppState;

/// Most credentials an organization keeps.
const MAX_PER_ORG: i64 = 100;

/// A credential as shown: its public fields, masked hints of its secrets.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CredentialView {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    /// `aws`, `gcp`, `hetzner`, `oci`, `cloudflare`, `powerdns`, `rfc2136` or `steam`.
    pub provider: String,
    /// The public fields (an AWS access key id, an OCI tenancy...).
    pub config: Map<String, Value>,
    /// Each secret field's last characters (`••••a1b2`); the secret itself never.
    pub hints: Map<String, Value>,
    /// The organization's default credential for its provider.
    pub is_default: bool,
    /// The last verify call: when, whether the provider accepted it, what it said.
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub verified_at: Option<i64>,
    pub verified_ok: Option<bool>,
    pub verified_message: Option<String>,
    pub created_by: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

impl From<Credential> for CredentialView {
    fn from(c: Credential) -> Self {
        let parse = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap_or_default();
        Self {
            config: parse(&c.config),
            hints: parse(&c.hints),
            id: c.id,
            organization_id: c.org_id,
            name: c.name,
            provider: c.provider,
            is_default: c.is_default,
            verified_at: c.verified_at,
            verified_ok: c.verified_ok.map(|v| v != 0),
            verified_message: c.verified_message,
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// `{"data": [credential...]}`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CredentialList {
    pub data: Vec<CredentialView>,
}

/// `?organization_id=&provider=` of the list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    /// Only this provider's.
    pub provider: Option<String>,
}

/// An organization's credentials, by provider then name.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(q): AppQuery<ListQuery>,
) -> AppResult<AppJson<CredentialList>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::CredentialsRead::KEY,
    )
    .await?;
    let rows = store::list(&state.db.pool, &member.org_id, q.provider.as_deref()).await?;
    Ok(AppJson(CredentialList {
        data: rows.into_iter().map(CredentialView::from).collect(),
    }))
}

/// One field of a provider's credential, as listed.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldView {
    pub name: String,
    pub label: String,
    pub required: bool,
    /// Sealed at rest and never answered.
    pub secret: bool,
    /// Typed over several lines (a JSON key file, a PEM key).
    pub multiline: bool,
}

/// One provider, as listed.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderView {
    pub id: String,
    pub name: String,
    pub fields: Vec<FieldView>,
}

/// The providers and their fields.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderList {
    pub data: Vec<ProviderView>,
}

/// `GET /v1/credentials/providers`: every provider with its fields (which are secret).
pub async fn providers(_user: CurrentUser) -> AppJson<ProviderList> {
    AppJson(ProviderList {
        data: PROVIDERS
            .iter()
            .map(|p| ProviderView {
                id: p.id.to_owned(),
                name: p.name.to_owned(),
                fields: p
                    .fields
                    .iter()
                    .map(|f| FieldView {
                        name: f.name.to_owned(),
                        label: f.label.to_owned(),
                        required: f.required,
                        secret: f.secret,
                        multiline: f.multiline,
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// A new credential.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The organization (the personal one by default).
    pub organization_id: Option<String>,
    pub name: String,
    /// `aws`, `gcp`, `hetzner`, `oci`, `cloudflare`, `powerdns`, `rfc2136` or `steam`.
    pub provider: String,
    /// Every field of the provider (`GET /v1/credentials/providers`), secrets included.
    pub config: Map<String, Value>,
    /// Make it the organization's default for its provider (the first one is anyway).
    #[serde(default)]
    pub is_default: bool,
}

/// A name: 1 to 100 characters without control characters.
fn name_of(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "name",
            "name must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

fn provider_of(id: &str) -> AppResult<&'static Provider> {
    providers::find(id).ok_or_else(|| {
        AppError::invalid_field(
            "provider",
            format!(
                "provider must be one of {}",
                PROVIDERS
                    .iter()
                    .map(|p| p.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Stores `parts` into `c`: the public fields, the secrets sealed, their hints.
fn store_parts(state: &AppState, c: &mut Credential, parts: &Parts) {
    c.config = Value::Object(parts.public.clone()).to_string();
    c.sealed_secrets = crate::sealed::seal_json(&state.master_key, &parts.secrets);
    let hints: Map<String, Value> = parts
        .secrets
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(providers::hint(v.as_str().unwrap_or_default())),
            )
        })
        .collect();
    c.hints = Value::Object(hints).to_string();
}

/// Opens a credential's fields.
///
/// # Errors
/// 500 when the stored values do not parse or open under the master key.
pub fn open_parts(state: &AppState, c: &Credential) -> AppResult<Parts> {
    let public: Map<String, Value> =
        serde_json::from_str(&c.config).map_err(|e| AppError::Internal(e.into()))?;
    let secrets = crate::sealed::open_json(&state.master_key, &c.sealed_secrets)
        .map_err(AppError::Internal)?;
    Ok(Parts { public, secrets })
}

/// Creates a credential (not verified: `POST /v1/credentials/{id}/verify` does that).
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<CreateBody>,
) -> AppResult<(StatusCode, AppJson<CredentialView>)> {
    let requested =
        crate::orgs::scope::requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(
        &state,
        &user,
        requested.as_deref(),
        perm::CredentialsWrite::KEY,
    )
    .await?;
    let name = name_of(&body.name)?;
    let provider = provider_of(&body.provider)?;
    let parts = providers::parse(provider, &body.config, &Parts::default())?;
    let pool = &state.db.pool;
    if store::count(pool, &member.org_id).await? >= MAX_PER_ORG {
        return Err(AppError::Conflict(format!(
            "an organization keeps at most {MAX_PER_ORG} credentials"
        )));
    }
    let now = state.clock.now_ms();
    let mut c = Credential {
        id: new_id(),
        org_id: member.org_id.clone(),
        name,
        provider: provider.id.to_owned(),
        config: String::new(),
        sealed_secrets: String::new(),
        hints: String::new(),
        is_default: false,
        verified_at: None,
        verified_ok: None,
        verified_message: None,
        created_by: Some(user.user.id.clone()),
        created_at: now,
        updated_at: now,
    };
    store_parts(&state, &mut c, &parts);
    store::insert(pool, &c).await?;
    let first = store::list(pool, &c.org_id, Some(&c.provider)).await?.len() == 1;
    if body.is_default || first {
        store::make_default(pool, &c).await?;
        c.is_default = true;
    }
    Ok((StatusCode::CREATED, AppJson(c.into())))
}

/// One credential.
pub async fn get(
    Authorized { resource, .. }: Authorized<Credential, perm::CredentialsRead>,
) -> AppJson<CredentialView> {
    AppJson(resource.into())
}

/// A change: a new name, and fields to replace (a secret left out keeps its value).
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    pub name: Option<String>,
    /// The provider's fields; a secret field left out or `null` keeps its value, a
    /// public one left out is cleared only if optional.
    pub config: Option<Map<String, Value>>,
}

/// Changes a credential's name or fields (changed fields forget the last verify).
pub async fn update(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Credential, perm::CredentialsWrite>,
    AppJson(body): AppJson<UpdateBody>,
) -> AppResult<AppJson<CredentialView>> {
    let mut c = resource;
    if let Some(name) = &body.name {
        c.name = name_of(name)?;
    }
    if let Some(config) = &body.config {
        let provider = provider_of(&c.provider)?;
        let previous = open_parts(&state, &c)?;
        let parts = providers::parse(provider, config, &previous)?;
        store_parts(&state, &mut c, &parts);
        c.verified_at = None;
        c.verified_ok = None;
        c.verified_message = None;
    }
    c.updated_at = state.clock.now_ms();
    store::update(&state.db.pool, &c).await?;
    Ok(AppJson(c.into()))
}

/// Deletes a credential.
pub async fn delete(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Credential, perm::CredentialsWrite>,
) -> AppResult<StatusCode> {
    if !store::delete(&state.db.pool, &resource.id).await? {
        return Err(AppError::not_found("credential"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a credential its organization's default for its provider.
pub async fn make_default(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Credential, perm::CredentialsWrite>,
) -> AppResult<AppJson<CredentialView>> {
    let mut c = resource;
    store::make_default(&state.db.pool, &c).await?;
    c.is_default = true;
    Ok(AppJson(c.into()))
}

/// What a verify call found, and the credential as recorded after it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifyResult {
    #[serde(flatten)]
    pub verified: Verified,
    pub credential: CredentialView,
}

/// Calls the provider's cheapest authenticated endpoint and reports what it answered
/// (200 either way: a refusal is the provider's answer, recorded on the credential).
pub async fn verify(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Credential, perm::CredentialsWrite>,
) -> AppResult<AppJson<VerifyResult>> {
    let mut c = resource;
    let parts = open_parts(&state, &c)?;
    let verified = providers::verify(&state, &c.provider, &parts).await;
    let now = state.clock.now_ms();
    store::set_verified(&state.db.pool, &c.id, verified.ok, &verified.message, now).await?;
    tracing::info!(credential.id = %c.id, credential.provider = %c.provider, ok = verified.ok, "credential verified");
    c.verified_at = Some(now);
    c.verified_ok = Some(i64::from(verified.ok));
    c.verified_message = Some(verified.message.clone());
    Ok(AppJson(VerifyResult {
        verified,
        credential: c.into(),
    }))
}
