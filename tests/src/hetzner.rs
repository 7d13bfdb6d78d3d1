//! A fake of the Hetzner Cloud API v1 (<https://docs.hetzner.cloud/>), which tests cannot
//! reach: an axum server on `127.0.0.1:0` speaking the documented wire format (bodies,
//! envelopes, `{"error": {"code", "message"}}` errors, `RateLimit-*` headers) for the
//! servers, firewalls, SSH keys, server types, locations, pricing and actions the
//! provisioning code and the Terraform test provider use. Actions finish at once.
//!
//! `tests/tests/api/fake_hetzner.rs` runs Hetzner's official Python client (`hcloud`)
//! against it, so the shapes here are checked against the real client's models.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

mod catalog;
mod firewalls;
mod servers;
mod ssh_keys;

use self::catalog::*;
use self::firewalls::*;
use self::servers::*;
use self::ssh_keys::*;

type Hook = Arc<dyn Fn(&Value) + Send + Sync>;

/// A running fake Hetzner Cloud API; stops when dropped.
pub struct FakeHetzner {
    /// The API root, `http://127.0.0.1:PORT/v1` (what `HCLOUD_ENDPOINT` takes).
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHetzner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    token: Arc<str>,
    inner: Arc<Mutex<Inner>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Fault {
    method: String,
    path_prefix: String,
    status: u16,
    code: String,
    message: String,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    servers: BTreeMap<u64, Value>,
    user_data: BTreeMap<u64, Value>,
    firewalls: BTreeMap<u64, Value>,
    ssh_keys: BTreeMap<u64, Value>,
    actions: BTreeMap<u64, Value>,
    faults: Vec<Fault>,
    log: Vec<(String, String)>,
    hooks: Vec<Hook>,
    served: u64,
}

impl Inner {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Records a finished action on `resources` (`(id, type)`).
    fn action(&mut self, command: &str, resources: &[(u64, &str)]) -> Value {
        let id = self.id();
        let now = now_rfc3339();
        let action = json!({
            "id": id,
            "command": command,
            "status": "success",
            "progress": 100,
            "started": now,
            "finished": now,
            "resources": resources.iter().map(|(id, kind)| json!({"id": id, "type": kind})).collect::<Vec<_>>(),
            "error": null,
        });
        self.actions.insert(id, action.clone());
        action
    }

    /// A server as the API shows it: its firewalls are read from the firewalls' `applied_to`.
    fn render_server(&self, id: u64) -> Option<Value> {
        let mut server = self.servers.get(&id)?.clone();
        let firewalls: Vec<Value> = self
            .firewalls
            .values()
            .filter(|fw| applied_to_server(fw, id))
            .map(|fw| json!({"id": fw["id"], "status": "applied"}))
            .collect();
        server["public_net"]["firewalls"] = Value::Array(firewalls);
        Some(server)
    }
}

fn applied_to_server(firewall: &Value, server_id: u64) -> bool {
    firewall["applied_to"].as_array().is_some_and(|list| {
        list.iter()
            .any(|a| a["type"] == "server" && a["server"]["id"] == server_id)
    })
}

/// An API error: the status and Hetzner's `{"error": {"code", "message", "details"}}`.
struct ApiError(StatusCode, String, String);

impl ApiError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code.into(),
            message.into(),
        )
    }
    fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_input", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.1, "message": self.2, "details": {}}});
        (self.0, axum::Json(body)).into_response()
    }
}

type Answer = Result<Response, ApiError>;

fn ok(status: u16, body: &Value) -> Answer {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    Ok((status, axum::Json(body.clone())).into_response())
}

fn parse(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, "json_error", format!("invalid JSON: {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError::new(
            400,
            "json_error",
            "body must be a JSON object",
        ))
    }
}

fn required_str<'a>(body: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    body[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("invalid input in field '{field}'")))
}

fn labels_of(body: &Value) -> Result<Value, ApiError> {
    match &body["labels"] {
        Value::Null => Ok(json!({})),
        Value::Object(map) if map.values().all(Value::is_string) => Ok(Value::Object(map.clone())),
        _ => Err(ApiError::invalid("invalid input in field 'labels'")),
    }
}

fn list(key: &str, items: &[Value]) -> Answer {
    let total = items.len();
    ok(
        200,
        &json!({
            key: items,
            "meta": {"pagination": {
                "page": 1, "per_page": total.max(25), "previous_page": null,
                "next_page": null, "last_page": 1, "total_entries": total,
            }},
        }),
    )
}

fn by_name(items: impl Iterator<Item = Value>, query: &BTreeMap<String, String>) -> Vec<Value> {
    items
        .filter(|item| query.get("name").is_none_or(|n| item["name"] == n.as_str()))
        .collect()
}

type Q = Query<BTreeMap<String, String>>;

impl FakeHetzner {
    /// Starts the fake; every request must carry `Authorization: Bearer <token>`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(token: &str) -> FakeHetzner {
        let shared = Shared {
            token: token.into(),
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1000,
                ..Inner::default()
            })),
        };
        let app = Router::new()
            .route("/v1/servers", get(servers_list).post(server_create))
            .route(
                "/v1/servers/{id}",
                get(server_get).put(server_update).delete(server_delete),
            )
            .route(
                "/v1/servers/{id}/actions/{action}",
                get(server_action_get).post(server_action),
            )
            .route("/v1/servers/{id}/actions", get(server_actions_list))
            .route("/v1/actions/{id}", get(action_get))
            .route("/v1/firewalls", get(firewalls_list).post(firewall_create))
            .route(
                "/v1/firewalls/{id}",
                get(firewall_get)
                    .put(firewall_update)
                    .delete(firewall_delete),
            )
            .route(
                "/v1/firewalls/{id}/actions/{action}",
                axum::routing::post(firewall_action),
            )
            .route("/v1/ssh_keys", get(ssh_keys_list).post(ssh_key_create))
            .route(
                "/v1/ssh_keys/{id}",
                get(ssh_key_get).put(ssh_key_update).delete(ssh_key_delete),
            )
            .route("/v1/server_types", get(server_types_list))
            .route("/v1/server_types/{id}", get(server_type_get))
            .route("/v1/locations", get(locations_list))
            .route("/v1/pricing", get(pricing))
            .fallback(|| async { ApiError::not_found("resource") })
            .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Hetzner API");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeHetzner {
            url: format!("http://127.0.0.1:{port}/v1"),
            shared,
            task,
        }
    }

    /// Calls `f` with each server created, as the API shows it plus the `user_data` sent
    /// (the real API never shows it back): how a test "boots" the machine.
    pub fn on_server_created(&self, f: impl Fn(&Value) + Send + Sync + 'static) {
        self.shared.lock().hooks.push(Arc::new(f));
    }

    /// Makes the next request with `method` whose path (below `/v1`) starts with
    /// `path_prefix` fail with `status` and Hetzner's error envelope; once.
    pub fn fail_next(
        &self,
        method: &str,
        path_prefix: &str,
        status: u16,
        code: &str,
        message: &str,
    ) {
        self.shared.lock().faults.push(Fault {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.into(),
            status,
            code: code.into(),
            message: message.into(),
        });
    }

    /// The servers, as the API shows them, each with the `user_data` it was created with.
    #[must_use]
    pub fn servers(&self) -> Vec<Value> {
        let inner = self.shared.lock();
        inner
            .servers
            .keys()
            .filter_map(|id| {
                let mut s = inner.render_server(*id)?;
                s["user_data"] = inner.user_data.get(id).cloned().unwrap_or(Value::Null);
                Some(s)
            })
            .collect()
    }

    /// The firewalls, as the API shows them.
    #[must_use]
    pub fn firewalls(&self) -> Vec<Value> {
        self.shared.lock().firewalls.values().cloned().collect()
    }

    /// The SSH keys, as the API shows them.
    #[must_use]
    pub fn ssh_keys(&self) -> Vec<Value> {
        self.shared.lock().ssh_keys.values().cloned().collect()
    }

    /// Every authenticated request so far, as `(method, path below /v1)`, e.g.
    /// `("POST", "/servers/1001/actions/change_type")`.
    #[must_use]
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().log.clone()
    }
}

/// Authentication, the request log, injected faults and the rate-limit headers.
async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path()
        .strip_prefix("/v1")
        .unwrap_or(request.uri().path())
        .to_string();
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == &*shared.token);
    let (fault, served) = {
        let mut inner = shared.lock();
        inner.served += 1;
        let fault = if authorized {
            inner.log.push((method.clone(), path.clone()));
            inner
                .faults
                .iter()
                .position(|f| f.method == method && path.starts_with(&f.path_prefix))
                .map(|i| inner.faults.remove(i))
        } else {
            None
        };
        (fault, inner.served)
    };
    let mut response = if !authorized {
        ApiError::new(401, "unauthorized", "unable to authenticate").into_response()
    } else if let Some(f) = fault {
        ApiError::new(f.status, &f.code, f.message).into_response()
    } else {
        next.run(request).await
    };
    let limit = 3600_u64;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", limit),
        ("ratelimit-remaining", limit.saturating_sub(served)),
        ("ratelimit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}

// --- time ------------------------------------------------------------------------------

/// Now as the API writes times (`2016-01-30T23:55:00+00:00`).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 25, "{t}");
        assert!(t.ends_with("+00:00"));
    }
}
