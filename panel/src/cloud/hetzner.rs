//! A small Hetzner Cloud API client: a server's status and power actions, and the
//! panel-owned firewall (create, `set_rules`, `apply_to_resources`,
//! `remove_from_resources`, delete). Every call goes through the outbound guard, as
//! `credentials::providers` does; an error answer becomes an [`AppError`] carrying
//! Hetzner's own code and message.
//!
//! Wire format: <https://docs.hetzner.cloud/> (`/servers/{id}`,
//! `/servers/{id}/actions/{poweron,poweroff,shutdown,reboot}`, `/firewalls`,
//! `/firewalls/{id}/actions/*`); errors are `{"error": {"code", "message"}}`.

use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

/// A Hetzner Cloud project, reached with its API token.
pub struct Hetzner<'a> {
    state: &'a AppState,
    base: String,
    token: String,
}

/// What Hetzner said when a call failed.
#[derive(Debug, Clone)]
pub struct HetznerError {
    /// Its HTTP status (none when it could not be reached).
    pub status: Option<u16>,
    /// Its error code (`not_found`, `invalid_input`, `rate_limit_exceeded`...).
    pub code: String,
    pub message: String,
}

impl HetznerError {
    /// Whether the thing the call named does not exist (any more).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404) || self.code == "not_found"
    }

    fn unreachable(message: impl Into<String>) -> Self {
        Self {
            status: None,
            code: String::new(),
            message: message.into(),
        }
    }
}

impl From<HetznerError> for AppError {
    fn from(e: HetznerError) -> Self {
        match e.status {
            None => AppError::coded(
                StatusCode::BAD_GATEWAY,
                "PROVIDER_UNREACHABLE",
                format!("Hetzner Cloud could not be reached: {}", e.message),
            ),
            Some(status) => AppError::coded(
                StatusCode::BAD_GATEWAY,
                "PROVIDER_ERROR",
                format!(
                    "Hetzner Cloud answered {status} ({}): {}",
                    e.code, e.message
                ),
            ),
        }
    }
}

/// An action Hetzner runs (`start_server`, `set_firewall_rules`...), as it answered.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Action {
    pub id: i64,
    pub command: String,
    /// `running`, `success` or `error`.
    pub status: String,
    #[serde(default)]
    pub progress: i64,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub finished: Option<String>,
    #[serde(default)]
    pub error: Option<ActionError>,
    /// What it acts on (`{"id": 42, "type": "server"}`).
    #[serde(default)]
    pub resources: Vec<ActionResource>,
}

/// One thing an action acts on.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionResource {
    pub id: i64,
    /// `server`, `firewall`...
    #[serde(rename = "type")]
    pub kind: String,
}

/// Why an action failed.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionError {
    pub code: String,
    pub message: String,
}

/// One firewall rule in Hetzner's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// `in` (the panel only opens inbound ports).
    pub direction: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `27015` or `27015-27020`.
    pub port: String,
    pub source_ips: Vec<String>,
    #[serde(default)]
    pub destination_ips: Vec<String>,
    pub description: Option<String>,
}

type Outcome<T> = Result<T, HetznerError>;

impl<'a> Hetzner<'a> {
    /// A client of the API at `[cloud] hetzner_api_url` with `token`.
    #[must_use]
    pub fn new(state: &'a AppState, token: String) -> Self {
        Self {
            base: state
                .config
                .cloud
                .hetzner_api_url
                .trim_end_matches('/')
                .to_owned(),
            state,
            token,
        }
    }

    /// Sends one call; a 2xx answer's JSON body, else Hetzner's error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Outcome<Value> {
        let url = format!("{}{path}", self.base);
        let checked = self
            .state
            .config
            .outbound
            .resolve_url(&url)
            .await
            .map_err(|e| HetznerError::unreachable(e.to_string()))?;
        let client = checked
            .pin(reqwest::Client::builder())
            .timeout(Duration::from_secs(
                self.state.config.cloud.timeout_secs.max(1),
            ))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Shardlyn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HetznerError::unreachable(format!("http client: {e}")))?;
        let mut request = client
            .request(method, checked.url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            HetznerError::unreachable(if e.is_timeout() {
                "it did not answer in time"
            } else {
                "the connection failed"
            })
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let text_of = |p: &str| value.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Err(HetznerError {
            status: Some(status),
            code: text_of("/error/code").unwrap_or_else(|| "unknown".into()),
            message: text_of("/error/message").unwrap_or_else(|| text.chars().take(200).collect()),
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(value: &Value, pointer: &str) -> Outcome<T> {
        value
            .pointer(pointer)
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| HetznerError {
                status: Some(200),
                code: "unexpected_answer".into(),
                message: format!("the answer has no {}", pointer.trim_start_matches('/')),
            })
    }

    /// `GET /servers/{id}`: the server's status (`running`, `off`, `starting`,
    /// `stopping`, `initializing`, `rebuilding`, `migrating`, `deleting`, `unknown`).
    ///
    /// # Errors
    /// What Hetzner said (404 for a server that is gone).
    pub async fn server_status(&self, server_id: i64) -> Outcome<String> {
        let v = self
            .call(reqwest::Method::GET, &format!("/servers/{server_id}"), None)
            .await?;
        Self::parse(&v, "/server/status")
    }

    /// `POST /servers/{id}/actions/{action}` (`poweron`, `poweroff`, `shutdown`,
    /// `reboot`): the action Hetzner started.
    ///
    /// # Errors
    /// What Hetzner said.
    pub async fn server_action(&self, server_id: i64, action: &str) -> Outcome<Action> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/servers/{server_id}/actions/{action}"),
                Some(json!({})),
            )
            .await?;
        Self::parse(&v, "/action")
    }

    /// `POST /firewalls` with `rules`, applied to server `server_id`: its id.
    ///
    /// # Errors
    /// What Hetzner said.
    pub async fn create_firewall(
        &self,
        name: &str,
        labels: &Value,
        rules: &[Rule],
        server_id: i64,
    ) -> Outcome<i64> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/firewalls",
                Some(json!({
                    "name": name,
                    "labels": labels,
                    "rules": rules,
                    "apply_to": [{"type": "server", "server": {"id": server_id}}],
                })),
            )
            .await?;
        Self::parse(&v, "/firewall/id")
    }

    /// `POST /firewalls/{id}/actions/set_rules`: the firewall's rules become `rules`.
    ///
    /// # Errors
    /// What Hetzner said (404 for a firewall that is gone).
    pub async fn set_rules(&self, firewall_id: i64, rules: &[Rule]) -> Outcome<Vec<Action>> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/firewalls/{firewall_id}/actions/set_rules"),
                Some(json!({"rules": rules})),
            )
            .await?;
        Ok(Self::parse(&v, "/actions").unwrap_or_default())
    }

    /// `POST /firewalls/{id}/actions/apply_to_resources` for server `server_id`.
    ///
    /// # Errors
    /// What Hetzner said (`firewall_already_applied` is not an error).
    pub async fn apply_to_server(&self, firewall_id: i64, server_id: i64) -> Outcome<()> {
        match self
            .call(
                reqwest::Method::POST,
                &format!("/firewalls/{firewall_id}/actions/apply_to_resources"),
                Some(json!({"apply_to": [{"type": "server", "server": {"id": server_id}}]})),
            )
            .await
        {
            Err(e) if e.code == "firewall_already_applied" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Takes the firewall off server `server_id` and deletes it (Hetzner refuses to
    /// delete a firewall still in use). A firewall already gone is not an error.
    ///
    /// # Errors
    /// What Hetzner said.
    pub async fn delete_firewall(&self, firewall_id: i64, server_id: Option<i64>) -> Outcome<()> {
        if let Some(server_id) = server_id {
            match self
                .call(
                    reqwest::Method::POST,
                    &format!("/firewalls/{firewall_id}/actions/remove_from_resources"),
                    Some(json!({"remove_from": [{"type": "server", "server": {"id": server_id}}]})),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() || e.code == "firewall_already_removed" => {}
                Err(e) => return Err(e),
            }
        }
        match self
            .call(
                reqwest::Method::DELETE,
                &format!("/firewalls/{firewall_id}"),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
