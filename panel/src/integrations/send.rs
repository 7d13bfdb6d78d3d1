//! One attempt at sending one notification to one integration, in the format of its
//! service, and what the receiver answered. HTTP requests go only to addresses the
//! outbound guard checked ([`shardlyn_net::outbound`]), follow no redirect, and carry an
//! idempotency key (the delivery's id, the same on every retry; `webhook-id` for the
//! generic webhook, which is signed per Standard Webhooks).

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::deliver::Notification;
use super::kinds::Parts;
use super::store::Integration;
use crate::mailer::Template;
use crate::state::AppState;

/// Longest an attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Characters of the receiver's answer kept.
const SNIPPET: usize = 500;
/// The longest `Retry-After` honoured (a larger one waits this long).
const MAX_RETRY_AFTER_MS: u64 = 3_600_000;

/// What the receiver answered.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Accepted (2xx; for email, handed to the mailer).
    pub ok: bool,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The start of the answer's body.
    pub body: String,
    pub latency_ms: u64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// A failure worth retrying (no answer, 408, 429, 5xx).
    pub retryable: bool,
    /// What `Retry-After` asked for, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl Outcome {
    fn failed(error: String, retryable: bool) -> Self {
        Self {
            error: Some(error),
            retryable,
            ..Self::default()
        }
    }
}

fn text_of(parts: &Parts, name: &str) -> String {
    parts
        .public
        .get(name)
        .or_else(|| parts.secrets.get(name))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Sends `n` to `integration` (configuration `parts`) once; `id` is the idempotency key.
pub async fn send(
    state: &AppState,
    integration: &Integration,
    parts: &Parts,
    n: &Notification,
    id: &str,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = match integration.kind.as_str() {
        "discord" => {
            let url = text_of(parts, "webhook_url");
            post_json(state, &url, &discord(n), id, Vec::new()).await
        }
        "slack" => {
            let url = text_of(parts, "webhook_url");
            post_json(state, &url, &slack(n), id, Vec::new()).await
        }
        "teams" => {
            let url = text_of(parts, "webhook_url");
            post_json(state, &url, &teams(n), id, Vec::new()).await
        }
        "telegram" => {
            let base = state
                .config
                .integrations
                .telegram_api_url
                .trim_end_matches('/');
            let url = format!("{base}/bot{}/sendMessage", text_of(parts, "bot_token"));
            let body = telegram(n, &text_of(parts, "chat_id"));
            post_json(state, &url, &body, id, Vec::new()).await
        }
        "ntfy" => {
            let server = text_of(parts, "server_url");
            let server = if server.is_empty() {
                "https://ntfy.sh".to_owned()
            } else {
                server
            };
            let url = format!(
                "{}/{}",
                server.trim_end_matches('/'),
                text_of(parts, "topic")
            );
            let mut headers = ntfy_headers(n);
            let token = text_of(parts, "token");
            if !token.is_empty() {
                headers.push(("authorization".into(), format!("Bearer {token}")));
            }
            post(
                state,
                &url,
                n.text.clone().into_bytes(),
                "text/plain; charset=utf-8",
                id,
                headers,
            )
            .await
        }
        "webhook" => {
            let url = text_of(parts, "url");
            let secret = text_of(parts, super::SIGNING_SECRET);
            let body = serde_json::to_vec(&webhook_body(n)).unwrap_or_default();
            let timestamp = crate::db::now_ms() / 1000;
            let headers = vec![
                ("webhook-id".into(), id.to_owned()),
                ("webhook-timestamp".into(), timestamp.to_string()),
                (
                    "webhook-signature".into(),
                    sign(&secret, id, timestamp, &body),
                ),
            ];
            post(state, &url, body, "application/json", id, headers).await
        }
        "email" => email(state, parts, n),
        other => Outcome::failed(format!("unknown integration type {other}"), false),
    };
    outcome.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    outcome
}

/// The Standard Webhooks signature: `v1,` and the base64 HMAC-SHA256, keyed with the
/// secret's base64 part after `whsec_`, of `{id}.{timestamp}.{body}`.
#[must_use]
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap_or_default();
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

async fn post_json(
    state: &AppState,
    url: &str,
    body: &Value,
    id: &str,
    headers: Vec<(String, String)>,
) -> Outcome {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    post(state, url, bytes, "application/json", id, headers).await
}

async fn post(
    state: &AppState,
    url: &str,
    body: Vec<u8>,
    content_type: &str,
    id: &str,
    headers: Vec<(String, String)>,
) -> Outcome {
    let checked = match state.config.outbound.resolve_url(url).await {
        Ok(c) => c,
        // A refused address may be allowed later; an unresolvable one may come back.
        Err(e) => return Outcome::failed(redact(&e.to_string(), url), true),
    };
    let client = match checked
        .pin(reqwest::Client::builder())
        .timeout(TIMEOUT)
        .user_agent(concat!("Shardlyn/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Outcome::failed(format!("http client: {e}"), true),
    };
    let mut request = client
        .post(checked.url.clone())
        .header("content-type", content_type)
        .header("idempotency-key", id)
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            // reqwest's message names the URL, which may hold a token (Telegram, webhooks).
            let why = if e.is_timeout() {
                "the receiver did not answer in time".to_owned()
            } else if e.is_connect() {
                "could not connect to the receiver".to_owned()
            } else {
                redact(&e.to_string(), url)
            };
            return Outcome::failed(why, true);
        }
    };
    let status = response.status();
    let retry_after_ms = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let text = response.text().await.unwrap_or_default();
    let body: String = text.chars().take(SNIPPET).collect();
    let code = status.as_u16();
    let ok = status.is_success();
    Outcome {
        ok,
        status: Some(code),
        error: (!ok).then(|| format!("the receiver answered {status}")),
        retryable: !ok && (status.is_server_error() || matches!(code, 408 | 429)),
        retry_after_ms,
        body,
        latency_ms: 0,
    }
}

/// `Retry-After` as seconds or an HTTP date, in milliseconds from now.
fn parse_retry_after(v: &str) -> Option<u64> {
    let ms = if let Ok(secs) = v.trim().parse::<u64>() {
        secs.saturating_mul(1000)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
        u64::try_from(at.timestamp_millis() - crate::db::now_ms()).unwrap_or(0)
    };
    Some(ms.min(MAX_RETRY_AFTER_MS))
}

/// `message` without `url`'s path and query (where tokens live).
fn redact(message: &str, url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return message.replace(url, "<url>");
    };
    let safe = format!(
        "{}://{}/…",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    message.replace(url, &safe).replace(parsed.as_str(), &safe)
}

fn email(state: &AppState, parts: &Parts, n: &Notification) -> Outcome {
    let recipients: Vec<String> = parts
        .public
        .get("recipients")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut details = n.text.clone();
    for (k, v) in &n.fields {
        details.push_str(&format!("\n{k}: {v}"));
    }
    let template = Template::Alert {
        title: n.title.clone(),
        severity: if n.severity == "warn" {
            "warning".into()
        } else {
            n.severity.clone()
        },
        details,
        link: n.link.clone(),
    };
    for to in &recipients {
        state.mailer.send_template(to, &template);
    }
    Outcome {
        ok: !recipients.is_empty(),
        body: format!(
            "handed to the panel's mailer for {} recipient(s)",
            recipients.len()
        ),
        error: recipients.is_empty().then(|| "no recipients".to_owned()),
        ..Outcome::default()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn severity_label(severity: &str) -> &str {
    match severity {
        "critical" => "CRITICAL",
        "warn" => "WARNING",
        "resolved" => "RESOLVED",
        _ => "INFO",
    }
}

/// Discord: `{"content", "embeds": [...]}` (execute-webhook).
#[must_use]
pub fn discord(n: &Notification) -> Value {
    let color = match n.severity.as_str() {
        "critical" => 0x00E0_1E5A,
        "warn" => 0x00F1_C40F,
        "resolved" => 0x002E_CC71,
        _ => 0x0034_98DB,
    };
    let fields: Vec<Value> = n
        .fields
        .iter()
        .take(25)
        .map(|(k, v)| json!({"name": truncate(k, 256), "value": truncate(v, 1024), "inline": true}))
        .collect();
    let mut embed = json!({
        "title": truncate(&n.title, 256),
        "description": truncate(&n.text, 4096),
        "color": color,
        "fields": fields,
        "footer": {"text": format!("Shardlyn · {}", severity_label(&n.severity))},
    });
    if let Some(link) = &n.link {
        embed["url"] = json!(link);
    }
    json!({
        "content": truncate(&format!("**[{}]** {}", severity_label(&n.severity), n.title), 2000),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack: `{"text", "blocks"}` (incoming webhook, Block Kit).
#[must_use]
pub fn slack(n: &Notification) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&n.title, 150), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&slack_escape(&n.text), 3000)}}),
    ];
    if !n.fields.is_empty() {
        let fields: Vec<Value> = n
            .fields
            .iter()
            .take(10)
            .map(|(k, v)| {
                json!({"type": "mrkdwn", "text": truncate(&format!("*{}*\n{}", slack_escape(k), slack_escape(v)), 2000)})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut context = format!("Shardlyn · {}", severity_label(&n.severity));
    if let Some(link) = &n.link {
        context.push_str(&format!(" · <{}|Open in Shardlyn>", slack_escape(link)));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    json!({
        "text": truncate(&format!("[{}] {}: {}", severity_label(&n.severity), n.title, n.text), 3000),
        "blocks": blocks,
    })
}

fn html_escape(s: &str) -> String {
    slack_escape(s).replace('"', "&quot;")
}

/// Telegram Bot API `sendMessage`: `{"chat_id", "text", "parse_mode": "HTML"}`.
#[must_use]
pub fn telegram(n: &Notification, chat_id: &str) -> Value {
    let mut text = format!(
        "<b>[{}] {}</b>\n{}",
        severity_label(&n.severity),
        html_escape(&n.title),
        html_escape(&n.text)
    );
    for (k, v) in &n.fields {
        text.push_str(&format!("\n<b>{}</b>: {}", html_escape(k), html_escape(v)));
    }
    if let Some(link) = &n.link {
        text.push_str(&format!(
            "\n<a href=\"{}\">Open in Shardlyn</a>",
            html_escape(link)
        ));
    }
    json!({
        "chat_id": chat_id,
        "text": truncate(&text, 4096),
        "parse_mode": "HTML",
        "disable_web_page_preview": true,
    })
}

/// Teams Workflows webhook: a message with one Adaptive Card attachment.
#[must_use]
pub fn teams(n: &Notification) -> Value {
    let color = match n.severity.as_str() {
        "critical" => "Attention",
        "warn" => "Warning",
        "resolved" => "Good",
        _ => "Default",
    };
    let mut body = vec![
        json!({"type": "TextBlock", "text": format!("[{}] {}", severity_label(&n.severity), n.title),
               "weight": "Bolder", "size": "Medium", "wrap": true, "color": color}),
        json!({"type": "TextBlock", "text": n.text, "wrap": true}),
    ];
    if !n.fields.is_empty() {
        let facts: Vec<Value> = n
            .fields
            .iter()
            .map(|(k, v)| json!({"title": k, "value": v}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let Some(link) = &n.link {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Open in Shardlyn", "url": link}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// A header value: one line, non-ASCII as an RFC 2047 encoded word (ntfy decodes them).
fn header_text(s: &str) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = truncate(&line, 200);
    if line.is_ascii() {
        line
    } else {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(line.as_bytes()))
    }
}

/// ntfy: `Title`, `Priority`, `Tags` (and `Click` for the link) headers.
#[must_use]
pub fn ntfy_headers(n: &Notification) -> Vec<(String, String)> {
    let (priority, tag) = match n.severity.as_str() {
        "critical" => ("5", "rotating_light"),
        "warn" => ("4", "warning"),
        "resolved" => ("3", "white_check_mark"),
        _ => ("3", "information_source"),
    };
    let mut headers = vec![
        ("title".into(), header_text(&n.title)),
        ("priority".into(), priority.into()),
        ("tags".into(), format!("{tag},shardlyn")),
    ];
    if let Some(link) = &n.link {
        headers.push(("click".into(), header_text(link)));
    }
    headers
}

/// The generic webhook's JSON body.
#[must_use]
pub fn webhook_body(n: &Notification) -> Value {
    let fields: Vec<Value> = n
        .fields
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    json!({
        "type": "notification",
        "timestamp": crate::db::rfc3339(crate::db::now_ms()),
        "data": {
            "key": n.key,
            "title": n.title,
            "text": n.text,
            "severity": n.severity,
            "link": n.link,
            "fields": fields,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (and of its libraries' tests).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retry_after_in_seconds_or_a_date() {
        assert_eq!(parse_retry_after("2"), Some(2000));
        assert_eq!(parse_retry_after("999999"), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(0));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn redaction_hides_path_tokens() {
        let url = "https://api.telegram.org/bot123:SECRET/sendMessage";
        let msg = format!("error sending request for url ({url})");
        let out = redact(&msg, url);
        assert!(!out.contains("SECRET"), "{out}");
    }
}
