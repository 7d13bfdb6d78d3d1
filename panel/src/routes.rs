//! The route table: every endpoint is declared once with its method, path, access level
//! and summary. The axum router and the OpenAPI document are both built from it, and the
//! tests walk it (every non-public route must answer 401 without credentials; every route
//! must exist in the API reference).

use std::collections::BTreeMap;

use aide::generate::GenContext;
use aide::openapi::Operation;
use aide::operation::OperationHandler;
use aide::{OperationInput, OperationOutput};
use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::Value;

use crate::state::AppState;

/// Who may call an endpoint (the reference's badges). The router enforces it: each
/// endpoint runs behind the guard of its class (see [`crate::auth::guard`]), and building
/// the router fails when the handler's credential extractor says otherwise.
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
    /// 🔒 A platform admin with a login session (platform settings and SSH keys: the
    /// reference's 🔒 badge cannot say "admin only").
    SessionAdmin,
    /// 🔒 A WebSocket whose user proves who they are with a single-use ticket or a token
    /// in its first message, after the upgrade (consoles and logs); the handler checks.
    Socket,
    /// A node agent (`X-Agent-Token`).
    Agent,
    /// 🔒/🔑 A long-lived stream (`/v1/events`): an access or API token, or the web
    /// session cookie (a browser's `EventSource` cannot send headers).
    Stream,
}

impl Access {
    /// The credential mark (see [`crate::openapi::mark_credential`]) a handler of this
    /// class must carry: its extractor proves the same thing the guard checked.
    #[must_use]
    pub fn credential(self) -> Option<&'static str> {
        match self {
            Self::Public | Self::Socket => None,
            Self::User => Some("user"),
            Self::Session => Some("session"),
            Self::Admin => Some("admin"),
            Self::SessionAdmin => Some("session-admin"),
            Self::Agent => Some("agent"),
            Self::Stream => Some("stream"),
        }
    }
}

/// Describes an operation from a handler's types (see [`crate::openapi::describe`]).
pub type Describe = fn(&mut GenContext, &mut Operation);

/// One declared endpoint.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Error statuses beyond those every endpoint of its kind answers with.
    pub extra_errors: Vec<(u16, &'static str)>,
    pub(crate) describe: Describe,
    handler: MethodRouter<AppState>,
}

impl Endpoint {
    /// The credential the handler's extractors verify, from its types.
    #[must_use]
    pub fn handler_credential(&self) -> Option<String> {
        let mut op = Operation::default();
        aide::generate::in_context(|ctx| (self.describe)(ctx, &mut op));
        crate::openapi::credential_of(&op).map(str::to_owned)
    }

    /// The permission the handler's [`crate::authz::Authorized`] extractor checks, from
    /// its types.
    #[must_use]
    pub fn handler_permission(&self) -> Option<String> {
        let mut op = Operation::default();
        aide::generate::in_context(|ctx| (self.describe)(ctx, &mut op));
        crate::authz::permission_of(&op).map(str::to_owned)
    }
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
        pub fn $name<H, T, I, O>(
            self,
            path: &'static str,
            access: Access,
            summary: &'static str,
            handler: H,
        ) -> Self
        where
            H: Handler<T, AppState> + OperationHandler<I, O>,
            I: OperationInput,
            O: OperationOutput,
            T: 'static,
        {
            self.add(
                Method::$method,
                MethodFilter::$filter,
                path,
                access,
                summary,
                handler,
                crate::openapi::describe::<I, O>,
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

    #[expect(
        clippy::too_many_arguments,
        reason = "one private builder behind verb!"
    )]
    fn add<H, T>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
        describe: Describe,
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
            extra_errors: Vec::new(),
            describe,
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

    /// Adds error statuses the last declared endpoint answers with besides those of
    /// every endpoint of its kind (e.g. `503` where a node's storage may be away).
    ///
    /// # Panics
    /// When no endpoint was declared yet (a programming error).
    #[must_use]
    pub fn errors(mut self, extra: &[(u16, &'static str)]) -> Self {
        let last = self
            .endpoints
            .last_mut()
            .expect("errors() follows an endpoint");
        last.extra_errors.extend_from_slice(extra);
        self
    }

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

    /// The axum router serving every endpoint (one `MethodRouter` per path), each
    /// behind the guard of its access class.
    ///
    /// # Panics
    /// When two endpoints declare the same method and path, or a handler's credential
    /// extractor does not match its declared access class (programming errors, caught
    /// by every test that builds the app).
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        if let Some(wrong) = self.mismatches().first() {
            panic!("route table: {wrong}");
        }
        let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
        for endpoint in self.endpoints {
            let guarded = crate::auth::guard::layer(endpoint.handler, endpoint.access, state);
            let merged = match by_path.remove(endpoint.path) {
                Some(existing) => existing.merge(guarded),
                None => guarded,
            };
            by_path.insert(endpoint.path, merged);
        }
        by_path
            .into_iter()
            .fold(Router::new(), |router, (path, mr)| router.route(path, mr))
    }

    /// Endpoints whose handler verifies another credential than their access class
    /// says, one line each.
    #[must_use]
    pub fn mismatches(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .filter_map(|e| {
                let found = e.handler_credential();
                (found.as_deref() != e.access.credential()).then(|| {
                    format!(
                        "{} {} is declared {:?} (credential {:?}) but its handler verifies {:?}",
                        e.method,
                        e.path,
                        e.access,
                        e.access.credential(),
                        found
                    )
                })
            })
            .collect()
    }

    /// The OpenAPI 3.1 document describing these endpoints.
    #[must_use]
    pub fn openapi(&self) -> Value {
        serde_json::to_value(crate::openapi::document(&self.endpoints)).unwrap_or_default()
    }
}

/// The `{name}` segments of a path.
#[must_use]
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}
