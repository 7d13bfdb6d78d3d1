//! The receivers: `POST /v1/webhooks/{github,gitlab,stripe}`. Each takes the raw body
//! (within `max_body_bytes`), verifies the sender's signature over exactly those bytes,
//! then records the delivery once by its id. Forged, stale or unsigned deliveries answer
//! 401 and record nothing; a delivery id seen before answers 200 `duplicate: true` and
//! nothing is done again.
//!
//! Which token verifies a GitHub delivery: the `?token=<webhook token id>` of the payload
//! URL (GitHub sends no identifying header, only the HMAC). GitLab sends the secret
//! itself, so `?token=` is optional there: the secret's prefix finds the token.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::push::{self, PushEvent, PushRef};
use super::store::{self, NewDelivery, PLATFORM_SCOPE, WebhookToken};
use super::tokens::prefix_of;
use super::verify::{self, Refusal};
use crate::audit::AuditSlot;
use crate::billing::events::Outcome;
use crate::db::now_ms;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::sealed;
use crate::state::AppState;

/// Longest delivery id or event name accepted.
const MAX_ID_LEN: usize = 200;

/// `?token=<webhook token id>`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct TokenQuery {
    token: Option<String>,
}

type Answer = AppResult<(StatusCode, AppJson<Receipt>)>;

/// A delivery's receipt: 202 when new (200 for a redelivery or a ping).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Receipt {
    pub received: bool,
    /// A delivery id seen before: recorded once, acted on once.
    pub duplicate: bool,
    pub provider: String,
    pub delivery_id: String,
    pub event: String,
    /// `true` on GitHub's `ping` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pong: Option<bool>,
    /// Stripe: what billing did with the event (`processed`, `duplicate`, `ignored`, or
    /// `deferred`: it could not act yet and retries by itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn raw_body(body: Result<Bytes, BytesRejection>) -> AppResult<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::BadRequest(format!("could not read the body: {}", e.body_text()))
        }
    })
}

fn refused(refusal: Refusal, header: &str) -> AppError {
    AppError::Unauthorized(refusal.message(header))
}

/// A required identifier header (delivery id, event name): printable ASCII, bounded.
fn id_header(headers: &HeaderMap, name: &str) -> AppResult<String> {
    let value = header_str(headers, name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AppError::BadRequest(format!("missing {name} header")))?;
    if value.len() > MAX_ID_LEN || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(AppError::BadRequest(format!("malformed {name} header")));
    }
    Ok(value.to_string())
}

/// The JSON document of a body: JSON, or GitHub's form encoding (`payload=<json>`).
fn json_body(headers: &HeaderMap, body: &[u8]) -> AppResult<Value> {
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str()).unwrap_or_default();
    let parsed = if content_type.starts_with("application/x-www-form-urlencoded") {
        let payload = form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| AppError::BadRequest("form body without a payload field".into()))?;
        serde_json::from_str(&payload)
    } else {
        serde_json::from_slice(body)
    };
    parsed.map_err(|_| AppError::BadRequest("body is not valid JSON".into()))
}

fn note(audit: Option<&Extension<AuditSlot>>, action: &str, delivery_id: &str) {
    if let Some(Extension(slot)) = audit {
        slot.set_action(action, Some(delivery_id));
    }
}

fn answer(
    provider: &str,
    delivery_id: &str,
    event: &str,
    fresh: bool,
    status: StatusCode,
) -> Answer {
    let status = if fresh { status } else { StatusCode::OK };
    Ok((
        status,
        AppJson(Receipt {
            received: true,
            duplicate: !fresh,
            provider: provider.to_owned(),
            delivery_id: delivery_id.to_owned(),
            event: event.to_owned(),
            pong: None,
            outcome: None,
        }),
    ))
}

/// The token named by `?token=` with its opened secret, if it exists.
async fn token_by_id(state: &AppState, id: &str) -> AppResult<Option<(WebhookToken, String)>> {
    let Some(token) = store::find(&state.db.pool, id).await? else {
        return Ok(None);
    };
    let secret = open_secret(state, &token)?;
    Ok(Some((token, secret)))
}

fn open_secret(state: &AppState, token: &WebhookToken) -> AppResult<String> {
    let bytes = sealed::open(&state.master_key, &token.sealed_secret)?;
    String::from_utf8(bytes)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("webhook secret is not UTF-8")))
}

/// Records a verified git delivery and, the first time, hands pushes to the hook.
#[expect(clippy::too_many_arguments, reason = "one call site per provider")]
async fn record_git(
    state: &AppState,
    provider: &'static str,
    token: &WebhookToken,
    delivery_id: &str,
    event: &str,
    push: Option<PushRef>,
    body: &[u8],
    status: StatusCode,
) -> Answer {
    let push = push.unwrap_or_default();
    let payload = String::from_utf8_lossy(body);
    let now = now_ms();
    let fresh = store::record(
        &state.db.pool,
        &NewDelivery {
            provider,
            scope: &token.org_id,
            delivery_id,
            token_id: Some(&token.id),
            org_id: Some(&token.org_id),
            event,
            repository: push.repo_url.as_deref(),
            branch: push.branch.as_deref(),
            payload: &payload,
            received_at: now,
        },
    )
    .await?;
    store::touch(&state.db.pool, &token.id, now).await?;
    if fresh
        && !push.deleted
        && let (Some(repo_url), Some(branch)) = (push.repo_url, push.branch)
    {
        let event = PushEvent {
            org_id: token.org_id.clone(),
            provider,
            delivery_id: delivery_id.to_string(),
            repo_url,
            web_url: push.web_url,
            branch,
            commit: push.commit,
        };
        push::on_push(state, &event).await;
    }
    answer(provider, delivery_id, event, fresh, status)
}

/// `POST /v1/webhooks/github?token=<id>`: `X-Hub-Signature-256`, `X-GitHub-Event`,
/// `X-GitHub-Delivery`. `ping` answers 200; other new deliveries 202.
pub async fn github(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<TokenQuery>,
    audit: Option<Extension<AuditSlot>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    const SIG: &str = "X-Hub-Signature-256";
    let body = raw_body(body)?;
    let signature = header_str(&headers, SIG);
    if signature.is_none() {
        return Err(refused(Refusal::Missing, SIG));
    }
    let id = q.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let Some(id) = id else {
        return Err(AppError::unauthorized(
            "add ?token=<webhook token id> to the payload URL",
        ));
    };
    let Some((token, secret)) = token_by_id(&state, id).await? else {
        return Err(refused(Refusal::Mismatch, SIG));
    };
    verify::github(secret.as_bytes(), signature, &body).map_err(|r| refused(r, SIG))?;
    let event = id_header(&headers, "X-GitHub-Event")?;
    let delivery_id = id_header(&headers, "X-GitHub-Delivery")?;
    let payload = json_body(&headers, &body)?;
    note(audit.as_ref(), "webhook.github", &delivery_id);
    let (push, status) = match event.as_str() {
        "ping" => (None, StatusCode::OK),
        "push" => (Some(push::github_push(&payload)), StatusCode::ACCEPTED),
        _ => (None, StatusCode::ACCEPTED),
    };
    let result = record_git(
        &state,
        "github",
        &token,
        &delivery_id,
        &event,
        push,
        &body,
        status,
    )
    .await?;
    if event == "ping" {
        let (status, AppJson(mut receipt)) = result;
        receipt.pong = Some(true);
        return Ok((status, AppJson(receipt)));
    }
    Ok(result)
}

/// The token whose secret is `given`: `?token=` when present, else by the secret's prefix.
async fn gitlab_token(
    state: &AppState,
    id: Option<&str>,
    given: &str,
) -> AppResult<Option<WebhookToken>> {
    let candidates = match id.map(str::trim).filter(|t| !t.is_empty()) {
        Some(id) => store::find(&state.db.pool, id).await?.into_iter().collect(),
        None => match prefix_of(given) {
            Some(prefix) => store::find_by_prefix(&state.db.pool, prefix).await?,
            None => Vec::new(),
        },
    };
    for token in candidates {
        let secret = open_secret(state, &token)?;
        if verify::gitlab(&secret, Some(given)).is_ok() {
            return Ok(Some(token));
        }
    }
    Ok(None)
}

/// `POST /v1/webhooks/gitlab[?token=<id>]`: `X-Gitlab-Token`, `X-Gitlab-Event`,
/// `X-Gitlab-Event-UUID`.
pub async fn gitlab(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<TokenQuery>,
    audit: Option<Extension<AuditSlot>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    const SIG: &str = "X-Gitlab-Token";
    let body = raw_body(body)?;
    let given = header_str(&headers, SIG).ok_or_else(|| refused(Refusal::Missing, SIG))?;
    let token = gitlab_token(&state, q.token.as_deref(), given)
        .await?
        .ok_or_else(|| refused(Refusal::Mismatch, SIG))?;
    let event = id_header(&headers, "X-Gitlab-Event")?;
    let delivery_id = id_header(&headers, "X-Gitlab-Event-UUID")?;
    let payload = json_body(&headers, &body)?;
    note(audit.as_ref(), "webhook.gitlab", &delivery_id);
    let push = (event == "Push Hook").then(|| push::gitlab_push(&payload));
    record_git(
        &state,
        "gitlab",
        &token,
        &delivery_id,
        &event,
        push,
        &body,
        StatusCode::ACCEPTED,
    )
    .await
}

/// `POST /v1/webhooks/stripe`: `Stripe-Signature` with `stripe.webhook_secret` (every
/// `v1`, 300 s tolerance); the event is recorded by its `id`, then billing acts on it
/// once (`billing::events`); 200 either way, its `outcome` saying what happened. 404
/// while no secret is configured.
pub async fn stripe(
    State(state): State<AppState>,
    audit: Option<Extension<AuditSlot>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    const SIG: &str = "Stripe-Signature";
    let body = raw_body(body)?;
    let config = &state.config.stripe;
    let secret = config.webhook_secret.expose();
    if secret.is_empty() {
        // Not enabled here, as GitHub login without its app: 404, not a 5xx. Stripe
        // retries any non-2xx for days, so events sent before the secret is set arrive.
        return Err(AppError::NotFound(
            "Stripe webhooks are not configured: set stripe.webhook_secret".into(),
        ));
    }
    let now = now_ms().div_euclid(1000);
    verify::stripe(
        secret.as_bytes(),
        header_str(&headers, SIG),
        &body,
        now,
        config.webhook_tolerance_secs,
    )
    .map_err(|r| refused(r, SIG))?;
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|_| AppError::BadRequest("body is not valid JSON".into()))?;
    let field = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_ID_LEN)
            .map(str::to_string)
            .ok_or_else(|| AppError::BadRequest(format!("event without a valid {name}")))
    };
    let event_id = field("id")?;
    let event_type = field("type")?;
    note(audit.as_ref(), "webhook.stripe", &event_id);
    let fresh = store::record(
        &state.db.pool,
        &NewDelivery {
            provider: "stripe",
            scope: PLATFORM_SCOPE,
            delivery_id: &event_id,
            token_id: None,
            org_id: None,
            event: &event_type,
            repository: None,
            branch: None,
            payload: &String::from_utf8_lossy(&body),
            received_at: now_ms(),
        },
    )
    .await?;
    // Acted on now, whether this copy was the first or a retry of one never acted on
    // (a crash between recording and acting): the claim inside makes it once.
    let row: Option<String> = sqlx::query_scalar(
        "SELECT id FROM webhook_deliveries WHERE provider = 'stripe' AND scope = $1 \
         AND delivery_id = $2",
    )
    .bind(PLATFORM_SCOPE)
    .bind(&event_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let outcome = match row {
        Some(row) => crate::billing::events::process(&state, &row).await?,
        None => Outcome::Duplicate,
    };
    let (word, duplicate) = match &outcome {
        Outcome::Processed => ("processed", false),
        Outcome::Duplicate => ("duplicate", true),
        Outcome::Ignored => ("ignored", !fresh),
        Outcome::Deferred(_) => ("deferred", false),
    };
    Ok((
        StatusCode::OK,
        AppJson(Receipt {
            received: true,
            duplicate,
            provider: "stripe".to_owned(),
            delivery_id: event_id,
            event: event_type,
            pong: None,
            outcome: Some(word.to_owned()),
        }),
    ))
}
