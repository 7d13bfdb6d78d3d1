//! Pages call the `/v1` API in-process: a request is built as the browser's JavaScript
//! would send it (JSON, bearer token) and handed to the API's router with its whole
//! middleware stack, so authorization, validation, rate limits and the audit log are the
//! API's own. The browser's address, `X-Forwarded-For` and user agent are passed along,
//! so sessions, rate limits and audit entries see the real client.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shardlyn_proto::ErrorBody;
use tower::ServiceExt;

use super::WebState;
use super::error::{WebError, WebResult};
use super::session::Browser;
use crate::error::AppError;

/// Largest API answer a page reads.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

impl WebState {
    /// Calls the API: `method path` with `token` as bearer and `body` as JSON. The answer
    /// is read as the API's own response type `T` (the type the handler answers with), so
    /// a page never picks fields by name; `serde::de::IgnoredAny` for an answer the page
    /// does not show. The API's error (status, code, message) otherwise.
    ///
    /// # Errors
    /// The API's error, or 500 if the call failed or answered another shape.
    pub async fn fetch<T: DeserializeOwned, B: Serialize>(
        &self,
        browser: &Browser,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> WebResult<T> {
        let bytes = self.send(browser, method, path, token, body).await?;
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes).map_err(|e| {
            WebError::from(AppError::Internal(anyhow::anyhow!(
                "{path} answered a shape its type does not read: {e}"
            )))
        })
    }

    /// A file the API serves (a download), streamed to the browser as it arrives with its
    /// `Content-Type` and `Content-Disposition`, however large; the API's error
    /// otherwise.
    ///
    /// # Errors
    /// The API's error, or 500 if the call failed.
    pub async fn download(
        &self,
        browser: &Browser,
        path: &str,
        token: &str,
    ) -> WebResult<axum::response::Response> {
        let response = self
            .dispatch(browser, Method::GET, path, Some(token), None::<&()>)
            .await?;
        let status = response.status();
        if !status.is_success() {
            let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
                .await
                .unwrap_or_default();
            return Err(error_of(status, &bytes));
        }
        let (parts, body) = response.into_parts();
        let mut out = axum::response::Response::new(body);
        for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
            if let Some(value) = parts.headers.get(&name) {
                out.headers_mut().insert(name, value.clone());
            }
        }
        out.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        Ok(out)
    }

    /// The raw answer of a successful call; the API's error otherwise.
    async fn send<B: Serialize>(
        &self,
        browser: &Browser,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> WebResult<axum::body::Bytes> {
        let internal = |e: anyhow::Error| WebError::from(AppError::Internal(e));
        let response = self.dispatch(browser, method, path, token, body).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
            .await
            .map_err(|e| internal(anyhow::anyhow!("reading the API answer: {e}")))?;
        if !status.is_success() {
            return Err(error_of(status, &bytes));
        }
        Ok(bytes)
    }

    /// Hands `method path` to the API's router as the browser's call; its answer.
    async fn dispatch<B: Serialize>(
        &self,
        browser: &Browser,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> WebResult<axum::response::Response> {
        let internal = |e: anyhow::Error| WebError::from(AppError::Internal(e));
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "application/json");
        for name in [header::USER_AGENT.as_str(), "x-forwarded-for"] {
            if let Some(value) = browser.headers.get(name) {
                req = req.header(name, value);
            }
        }
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(json).map_err(|e| internal(e.into()))?)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).map_err(|e| internal(e.into()))?;
        if let Some(peer) = browser.peer {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        self.api
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| internal(anyhow::anyhow!("{e}")))
    }
}

/// The API's error envelope as a page error.
fn error_of(status: StatusCode, body: &[u8]) -> WebError {
    if status.is_server_error() {
        // The API logged it; the page shows no detail.
        return WebError::new(status, "INTERNAL_ERROR", "something went wrong on our side");
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => WebError {
            field: e.field.flatten(),
            ..WebError::new(status, &e.code, &e.error)
        },
        Err(_) => WebError::new(
            status,
            "ERROR",
            status.canonical_reason().unwrap_or("request failed"),
        ),
    }
}

/// Whether `id` can be put in an API path as it is (ids are UUIDs; anything else is a
/// page that does not exist).
#[must_use]
pub fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_they_reach_a_path() {
        assert!(is_plain_id("0193e0c4-6f1e-7b3a-9d8e-1a2b3c4d5e6f"));
        assert!(!is_plain_id(""));
        assert!(!is_plain_id("x?y=1"));
        assert!(!is_plain_id("../admin"));
        assert!(!is_plain_id(&"a".repeat(65)));
    }

    #[test]
    fn api_errors_keep_their_code() {
        let e = error_of(
            StatusCode::NOT_FOUND,
            br#"{"error": "instance not found", "code": "NOT_FOUND"}"#,
        );
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::NOT_FOUND, "NOT_FOUND")
        );
        let e = error_of(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.code, "INTERNAL_ERROR");
    }
}
