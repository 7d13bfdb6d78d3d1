//! The Hetzner Cloud API client of the provider: bearer token, JSON bodies, Hetzner's
//! `{"error": {"code", "message"}}` errors, and actions waited for until they finish.

use std::time::Duration;

use serde_json::Value;
use tf_provider::Diagnostics;

/// Where the API is and how to authenticate (from the provider configuration).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// An error answer of the API, or a transport failure (status 0).
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// Reports the error to Terraform: the summary is Hetzner's message, as the real
    /// provider shows it.
    pub fn report(&self, diags: &mut Diagnostics, doing: &str) {
        diags.root_error(
            format!("{} ({})", self.message, self.code),
            format!(
                "{doing}: the Hetzner Cloud API answered HTTP {} {}",
                self.status, self.code
            ),
        );
    }

    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

impl Api {
    /// A client for `endpoint` (for example `https://api.hetzner.cloud/v1`).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(endpoint: &str, token: &str) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "shardlyn-test-hcloud-provider/",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| transport(&e))?;
        Ok(Self {
            http,
            base: endpoint.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// Sends one request; answers the JSON body (`{}` for 204).
    ///
    /// # Errors
    /// The API's error, or a transport failure.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| transport(&e))?;
        let value: Value = if text.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_str(&text).map_err(|e| ApiError {
                status,
                code: "json_error".into(),
                message: format!("the API answered something that is not JSON: {e}"),
            })?
        };
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(ApiError {
                status,
                code: value["error"]["code"]
                    .as_str()
                    .unwrap_or("unknown_error")
                    .into(),
                message: value["error"]["message"]
                    .as_str()
                    .map_or_else(|| format!("HTTP {status}"), ToString::to_string),
            })
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ApiError> {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Waits until the action (an API `action` object) finishes, as the real provider
    /// does; a failed action is an error carrying the action's own error.
    ///
    /// # Errors
    /// When the action failed or could not be read.
    pub async fn wait(&self, action: &Value) -> Result<(), ApiError> {
        let Some(id) = action["id"].as_u64() else {
            return Ok(());
        };
        let mut current = action.clone();
        for attempt in 0_u32..600 {
            match current["status"].as_str() {
                Some("success") => return Ok(()),
                Some("error") => {
                    return Err(ApiError {
                        status: 200,
                        code: current["error"]["code"]
                            .as_str()
                            .unwrap_or("action_failed")
                            .into(),
                        message: current["error"]["message"]
                            .as_str()
                            .unwrap_or("the action failed")
                            .into(),
                    });
                }
                _ => {}
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            current = self.get(&format!("/actions/{id}")).await?["action"].clone();
        }
        Err(ApiError {
            status: 0,
            code: "timeout".into(),
            message: format!("action {id} did not finish"),
        })
    }

    /// Waits for every action of a list (`actions`, `next_actions`).
    ///
    /// # Errors
    /// When one failed.
    pub async fn wait_all(&self, actions: &Value) -> Result<(), ApiError> {
        for action in actions.as_array().into_iter().flatten() {
            self.wait(action).await?;
        }
        Ok(())
    }
}

fn transport(e: &reqwest::Error) -> ApiError {
    ApiError {
        status: 0,
        code: "transport_error".into(),
        message: format!("cannot reach the Hetzner Cloud API: {e}"),
    }
}
