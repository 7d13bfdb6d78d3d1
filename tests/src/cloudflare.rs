//! A fake of Cloudflare's API v4 DNS endpoints (<https://developers.cloudflare.com/api/>),
//! which tests cannot reach: an axum server on `127.0.0.1:0` speaking the documented
//! wire format — bearer tokens, the `{success, errors, messages, result, result_info}`
//! envelope, `page`/`per_page` paging, `GET /user/tokens/verify`, `GET /zones`, the
//! `dns_records` CRUD and `POST .../dns_records/batch` (deletes, patches, puts, posts in
//! that order, all or nothing). Records are checked as Cloudflare checks them (content
//! per type, TTL 1 or 60..=86400, no identical twin, a CNAME alone at its name) and
//! answered with Cloudflare's error codes.
//!
//! `tests/tests/api/fake_cloudflare.rs` drives it with Cloudflare's official Python SDK,
//! so the shapes here are checked against the real client's models.
//!
//! Faults: [`FakeCloudflare::set_down`] (new connections are closed unanswered, open
//! ones get a 503 page, as an unreachable API), [`FakeCloudflare::deny_zone`] (writes to
//! a zone answer 403 code 10000, as a token without `Zone.DNS:Edit` there).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

/// The account every zone of the fake belongs to unless a test names another.
pub const ACCOUNT_ID: &str = "0f0e0d0c0b0a09080706050403020100";

/// The most operations one batch may hold (Cloudflare's Free plan limit).
pub const BATCH_LIMIT: usize = 200;

/// A running fake; stops when dropped.
pub struct FakeCloudflare {
    /// The API root, `http://127.0.0.1:PORT/client/v4` (the SDK's `base_url`).
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCloudflare {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    token: Arc<str>,
    down: Arc<AtomicBool>,
    inner: Arc<Mutex<Inner>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Inner {
    zones: BTreeMap<String, Value>,
    /// Records by zone id, in creation order.
    records: BTreeMap<String, Vec<Value>>,
    denied: BTreeSet<String>,
    page_cap: Option<usize>,
    log: Vec<(String, String)>,
}

/// An error answer: the HTTP status and Cloudflare's `errors` (code, message).
#[derive(Debug)]
struct CfError(StatusCode, u32, String);

impl CfError {
    fn bad(code: u32, message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, code, message.into())
    }
}

impl IntoResponse for CfError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "errors": [{"code": self.1, "message": self.2}],
            "messages": [],
            "result": null,
        });
        (self.0, axum::Json(body)).into_response()
    }
}

type Answer = Result<Response, CfError>;

fn ok(result: &Value) -> Answer {
    Ok(
        axum::Json(json!({"success": true, "errors": [], "messages": [], "result": result}))
            .into_response(),
    )
}

type Q = Query<Vec<(String, String)>>;

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `page`, `per_page` within `min..=max` (default `default`).
fn paging(
    query: &[(String, String)],
    (min, default, max): (usize, usize, usize),
) -> Result<(usize, usize), CfError> {
    let page = match param(query, "page") {
        None => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| CfError::bad(1001, "page must be a positive integer"))?,
    };
    let per_page = match param(query, "per_page") {
        None => default,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| (min..=max).contains(p))
            .ok_or_else(|| {
                CfError::bad(1001, format!("per_page must be between {min} and {max}"))
            })?,
    };
    Ok((page, per_page))
}

/// One page of `items` in the envelope, with `result_info`.
fn paged(items: &[Value], page: usize, per_page: usize) -> Answer {
    let total = items.len();
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    let slice = &items[start..end];
    Ok(axum::Json(json!({
        "success": true, "errors": [], "messages": [],
        "result": slice,
        "result_info": {
            "page": page, "per_page": per_page, "count": slice.len(),
            "total_count": total, "total_pages": total.div_ceil(per_page.max(1)),
        },
    }))
    .into_response())
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, CfError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(CfError::bad(9207, "Request body is invalid.")),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl FakeCloudflare {
    /// Starts the fake; every request must carry `Authorization: Bearer <token>`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(token: &str) -> FakeCloudflare {
        let shared = Shared {
            token: token.into(),
            down: Arc::new(AtomicBool::new(false)),
            inner: Arc::new(Mutex::new(Inner::default())),
        };
        let app = Router::new()
            .route("/client/v4/user/tokens/verify", get(verify))
            .route("/client/v4/zones", get(zones_list))
            .route("/client/v4/zones/{zone}", get(zone_get))
            .route(
                "/client/v4/zones/{zone}/dns_records",
                get(records_list).post(record_create),
            )
            .route("/client/v4/zones/{zone}/dns_records/batch", post(batch))
            .route(
                "/client/v4/zones/{zone}/dns_records/{id}",
                get(record_get)
                    .patch(record_patch)
                    .put(record_put)
                    .delete(record_delete),
            )
            .fallback(|req: Request| async move {
                CfError::bad(7000, format!("No route for that URI: {}", req.uri().path()))
            })
            .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Cloudflare API");
        let port = listener.local_addr().expect("local addr").port();
        let gated = Gated {
            inner: listener,
            down: shared.down.clone(),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(gated, app).await;
        });
        FakeCloudflare {
            url: format!("http://127.0.0.1:{port}/client/v4"),
            shared,
            task,
        }
    }

    /// Adds an active zone of [`ACCOUNT_ID`]; returns its id.
    pub fn add_zone(&self, name: &str) -> String {
        self.add_zone_in(name, ACCOUNT_ID)
    }

    /// Adds an active zone of `account_id`; returns its id.
    pub fn add_zone_in(&self, name: &str, account_id: &str) -> String {
        let id = new_id();
        let at = now();
        let zone = json!({
            "id": id, "name": name.to_ascii_lowercase(), "status": "active", "paused": false,
            "type": "full", "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": null, "original_registrar": null, "original_dnshost": null,
            "created_on": at, "modified_on": at, "activated_on": at,
            "meta": {"step": 4, "custom_certificate_quota": 0, "page_rule_quota": 3,
                     "phishing_detected": false},
            "owner": {"id": null, "type": "user", "email": null},
            "account": {"id": account_id, "name": "Fake account"},
            "tenant": {"id": null, "name": null}, "tenant_unit": {"id": null},
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website",
                     "price": 0, "currency": "USD", "frequency": "", "is_subscribed": false,
                     "can_subscribe": false, "legacy_id": "free", "legacy_discount": false,
                     "externally_managed": false},
        });
        let mut inner = self.shared.lock();
        inner.zones.insert(id.clone(), zone);
        inner.records.insert(id.clone(), Vec::new());
        id
    }

    /// Creates a record as `POST /zones/{zone}/dns_records` would (a record "made by
    /// hand", outside the panel); returns its id.
    ///
    /// # Panics
    /// When the zone is unknown or Cloudflare would refuse the record.
    pub fn add_record(&self, zone_id: &str, body: &Value) -> String {
        let mut inner = self.shared.lock();
        let zone = inner.zones.get(zone_id).cloned().expect("known zone");
        let records = inner.records.entry(zone_id.to_owned()).or_default();
        let input = body.as_object().cloned().unwrap_or_default();
        let made = create(&zone, records, &input).expect("a record Cloudflare accepts");
        made["id"].as_str().unwrap_or_default().to_owned()
    }

    /// The records of `zone_id`, as the API shows them, in creation order.
    #[must_use]
    pub fn records(&self, zone_id: &str) -> Vec<Value> {
        self.shared
            .lock()
            .records
            .get(zone_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Down: new connections are closed unanswered and requests on open ones get a 503
    /// page (not the JSON envelope), as when the API cannot be reached.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Writes to `zone_id` answer 403 code 10000, as for a token that may read the zone
    /// but lacks `Zone.DNS:Edit` on it.
    pub fn deny_zone(&self, zone_id: &str) {
        self.shared.lock().denied.insert(zone_id.to_owned());
    }

    /// Answers at most `n` records per page whatever `per_page` asks (result_info says
    /// so), to make a client walk the pages.
    pub fn cap_page(&self, n: usize) {
        self.shared.lock().page_cap = Some(n.max(1));
    }

    /// Every request answered so far, as `(method, path below /client/v4 with query)`.
    #[must_use]
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().log.clone()
    }

    /// How many requests were answered so far.
    #[must_use]
    pub fn request_count(&self) -> usize {
        self.shared.lock().log.len()
    }
}

/// The listener: while down, connections are accepted and closed at once.
struct Gated {
    inner: tokio::net::TcpListener,
    down: Arc<AtomicBool>,
}

impl axum::serve::Listener for Gated {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if !self.down.load(Ordering::SeqCst) {
                return (stream, addr);
            }
            drop(stream);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Logs the request, answers 503 while down, checks the bearer token and refuses
/// writes to a denied zone.
async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let below = path.strip_prefix("/client/v4").unwrap_or(&path).to_owned();
    let shown = match request.uri().query() {
        Some(q) => format!("{below}?{q}"),
        None => below.clone(),
    };
    shared
        .lock()
        .log
        .push((request.method().to_string(), shown));
    if shared.down.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/html")],
            "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
        )
            .into_response();
    }
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) {
        None => {
            return CfError::bad(
                9106,
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
            )
            .into_response();
        }
        Some(t) if t != &*shared.token => {
            return if below == "/user/tokens/verify" {
                CfError(StatusCode::UNAUTHORIZED, 1000, "Invalid API Token".into()).into_response()
            } else {
                CfError(StatusCode::FORBIDDEN, 10000, "Authentication error".into()).into_response()
            };
        }
        Some(_) => {}
    }
    let write = request.method() != Method::GET;
    let zone = below
        .strip_prefix("/zones/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if write && shared.lock().denied.contains(zone) {
        return CfError(StatusCode::FORBIDDEN, 10000, "Authentication error".into())
            .into_response();
    }
    next.run(request).await
}

/// `GET /user/tokens/verify` (the gate has checked the token).
async fn verify() -> Answer {
    ok(
        &json!({"id": "ed17574386854bf78a67040be0a770b0", "status": "active",
              "not_before": null, "expires_on": null}),
    )
}

async fn zones_list(State(shared): State<Shared>, Query(query): Q) -> Answer {
    let (page, per_page) = paging(&query, (5, 20, 50))?;
    let zones: Vec<Value> = shared
        .lock()
        .zones
        .values()
        .filter(|z| param(&query, "name").is_none_or(|n| z["name"] == n.to_ascii_lowercase()))
        .filter(|z| param(&query, "account.id").is_none_or(|a| z["account"]["id"] == a))
        .filter(|z| param(&query, "status").is_none_or(|s| z["status"] == s))
        .cloned()
        .collect();
    paged(&zones, page, per_page)
}

fn zone_of(inner: &Inner, zone: &str) -> Result<Value, CfError> {
    inner.zones.get(zone).cloned().ok_or_else(|| {
        CfError(
            StatusCode::NOT_FOUND,
            7003,
            format!("Could not route to /zones/{zone}, perhaps your object identifier is invalid?"),
        )
    })
}

async fn zone_get(State(shared): State<Shared>, Path(zone): Path<String>) -> Answer {
    ok(&zone_of(&shared.lock(), &zone)?)
}

/// Whether `record` passes the list filters of `query`.
fn matches(record: &Value, query: &[(String, String)]) -> bool {
    let text = |k: &str| record[k].as_str().unwrap_or_default().to_ascii_lowercase();
    query.iter().all(|(k, v)| {
        let v = v.to_ascii_lowercase();
        match k.as_str() {
            "type" => text("type") == v,
            "name" | "name.exact" => text("name") == v.trim_end_matches('.'),
            "name.contains" => text("name").contains(&v),
            "name.startswith" => text("name").starts_with(&v),
            "name.endswith" => text("name").ends_with(&v),
            "content" | "content.exact" => text("content") == v,
            "content.contains" => text("content").contains(&v),
            "proxied" => record["proxied"].as_bool().map(|b| b.to_string()) == Some(v),
            _ => true,
        }
    })
}

async fn records_list(
    State(shared): State<Shared>,
    Path(zone): Path<String>,
    Query(query): Q,
) -> Answer {
    let inner = shared.lock();
    zone_of(&inner, &zone)?;
    let (page, asked) = paging(&query, (5, 100, 5_000_000))?;
    let per_page = inner.page_cap.map_or(asked, |cap| asked.min(cap));
    let found: Vec<Value> = inner.records[&zone]
        .iter()
        .filter(|r| matches(r, &query))
        .cloned()
        .collect();
    paged(&found, page, per_page)
}

fn not_found() -> CfError {
    CfError(
        StatusCode::NOT_FOUND,
        81044,
        "Record does not exist.".into(),
    )
}

async fn record_get(
    State(shared): State<Shared>,
    Path((zone, id)): Path<(String, String)>,
) -> Answer {
    let inner = shared.lock();
    zone_of(&inner, &zone)?;
    let found = inner.records[&zone].iter().find(|r| r["id"] == id.as_str());
    ok(found.ok_or_else(not_found)?)
}

async fn record_create(
    State(shared): State<Shared>,
    Path(zone): Path<String>,
    body: Bytes,
) -> Answer {
    let input = parse_body(&body)?;
    let mut inner = shared.lock();
    let z = zone_of(&inner, &zone)?;
    let records = inner.records.entry(zone).or_default();
    ok(&create(&z, records, &input)?)
}

async fn record_patch(
    State(shared): State<Shared>,
    Path((zone, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let input = parse_body(&body)?;
    let mut inner = shared.lock();
    let z = zone_of(&inner, &zone)?;
    let records = inner.records.entry(zone).or_default();
    ok(&replace(&z, records, &id, &input, true)?)
}

async fn record_put(
    State(shared): State<Shared>,
    Path((zone, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let input = parse_body(&body)?;
    let mut inner = shared.lock();
    let z = zone_of(&inner, &zone)?;
    let records = inner.records.entry(zone).or_default();
    ok(&replace(&z, records, &id, &input, false)?)
}

async fn record_delete(
    State(shared): State<Shared>,
    Path((zone, id)): Path<(String, String)>,
) -> Answer {
    let mut inner = shared.lock();
    zone_of(&inner, &zone)?;
    let records = inner.records.entry(zone).or_default();
    remove(records, &id)?;
    ok(&json!({"id": id}))
}

fn remove(records: &mut Vec<Value>, id: &str) -> Result<Value, CfError> {
    let at = records
        .iter()
        .position(|r| r["id"] == id)
        .ok_or_else(not_found)?;
    Ok(records.remove(at))
}

/// `POST /zones/{zone}/dns_records/batch`: deletes, patches, puts, posts, in that order,
/// on a copy of the zone that replaces it only when every operation succeeded.
async fn batch(State(shared): State<Shared>, Path(zone): Path<String>, body: Bytes) -> Answer {
    let input = parse_body(&body)?;
    let mut inner = shared.lock();
    let z = zone_of(&inner, &zone)?;
    let list = |key: &str| -> Result<Vec<Map<String, Value>>, CfError> {
        match input.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_object()
                        .cloned()
                        .ok_or_else(|| CfError::bad(9207, "Request body is invalid."))
                })
                .collect(),
            Some(_) => Err(CfError::bad(9207, "Request body is invalid.")),
        }
    };
    let (deletes, patches, puts, posts) = (
        list("deletes")?,
        list("patches")?,
        list("puts")?,
        list("posts")?,
    );
    let total = deletes.len() + patches.len() + puts.len() + posts.len();
    if total > BATCH_LIMIT {
        return Err(CfError::bad(
            81082,
            format!("The batch holds {total} operations; the limit is {BATCH_LIMIT}."),
        ));
    }
    let mut work = inner.records.get(&zone).cloned().unwrap_or_default();
    let id_of = |op: &Map<String, Value>| op.get("id").and_then(Value::as_str).map(str::to_owned);
    let mut done = json!({"deletes": [], "patches": [], "puts": [], "posts": []});
    for op in &deletes {
        let id = id_of(op).ok_or_else(|| CfError::bad(9207, "A delete needs an id."))?;
        let gone = remove(&mut work, &id)?;
        done["deletes"].as_array_mut().expect("array").push(gone);
    }
    for (ops, key, partial) in [(&patches, "patches", true), (&puts, "puts", false)] {
        for op in ops {
            let id = id_of(op).ok_or_else(|| CfError::bad(9207, "An update needs an id."))?;
            let mut fields = op.clone();
            fields.remove("id");
            let made = replace(&z, &mut work, &id, &fields, partial)?;
            done[key].as_array_mut().expect("array").push(made);
        }
    }
    for op in &posts {
        let made = create(&z, &mut work, op)?;
        done["posts"].as_array_mut().expect("array").push(made);
    }
    inner.records.insert(zone, work);
    ok(&done)
}

/// Checks and adds a record to `records`.
fn create(zone: &Value, records: &mut Vec<Value>, input: &Map<String, Value>) -> Made {
    let mut record = build(zone, input)?;
    clash(records, &record, None)?;
    let at = now();
    record["id"] = json!(new_id());
    record["created_on"] = json!(at);
    record["modified_on"] = json!(at);
    records.push(record.clone());
    Ok(record)
}

type Made = Result<Value, CfError>;

/// PATCH (`partial`: the fields given over the record's) or PUT (the record anew).
fn replace(
    zone: &Value,
    records: &mut [Value],
    id: &str,
    input: &Map<String, Value>,
    partial: bool,
) -> Made {
    let at = records
        .iter()
        .position(|r| r["id"] == id)
        .ok_or_else(not_found)?;
    let old = records[at].clone();
    let mut fields = input.clone();
    if partial {
        for key in [
            "name", "type", "content", "ttl", "proxied", "comment", "data", "priority",
        ] {
            if !fields.contains_key(key) && !old[key].is_null() {
                fields.insert(key.to_owned(), old[key].clone());
            }
        }
        // A new content replaces the components it was made from, and the reverse.
        if input.contains_key("content") && !input.contains_key("data") {
            fields.remove("data");
        }
        if input.contains_key("data") && !input.contains_key("content") {
            fields.remove("content");
        }
    }
    let mut record = build(zone, &fields)?;
    clash(records, &record, Some(id))?;
    record["id"] = old["id"].clone();
    record["created_on"] = old["created_on"].clone();
    record["modified_on"] = json!(now());
    records[at] = record.clone();
    Ok(record)
}

/// Refuses an identical twin and a CNAME beside anything at its name.
fn clash(records: &[Value], record: &Value, ignore: Option<&str>) -> Result<(), CfError> {
    let same_name = records
        .iter()
        .filter(|r| ignore.is_none_or(|id| r["id"] != id))
        .filter(|r| r["name"] == record["name"]);
    for other in same_name {
        if other["type"] == record["type"] && other["content"] == record["content"] {
            return Err(CfError::bad(81058, "An identical record already exists."));
        }
        if other["type"] == "CNAME" || record["type"] == "CNAME" {
            return Err(CfError::bad(
                81053,
                "An A, AAAA, or CNAME record with that host already exists.",
            ));
        }
    }
    Ok(())
}

/// The record `input` makes in `zone`, checked (no id or times yet).
fn build(zone: &Value, input: &Map<String, Value>) -> Made {
    let zone_name = zone["name"].as_str().unwrap_or_default();
    let kind = input
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| CfError::bad(9000, "DNS record type is invalid."))?
        .to_ascii_uppercase();
    let name = full_name(
        input
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        zone_name,
    )?;
    let ttl = match input.get("ttl") {
        None | Some(Value::Null) => 1,
        Some(t) => t
            .as_u64()
            .filter(|t| *t == 1 || (60..=86_400).contains(t))
            .ok_or_else(|| {
                CfError::bad(
                    9021,
                    "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
                )
            })?,
    };
    let proxied = match input.get("proxied") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(CfError::bad(
                9003,
                "Invalid 'proxied' value, must be a boolean.",
            ));
        }
    };
    let proxiable = matches!(kind.as_str(), "A" | "AAAA" | "CNAME");
    if proxied && !proxiable {
        return Err(CfError::bad(9004, "This record type cannot be proxied."));
    }
    let comment = match input.get("comment") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(c)) if c.chars().count() <= 100 => json!(c),
        Some(_) => return Err(CfError::bad(9212, "The comment is too long or not text.")),
    };
    let text = input
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut record = json!({
        "zone_id": zone["id"], "zone_name": zone_name, "name": name, "type": kind,
        "ttl": if proxied { 1 } else { ttl }, "proxied": proxied, "proxiable": proxiable,
        "comment": comment, "tags": [], "settings": {}, "meta": {},
    });
    let content = match kind.as_str() {
        "A" => text
            .parse::<Ipv4Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| {
                CfError::bad(9005, "Content for A record must be a valid IPv4 address.")
            })?,
        "AAAA" => text
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| {
                CfError::bad(
                    9006,
                    "Content for AAAA record must be a valid IPv6 address.",
                )
            })?,
        "CNAME" | "NS" | "PTR" => host(&text)
            .ok_or_else(|| CfError::bad(9007, format!("Content for {kind} record is invalid.")))?,
        "TXT" if !text.is_empty() && text.chars().count() <= 2048 => text,
        "TXT" => return Err(CfError::bad(9009, "Content for TXT record is invalid.")),
        "MX" => {
            let priority = input
                .get("priority")
                .and_then(Value::as_u64)
                .filter(|p| *p <= 65_535)
                .ok_or_else(|| CfError::bad(9111, "MX records need a priority from 0 to 65535."))?;
            record["priority"] = json!(priority);
            host(&text).ok_or_else(|| CfError::bad(9007, "Content for MX record is invalid."))?
        }
        "SRV" => srv(input, &text, &mut record)?,
        "CAA" if !text.is_empty() => text,
        other => {
            return Err(CfError::bad(
                9000,
                format!("DNS record type {other} is invalid or not supported by this fake."),
            ));
        }
    };
    record["content"] = json!(content);
    Ok(record)
}

/// SRV: from `data` (`priority`, `weight`, `port`, `target`) or from a content of
/// `priority weight port target`; answered with both, content as the docs give it.
fn srv(input: &Map<String, Value>, text: &str, record: &mut Value) -> Result<String, CfError> {
    let invalid = || {
        CfError::bad(
            9101,
            "SRV records need data.priority, data.weight, data.port (0-65535) and a data.target host name.",
        )
    };
    let name = record["name"].as_str().unwrap_or_default();
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 3 || !labels[0].starts_with('_') || !labels[1].starts_with('_') {
        return Err(CfError::bad(
            9100,
            "SRV record names must start with _service._proto.",
        ));
    }
    let (numbers, target) = match input.get("data") {
        Some(Value::Object(data)) => {
            let n = |k: &str| {
                data.get(k)
                    .and_then(Value::as_u64)
                    .filter(|v| *v <= 65_535)
                    .ok_or_else(invalid)
            };
            let target = data
                .get("target")
                .and_then(Value::as_str)
                .ok_or_else(invalid)?;
            (
                [n("priority")?, n("weight")?, n("port")?],
                target.to_owned(),
            )
        }
        _ => {
            let parts: Vec<&str> = text.split_whitespace().collect();
            let [p, w, port, target] = parts[..] else {
                return Err(invalid());
            };
            let n = |s: &str| {
                s.parse::<u64>()
                    .ok()
                    .filter(|v| *v <= 65_535)
                    .ok_or_else(invalid)
            };
            ([n(p)?, n(w)?, n(port)?], target.to_owned())
        }
    };
    let target = if target == "." {
        ".".to_owned()
    } else {
        host(&target).ok_or_else(invalid)?
    };
    let [priority, weight, port] = numbers;
    record["data"] =
        json!({"priority": priority, "weight": weight, "port": port, "target": target});
    Ok(format!("{priority} {weight} {port} {target}"))
}

/// A host name, lower case, without the trailing dot.
fn host(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.parse::<IpAddr>().is_err()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        });
    ok.then_some(s)
}

/// The record's full name: `@` or empty is the apex; a name not ending in the zone gets
/// it appended (as Cloudflare does).
fn full_name(given: &str, zone: &str) -> Result<String, CfError> {
    let given = given.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = if given.is_empty() || given == "@" || given == zone {
        zone.to_owned()
    } else if given.ends_with(&format!(".{zone}")) {
        given
    } else {
        format!("{given}.{zone}")
    };
    host(&name).ok_or_else(|| CfError::bad(9000, "DNS name is invalid."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_completed_inside_the_zone() {
        assert_eq!(full_name("@", "example.com").expect("apex"), "example.com");
        assert_eq!(
            full_name("MC", "example.com").expect("rel"),
            "mc.example.com"
        );
        assert_eq!(
            full_name("mc.example.com.", "example.com").expect("fqdn"),
            "mc.example.com"
        );
        assert!(full_name("bad name", "example.com").is_err());
    }
}
