//! The panel end of the agent tunnel: accepts the agent's WebSocket, runs an HTTP/2
//! client over it, keeps a registry of connected agents and checks each one with a
//! heartbeat request every 10 seconds (a node is offline after missed heartbeats).
//! Requests to an agent are typed by `shardlyn_proto::agent_api`: [`AgentConn::request`]
//! for JSON, [`AgentConn::stream`] / [`AgentConn::open`] for
//! streamed bodies; no caller writes an agent path by hand.

mod accept;
mod events;
pub mod registry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use http_body_util::BodyExt;
use hyper::client::conn::http2::SendRequest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shardlyn_proto::agent_api::{Endpoint, Method, Streamed};

pub use accept::accept;
pub use events::{Listener, Reaction, TunnelEvent};
pub use registry::Registry;

use crate::auth::extract::AdminUser;
use crate::error::{AppError, AppJson, AppResult};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// Heartbeat period; a node unseen for three periods is offline.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Longest a request through the tunnel may take before the panel gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The statuses an endpoint that asks a node's agent adds to the defaults (GETs have no
/// 409 by default).
pub const AGENT_ERRORS: &[(u16, &str)] = &[
    (
        409,
        "The node is offline (`NODE_OFFLINE`): its agent is not connected",
    ),
    (503, "The node is connected but did not answer in time"),
];

/// One connected agent.
pub struct AgentConn {
    pub node_id: String,
    pub version: String,
    pub remote: Option<String>,
    pub connected_at: i64,
    conn_id: u64,
    sender: SendRequest<Body>,
    requests: AtomicU64,
    /// Wakes the connection's task to close the tunnel now.
    close: tokio::sync::Notify,
    /// Set when the tunnel is held by another replica: requests go to it, under this
    /// path prefix and with the hop token (see [`registry`]).
    via: Option<Via>,
}

struct Via {
    prefix: String,
    token: String,
}

impl AgentConn {
    /// `node_id`'s agent as reached through the replica at `peer`: `sender` is the HTTP/2
    /// connection to that replica, `prefix` the relay path of the node there.
    pub(crate) fn via_peer(
        node_id: &str,
        peer: &str,
        sender: SendRequest<Body>,
        prefix: String,
        token: String,
    ) -> Self {
        Self {
            node_id: node_id.to_owned(),
            version: String::new(),
            remote: Some(peer.to_owned()),
            connected_at: 0,
            conn_id: 0,
            sender,
            requests: AtomicU64::new(0),
            close: tokio::sync::Notify::new(),
            via: Some(Via { prefix, token }),
        }
    }

    /// A request as it leaves this process: to the agent, or to the replica holding
    /// its tunnel.
    fn outgoing(&self, method: http::Method, uri: &str) -> AppResult<http::request::Builder> {
        let mut builder = http::Request::builder().method(method);
        match &self.via {
            None => {
                builder = builder.uri(uri).header(http::header::HOST, "agent");
            }
            Some(via) => {
                builder = builder
                    .uri(format!("http://replica{}{uri}", via.prefix))
                    .header(registry::HOP_HEADER, via.token.as_str());
            }
        }
        Ok(builder)
    }

    /// Sends a request as it came (the replica relay): the answer whatever its status.
    ///
    /// # Errors
    /// 503 when the tunnel fails.
    pub(crate) async fn forward(
        &self,
        method: http::Method,
        uri: &str,
        headers: http::HeaderMap,
        body: Body,
    ) -> AppResult<http::Response<hyper::body::Incoming>> {
        self.send_body(method, uri, headers, body).await
    }

    /// `E` on the agent API (`shardlyn_proto::agent_api`), its JSON answer read as
    /// `E::Response` (`()` for an empty one). The agent's 400/404/409/413 come back as
    /// the same errors; anything else is a 503.
    ///
    /// # Errors
    /// 503 when the tunnel fails or times out, or the answer is not an `E::Response`;
    /// the agent's own client errors otherwise.
    pub async fn request<E: Endpoint>(
        &self,
        params: &E::Params<'_>,
        query: &E::Query,
        body: &E::Request,
    ) -> AppResult<E::Response>
    where
        E::Query: Serialize,
        E::Request: Serialize,
        E::Response: DeserializeOwned,
    {
        let uri = E::uri(params, query).map_err(|e| AppError::Internal(e.into()))?;
        let body = serde_json::to_value(body).map_err(|e| AppError::Internal(e.into()))?;
        let body = if body.is_null() {
            None
        } else {
            Some(serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.into()))?)
        };
        let response = self.send(method(E::METHOD), &uri, body).await?;
        let value = read_json(response).await?;
        serde_json::from_value(value).map_err(|e| {
            AppError::Unavailable(format!("node answered an unreadable {}: {e}", E::PATH))
        })
    }

    /// `E` whose answer is streamed (console events, downloads): the response once its
    /// head arrived. A non-2xx answer is turned into the matching error.
    ///
    /// # Errors
    /// As [`Self::request`].
    pub async fn stream<E: Endpoint<Response = Streamed, Request = ()>>(
        &self,
        params: &E::Params<'_>,
        query: &E::Query,
    ) -> AppResult<http::Response<hyper::body::Incoming>>
    where
        E::Query: Serialize,
    {
        let uri = E::uri(params, query).map_err(|e| AppError::Internal(e.into()))?;
        let response = self.send(method(E::METHOD), &uri, None).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(read_json(response)
            .await
            .err()
            .unwrap_or_else(|| AppError::Unavailable("node answered an unexpected status".into())))
    }

    /// `E` with a streamed request `body` (uploads, relayed writes) and extra `headers`:
    /// the raw answer, whatever its status. No overall time limit, as the body may take
    /// long: the caller bounds it (the tunnel's keep-alive catches a dead agent).
    ///
    /// # Errors
    /// 503 when the tunnel fails.
    pub async fn open<E: Endpoint>(
        &self,
        params: &E::Params<'_>,
        query: &E::Query,
        headers: http::HeaderMap,
        body: Body,
    ) -> AppResult<http::Response<hyper::body::Incoming>>
    where
        E::Query: Serialize,
    {
        let uri = E::uri(params, query).map_err(|e| AppError::Internal(e.into()))?;
        self.send_body(method(E::METHOD), &uri, headers, body).await
    }

    /// The JSON body of `E`, for [`Self::open`] (with a `content-type` header).
    ///
    /// # Errors
    /// The body does not serialize (a bug).
    pub fn json_body<E: Endpoint>(body: &E::Request) -> AppResult<(http::HeaderMap, Body)>
    where
        E::Request: Serialize,
    {
        let bytes = serde_json::to_vec(body).map_err(|e| AppError::Internal(e.into()))?;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok((headers, Body::from(bytes)))
    }

    async fn send_body(
        &self,
        method: http::Method,
        uri: &str,
        headers: http::HeaderMap,
        body: Body,
    ) -> AppResult<http::Response<hyper::body::Incoming>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .outgoing(method, uri)?
            .body(body)
            .map_err(|e| AppError::Internal(e.into()))?;
        request.headers_mut().extend(headers);
        let mut sender = self.sender.clone();
        sender.send_request(request).await.map_err(|e| offline(&e))
    }

    async fn send(
        &self,
        method: http::Method,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> AppResult<http::Response<hyper::body::Incoming>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut builder = self.outgoing(method, uri)?;
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(body.map_or_else(Body::empty, Body::from))
            .map_err(|e| AppError::Internal(e.into()))?;
        let mut sender = self.sender.clone();
        tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
            .await
            .map_err(|e| offline(&e))?
            .map_err(|e| offline(&e))
    }
}

fn method(m: Method) -> http::Method {
    match m {
        Method::Get => http::Method::GET,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
    }
}

fn offline(e: &dyn std::fmt::Display) -> AppError {
    AppError::Unavailable(format!("node did not answer: {e}"))
}

/// The JSON of an agent answer (null when empty), or the error it carries.
pub(crate) async fn read_json(response: http::Response<hyper::body::Incoming>) -> AppResult<Value> {
    let status = response.status();
    let bytes = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
        .await
        .map_err(|e| offline(&e))?
        .map_err(|e| offline(&e))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    let message = value["error"].as_str().unwrap_or("no detail").to_string();
    let code = value["code"].as_str().unwrap_or_default();
    Err(match status.as_u16() {
        400 => AppError::BadRequest(message),
        404 => AppError::NotFound(message),
        409 if code.is_empty() || code == "CONFLICT" => AppError::Conflict(message),
        409 => AppError::coded(http::StatusCode::CONFLICT, agent_code(code), message),
        413 => AppError::PayloadTooLarge,
        _ => AppError::Unavailable(format!("node answered {status}: {message}")),
    })
}

/// The agent's 409 codes the panel passes on; others become `CONFLICT`.
fn agent_code(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "INSTALLING",
        "NOT_RUNNING",
        "ALREADY_RUNNING",
        "IMAGE_UNAVAILABLE",
        "INVALID_STATE",
        // From a replica relay whose tunnel went away meanwhile.
        "NODE_OFFLINE",
    ];
    KNOWN
        .iter()
        .find(|k| **k == code)
        .copied()
        .unwrap_or("CONFLICT")
}

/// The agents connected to this panel process.
#[derive(Default)]
pub struct Tunnels {
    agents: RwLock<HashMap<String, Arc<AgentConn>>>,
    next_conn: AtomicU64,
    accepted: AtomicU64,
    listeners: events::Listeners,
    /// With Redis: who holds which tunnel, and the way to the other replicas.
    registry: std::sync::OnceLock<Arc<Registry>>,
}

impl Tunnels {
    /// An empty registry whose connections are announced to `listeners`, in order.
    #[must_use]
    pub fn new(listeners: Vec<Listener>) -> Self {
        Self {
            listeners: events::Listeners::new(listeners),
            ..Self::default()
        }
    }

    /// The live connection of `node_id`, if it is connected here.
    pub fn get(&self, node_id: &str) -> Option<Arc<AgentConn>> {
        self.agents.read().ok()?.get(node_id).cloned()
    }

    /// Shares tunnels with the other replicas through `registry` (set once, at start).
    pub fn set_registry(&self, registry: Arc<Registry>) {
        let _ = self.registry.set(registry);
    }

    /// The registry, with Redis.
    #[must_use]
    pub fn registry(&self) -> Option<&Arc<Registry>> {
        self.registry.get()
    }

    /// `node_id`'s agent: its tunnel here, or through the replica that holds it.
    pub async fn find(&self, node_id: &str) -> Option<Arc<AgentConn>> {
        if let Some(conn) = self.get(node_id) {
            return Some(conn);
        }
        self.registry.get()?.remote(node_id).await
    }

    /// The route to `node_id`'s agent: its live connection (here or on another replica),
    /// or 409 `NODE_OFFLINE` when no replica holds its tunnel. Every request the panel
    /// sends a node goes through this one seam.
    ///
    /// # Errors
    /// 409 `NODE_OFFLINE`.
    pub async fn route(&self, node_id: &str) -> AppResult<Arc<AgentConn>> {
        self.find(node_id).await.ok_or_else(|| {
            AppError::coded(
                http::StatusCode::CONFLICT,
                "NODE_OFFLINE",
                "the node is offline: its agent is not connected",
            )
        })
    }

    /// Every live connection.
    pub fn list(&self) -> Vec<Arc<AgentConn>> {
        self.agents
            .read()
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops the connection of a node (it was deleted); the agent is cut off.
    pub fn disconnect(&self, node_id: &str) {
        let removed = self.agents.write().ok().and_then(|mut a| a.remove(node_id));
        if let Some(conn) = removed {
            conn.close.notify_one();
        }
    }

    fn insert(&self, conn: AgentConn) -> Arc<AgentConn> {
        let conn = Arc::new(conn);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut agents) = self.agents.write() {
            agents.insert(conn.node_id.clone(), conn.clone());
        }
        conn
    }

    /// Removes `conn` unless a newer connection of the same node replaced it.
    fn remove(&self, conn: &AgentConn) {
        if let Ok(mut agents) = self.agents.write()
            && agents
                .get(&conn.node_id)
                .is_some_and(|c| c.conn_id == conn.conn_id)
        {
            agents.remove(&conn.node_id);
        }
    }

    fn next_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

/// `/v1/tunnel/*` and the agent's own endpoints.
pub fn router() -> Routes {
    Routes::new("tunnel")
        .get(
            "/v1/agent/tunnel",
            Access::Agent,
            "Agent tunnel (WebSocket)",
            accept,
        )
        .get(
            "/v1/tunnel/stats",
            Access::Admin,
            "Tunnel statistics",
            stats,
        )
        .get(
            "/v1/tunnel/agents",
            Access::Admin,
            "Connected agents",
            agents,
        )
}

/// The tunnels of this replica.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct TunnelStats {
    pub connected_agents: usize,
    /// Tunnel connections accepted since start.
    pub connections_accepted: u64,
    /// Requests sent through the connected tunnels.
    pub requests_total: u64,
    pub heartbeat_secs: u64,
}

/// A connected agent.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AgentView {
    pub node_id: String,
    pub version: String,
    pub remote_addr: Option<String>,
    pub connected_at: crate::types::Timestamp,
    /// Requests sent through this tunnel.
    pub requests: u64,
}

async fn stats(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<TunnelStats>> {
    let agents = state.tunnels.list();
    let requests: u64 = agents
        .iter()
        .map(|a| a.requests.load(Ordering::Relaxed))
        .sum();
    Ok(AppJson(TunnelStats {
        connected_agents: agents.len(),
        connections_accepted: state.tunnels.accepted.load(Ordering::Relaxed),
        requests_total: requests,
        heartbeat_secs: HEARTBEAT.as_secs(),
    }))
}

async fn agents(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<Vec<AgentView>>> {
    let mut list: Vec<AgentView> = state
        .tunnels
        .list()
        .iter()
        .map(|a| AgentView {
            node_id: a.node_id.clone(),
            version: a.version.clone(),
            remote_addr: a.remote.clone(),
            connected_at: a.connected_at.into(),
            requests: a.requests.load(Ordering::Relaxed),
        })
        .collect();
    list.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok(AppJson(list))
}

#[cfg(test)]
mod layering {
    /// The tunnel publishes events; it never reaches into an area itself.
    #[test]
    fn the_tunnel_calls_no_area() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("accept.rs", include_str!("accept.rs")),
            ("events.rs", include_str!("events.rs")),
        ];
        for (file, text) in sources {
            for area in ["instances", "nodes", "sftp"] {
                let path = format!("crate::{area}");
                assert!(!text.contains(&path), "tunnel/{file} calls {path}");
            }
        }
    }
}
