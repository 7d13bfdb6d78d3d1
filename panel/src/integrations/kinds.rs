//! The integration types and their configuration: which fields each has, which of them
//! are secret (sealed, never answered), and the checks a configuration must pass before
//! it is saved. `GET /v1/integrations/types` answers this table as JSON schemas.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{AppError, AppResult};

/// What a configuration field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// An http(s) URL, checked by the outbound guard.
    Url,
    /// One line of text.
    Text,
    /// A list of email addresses.
    Emails,
}

/// One field of a type's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// Sealed at rest and never answered (a masked hint instead).
    pub secret: bool,
    pub help: &'static str,
}

/// One integration type.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub fields: &'static [Field],
}

const fn f(
    name: &'static str,
    label: &'static str,
    kind: FieldKind,
    required: bool,
    secret: bool,
    help: &'static str,
) -> Field {
    Field {
        name,
        label,
        kind,
        required,
        secret,
        help,
    }
}

use FieldKind::{Emails, Text, Url};

/// Every type, in the order they are listed.
pub const KINDS: &[Kind] = &[
    Kind {
        id: "discord",
        name: "Discord",
        description: "A Discord channel webhook: a message with an embed.",
        fields: &[f(
            "webhook_url",
            "Webhook URL",
            Url,
            true,
            true,
            "Channel settings > Integrations > Webhooks > Copy Webhook URL",
        )],
    },
    Kind {
        id: "slack",
        name: "Slack",
        description: "A Slack incoming webhook: a message with Block Kit blocks.",
        fields: &[f(
            "webhook_url",
            "Webhook URL",
            Url,
            true,
            true,
            "https://hooks.slack.com/services/... of an incoming-webhook app",
        )],
    },
    Kind {
        id: "telegram",
        name: "Telegram",
        description: "A Telegram bot posting to a chat through the Bot API (sendMessage).",
        fields: &[
            f(
                "bot_token",
                "Bot token",
                Text,
                true,
                true,
                "The token @BotFather gave, e.g. 123456:ABC-DEF...",
            ),
            f(
                "chat_id",
                "Chat id",
                Text,
                true,
                false,
                "A numeric chat id (-100... for groups and channels) or @channelname",
            ),
        ],
    },
    Kind {
        id: "email",
        name: "Email",
        description: "Email through the panel's mailer (SMTP settings of the panel).",
        fields: &[f(
            "recipients",
            "Recipients",
            Emails,
            true,
            false,
            "Up to 20 addresses",
        )],
    },
    Kind {
        id: "teams",
        name: "Microsoft Teams",
        description: "A Teams Workflows webhook (\"Post to a channel when a webhook request is received\"): an Adaptive Card.",
        fields: &[f(
            "webhook_url",
            "Workflow URL",
            Url,
            true,
            true,
            "The HTTP POST URL of the workflow's webhook trigger",
        )],
    },
    Kind {
        id: "ntfy",
        name: "ntfy",
        description: "An ntfy topic (ntfy.sh or a self-hosted server): a push notification.",
        fields: &[
            f(
                "server_url",
                "Server URL",
                Url,
                false,
                false,
                "Default https://ntfy.sh",
            ),
            f(
                "topic",
                "Topic",
                Text,
                true,
                false,
                "The topic to publish to",
            ),
            f(
                "token",
                "Access token",
                Text,
                false,
                true,
                "For protected topics (sent as a Bearer token)",
            ),
        ],
    },
    Kind {
        id: "webhook",
        name: "Webhook",
        description: "A JSON POST to any URL, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature); the whsec_ signing secret is shown when created or rotated.",
        fields: &[f(
            "url",
            "URL",
            Url,
            true,
            false,
            "Where to POST the JSON notification",
        )],
    },
];

/// The type `id`, if it is one.
#[must_use]
pub fn find(id: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.id == id)
}

/// The JSON schema of a type's configuration (`writeOnly` marks secret fields).
#[must_use]
pub fn schema(kind: &Kind) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in kind.fields {
        let mut p = match field.kind {
            Url => json!({"type": "string", "format": "uri", "maxLength": MAX_URL}),
            Text => json!({"type": "string", "minLength": 1, "maxLength": MAX_TEXT}),
            Emails => json!({
                "type": "array", "minItems": 1, "maxItems": MAX_RECIPIENTS,
                "items": {"type": "string", "format": "email"}
            }),
        };
        p["title"] = json!(field.label);
        p["description"] = json!(field.help);
        if field.secret {
            p["writeOnly"] = json!(true);
        }
        properties.insert(field.name.into(), p);
        if field.required {
            required.push(field.name);
        }
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "required": required,
    })
}

const MAX_URL: usize = 2048;
const MAX_TEXT: usize = 256;
const MAX_RECIPIENTS: usize = 20;

/// A configuration split into its public fields and its secret ones, both checked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parts {
    pub public: Map<String, Value>,
    pub secrets: Map<String, Value>,
}

/// Applies `given` (fields absent keep their `old` value; `null` clears an optional one)
/// to `old` and checks the result against `kind`. Field errors name `config.<field>`.
///
/// # Errors
/// 400 `VALIDATION_ERROR` naming the field: unknown, missing, of the wrong type or shape.
pub fn merge(kind: &Kind, old: &Parts, given: &Map<String, Value>) -> AppResult<Parts> {
    for name in given.keys() {
        if !kind.fields.iter().any(|f| f.name == name) {
            return Err(AppError::invalid_field(
                format!("config.{name}"),
                format!("{} integrations have no field {name}", kind.name),
            ));
        }
    }
    let mut out = Parts::default();
    for field in kind.fields {
        let path = format!("config.{}", field.name);
        let previous = if field.secret {
            old.secrets.get(field.name)
        } else {
            old.public.get(field.name)
        };
        let value = match given.get(field.name) {
            Some(Value::Null) => None,
            Some(v) => Some(check(field, &path, v)?),
            None => previous.cloned(),
        };
        match value {
            Some(v) if field.secret => {
                out.secrets.insert(field.name.into(), v);
            }
            Some(v) => {
                out.public.insert(field.name.into(), v);
            }
            None if field.required => {
                return Err(AppError::invalid_field(
                    path,
                    format!("{} is required", field.label),
                ));
            }
            None => {}
        }
    }
    Ok(out)
}

fn check(field: &Field, path: &str, v: &Value) -> AppResult<Value> {
    let bad = |msg: String| AppError::invalid_field(path, msg);
    match field.kind {
        Url | Text => {
            let Some(s) = v.as_str().map(str::trim) else {
                return Err(bad(format!("{} must be a string", field.label)));
            };
            let max = if field.kind == Url { MAX_URL } else { MAX_TEXT };
            if s.is_empty() {
                return Err(bad(format!("{} must not be empty", field.label)));
            }
            if s.len() > max || s.chars().any(char::is_control) {
                return Err(bad(format!(
                    "{} must be at most {max} characters without control characters",
                    field.label
                )));
            }
            if field.kind == Url {
                let url = reqwest::Url::parse(s)
                    .map_err(|e| bad(format!("{} is not a URL: {e}", field.label)))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(bad(format!("{} must be an http(s) URL", field.label)));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(bad(format!(
                        "{} must not carry a user name or password",
                        field.label
                    )));
                }
            }
            check_text(field.name, s).map_err(bad)?;
            Ok(Value::String(s.to_owned()))
        }
        Emails => {
            let Some(list) = v.as_array() else {
                return Err(bad(format!("{} must be a list of addresses", field.label)));
            };
            if list.is_empty() || list.len() > MAX_RECIPIENTS {
                return Err(bad(format!(
                    "{} must hold 1 to {MAX_RECIPIENTS} addresses",
                    field.label
                )));
            }
            let mut out = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let addr = item.as_str().map(str::trim).unwrap_or_default();
                if !valid_email(addr) {
                    return Err(AppError::invalid_field(
                        format!("{path}[{i}]"),
                        "not an email address",
                    ));
                }
                out.push(Value::String(addr.to_owned()));
            }
            Ok(Value::Array(out))
        }
    }
}

/// Field-specific shapes.
fn check_text(name: &str, s: &str) -> Result<(), String> {
    match name {
        "bot_token" if !s.contains(':') || s.contains(['/', ' ', '?', '#']) => {
            Err("bot_token must look like 123456:ABC-DEF... (the token @BotFather gave)".into())
        }
        "chat_id" => {
            let numeric = s
                .strip_prefix('-')
                .unwrap_or(s)
                .bytes()
                .all(|b| b.is_ascii_digit());
            let channel = s.len() > 1
                && s.starts_with('@')
                && s[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if numeric && !s.trim_start_matches('-').is_empty() || channel {
                Ok(())
            } else {
                Err("chat_id must be a numeric chat id or @channelname".into())
            }
        }
        "topic"
            if s.len() > 64
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Err("topic must be 1 to 64 letters, digits, '_' or '-'".into())
        }
        "token" if s.contains(char::is_whitespace) => Err("token must not contain spaces".into()),
        _ => Ok(()),
    }
}

fn valid_email(s: &str) -> bool {
    s.len() <= 254
        && !s.contains(char::is_whitespace)
        && !s.contains(char::is_control)
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
}

/// A hint of a secret that gives it away no more than its holder needs to recognise it:
/// a URL's scheme and host, or a token's last four characters.
#[must_use]
pub fn hint(field: &Field, value: &Value) -> String {
    let s = value.as_str().unwrap_or_default();
    if field.kind == Url
        && let Ok(url) = reqwest::Url::parse(s)
    {
        return format!(
            "{}://{}/…",
            url.scheme(),
            url.host_str().unwrap_or_default()
        );
    }
    let tail: String = s
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if s.chars().count() > 12 {
        format!("…{tail}")
    } else {
        "…".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_secrets_and_names_fields() {
        let discord = find("discord").expect("discord");
        let parts = merge(
            discord,
            &Parts::default(),
            json!({"webhook_url": "https://discord.com/api/webhooks/1/abc"})
                .as_object()
                .expect("object"),
        )
        .expect("valid");
        assert!(parts.public.is_empty());
        assert_eq!(parts.secrets.len(), 1);
        let kept = merge(discord, &parts, &Map::new()).expect("kept");
        assert_eq!(kept, parts);
        let err = merge(discord, &Parts::default(), &Map::new()).expect_err("required");
        assert!(
            matches!(err, AppError::InvalidField { field: Some(f), .. } if f == "config.webhook_url")
        );
        let err = merge(
            discord,
            &parts,
            json!({"webhook_url": "ftp://x"})
                .as_object()
                .expect("object"),
        )
        .expect_err("scheme");
        assert!(matches!(err, AppError::InvalidField { .. }));
    }

    #[test]
    fn field_shapes() {
        assert!(check_text("chat_id", "-1001234").is_ok());
        assert!(check_text("chat_id", "@my_channel").is_ok());
        assert!(check_text("chat_id", "-").is_err());
        assert!(check_text("chat_id", "12 3").is_err());
        assert!(check_text("bot_token", "123:abc").is_ok());
        assert!(check_text("bot_token", "123/abc").is_err());
        assert!(check_text("topic", "alerts-prod").is_ok());
        assert!(check_text("topic", "a/b").is_err());
        assert!(valid_email("ops@example.com"));
        assert!(!valid_email("ops@example"));
    }

    #[test]
    fn hints_do_not_give_secrets_away() {
        let field = &find("discord").expect("discord").fields[0];
        let h = hint(
            field,
            &json!("https://discord.com/api/webhooks/1/secret-part"),
        );
        assert_eq!(h, "https://discord.com/…");
        let token = &find("telegram").expect("telegram").fields[0];
        assert_eq!(hint(token, &json!("123456:ABCDEFGHIJKLMNOP")), "…MNOP");
        assert_eq!(hint(token, &json!("short")), "…");
    }
}
