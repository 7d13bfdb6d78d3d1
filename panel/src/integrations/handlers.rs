//! The `/v1/integrations` handlers: types, CRUD, the synchronous test send and the
//! rotation of a webhook's signing secret. Reads need `integrations.read`, changes
//! `integrations.write`, in the organization of `?organization_id=` / the body's
//! `organization_id` (default: the caller's personal one) or of the integration.

use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::deliver::Notification;
use super::kinds::{self, FieldKind, Parts};
use super::store::{self, Integration};
use super::{SIGNING_SECRET, open_parts, store_parts};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, perm};
use crate::db::{new_id, now_ms, ts};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::respond::{Created, NoContent};
use crate::state::AppState;

const READ: &str = "integrations.read";
const WRITE: &str = "integrations.write";

/// An integration as answered: its public fields, and a hint of each secret (never the
/// secret itself).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntegrationView {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    /// `discord`, `slack`, `telegram`, `email`, `teams`, `ntfy` or `webhook`.
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    /// The public configuration fields.
    pub config: Map<String, Value>,
    /// Each secret field that is set, as a masked hint (`https://discord.com/…`, `…wxyz`).
    pub secrets: Map<String, Value>,
    /// Whether a signing secret is set (generic webhooks).
    pub has_signing_secret: bool,
    /// False once a delivery was given up; true again after one succeeds.
    pub healthy: bool,
    pub last_error: Option<String>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub last_delivery_at: Option<i64>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

fn view(state: &AppState, i: &Integration) -> AppResult<IntegrationView> {
    let parts = open_parts(state, i)?;
    let mut secrets = Map::new();
    if let Some(kind) = kinds::find(&i.kind) {
        for field in kind.fields.iter().filter(|f| f.secret) {
            if let Some(v) = parts.secrets.get(field.name) {
                secrets.insert(field.name.into(), Value::String(kinds::hint(field, v)));
            }
        }
    }
    Ok(IntegrationView {
        id: i.id.clone(),
        organization_id: i.org_id.clone(),
        name: i.name.clone(),
        kind: i.kind.clone(),
        enabled: i.enabled,
        config: parts.public,
        secrets,
        has_signing_secret: parts.secrets.contains_key(SIGNING_SECRET),
        healthy: i.healthy,
        last_error: i.last_error.clone(),
        last_delivery_at: i.last_delivery_at,
        created_at: i.created_at,
        updated_at: i.updated_at,
    })
}

/// An organization's integrations.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntegrationList {
    pub data: Vec<IntegrationView>,
}

/// `GET /v1/integrations`.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<OrgQuery>,
) -> AppResult<AppJson<IntegrationList>> {
    let m = scoped(&state, &user, q.organization_id.as_deref(), READ).await?;
    let rows = store::list(&state.db.pool, &m.org_id).await?;
    let data = rows
        .iter()
        .map(|i| view(&state, i))
        .collect::<AppResult<_>>()?;
    Ok(AppJson(IntegrationList { data }))
}

/// One field of a type, for forms.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    pub required: bool,
    /// Sealed and never answered back.
    pub secret: bool,
    pub help: &'static str,
}

/// One integration type.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TypeView {
    #[serde(rename = "type")]
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub fields: Vec<FieldView>,
    /// The JSON schema of `config` (secret fields are `writeOnly`).
    pub config_schema: Value,
}

/// The integration types.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TypeList {
    pub data: Vec<TypeView>,
}

/// `GET /v1/integrations/types`.
pub async fn types(_user: CurrentUser) -> AppJson<TypeList> {
    let data = kinds::KINDS
        .iter()
        .map(|k| TypeView {
            id: k.id,
            name: k.name,
            description: k.description,
            fields: k
                .fields
                .iter()
                .map(|f| FieldView {
                    name: f.name,
                    label: f.label,
                    kind: f.kind,
                    required: f.required,
                    secret: f.secret,
                    help: f.help,
                })
                .collect(),
            config_schema: kinds::schema(k),
        })
        .collect();
    AppJson(TypeList { data })
}

/// The create body.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub organization_id: Option<String>,
    /// Checked after authorization.
    #[serde(default)]
    pub name: Option<String>,
    /// One of `GET /v1/integrations/types`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The type's fields (see its `config_schema`).
    #[serde(default)]
    pub config: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
}

/// A created integration; a generic webhook's signing secret is answered this once.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreatedIntegration {
    #[serde(flatten)]
    pub integration: IntegrationView,
    /// `whsec_...` (generic webhooks only): verify deliveries with it; it is not shown
    /// again (rotate it to get a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "name",
            "name must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A fresh `whsec_` secret: 32 random bytes, base64.
fn new_signing_secret() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

/// The outbound guard on every URL of the configuration, when saved: a refused address
/// is 422 naming the field (the guard checks again, and pins, at each delivery).
async fn precheck(state: &AppState, kind: &kinds::Kind, parts: &Parts) -> AppResult<()> {
    for field in kind.fields.iter().filter(|f| f.kind == FieldKind::Url) {
        let value = parts
            .public
            .get(field.name)
            .or_else(|| parts.secrets.get(field.name))
            .and_then(Value::as_str);
        if let Some(url) = value
            && let Err(e) = state.config.outbound.precheck_url(url).await
        {
            return Err(AppError::unprocessable(
                format!("config.{}", field.name),
                e.to_string(),
            ));
        }
    }
    Ok(())
}

/// `POST /v1/integrations`.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<CreateBody>,
) -> AppResult<Created<CreatedIntegration>> {
    // Authorization first: an outsider learns nothing from validation errors.
    let m = scoped(&state, &user, body.organization_id.as_deref(), WRITE).await?;
    let name = check_name(body.name.as_deref().unwrap_or_default())?;
    let kind_id = body.kind.as_deref().unwrap_or_default();
    let Some(kind) = kinds::find(kind_id) else {
        let known: Vec<&str> = kinds::KINDS.iter().map(|k| k.id).collect();
        return Err(AppError::invalid_field(
            "type",
            format!("type must be one of {}", known.join(", ")),
        ));
    };
    let mut parts = kinds::merge(kind, &Parts::default(), &body.config.unwrap_or_default())?;
    precheck(&state, kind, &parts).await?;
    let signing_secret = (kind.id == "webhook").then(new_signing_secret);
    if let Some(secret) = &signing_secret {
        parts
            .secrets
            .insert(SIGNING_SECRET.into(), Value::String(secret.clone()));
    }
    let now = now_ms();
    let mut integration = Integration {
        id: new_id(),
        org_id: m.org_id,
        name,
        kind: kind.id.to_owned(),
        config: String::new(),
        sealed_secrets: String::new(),
        enabled: body.enabled.unwrap_or(true),
        healthy: true,
        last_error: None,
        last_delivery_at: None,
        created_by: Some(user.user.id.clone()),
        created_at: now,
        updated_at: now,
    };
    store_parts(&state, &mut integration, &parts);
    store::insert(&state.db.pool, &integration).await?;
    Ok(Created(CreatedIntegration {
        integration: view(&state, &integration)?,
        signing_secret,
    }))
}

/// `GET /v1/integrations/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Integration, perm::IntegrationsRead>,
) -> AppResult<AppJson<IntegrationView>> {
    Ok(AppJson(view(&state, &resource)?))
}

/// The update body: omitted fields keep their value; in `config`, an omitted secret keeps
/// its sealed value and `null` clears an optional field.
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    pub name: Option<String>,
    pub config: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
}

/// `PUT /v1/integrations/{id}`.
pub async fn update(
    State(state): State<AppState>,
    Authorized {
        resource: mut integration,
        ..
    }: Authorized<Integration, perm::IntegrationsWrite>,
    AppJson(body): AppJson<UpdateBody>,
) -> AppResult<AppJson<IntegrationView>> {
    let kind = kinds::find(&integration.kind)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored integration type unknown")))?;
    if let Some(name) = body.name.as_deref() {
        integration.name = check_name(name)?;
    }
    if let Some(config) = &body.config {
        let old = open_parts(&state, &integration)?;
        let mut parts = kinds::merge(kind, &old, config)?;
        precheck(&state, kind, &parts).await?;
        if let Some(secret) = old.secrets.get(SIGNING_SECRET) {
            parts.secrets.insert(SIGNING_SECRET.into(), secret.clone());
        }
        store_parts(&state, &mut integration, &parts);
    }
    if let Some(enabled) = body.enabled {
        integration.enabled = enabled;
    }
    integration.updated_at = now_ms();
    store::update(&state.db.pool, &integration).await?;
    Ok(AppJson(view(&state, &integration)?))
}

/// `DELETE /v1/integrations/{id}`: its queued deliveries go with it.
pub async fn delete(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Integration, perm::IntegrationsWrite>,
) -> AppResult<NoContent> {
    if !store::delete(&state.db.pool, &resource.id).await? {
        return Err(AppError::not_found("integration"));
    }
    Ok(NoContent)
}

/// What the receiver answered a test notification.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestResult {
    /// The receiver accepted it (a 2xx answer; for email, handed to the mailer).
    pub delivered: bool,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The start of the receiver's answer (up to 500 characters).
    pub body: String,
    /// Milliseconds from sending to the answer.
    pub latency_ms: u64,
    /// Why it was not delivered (a refused or unreachable address, the status).
    pub error: Option<String>,
}

/// `POST /v1/integrations/{id}/test`: sends a test notification now (not queued) and
/// answers 200 with what the receiver said, whether it accepted it or not.
pub async fn test(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Integration, perm::IntegrationsWrite>,
) -> AppResult<AppJson<TestResult>> {
    let parts = open_parts(&state, &resource)?;
    let id = format!("msg_test_{}", new_id().replace('-', ""));
    let n = Notification {
        key: id.clone(),
        title: "Test notification from Shardlyn".into(),
        text: format!(
            "This is a test of the integration \"{}\". If you can read it, alerts will reach you here.",
            resource.name
        ),
        severity: "info".into(),
        link: Some(state.base_url()),
        fields: vec![("Integration".into(), resource.name.clone())],
    };
    let outcome = super::send::send(&state, &resource, &parts, &n, &id).await;
    Ok(AppJson(TestResult {
        delivered: outcome.ok,
        status: outcome.status,
        body: outcome.body,
        latency_ms: outcome.latency_ms,
        error: outcome.error,
    }))
}

/// A webhook's new signing secret, shown this once.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RotatedSecret {
    pub id: String,
    /// `whsec_...`: deliveries are signed with it from now on.
    pub signing_secret: String,
}

/// `POST /v1/integrations/{id}/rotate-secret`: a generic webhook's new signing secret.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Authorized {
        resource: mut integration,
        ..
    }: Authorized<Integration, perm::IntegrationsWrite>,
) -> AppResult<AppJson<RotatedSecret>> {
    if integration.kind != "webhook" {
        return Err(AppError::invalid_field(
            "type",
            "only generic webhook integrations have a signing secret",
        ));
    }
    let mut parts = open_parts(&state, &integration)?;
    let secret = new_signing_secret();
    parts
        .secrets
        .insert(SIGNING_SECRET.into(), Value::String(secret.clone()));
    store_parts(&state, &mut integration, &parts);
    integration.updated_at = now_ms();
    store::update(&state.db.pool, &integration).await?;
    Ok(AppJson(RotatedSecret {
        id: integration.id,
        signing_secret: secret,
    }))
}
