//! The small GitHub client of the web application flow (decision 12): the authorize URL,
//! the code-for-token exchange (with the PKCE verifier) and the `/user` and `/user/emails`
//! reads. Base URLs come from `[github]`, so tests point them at a local fake.
//!
//! GitHub answers a refused token request with `200 OK` and `{"error": ...}`; those are
//! told apart here and never reach the caller as a 500.

use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use reqwest::Url;
use reqwest::header::{ACCEPT, USER_AGENT};
use serde::Deserialize;

use crate::config::GithubConfig;
use crate::error::{AppError, AppResult};

/// Scopes asked for: the profile and the email addresses (with their `verified` flags).
pub const SCOPES: &str = "read:user user:email";
const AGENT: &str = concat!("shardlyn-panel/", env!("CARGO_PKG_VERSION"));

/// A GitHub account as the login needs it.
#[derive(Debug, Clone)]
pub struct GithubUser {
    pub id: String,
    pub login: String,
    pub name: Option<String>,
    pub emails: Vec<GithubEmail>,
}

/// One entry of `GET /user/emails`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct GithubEmail {
    pub email: String,
    #[serde(default)]
    pub verified: bool,
    #[serde(default)]
    pub primary: bool,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct UserAnswer {
    id: u64,
    login: String,
    name: Option<String>,
}

/// Talks to GitHub (or whatever `[github]` points at).
#[derive(Debug, Clone)]
pub struct GithubClient {
    http: reqwest::Client,
    authorize_url: Url,
    token_url: Url,
    api_url: String,
    client_id: String,
    client_secret: crate::config::Secret,
}

fn unavailable(what: &str, err: &dyn std::fmt::Display) -> AppError {
    tracing::warn!(error = %err, "github: {what} failed");
    AppError::coded(
        StatusCode::BAD_GATEWAY,
        "GITHUB_UNAVAILABLE",
        format!("GitHub could not be reached or answered unexpectedly ({what})"),
    )
}

impl GithubClient {
    /// The client for `config`, or `None` when GitHub login is not configured.
    ///
    /// # Errors
    /// A URL of `[github]` that does not parse, or a TLS set-up failure.
    pub fn from_config(config: &GithubConfig) -> anyhow::Result<Option<Self>> {
        if !config.enabled() {
            return Ok(None);
        }
        let parse = |name: &str, url: &str| {
            Url::parse(url).with_context(|| format!("github.{name} is not a valid URL"))
        };
        Url::parse(&config.api_url).context("github.api_url is not a valid URL")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(config.timeout_secs.clamp(1, 10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(AGENT)
            .build()
            .context("building the GitHub HTTP client")?;
        Ok(Some(Self {
            http,
            authorize_url: parse("authorize_url", &config.authorize_url)?,
            token_url: parse("token_url", &config.token_url)?,
            api_url: config.api_url.trim_end_matches('/').to_string(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
        }))
    }

    /// Where to send the browser: GitHub's authorization page with our parameters.
    #[must_use]
    pub fn authorize_url(&self, redirect_uri: &str, state: &str, code_challenge: &str) -> String {
        let mut url = self.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("allow_signup", "true");
        url.into()
    }

    /// Trades the callback's `code` (and the PKCE verifier) for a user access token.
    ///
    /// # Errors
    /// 400 `GITHUB_AUTH_FAILED` when GitHub refuses the code or the verifier; 502
    /// `GITHUB_ERROR` when it refuses the app (credentials, redirect URI); 502
    /// `GITHUB_UNAVAILABLE` on network failures and unexpected answers.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> AppResult<String> {
        let response = self
            .http
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json")
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose()),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| unavailable("token request", &e))?;
        let status = response.status();
        let answer: Option<TokenAnswer> = response.json().await.ok();
        let Some(answer) = answer else {
            return Err(unavailable("token request", &format!("status {status}")));
        };
        if let Some(error) = answer.error {
            let description = answer.error_description.unwrap_or_default();
            tracing::info!(github.error = %error, github.error_description = %description, "github: token request refused");
            // Codes about this authorization (expired, reused, PKCE mismatch) are the
            // user's to retry; the rest mean the app itself is misconfigured.
            let (status, code) = match error.as_str() {
                "bad_verification_code" | "invalid_grant" | "unverified_user_email" => {
                    (StatusCode::BAD_REQUEST, "GITHUB_AUTH_FAILED")
                }
                _ => (StatusCode::BAD_GATEWAY, "GITHUB_ERROR"),
            };
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(AppError::coded(
                status,
                code,
                format!("GitHub refused the login ({error}): start again"),
            ));
        }
        match answer.access_token {
            Some(token) if status.is_success() && !token.is_empty() => Ok(token),
            _ => Err(unavailable("token request", &format!("status {status}"))),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str, token: &str) -> AppResult<T> {
        let response = self
            .http
            .get(format!("{}{path}", self.api_url))
            .bearer_auth(token)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(USER_AGENT, AGENT)
            .send()
            .await
            .map_err(|e| unavailable(path, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(path, &format!("status {status}")));
        }
        response.json().await.map_err(|e| unavailable(path, &e))
    }

    /// The account behind `token`, with its email addresses.
    ///
    /// # Errors
    /// 502 `GITHUB_UNAVAILABLE` on failures and unexpected answers.
    pub async fn user(&self, token: &str) -> AppResult<GithubUser> {
        let user: UserAnswer = self.get("/user", token).await?;
        let emails: Vec<GithubEmail> = self.get("/user/emails", token).await?;
        Ok(GithubUser {
            id: user.id.to_string(),
            login: user.login,
            name: user.name.filter(|n| !n.trim().is_empty()),
            emails,
        })
    }
}
