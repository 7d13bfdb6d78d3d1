//! One error type for every handler, rendered as the contract's JSON envelope
//! `{"error": "...", "code": "..."}`; plus the `AppJson` extractor so malformed bodies
//! get the same envelope.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shardlyn_proto::ErrorBody;

/// Every failure a request can end in.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("too many requests, retry in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error("too many failed logins: account locked, retry in {retry_after} seconds")]
    AccountLocked { retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// A 400 `VALIDATION_ERROR` about one field of the input; the envelope gains
    /// `"field"` (a JSON path such as `variables[3].env_variable`, or null for the
    /// document as a whole) so a form can show the message next to the field.
    #[error("{message}")]
    InvalidField {
        field: Option<String>,
        message: String,
    },
    /// A TOTP or recovery code that was wrong, already used or malformed: 400 while
    /// managing MFA, 401 when completing a login challenge.
    #[error("invalid authentication code")]
    InvalidMfaCode { login: bool },
    /// A 422 `VALIDATION_ERROR`: well-formed input the resource cannot accept (an egg
    /// variable failing its rules, a limit out of range). `field` names it, as above.
    #[error("{message}")]
    Unprocessable {
        field: Option<String>,
        message: String,
    },
    /// 402 `PLAN_LIMIT`: the organization's plan does not allow the change; the
    /// envelope gains `limit` (which one), `usage` (what is used now) and `cap`.
    #[error("{message}")]
    PlanLimit {
        limit: &'static str,
        usage: i64,
        cap: i64,
        message: String,
    },
    /// Any status with a specific stable code, e.g. 409 `PORT_IN_USE`.
    #[error("{message}")]
    Coded {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl AppError {
    /// The HTTP status of this error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_)
            | Self::Validation(_)
            | Self::InvalidToken(_)
            | Self::InvalidField { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } | Self::AccountLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidMfaCode { login: true } => StatusCode::UNAUTHORIZED,
            Self::InvalidMfaCode { login: false } => StatusCode::BAD_REQUEST,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PlanLimit { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::Coded { status, .. } => *status,
        }
    }

    /// The stable code of this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::Validation(_) => "VALIDATION_ERROR",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidToken(_) => "INVALID_TOKEN",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::AccountLocked { .. } => "ACCOUNT_LOCKED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
            Self::InvalidField { .. } => "VALIDATION_ERROR",
            Self::InvalidMfaCode { .. } => "INVALID_MFA_CODE",
            Self::Unprocessable { .. } => "VALIDATION_ERROR",
            Self::PlanLimit { .. } => "PLAN_LIMIT",
            Self::Coded { code, .. } => code,
        }
    }

    /// Shorthand for a 404 naming the missing thing.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// Shorthand for a 400 about `field` (empty for the document as a whole).
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self::InvalidField {
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
        }
    }

    /// Shorthand for a 422 about `field`.
    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self::Unprocessable {
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
        }
    }

    /// Shorthand for an error with its own status and code.
    pub fn coded(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Coded {
            status,
            code,
            message: message.into(),
        }
    }

    /// Shorthand for a 401 with the given reason.
    pub fn unauthorized(why: &str) -> Self {
        Self::Unauthorized(why.to_string())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            return Self::Conflict("a resource with these values already exists".into());
        }
        Self::Internal(err.into())
    }
}

/// A URL the outbound guard refuses: 422 with its code (`OUTBOUND_DENIED`, naming the
/// address, `OUTBOUND_UNRESOLVABLE`, or `VALIDATION_ERROR` for an unusable URL).
impl From<shardlyn_net::outbound::OutboundError> for AppError {
    fn from(err: shardlyn_net::outbound::OutboundError) -> Self {
        Self::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            err.code(),
            err.to_string(),
        )
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(err) = &self {
            // Logged once, here at the boundary; the client sees no detail.
            tracing::error!(error = ?err, "request failed");
        }
        let mut body = ErrorBody::new(self.code(), self.to_string());
        if let Self::InvalidField { field, .. } | Self::Unprocessable { field, .. } = &self {
            body.field = Some(field.clone());
        }
        if let Self::PlanLimit {
            limit, usage, cap, ..
        } = &self
        {
            body.limit = Some((*limit).to_owned());
            body.usage = Some(*usage);
            body.cap = Some(*cap);
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::RateLimited { retry_after } | Self::AccountLocked { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge
            }
            JsonRejection::JsonDataError(e) => Self::BadRequest(format!(
                "invalid request body: {}",
                e.body_text().trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: "
                )
            )),
            JsonRejection::JsonSyntaxError(_) => {
                Self::BadRequest("request body is not valid JSON".into())
            }
            JsonRejection::MissingJsonContentType(_) => {
                Self::BadRequest("expected Content-Type: application/json".into())
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

/// Result alias for handlers.
pub type AppResult<T> = Result<T, AppError>;

/// `Json` whose rejections render as the error envelope.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct AppJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::BadRequest(format!("invalid query string: {}", rejection.body_text()))
    }
}

impl From<axum::extract::rejection::PathRejection> for AppError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::BadRequest(format!("invalid path: {}", rejection.body_text()))
    }
}

/// `Query` whose rejections render as the error envelope.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

/// `Path` whose rejections render as the error envelope.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct AppPath<T>(pub T);
