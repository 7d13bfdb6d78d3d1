//! Typed success answers. A handler says which status it answers with by its return
//! type (`Created<Instance>` is a 201 with an instance, `NoContent` a 204), so the
//! OpenAPI document, built from the same types, states the status the client gets.

use aide::OperationOutput;
use aide::generate::GenContext;
use aide::openapi::{Operation, Response as ApiResponse};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::AppJson;

pub use axum::response::NoContent;

/// `201 Created` with the new resource.
#[derive(Debug)]
pub struct Created<T>(pub T);

/// `202 Accepted`: the work was started (or queued) and goes on after the answer.
#[derive(Debug)]
pub struct Accepted<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, AppJson(self.0)).into_response()
    }
}

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, AppJson(self.0)).into_response()
    }
}

/// The JSON answer of `T` under `status`.
fn json_answer<T: JsonSchema>(
    status: u16,
    ctx: &mut GenContext,
    op: &mut Operation,
) -> Vec<(Option<u16>, ApiResponse)> {
    <AppJson<T> as OperationOutput>::operation_response(ctx, op)
        .map(|r| vec![(Some(status), r)])
        .unwrap_or_default()
}

impl<T: JsonSchema> OperationOutput for Created<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<ApiResponse> {
        <AppJson<T> as OperationOutput>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, ApiResponse)> {
        json_answer::<T>(201, ctx, op)
    }
}

impl<T: JsonSchema> OperationOutput for Accepted<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<ApiResponse> {
        <AppJson<T> as OperationOutput>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, ApiResponse)> {
        json_answer::<T>(202, ctx, op)
    }
}

/// `200 OK` with a `T` already serialized to JSON (a cached answer is sent as it was
/// rendered); the OpenAPI document describes it as `T`.
#[derive(Debug)]
pub struct RenderedJson<T> {
    body: axum::body::Bytes,
    of: std::marker::PhantomData<fn() -> T>,
}

impl<T: Serialize> RenderedJson<T> {
    /// Serializes `value`.
    ///
    /// # Errors
    /// A value serde cannot write as JSON (a bug).
    pub fn render(value: &T) -> Result<Self, crate::error::AppError> {
        let body = serde_json::to_vec(value).map_err(|e| {
            crate::error::AppError::Internal(anyhow::anyhow!("rendering JSON: {e}"))
        })?;
        Ok(Self::from_rendered(body.into()))
    }
}

impl<T> RenderedJson<T> {
    /// A body that [`RenderedJson::render`] wrote.
    #[must_use]
    pub fn from_rendered(body: axum::body::Bytes) -> Self {
        Self {
            body,
            of: std::marker::PhantomData,
        }
    }

    /// The JSON text.
    #[must_use]
    pub fn body(&self) -> &axum::body::Bytes {
        &self.body
    }
}

impl<T> IntoResponse for RenderedJson<T> {
    fn into_response(self) -> Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            self.body,
        )
            .into_response()
    }
}

impl<T: JsonSchema> OperationOutput for RenderedJson<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<ApiResponse> {
        <AppJson<T> as OperationOutput>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, ApiResponse)> {
        <AppJson<T> as OperationOutput>::inferred_responses(ctx, op)
    }
}
