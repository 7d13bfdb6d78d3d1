//! CSRF protection of every state-changing web request: a double-submit token. A random
//! token lives in the `HttpOnly` cookie `shardlyn_csrf`; pages render it into each form
//! (`csrf_token`) and into `<meta name="csrf-token">` for `fetch` (header
//! `X-CSRF-Token`). A POST passes when the submitted token equals the cookie (compared in
//! constant time) and the request is not cross-site (`Origin`, `Sec-Fetch-Site`). The
//! token is replaced at sign-in, so one planted before it is of no use after.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use super::WebState;
use super::error::{WebError, WebResult};
use super::session::{self, Browser};
use crate::auth::crypto::{digest_eq, random_hex};
use crate::state::AppState;

/// The CSRF cookie.
pub const COOKIE: &str = "shardlyn_csrf";
/// The form field carrying the token.
pub const FIELD: &str = "csrf_token";
/// The header carrying the token on `fetch` requests.
pub const HEADER: &str = "x-csrf-token";

fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The browser's token, or a new one and the `Set-Cookie` that stores it.
///
/// # Errors
/// As [`session::cookie`].
pub fn token(state: &AppState, browser: &Browser) -> WebResult<(String, Option<HeaderValue>)> {
    match browser.cookie(COOKIE).filter(|t| well_formed(t)) {
        Some(token) => Ok((token.to_owned(), None)),
        None => fresh(state),
    }
}

/// A new token and its `Set-Cookie` (at sign-in).
///
/// # Errors
/// As [`session::cookie`].
pub fn fresh(state: &AppState) -> WebResult<(String, Option<HeaderValue>)> {
    let token = random_hex(32);
    let cookie = session::cookie(state, COOKIE, &token, None)?;
    Ok((token, Some(cookie)))
}

/// Whether the request comes from another site: an `Origin` whose host is not the
/// request's `Host`, or `Sec-Fetch-Site: cross-site` / `same-site`.
fn cross_site(browser: &Browser) -> bool {
    let site = browser.header("sec-fetch-site");
    if site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return true;
    }
    match (browser.header("origin"), browser.header("host")) {
        // An opaque origin (a strict referrer policy, a sandbox): `Sec-Fetch-Site`, when
        // sent, already decided; without it there is nothing to vouch for the request.
        (Some("null"), _) => site.is_none(),
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
            !authority.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Checks a submitted token against the browser's cookie and the request's origin.
///
/// # Errors
/// 403 `CSRF_FAILED`.
pub fn check(browser: &Browser, submitted: Option<&str>) -> WebResult<()> {
    let cookie = browser.cookie(COOKIE).filter(|t| well_formed(t));
    match (cookie, submitted) {
        (Some(cookie), Some(submitted)) if digest_eq(cookie, submitted) && !cross_site(browser) => {
            Ok(())
        }
        _ => Err(WebError::csrf()),
    }
}

/// A form POST that passed the CSRF check, with its fields as `T`.
#[derive(Debug)]
pub struct CsrfForm<T> {
    pub browser: Browser,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<WebState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, WebError> {
        let (parts, body) = req.into_parts();
        let browser = Browser::from_parts(&parts);
        let req = Request::from_parts(parts, body);
        // The token is checked before the fields: a post without it is a 403 whatever
        // else it carries.
        let fields = Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map(|Form(f)| f)
            .unwrap_or_default();
        check(&browser, fields.get(FIELD).map(String::as_str))?;
        let object = fields
            .into_iter()
            .filter(|(name, _)| name != FIELD)
            .map(|(name, value)| (name, serde_json::Value::String(value)))
            .collect();
        let form = serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| {
            WebError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("invalid form: {e}"),
            )
        })?;
        Ok(Self { browser, form })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, header};

    use super::*;

    fn browser(pairs: &[(&'static str, &'static str)]) -> Browser {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        Browser {
            headers,
            peer: None,
        }
    }

    const T: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const COOKIE_T: &str =
        "shardlyn_csrf=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_token_must_match_the_cookie() {
        let b = browser(&[(header::COOKIE.as_str(), COOKIE_T)]);
        assert!(check(&b, Some(T)).is_ok());
        assert!(check(&b, None).is_err());
        assert!(check(&b, Some("")).is_err());
        assert!(check(&b, Some(&T.replace('0', "1"))).is_err());
        assert!(check(&browser(&[]), Some(T)).is_err(), "no cookie");
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let same = browser(&[
            (header::COOKIE.as_str(), COOKIE_T),
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(check(&same, Some(T)).is_ok());
        let other = browser(&[
            (header::COOKIE.as_str(), COOKIE_T),
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(check(&other, Some(T)).is_err());
        let opaque = browser(&[(header::COOKIE.as_str(), COOKIE_T), ("origin", "null")]);
        assert!(check(&opaque, Some(T)).is_err());
        let opaque_same = browser(&[
            (header::COOKIE.as_str(), COOKIE_T),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(check(&opaque_same, Some(T)).is_ok());
        let fetch_site = browser(&[
            (header::COOKIE.as_str(), COOKIE_T),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(check(&fetch_site, Some(T)).is_err());
    }
}
