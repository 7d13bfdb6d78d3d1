//! Errors of web routes, rendered as a friendly HTML page that carries the same status
//! and stable error code as the API's JSON envelope.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::error::AppError;

/// A failed page: status, the API's error code, a message safe to show.
#[derive(Debug, Clone, Serialize)]
pub struct WebError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// The input field a `VALIDATION_ERROR` is about, as the API names it (`threshold`,
    /// `variables[3].env_variable`), so a form can show the message next to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl WebError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            field: None,
        }
    }

    /// 404 for a page that does not exist.
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "there is no page at this address",
        )
    }

    /// 403 for a POST without a valid CSRF token.
    #[must_use]
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "CSRF_FAILED",
            "this form is missing its security token or it expired: reload the page and try again",
        )
    }
}

impl From<AppError> for WebError {
    fn from(err: AppError) -> Self {
        if let AppError::Internal(e) = &err {
            // Logged once, here at the boundary; the page shows no detail.
            tracing::error!(error = ?e, "web request failed");
        }
        let message = match &err {
            AppError::Internal(_) => "something went wrong on our side".to_owned(),
            other => other.to_string(),
        };
        let field = match &err {
            AppError::InvalidField { field, .. } | AppError::Unprocessable { field, .. } => {
                field.clone()
            }
            _ => None,
        };
        Self {
            status: err.status(),
            code: err.code().to_owned(),
            message,
            field,
        }
    }
}

/// The page's title for a status.
fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad request",
        401 => "Sign-in needed",
        403 => "Not allowed",
        404 => "Page not found",
        409 => "Conflict",
        429 => "Slow down",
        503 => "Unavailable",
        s if s >= 500 => "Something went wrong",
        _ => "Request failed",
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let html = super::templates::render_error(
            self.status.as_u16(),
            title(self.status),
            &self.code,
            &self.message,
        );
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response()
    }
}

/// Result of web handlers.
pub type WebResult<T> = Result<T, WebError>;
