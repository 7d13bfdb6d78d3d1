//! GitHub login, GitHub's web application flow with PKCE:
//!
//! 1. `GET /v1/auth/github` stores a random `state` (hashed, 10 minutes, single use) bound
//!    to this browser by an HttpOnly cookie (its hash is stored with the state) and a
//!    PKCE verifier (sealed), then redirects to GitHub with the S256 challenge.
//! 2. `GET /v1/auth/github/callback?code=&state=` checks the state against the cookie,
//!    trades the code (and verifier) for a token, reads `/user` and `/user/emails`, and
//!    finds, links or creates the user (see [`account`]). No token travels in a URL: the
//!    browser is sent to `github.success_redirect` with `#github_code=...`, a single-use
//!    code valid one minute.
//! 3. `POST /v1/auth/github/exchange {"code"}` trades that code for the login answer of
//!    `POST /v1/auth/login`: the token pair, or `mfa_required` and a challenge for users
//!    with MFA.

mod account;
pub mod client;
mod store;

use axum::Extension;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::crypto::{digest_eq, random_hex, sha256_hex};
use super::extract::ClientMeta;
use super::login::LoginResponse;
use super::mfa;
use super::sessions::{self, ClientInfo};
use crate::audit::{self, AuditSlot};
use crate::db::now_ms;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::sealed;
use crate::state::AppState;
use crate::users::store as users;
use client::GithubClient;

/// Seconds an authorization attempt (state + cookie) lives.
const STATE_TTL_SECS: i64 = 600;
/// Seconds the code handed to the web UI lives.
const LOGIN_CODE_TTL_SECS: i64 = 60;
/// The cookie binding a state to the browser that started the login.
const COOKIE_NAME: &str = "shardlyn_github_oauth";
const COOKIE_PATH: &str = "/v1/auth/github";
/// Prefix of the single-use codes of step 3.
const LOGIN_CODE_PREFIX: &str = "shardlyn_ghc_";

fn client(state: &AppState) -> AppResult<&GithubClient> {
    state.github.as_ref().ok_or_else(|| {
        AppError::coded(
            StatusCode::NOT_FOUND,
            "GITHUB_NOT_CONFIGURED",
            "GitHub login is not configured on this panel",
        )
    })
}

fn redirect_uri(state: &AppState) -> String {
    let configured = &state.config.github.redirect_url;
    if configured.is_empty() {
        format!("{}/v1/auth/github/callback", state.base_url())
    } else {
        configured.clone()
    }
}

fn invalid_state() -> AppError {
    AppError::coded(
        StatusCode::BAD_REQUEST,
        "INVALID_OAUTH_STATE",
        "this GitHub login is unknown, expired, already used or was started in another browser: start again",
    )
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> AppResult<HeaderValue> {
    let secure = if state.base_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .map_err(|e| AppError::Internal(e.into()))
}

/// The value of our cookie in the request, if any.
fn browser_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value)
}

fn redirect(location: &str, set_cookie: HeaderValue) -> AppResult<Response> {
    let location = HeaderValue::from_str(location).map_err(|e| AppError::Internal(e.into()))?;
    Ok((
        StatusCode::FOUND,
        [
            (LOCATION, location),
            (SET_COOKIE, set_cookie),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                axum::http::header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response())
}

/// `GET /v1/auth/github`: starts a login and redirects to GitHub.
pub async fn start(State(state): State<AppState>) -> AppResult<Response> {
    let github = client(&state)?;
    let browser = random_hex(32);
    let state_token = random_hex(32);
    // RFC 7636: a 43-character verifier from 32 random bytes; challenge = BASE64URL(SHA256).
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    store::purge_expired(&state.db.pool).await?;
    store::insert_state(
        &state.db.pool,
        &sha256_hex(&state_token),
        &sha256_hex(&browser),
        &sealed::seal(&state.master_key, verifier.as_bytes()),
        now_ms() + STATE_TTL_SECS * 1000,
    )
    .await?;
    let location = github.authorize_url(&redirect_uri(&state), &state_token, &challenge);
    redirect(&location, cookie(&state, &browser, STATE_TTL_SECS)?)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /v1/auth/github/callback`: completes the authorization and hands the web UI a
/// single-use login code.
pub async fn callback(
    State(state): State<AppState>,
    ClientMeta(client_info): ClientMeta,
    headers: HeaderMap,
    AppQuery(query): AppQuery<CallbackQuery>,
) -> AppResult<Response> {
    let github = client(&state)?;
    let state_token = query
        .state
        .filter(|s| !s.is_empty())
        .ok_or_else(invalid_state)?;
    let browser = browser_cookie(&headers).ok_or_else(invalid_state)?;
    let pending = store::find_state(&state.db.pool, &sha256_hex(&state_token))
        .await?
        .ok_or_else(invalid_state)?;
    if pending.used
        || pending.expires_at <= now_ms()
        || !digest_eq(&pending.browser_hash, &sha256_hex(browser))
    {
        return Err(invalid_state());
    }
    if query.error.is_some() {
        return Err(AppError::coded(
            StatusCode::FORBIDDEN,
            "GITHUB_DENIED",
            "the authorization was declined on GitHub",
        ));
    }
    let code = query
        .code
        .filter(|c| !c.is_empty() && c.len() <= 512)
        .ok_or_else(|| AppError::BadRequest("missing code".into()))?;
    if !store::claim_state(&state.db.pool, &pending.id).await? {
        return Err(invalid_state());
    }
    let result = complete(&state, github, &code, &pending.sealed_verifier).await;
    record(&state, &client_info, &result).await;
    let (user, _) = result?;
    let login_code = format!("{LOGIN_CODE_PREFIX}{}", random_hex(32));
    store::insert_login_code(
        &state.db.pool,
        &user.id,
        &sha256_hex(&login_code),
        now_ms() + LOGIN_CODE_TTL_SECS * 1000,
    )
    .await?;
    let target = &state.config.github.success_redirect;
    let separator = if target.contains('#') { '&' } else { '#' };
    redirect(
        &format!("{target}{separator}github_code={login_code}"),
        cookie(&state, "", 0)?,
    )
}

/// Steps of the callback after the state was claimed: token, profile, account.
async fn complete(
    state: &AppState,
    github: &GithubClient,
    code: &str,
    sealed_verifier: &str,
) -> AppResult<(users::User, account::Outcome)> {
    let verifier = String::from_utf8(sealed::open(&state.master_key, sealed_verifier)?)
        .map_err(|e| AppError::Internal(e.into()))?;
    let token = github
        .exchange_code(code, &redirect_uri(state), &verifier)
        .await?;
    let gh = github.user(&token).await?;
    let (user, outcome) = account::resolve(state, &gh).await?;
    if user.suspended {
        return Err(AppError::Forbidden("account suspended".into()));
    }
    Ok((user, outcome))
}

/// The callback is a GET, which the audit middleware skips: it records its outcome here.
async fn record(
    state: &AppState,
    client_info: &ClientInfo,
    result: &AppResult<(users::User, account::Outcome)>,
) {
    let (actor, action, status) = match result {
        Ok((user, outcome)) => (Some(user), outcome.action(), StatusCode::FOUND),
        Err(err) => (None, "auth.github.callback", err.status()),
    };
    let entry = audit::store::NewEntry {
        actor_id: actor.map(|u| u.id.clone()),
        actor_email: actor.map(|u| u.email.clone()),
        action: action.into(),
        method: "GET".into(),
        path: "/v1/auth/github/callback".into(),
        target: actor.map(|u| u.id.clone()),
        ip: client_info.ip.clone(),
        status: i64::from(status.as_u16()),
        result: if result.is_ok() { "success" } else { "failure" },
    };
    match audit::store::insert(&state.db.pool, &entry).await {
        Ok(stored) => audit::published(state, stored).await,
        Err(err) => tracing::error!(error = %err, "writing audit log entry"),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ExchangeRequest {
    code: String,
}

/// `POST /v1/auth/github/exchange`: the login code of the callback for the login answer.
pub async fn exchange(
    State(state): State<AppState>,
    ClientMeta(client_info): ClientMeta,
    audit: Option<Extension<AuditSlot>>,
    AppJson(body): AppJson<ExchangeRequest>,
) -> AppResult<AppJson<LoginResponse>> {
    client(&state)?;
    let invalid = || AppError::unauthorized("invalid, expired or already used GitHub login code");
    let code = body.code.trim();
    if !code.starts_with(LOGIN_CODE_PREFIX) || code.len() > 128 {
        return Err(invalid());
    }
    let user_id = store::claim_login_code(&state.db.pool, &sha256_hex(code))
        .await?
        .ok_or_else(invalid)?;
    let user = users::find(&state.db.pool, &user_id)
        .await?
        .ok_or_else(invalid)?;
    if let Some(Extension(slot)) = &audit {
        slot.set_actor(&user.id, &user.email);
    }
    if user.suspended {
        return Err(AppError::Forbidden("account suspended".into()));
    }
    if user.mfa_enabled {
        if let Some(Extension(slot)) = &audit {
            slot.set_action("auth.login.mfa_challenge", Some(&user.id));
        }
        return Ok(AppJson(LoginResponse::Mfa(
            mfa::issue_challenge(&state, &user.id).await?,
        )));
    }
    if let Some(Extension(slot)) = &audit {
        slot.set_action("auth.login", Some(&user.id));
    }
    Ok(AppJson(LoginResponse::Tokens(
        sessions::start(&state, &user.id, &client_info).await?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; shardlyn_github_oauth=abc; b=2"),
        );
        assert_eq!(browser_cookie(&headers), Some("abc"));
        headers.insert(COOKIE, HeaderValue::from_static("shardlyn_github_oauth="));
        assert_eq!(browser_cookie(&headers), None);
    }
}
