//! Stripe's error answers: `{"error": {"type", "message", "code"?, "param"?}}` with the
//! status Stripe uses for each kind (400 invalid request, 401 no or wrong key, 402 card
//! errors, 404 missing objects, 409 concurrent idempotent requests).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// One error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    /// 400 `parameter_missing`.
    pub fn missing(param: &str) -> Self {
        Self {
            code: Some("parameter_missing"),
            ..Self::invalid(format!("Missing required param: {param}."), Some(param))
        }
    }

    /// 400 `parameter_unknown`.
    pub fn unknown(param: &str) -> Self {
        Self {
            code: Some("parameter_unknown"),
            ..Self::invalid(format!("Received unknown parameter: {param}"), Some(param))
        }
    }

    /// 404 `resource_missing`: "No such customer: 'cus_x'".
    pub fn no_such(what: &str, id: &str, param: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: Some("resource_missing"),
            ..Self::invalid(format!("No such {what}: '{id}'"), Some(param))
        }
    }

    /// 400 (or 409 while the first request runs) `idempotency_error`.
    pub fn idempotency(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            kind: "idempotency_error",
            code: None,
            message: message.into(),
            param: None,
        }
    }

    /// 401: no key or a wrong one.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            ..Self::invalid(message, None)
        }
    }

    /// Any status as `api_error` (Stripe's own failures).
    pub fn api(status: StatusCode) -> Self {
        Self {
            status,
            kind: "api_error",
            code: None,
            message: "An unknown error occurred (the fake was told to fail).".into(),
            param: None,
        }
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
