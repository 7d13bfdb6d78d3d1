//! What the files handlers' types say in the OpenAPI document, though their bodies are
//! relayed byte for byte: [`Relayed`] is the node's JSON answer streamed through,
//! documented as its `shardlyn_proto::files` type; [`Bytes`] a byte answer of one media
//! type; [`Later`] a request body read by the handler after it authorized the caller,
//! documented as the extractor that reads it; [`TextBody`] and [`UploadForm`] the raw
//! bodies of the content write and the multipart upload.

use std::marker::PhantomData;

use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, RequestBody, Response as ApiResponse, SchemaObject};
use aide::operation::set_body;
use aide::{OperationInput, OperationOutput};
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use schemars::{JsonSchema, Schema};

use crate::error::AppJson;

/// The node's answer, streamed through as it came (or one made of its answers, the
/// upload's); on success a `T` under `STATUS`.
pub struct Relayed<T, const STATUS: u16 = 200>(Response, PhantomData<fn() -> T>);

impl<T, const STATUS: u16> From<Response> for Relayed<T, STATUS> {
    fn from(response: Response) -> Self {
        Self(response, PhantomData)
    }
}

impl<T, const STATUS: u16> IntoResponse for Relayed<T, STATUS> {
    fn into_response(self) -> Response {
        self.0
    }
}

impl<T: JsonSchema, const STATUS: u16> OperationOutput for Relayed<T, STATUS> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<ApiResponse> {
        <AppJson<T> as OperationOutput>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, ApiResponse)> {
        Self::operation_response(ctx, op)
            .map(|r| vec![(Some(STATUS), r)])
            .unwrap_or_default()
    }
}

/// A media type of a byte answer or body.
pub trait Media {
    /// The content type.
    const TYPE: &'static str;
    /// What the bytes are, for the document.
    const DESCRIPTION: &'static str;
    /// Also answered `206 Partial Content` (a `Range` request).
    const PARTIAL: bool = false;
}

/// Any file's bytes (`Range` requests answered with 206).
pub struct OctetStream;
/// A zip archive.
pub struct Zip;
/// UTF-8 text.
pub struct Text;

impl Media for OctetStream {
    const TYPE: &'static str = "application/octet-stream";
    const DESCRIPTION: &'static str = "The file's bytes (a 206 with the requested range)";
    const PARTIAL: bool = true;
}

impl Media for Zip {
    const TYPE: &'static str = "application/zip";
    const DESCRIPTION: &'static str = "The directory as a zip archive, streamed";
}

impl Media for Text {
    const TYPE: &'static str = "text/plain; charset=utf-8";
    const DESCRIPTION: &'static str = "The file's text (UTF-8)";
}

/// The schema of `M`'s bytes: a string, binary unless it is text.
fn bytes_schema<M: Media>() -> Schema {
    if M::TYPE.starts_with("text/") {
        schemars::json_schema!({"type": "string"})
    } else {
        schemars::json_schema!({"type": "string", "format": "binary", "contentMediaType": M::TYPE})
    }
}

fn media<M: Media>() -> IndexMap<String, MediaType> {
    IndexMap::from_iter([(
        M::TYPE.split(';').next().unwrap_or(M::TYPE).to_owned(),
        MediaType {
            schema: Some(SchemaObject {
                json_schema: bytes_schema::<M>(),
                example: None,
                external_docs: None,
            }),
            ..MediaType::default()
        },
    )])
}

/// The node's byte answer (a download), streamed through.
pub struct Bytes<M>(Response, PhantomData<M>);

impl<M> From<Response> for Bytes<M> {
    fn from(response: Response) -> Self {
        Self(response, PhantomData)
    }
}

impl<M> IntoResponse for Bytes<M> {
    fn into_response(self) -> Response {
        self.0
    }
}

impl<M: Media> OperationOutput for Bytes<M> {
    type Inner = ();

    fn operation_response(_: &mut GenContext, _: &mut Operation) -> Option<ApiResponse> {
        Some(ApiResponse {
            description: M::DESCRIPTION.into(),
            content: media::<M>(),
            ..ApiResponse::default()
        })
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, ApiResponse)> {
        let Some(r) = Self::operation_response(ctx, op) else {
            return Vec::new();
        };
        if M::PARTIAL {
            vec![(Some(200), r.clone()), (Some(206), r)]
        } else {
            vec![(Some(200), r)]
        }
    }
}

/// The request, its body read by the handler as `X` once it authorized the caller (a
/// caller without the permission gets 403/404 whatever they sent); documented as `X`.
pub struct Later<X>(Request, PhantomData<fn() -> X>);

impl<X, S: Send + Sync> FromRequest<S> for Later<X> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(req, PhantomData))
    }
}

impl<X> Later<X> {
    /// Reads the body as `X`.
    ///
    /// # Errors
    /// `X`'s rejection (for `AppJson`: 400 naming the field, 413).
    pub async fn read<S: Send + Sync>(self, state: &S) -> Result<X, X::Rejection>
    where
        X: FromRequest<S>,
    {
        X::from_request(self.0, state).await
    }

    /// The request, for extractors that read it piece by piece (multipart).
    pub fn into_inner(self) -> Request {
        self.0
    }
}

impl<X: OperationInput> OperationInput for Later<X> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        X::operation_input(ctx, op);
    }
}

/// A raw text body (the content editor's write), streamed to the node.
pub struct TextBody(pub axum::body::Body);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(req.into_body()))
    }
}

impl OperationInput for TextBody {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        set_body(
            ctx,
            op,
            RequestBody {
                description: Some("The file's new content (at most 10 MiB)".into()),
                content: media::<Text>(),
                required: true,
                extensions: IndexMap::default(),
            },
        );
    }
}

/// The multipart body of an upload: file parts, each streamed to the node (documented
/// only: the handler reads it with [`Later`]).
pub struct UploadForm;

impl OperationInput for UploadForm {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let schema = schemars::json_schema!({
            "type": "object",
            "properties": {
                "files": {
                    "type": "array",
                    "items": {"type": "string", "format": "binary"},
                    "description": "The files; each part's file name names it",
                },
            },
        });
        set_body(
            ctx,
            op,
            RequestBody {
                description: Some("Files to upload, as multipart/form-data parts".into()),
                content: IndexMap::from_iter([(
                    "multipart/form-data".into(),
                    MediaType {
                        schema: Some(SchemaObject {
                            json_schema: schema,
                            example: None,
                            external_docs: None,
                        }),
                        ..MediaType::default()
                    },
                )]),
                required: true,
                extensions: IndexMap::default(),
            },
        );
    }
}
