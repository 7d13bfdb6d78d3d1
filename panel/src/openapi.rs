//! The OpenAPI 3.1 document, generated from the route table and the handlers' types.
//!
//! Each endpoint of [`crate::routes::Routes`] keeps a `describe` function made from its
//! handler's signature: the extractors (`AppJson<T>`, `AppQuery<T>`, `AppPath<T>`) add
//! the request body and parameters with the schemas of `T` (schemars), the answer type
//! (`AppJson<T>`, `Created<T>`, `NoContent`...) adds the success response. The table adds
//! what types cannot say: summary, tag, security, and the error answers. The credential
//! extractors (`CurrentUser`, `SessionUser`, `AdminUser`, `SessionAdmin`, `AgentNode`) mark the
//! operation with the credential they verify, which the router checks against the
//! declared access class when it is built.

use aide::generate::GenContext;
use aide::openapi::{
    Components, Info, MediaType, OpenApi, Operation, Parameter, ParameterData,
    ParameterSchemaOrContent, PathItem, Paths, ReferenceOr, Response, Responses, SchemaObject,
    SecurityRequirement, SecurityScheme, StatusCode as ApiStatus, Tag,
};
use aide::{OperationInput, OperationOutput};
use axum::http::Method;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde_json::Value;
use shardlyn_proto::ErrorBody;

use crate::auth::extract::{
    AdminUser, AgentNode, ClientMeta, CurrentUser, SessionAdmin, SessionUser,
};
use crate::error::{AppError, AppJson, AppPath, AppQuery};
use crate::routes::{Access, Endpoint};

/// The operation extension naming the credential a handler's extractor verifies.
pub const CREDENTIAL: &str = "x-shardlyn-credential";

/// Records on `op` that the handler verifies `credential` (see [`Access::credential`]).
pub fn mark_credential(op: &mut Operation, credential: &str) {
    op.extensions
        .insert(CREDENTIAL.into(), Value::String(credential.into()));
}

/// The credential marked on `op`, if any.
#[must_use]
pub fn credential_of(op: &Operation) -> Option<&str> {
    op.extensions.get(CREDENTIAL).and_then(Value::as_str)
}

impl<T: JsonSchema> OperationInput for AppJson<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        axum::Json::<T>::operation_input(ctx, op);
    }
}

impl<T: JsonSchema> OperationOutput for AppJson<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<Response> {
        axum::Json::<T>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, Response)> {
        axum::Json::<T>::inferred_responses(ctx, op)
    }
}

impl<T: JsonSchema> OperationInput for AppQuery<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        axum::extract::Query::<T>::operation_input(ctx, op);
    }
}

impl<T: JsonSchema> OperationInput for AppPath<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        axum::extract::Path::<T>::operation_input(ctx, op);
    }
}

/// Errors are added by the route table (see [`error_statuses`]), not inferred.
impl OperationOutput for AppError {
    type Inner = ErrorBody;
}

impl OperationInput for ClientMeta {}

impl OperationInput for CurrentUser {
    fn operation_input(_: &mut GenContext, op: &mut Operation) {
        mark_credential(op, "user");
    }
}

impl OperationInput for SessionUser {
    fn operation_input(_: &mut GenContext, op: &mut Operation) {
        mark_credential(op, "session");
    }
}

impl OperationInput for AdminUser {
    fn operation_input(_: &mut GenContext, op: &mut Operation) {
        mark_credential(op, "admin");
    }
}

impl OperationInput for SessionAdmin {
    fn operation_input(_: &mut GenContext, op: &mut Operation) {
        mark_credential(op, "session-admin");
    }
}

impl OperationInput for AgentNode {
    fn operation_input(_: &mut GenContext, op: &mut Operation) {
        mark_credential(op, "agent");
    }
}

/// What the handler's types say about an operation: parameters, body, success answers.
pub fn describe<I: OperationInput, O: OperationOutput>(ctx: &mut GenContext, op: &mut Operation) {
    I::operation_input(ctx, op);
    let mut answers = I::inferred_early_responses(ctx, op);
    answers.extend(O::inferred_responses(ctx, op));
    let responses = op.responses.get_or_insert_with(Responses::default);
    for (status, response) in answers {
        match status {
            Some(code) => {
                responses
                    .responses
                    .insert(ApiStatus::Code(code), ReferenceOr::Item(response));
            }
            None => responses.default = Some(ReferenceOr::Item(response)),
        }
    }
}

/// The error statuses an endpoint can answer with, from what the table knows of it:
/// every route may be rate limited (429) and refuse malformed input (400); routes with
/// credentials refuse missing ones (401) and insufficient ones (403) and hide other
/// organizations' resources (404); routes that take a body refuse an oversized (413)
/// or unacceptable one (422) and may conflict with the current state (409).
#[must_use]
pub fn error_statuses(e: &Endpoint) -> Vec<(u16, &'static str)> {
    let mut out = vec![(400, "Invalid input"), (429, "Rate limited")];
    if e.access != Access::Public {
        out.extend([
            (401, "Missing or invalid credentials"),
            (403, "Insufficient permissions"),
            (404, "Not found"),
        ]);
    } else if !crate::routes::path_params(e.path).is_empty() {
        out.push((404, "Not found"));
    }
    if e.method != Method::GET && e.method != Method::HEAD {
        out.extend([
            (409, "Conflicts with the current state"),
            (413, "Request body too large"),
            (422, "Well-formed but unacceptable input"),
        ]);
    }
    out.extend(e.extra_errors.iter().copied());
    out.sort_unstable();
    out.dedup_by_key(|(code, _)| *code);
    out
}

fn error_response(ctx: &mut GenContext, description: &str) -> Response {
    Response {
        description: description.into(),
        content: IndexMap::from_iter([(
            "application/json".into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: ctx.schema.subschema_for::<ErrorBody>(),
                    example: None,
                    external_docs: None,
                }),
                ..MediaType::default()
            },
        )]),
        ..Response::default()
    }
}

fn path_param(name: &str) -> ReferenceOr<Parameter> {
    ReferenceOr::Item(Parameter::Path {
        parameter_data: ParameterData {
            name: name.into(),
            description: None,
            required: true,
            deprecated: None,
            format: ParameterSchemaOrContent::Schema(SchemaObject {
                json_schema: schemars::json_schema!({"type": "string"}),
                example: None,
                external_docs: None,
            }),
            example: None,
            examples: IndexMap::default(),
            explode: None,
            extensions: IndexMap::default(),
        },
        style: aide::openapi::PathStyle::Simple,
    })
}

fn param_name(p: &ReferenceOr<Parameter>) -> Option<&str> {
    match p {
        ReferenceOr::Item(p) => Some(&p.parameter_data_ref().name),
        ReferenceOr::Reference { .. } => None,
    }
}

/// The operation of one endpoint, complete.
fn operation(ctx: &mut GenContext, e: &Endpoint) -> Operation {
    let mut op = Operation {
        summary: Some(e.summary.into()),
        operation_id: Some(operation_id(&e.method, e.path)),
        tags: vec![e.tag.into()],
        ..Operation::default()
    };
    (e.describe)(ctx, &mut op);
    // The permission mark is for the route-table tests, not for API clients.
    op.extensions.shift_remove(crate::authz::PERMISSION_MARK);
    // Path segments the handler takes as a plain value (`AppPath<String>`) have no
    // name in its type: the table's path names them.
    let names = crate::routes::path_params(e.path);
    op.parameters.retain(|p| match p {
        ReferenceOr::Item(Parameter::Path { parameter_data, .. }) => {
            names.contains(&parameter_data.name.as_str())
        }
        _ => true,
    });
    for name in names {
        if !op.parameters.iter().any(|p| param_name(p) == Some(name)) {
            op.parameters.push(path_param(name));
        }
    }
    let responses = op.responses.get_or_insert_with(Responses::default);
    let has_success = responses.responses.keys().any(|s| match s {
        ApiStatus::Code(c) => (200..300).contains(c),
        ApiStatus::Range(r) => *r == 2,
    });
    if !has_success {
        // A raw answer (a stream, a file, a WebSocket upgrade, a redirect): its status
        // is in the 2xx range and its body is not JSON the types describe.
        responses.responses.insert(
            ApiStatus::Range(2),
            ReferenceOr::Item(Response {
                description: "Success".into(),
                ..Response::default()
            }),
        );
    }
    for (code, description) in error_statuses(e) {
        let response = error_response(ctx, description);
        op.responses
            .get_or_insert_with(Responses::default)
            .responses
            .entry(ApiStatus::Code(code))
            .or_insert(ReferenceOr::Item(response));
    }
    op.security = match e.access {
        Access::Public => Vec::new(),
        Access::User | Access::Socket => vec![security("bearer"), security("apiToken")],
        Access::Session | Access::Admin | Access::SessionAdmin => vec![security("bearer")],
        Access::Agent => vec![security("agentToken")],
        Access::Stream => vec![
            security("bearer"),
            security("apiToken"),
            security("sessionCookie"),
        ],
    };
    if matches!(e.access, Access::Admin | Access::SessionAdmin) {
        op.extensions
            .insert("x-shardlyn-admin".into(), Value::Bool(true));
    }
    op
}

fn security(scheme: &str) -> SecurityRequirement {
    SecurityRequirement::from_iter([(scheme.to_owned(), Vec::new())])
}

/// The OpenAPI 3.1 document of `endpoints`.
#[must_use]
pub fn document(endpoints: &[Endpoint]) -> OpenApi {
    aide::generate::reset_context();
    aide::generate::in_context(|ctx| {
        let mut paths: IndexMap<String, ReferenceOr<PathItem>> = IndexMap::new();
        let mut tags: Vec<&str> = Vec::new();
        for e in endpoints {
            let op = operation(ctx, e);
            if !tags.contains(&e.tag) {
                tags.push(e.tag);
            }
            let ReferenceOr::Item(item) = paths
                .entry(e.path.to_owned())
                .or_insert_with(|| ReferenceOr::Item(PathItem::default()))
            else {
                continue;
            };
            let slot = match e.method {
                Method::GET => &mut item.get,
                Method::POST => &mut item.post,
                Method::PUT => &mut item.put,
                Method::DELETE => &mut item.delete,
                Method::PATCH => &mut item.patch,
                Method::HEAD => &mut item.head,
                Method::OPTIONS => &mut item.options,
                _ => &mut item.trace,
            };
            *slot = Some(op);
        }
        let schemas = ctx
            .schema
            .take_definitions(true)
            .into_iter()
            .map(|(name, schema)| {
                let json_schema =
                    serde_json::from_value(schema).unwrap_or_else(|_| schemars::json_schema!(true));
                (
                    name,
                    SchemaObject {
                        json_schema,
                        example: None,
                        external_docs: None,
                    },
                )
            })
            .collect();
        OpenApi {
            info: Info {
                title: "Shardlyn API".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: Some("Game-server and infrastructure management panel.".into()),
                ..Info::default()
            },
            paths: Some(Paths {
                paths,
                ..Paths::default()
            }),
            tags: tags
                .into_iter()
                .map(|name| Tag {
                    name: name.into(),
                    ..Tag::default()
                })
                .collect(),
            components: Some(Components {
                schemas,
                security_schemes: security_schemes(),
                ..Components::default()
            }),
            ..OpenApi::default()
        }
    })
}

fn security_schemes() -> IndexMap<String, ReferenceOr<SecurityScheme>> {
    let bearer = |description: &str, format: Option<&str>| SecurityScheme::Http {
        scheme: "bearer".into(),
        bearer_format: format.map(Into::into),
        description: Some(description.into()),
        extensions: IndexMap::default(),
    };
    IndexMap::from_iter([
        (
            "bearer".into(),
            ReferenceOr::Item(bearer("Access token (JWT) of a login", Some("JWT"))),
        ),
        (
            "apiToken".into(),
            ReferenceOr::Item(bearer("API token (shardlyn_api_...)", None)),
        ),
        (
            "agentToken".into(),
            ReferenceOr::Item(SecurityScheme::ApiKey {
                location: aide::openapi::ApiKeyLocation::Header,
                name: "X-Agent-Token".into(),
                description: Some("A node agent's token".into()),
                extensions: IndexMap::default(),
            }),
        ),
        (
            "sessionCookie".into(),
            ReferenceOr::Item(SecurityScheme::ApiKey {
                location: aide::openapi::ApiKeyLocation::Cookie,
                name: crate::web::session::SESSION_COOKIE.into(),
                description: Some(
                    "The web session cookie (event streams opened by a browser)".into(),
                ),
                extensions: IndexMap::default(),
            }),
        ),
    ])
}

/// `get_instances_id`-style operation ids, unique per method and path.
#[must_use]
pub fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty() && *s != "v1") {
        id.push('_');
        id.push_str(&seg.replace(['{', '}'], "").replace(['-', '.'], "_"));
    }
    id
}
