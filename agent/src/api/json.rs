//! `AgentJson`: the `Json` extractor with bad bodies answered in the error envelope.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body; a malformed or mistyped one is a 400 (415 without the content type) with
/// [`ApiError`].
pub struct AgentJson<T>(pub T);

impl<T, S> FromRequest<S> for AgentJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => {
                let (status, code) = match rejection.status() {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
                    }
                    StatusCode::PAYLOAD_TOO_LARGE => {
                        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
                    }
                    _ => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}
