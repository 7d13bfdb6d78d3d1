//! Web sessions. Signing in through a page starts a normal API session (a refresh-token
//! family, see `auth::sessions`); the browser keeps the session id sealed (AES-256-GCM
//! under the master key) in an `HttpOnly; SameSite=Lax` cookie, `Secure` unless the
//! panel is plain HTTP on loopback. A request with that cookie acts as the session: pages
//! mint a 15-minute access token for it to call the API, and the session's revocation
//! (logout, password reset, suspension) ends it.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};

use super::error::{WebError, WebResult};
use crate::auth::extract::{CurrentUser, authenticate_token};
use crate::db::now_ms;
use crate::error::AppError;
use crate::sealed;
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "shardlyn_session";
/// Sealed cookie values start with this, so no other sealed value passes for one.
const SEAL_CONTEXT: &str = "shardlyn-web-session:";
/// How often, at most, a web request refreshes the session's `last_seen_at` (ms).
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

/// The parts of a browser's request that web handlers use: its headers (cookies, user
/// agent, `Origin`...) and its peer address, forwarded to the API.
#[derive(Debug, Clone)]
pub struct Browser {
    pub headers: HeaderMap,
    pub peer: Option<SocketAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Browser {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::from_parts(parts))
    }
}

impl Browser {
    /// The browser's side of `parts`.
    #[must_use]
    pub fn from_parts(parts: &Parts) -> Self {
        Self {
            headers: parts.headers.clone(),
            peer: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr),
        }
    }

    /// The value of cookie `name`, if the browser sent a non-empty one.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(_, v)| v)
    }

    /// A header as text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The signed-in user of a web request and an access token of their session.
#[derive(Debug, Clone)]
pub struct WebUser {
    pub current: CurrentUser,
    /// A fresh access token of the session, for calls to the API.
    pub access: String,
}

fn is_loopback_host(host: &str) -> bool {
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether cookies need `Secure`: always, except for a panel served over plain HTTP on
/// loopback (development, `shardlyn up`).
#[must_use]
pub fn secure_cookies(base_url: &str) -> bool {
    match base_url.strip_prefix("http://") {
        Some(rest) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            !is_loopback_host(authority)
        }
        None => true,
    }
}

/// A `Set-Cookie` value with the panel's flags; `max_age` `None` for a browser-session
/// cookie, `Some(0)` to delete it.
///
/// # Errors
/// A value that is not a valid header (never for our hex and base64 values).
pub fn cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> WebResult<HeaderValue> {
    let secure = if secure_cookies(&state.base_url()) {
        "; Secure"
    } else {
        ""
    };
    let max_age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{max_age}{secure}"
    ))
    .map_err(|e| WebError::from(AppError::Internal(e.into())))
}

/// The session cookie for the session of `access_token` (a token just issued by the
/// API's login, bootstrap or MFA challenge).
///
/// # Errors
/// A token that does not verify (not expected: the API just issued it).
pub fn start_cookie(state: &AppState, access_token: &str) -> WebResult<HeaderValue> {
    let claims = state.jwt.verify(access_token)?;
    let value = sealed::seal(
        &state.master_key,
        format!("{SEAL_CONTEXT}{}", claims.sid).as_bytes(),
    );
    cookie(
        state,
        SESSION_COOKIE,
        &value,
        Some(state.config.auth.refresh_ttl_secs),
    )
}

/// The `Set-Cookie` that deletes the session cookie.
///
/// # Errors
/// As [`cookie`].
pub fn clear_cookie(state: &AppState) -> WebResult<HeaderValue> {
    cookie(state, SESSION_COOKIE, "", Some(0))
}

/// The session id sealed in a cookie value, if it opens under our key.
fn open(state: &AppState, value: &str) -> Option<String> {
    let plain = sealed::open(&state.master_key, value).ok()?;
    let plain = String::from_utf8(plain).ok()?;
    plain.strip_prefix(SEAL_CONTEXT).map(str::to_owned)
}

/// The signed-in user of this browser: `None` without a cookie, or when its session was
/// revoked, expired, or its user suspended.
///
/// # Errors
/// Database failures.
pub async fn current(state: &AppState, browser: &Browser) -> WebResult<Option<WebUser>> {
    let Some(session_id) = browser
        .cookie(SESSION_COOKIE)
        .and_then(|value| open(state, value))
    else {
        return Ok(None);
    };
    let now = now_ms();
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT user_id, last_seen_at FROM sessions \
         WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(&session_id)
    .bind(now)
    .fetch_optional(&state.db.pool)
    .await
    .map_err(AppError::from)?;
    let Some((user_id, last_seen_at)) = row else {
        return Ok(None);
    };
    let access = state.jwt.issue(&user_id, &session_id)?;
    let current = match authenticate_token(state, &access).await {
        Ok(current) => current,
        Err(AppError::Unauthorized(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    if now - last_seen_at >= LAST_SEEN_RESOLUTION_MS {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&session_id)
            .execute(&state.db.pool)
            .await
            .map_err(AppError::from)?;
    }
    Ok(Some(WebUser { current, access }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_except_on_plain_loopback() {
        assert!(!secure_cookies("http://127.0.0.1:8080"));
        assert!(!secure_cookies("http://localhost:8080"));
        assert!(!secure_cookies("http://[::1]:8080/"));
        assert!(secure_cookies("http://10.0.0.5:8080"));
        assert!(secure_cookies("http://panel.example.com"));
        assert!(secure_cookies("https://127.0.0.1:8443"));
        assert!(secure_cookies("https://panel.example.com"));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; shardlyn_session=abc+/=; empty="),
        );
        let b = Browser {
            headers,
            peer: None,
        };
        assert_eq!(b.cookie(SESSION_COOKIE), Some("abc+/="));
        assert_eq!(b.cookie("a"), Some("1"));
        assert_eq!(b.cookie("empty"), None);
        assert_eq!(b.cookie("missing"), None);
    }
}
