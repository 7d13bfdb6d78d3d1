//! The route table: every endpoint is declared once with its method, path, access level
//! and summary. The axum router and the OpenAPI document are both built from it, and the
//! tests walk it (every non-public route must answer 401 without credentials; every route
//! must exist in the API reference).

use std::collections::BTreeMap;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Value, json};

use crate::state::AppState;

/// Who may call an endpoint (the reference's badges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// 🌐 No credentials.
    Public,
    /// 🔒/🔑 An access token or an API token.
    User,
    /// 🔒 An access token of a login session only.
    Session,
    /// 👑 A platform admin.
    Admin,
    /// A node agent (`X-Agent-Token`).
    Agent,
}

/// One declared endpoint.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub tag: &'static str,
    handler: MethodRouter<AppState>,
}

/// An area's endpoints.
pub struct Routes {
    tag: &'static str,
    endpoints: Vec<Endpoint>,
}

macro_rules! verb {
    ($name:ident, $method:ident, $filter:ident) => {
        /// Declares an endpoint for this method.
        #[must_use]
        pub fn $name<H, T>(
            self,
            path: &'static str,
            access: Access,
            summary: &'static str,
            handler: H,
        ) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add(
                Method::$method,
                MethodFilter::$filter,
                path,
                access,
                summary,
                handler,
            )
        }
    };
}

impl Routes {
    /// An empty set for the area `tag`.
    #[must_use]
    pub fn new(tag: &'static str) -> Self {
        Self {
            tag,
            endpoints: Vec::new(),
        }
    }

    fn add<H, T>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.endpoints.push(Endpoint {
            method,
            path,
            access,
            summary,
            tag: self.tag,
            handler: on(filter, handler),
        });
        self
    }

    verb!(get, GET, GET);
    verb!(post, POST, POST);
    verb!(put, PUT, PUT);
    verb!(delete, DELETE, DELETE);
    verb!(patch, PATCH, PATCH);
    verb!(head, HEAD, HEAD);
    verb!(options, OPTIONS, OPTIONS);

    /// Appends another area's endpoints.
    #[must_use]
    pub fn merge(mut self, other: Routes) -> Self {
        self.endpoints.extend(other.endpoints);
        self
    }

    /// The declared endpoints.
    #[must_use]
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The axum router serving every endpoint (one `MethodRouter` per path).
    ///
    /// # Panics
    /// When two endpoints declare the same method and path (a programming error).
    pub fn into_router(self) -> Router<AppState> {
        let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
        for endpoint in self.endpoints {
            let merged = match by_path.remove(endpoint.path) {
                Some(existing) => existing.merge(endpoint.handler),
                None => endpoint.handler,
            };
            by_path.insert(endpoint.path, merged);
        }
        by_path
            .into_iter()
            .fold(Router::new(), |router, (path, mr)| router.route(path, mr))
    }

    /// The OpenAPI 3.1 document describing these endpoints.
    #[must_use]
    pub fn openapi(&self) -> Value {
        let mut paths = serde_json::Map::new();
        for e in &self.endpoints {
            let params: Vec<Value> = path_params(e.path)
                .into_iter()
                .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
                .collect();
            let mut responses = serde_json::Map::new();
            responses.insert("2XX".into(), json!({"description": "Success"}));
            for (code, what) in [
                ("400", "Invalid input"),
                ("404", "Not found"),
                ("429", "Rate limited"),
            ] {
                responses.insert(code.into(), error_response(what));
            }
            if e.access != Access::Public {
                responses.insert(
                    "401".into(),
                    error_response("Missing or invalid credentials"),
                );
                responses.insert("403".into(), error_response("Insufficient permissions"));
            }
            let mut op = json!({
                "summary": e.summary,
                "operationId": operation_id(&e.method, e.path),
                "tags": [e.tag],
                "parameters": params,
                "responses": responses,
            });
            match e.access {
                Access::Public => op["security"] = json!([]),
                Access::User => op["security"] = json!([{"bearer": []}, {"apiToken": []}]),
                Access::Session | Access::Admin => op["security"] = json!([{"bearer": []}]),
                Access::Agent => op["security"] = json!([{"agentToken": []}]),
            }
            if e.access == Access::Admin {
                op["x-shardlyn-admin"] = json!(true);
            }
            if matches!(e.method, Method::POST | Method::PUT) {
                op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
            }
            let entry = paths.entry(e.path.to_string()).or_insert_with(|| json!({}));
            entry[e.method.as_str().to_lowercase()] = op;
        }
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Shardlyn API",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Game-server and infrastructure management panel."
            },
            "paths": paths,
            "components": {
                "schemas": {
                    "Error": {
                        "type": "object",
                        "required": ["error", "code"],
                        "properties": {
                            "error": {"type": "string"},
                            "code": {"type": "string"}
                        }
                    }
                },
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiToken": {"type": "http", "scheme": "bearer", "description": "shardlyn_api_... token"},
                    "agentToken": {"type": "apiKey", "in": "header", "name": "X-Agent-Token"}
                }
            }
        })
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The `{name}` segments of a path.
#[must_use]
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty() && *s != "v1") {
        id.push('_');
        id.push_str(&seg.replace(['{', '}'], "").replace('-', "_"));
    }
    id
}
