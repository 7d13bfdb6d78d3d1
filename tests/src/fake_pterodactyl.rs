//! A fake of Pterodactyl's Application API (`/api/application`), which tests cannot reach
//! a real panel for: an axum server on `127.0.0.1:0` inside the test process, filled from
//! a [`Dataset`], speaking the wire format of the panel's application transformers
//! (see [`transform`]): items `{"object", "attributes"}`, lists with
//! `meta.pagination {total, count, per_page, current_page, total_pages, links}` paged by
//! `?page=&per_page=` (default 50, at most 100), includes under
//! `attributes.relationships`, and errors `{"errors": [{"code", "status", "detail"}]}`.
//! Every request needs `Authorization: Bearer {key}` (401 `AuthenticationException`
//! otherwise).
//!
//! Routes (GET): `/api/application/{locations,nodes,nests,users,servers}[/{id}]`,
//! `/api/application/nests/{id}/eggs[/{egg}]` (unpaged, as in the panel). Includes:
//! eggs `variables`, `config`, `script`, `nest`; servers `allocations`, `variables`,
//! `subusers`, `user`, `node`.
//!
//! Faults: [`FakePterodactyl::deny`] (403 `AccessDeniedHttpException` on paths starting
//! with a prefix: a key without that resource's read permission),
//! [`FakePterodactyl::set_garbage`] (every answer is a 200 HTML page, as a URL that is
//! not a panel gives).
//!
//! `tests/tests/api/fake_pterodactyl.rs` drives it with PyPI's `py-dactyl`
//! (`tests/support/pydactyl_check.py`), so its shapes are checked against a real client.

pub mod dataset;
mod transform;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub use dataset::Dataset;

/// The application API key the fake accepts.
pub const API_KEY: &str = "ptla_shardlynFakePterodactylKey0123456789abcdefghij";

/// Items per page when the request names none (the panel's default).
const DEFAULT_PER_PAGE: usize = 50;
/// The most items a page holds.
const MAX_PER_PAGE: usize = 100;

/// A running fake panel; stops when dropped.
pub struct FakePterodactyl {
    /// The panel's address, `http://127.0.0.1:PORT` (what an admin types; the API is
    /// under `/api/application`).
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakePterodactyl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    base: Arc<str>,
    data: Arc<Mutex<Dataset>>,
    log: Arc<Mutex<Vec<String>>>,
    denied: Arc<Mutex<Vec<String>>>,
    garbage: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakePterodactyl {
    /// Starts the fake holding `data`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(data: Dataset) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Pterodactyl");
        let addr = listener.local_addr().expect("local addr");
        let url = format!("http://{addr}");
        let shared = Shared {
            base: url.clone().into(),
            data: Arc::new(Mutex::new(data)),
            log: Arc::default(),
            denied: Arc::default(),
            garbage: Arc::default(),
        };
        let api = Router::new()
            .route("/locations", get(locations))
            .route("/locations/{id}", get(location))
            .route("/nodes", get(nodes))
            .route("/nodes/{id}", get(node))
            .route("/nests", get(nests))
            .route("/nests/{id}", get(nest))
            .route("/nests/{id}/eggs", get(eggs))
            .route("/nests/{id}/eggs/{egg}", get(egg))
            .route("/users", get(users))
            .route("/users/{id}", get(user))
            .route("/servers", get(servers))
            .route("/servers/{id}", get(server));
        let app = Router::new()
            .nest("/api/application", api)
            .fallback(|| async { error(StatusCode::NOT_FOUND) })
            .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    /// The key to use ([`API_KEY`]).
    #[must_use]
    pub fn api_key(&self) -> &'static str {
        API_KEY
    }

    /// Changes the data the fake serves.
    pub fn edit(&self, f: impl FnOnce(&mut Dataset)) {
        f(&mut lock(&self.shared.data));
    }

    /// Answers 403 on every path (under `/api/application`) starting with `prefix`.
    pub fn deny(&self, prefix: &str) {
        lock(&self.shared.denied).push(prefix.to_owned());
    }

    /// Makes every answer a 200 HTML page (or, with `false`, the API again).
    pub fn set_garbage(&self, on: bool) {
        self.shared.garbage.store(on, Ordering::SeqCst);
    }

    /// Every request so far, as `path?query`, authenticated or not.
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }
}

/// Logs the request, then answers the faults, the key check, or the route.
async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    let path = uri.path().to_owned();
    lock(&shared.log).push(
        uri.path_and_query()
            .map_or(path.clone(), ToString::to_string),
    );
    if shared.garbage.load(Ordering::SeqCst) {
        let page = "<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>";
        return ([(header::CONTENT_TYPE, "text/html")], page).into_response();
    }
    if !authorized(request.headers()) {
        return error(StatusCode::UNAUTHORIZED);
    }
    let inner = path.strip_prefix("/api/application").unwrap_or(&path);
    if lock(&shared.denied)
        .iter()
        .any(|p| inner.starts_with(p.as_str()))
    {
        return error(StatusCode::FORBIDDEN);
    }
    next.run(request).await
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|key| key == API_KEY)
}

/// The panel's error envelope for `status`.
fn error(status: StatusCode) -> Response {
    let (code, detail) = match status {
        StatusCode::UNAUTHORIZED => ("AuthenticationException", "Unauthenticated."),
        StatusCode::FORBIDDEN => ("AccessDeniedHttpException", "This action is unauthorized."),
        _ => (
            "NotFoundHttpException",
            "The requested resource could not be found on the server.",
        ),
    };
    let body = json!({"errors": [{"code": code, "status": status.as_u16().to_string(), "detail": detail}]});
    (status, axum::Json(body)).into_response()
}

type Params = Query<BTreeMap<String, String>>;

fn includes(q: &BTreeMap<String, String>) -> Vec<&str> {
    q.get("include")
        .map(|s| s.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// One page of `items` as the panel pages a list at `path`.
fn page(
    shared: &Shared,
    path: &str,
    object: &str,
    items: Vec<Value>,
    q: &BTreeMap<String, String>,
) -> Response {
    let per_page = q
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let current = q
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let data: Vec<Value> = items
        .into_iter()
        .skip((current - 1) * per_page)
        .take(per_page)
        .map(|a| transform::item(object, a))
        .collect();
    let mut links = serde_json::Map::new();
    let link = |n: usize| format!("{}/api/application{path}?page={n}", shared.base);
    if current > 1 {
        links.insert("previous".into(), link(current - 1).into());
    }
    if current < total_pages {
        links.insert("next".into(), link(current + 1).into());
    }
    axum::Json(json!({
        "object": "list",
        "data": data,
        "meta": {"pagination": {
            "total": total, "count": data.len(), "per_page": per_page,
            "current_page": current, "total_pages": total_pages, "links": links,
        }},
    }))
    .into_response()
}

fn one(object: &str, found: Option<Value>) -> Response {
    match found {
        Some(attrs) => axum::Json(transform::item(object, attrs)).into_response(),
        None => error(StatusCode::NOT_FOUND),
    }
}

async fn locations(State(s): State<Shared>, Query(q): Params) -> Response {
    let items = {
        let d = lock(&s.data);
        d.locations
            .iter()
            .filter_map(|l| transform::location(&d, l.id))
            .collect()
    };
    page(&s, "/locations", "location", items, &q)
}

async fn location(State(s): State<Shared>, Path(id): Path<i64>) -> Response {
    one("location", transform::location(&lock(&s.data), id))
}

async fn nodes(State(s): State<Shared>, Query(q): Params) -> Response {
    let items = {
        let d = lock(&s.data);
        d.nodes
            .iter()
            .filter_map(|n| transform::node(&d, n.id))
            .collect()
    };
    page(&s, "/nodes", "node", items, &q)
}

async fn node(State(s): State<Shared>, Path(id): Path<i64>) -> Response {
    one("node", transform::node(&lock(&s.data), id))
}

async fn nests(State(s): State<Shared>, Query(q): Params) -> Response {
    let items = {
        let d = lock(&s.data);
        d.nests
            .iter()
            .filter_map(|n| transform::nest(&d, n.id))
            .collect()
    };
    page(&s, "/nests", "nest", items, &q)
}

async fn nest(State(s): State<Shared>, Path(id): Path<i64>) -> Response {
    one("nest", transform::nest(&lock(&s.data), id))
}

async fn eggs(State(s): State<Shared>, Path(id): Path<i64>, Query(q): Params) -> Response {
    let d = lock(&s.data);
    if !d.nests.iter().any(|n| n.id == id) {
        return error(StatusCode::NOT_FOUND);
    }
    axum::Json(transform::eggs_of(&d, id, &includes(&q))).into_response()
}

async fn egg(
    State(s): State<Shared>,
    Path((nest, id)): Path<(i64, i64)>,
    Query(q): Params,
) -> Response {
    let d = lock(&s.data);
    let found = d
        .eggs
        .iter()
        .find(|e| e.id == id && e.nest_id == nest)
        .map(|e| transform::egg(&d, e, &includes(&q)));
    one("egg", found)
}

async fn users(State(s): State<Shared>, Query(q): Params) -> Response {
    let items = {
        let d = lock(&s.data);
        // The panel's `filter[...]` on users (exact match here; the panel's is a LIKE).
        let wanted = |field: &str, value: &str| {
            q.get(&format!("filter[{field}]"))
                .is_none_or(|w| w.eq_ignore_ascii_case(value))
        };
        d.users
            .iter()
            .filter(|u| wanted("email", &u.email) && wanted("username", &u.username))
            .filter(|u| wanted("uuid", &u.uuid))
            .filter_map(|u| transform::user(&d, u.id))
            .collect()
    };
    page(&s, "/users", "user", items, &q)
}

async fn user(State(s): State<Shared>, Path(id): Path<i64>) -> Response {
    one("user", transform::user(&lock(&s.data), id))
}

async fn servers(State(s): State<Shared>, Query(q): Params) -> Response {
    let items = {
        let d = lock(&s.data);
        let inc = includes(&q);
        d.servers
            .iter()
            .map(|sv| transform::server(&d, sv, &inc))
            .collect()
    };
    page(&s, "/servers", "server", items, &q)
}

async fn server(State(s): State<Shared>, Path(id): Path<i64>, Query(q): Params) -> Response {
    let d = lock(&s.data);
    let found = d
        .servers
        .iter()
        .find(|sv| sv.id == id)
        .map(|sv| transform::server(&d, sv, &includes(&q)));
    one("server", found)
}
