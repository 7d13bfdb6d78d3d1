//! Which replica holds which agent, and the hop between replicas (with Redis only).
//!
//! A replica that accepts an agent's tunnel records `node -> its replica URL` in Redis,
//! with a 30 s lifetime that every heartbeat (10 s) renews, and removes the record when
//! the tunnel ends (unless a newer tunnel elsewhere took it over). A replica that dies
//! leaves records that lapse within 30 s.
//!
//! A request for a node whose tunnel another replica holds goes to that replica as the
//! same agent request, over one HTTP/2 connection per peer to its replica listener
//! (`cluster.listen`): `/internal/agent/{node}/<agent path>` with the hop token. The
//! peer relays it into the tunnel and streams the answer back, so everything that talks
//! to an agent (JSON calls, consoles, file transfers, backups) works from any replica
//! and callers never see which one holds the tunnel. The hop token is derived from the
//! JWT key, which replicas share.
//!
//! Each replica also keeps a record of itself (`replica:{id}`: id, URL, version, start)
//! with the same lifetime, renewed every 10 s, which the admin's replica page lists with
//! the agents each holds ([`Registry::census`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use redis::AsyncCommands;

use super::AgentConn;
use crate::auth::crypto::{digest_eq, sha256_hex};
use crate::error::AppError;
use crate::state::AppState;

/// What a replica says about itself in Redis (the admin's replica page lists them).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReplicaRecord {
    pub id: String,
    /// Its replica listener, as the others reach it.
    pub url: String,
    pub version: String,
    /// Unix ms.
    pub started_at: i64,
}

/// Keeps this replica's record in Redis until `stop`, then removes it.
pub async fn announce_until_stopped(
    registry: Arc<Registry>,
    record: ReplicaRecord,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = registry.announce(&record).await {
            tracing::warn!(error = %e, "announcing this replica in redis");
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(RECORD_SECS / 3)) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    registry.withdraw(&record.id).await;
}

/// The header carrying the hop token.
pub const HOP_HEADER: &str = "x-shardlyn-replica";
/// How long a record lives without a heartbeat renewing it.
const RECORD_SECS: u64 = 30;

/// The registry of this replica.
pub struct Registry {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    token: String,
    /// This replica's listener URL, once bound.
    me: OnceLock<String>,
    /// One HTTP/2 connection per peer replica URL.
    peers: Mutex<HashMap<String, SendRequest<Body>>>,
}

impl Registry {
    /// A registry under `prefix` (`shardlyn:<cluster>:`), with the hop token derived from
    /// the shared JWT key.
    #[must_use]
    pub fn new(conn: redis::aio::ConnectionManager, prefix: String, jwt_secret: &str) -> Self {
        Self {
            conn,
            prefix,
            token: sha256_hex(&format!("shardlyn-replica-hop:{jwt_secret}")),
            me: OnceLock::new(),
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Sets this replica's URL (once its listener is bound).
    pub fn set_me(&self, url: String) {
        let _ = self.me.set(url);
    }

    /// This replica's URL, if its listener is up.
    #[must_use]
    pub fn me(&self) -> Option<&str> {
        self.me.get().map(String::as_str)
    }

    fn key(&self, node_id: &str) -> String {
        format!("{}node:{node_id}", self.prefix)
    }

    /// Records that this replica holds `node_id`'s tunnel (and renews the record).
    pub async fn claim(&self, node_id: &str) {
        let Some(me) = self.me() else { return };
        let mut conn = self.conn.clone();
        let set: Result<(), _> = conn.set_ex(self.key(node_id), me, RECORD_SECS).await;
        if let Err(e) = set {
            tracing::warn!(node.id = %node_id, error = %e, "recording the tunnel in redis");
        }
    }

    /// Removes the record of `node_id` if it still names this replica.
    pub async fn release(&self, node_id: &str) {
        let Some(me) = self.me() else { return };
        let script = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        );
        let mut conn = self.conn.clone();
        let done: Result<i64, _> = script
            .key(self.key(node_id))
            .arg(me)
            .invoke_async(&mut conn)
            .await;
        if let Err(e) = done {
            tracing::warn!(node.id = %node_id, error = %e, "removing the tunnel's record from redis");
        }
    }

    fn replica_key(&self, id: &str) -> String {
        format!("{}replica:{id}", self.prefix)
    }

    /// Records (or renews) what this replica says about itself, for [`RECORD_SECS`].
    ///
    /// # Errors
    /// Redis failures.
    pub async fn announce(&self, record: &ReplicaRecord) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(record)?;
        let () = conn
            .set_ex(self.replica_key(&record.id), json, RECORD_SECS)
            .await?;
        Ok(())
    }

    /// Removes this replica's record (it is stopping).
    pub async fn withdraw(&self, id: &str) {
        let mut conn = self.conn.clone();
        let done: Result<i64, _> = conn.del(self.replica_key(id)).await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "removing this replica's record from redis");
        }
    }

    /// The keys matching `pattern` under the prefix, with their values.
    async fn scan(&self, pattern: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = {
            let mut iter = conn
                .scan_match::<_, String>(format!("{}{pattern}", self.prefix))
                .await?;
            let mut keys = Vec::new();
            while let Some(key) = futures_util::StreamExt::next(&mut iter).await {
                keys.push(key);
            }
            keys
        };
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(1000) {
            let values: Vec<Option<String>> = conn.mget(chunk).await?;
            found.extend(
                chunk
                    .iter()
                    .zip(values)
                    .filter_map(|(k, v)| Some((k.clone(), v?))),
            );
        }
        Ok(found)
    }

    /// Every live replica's record, and the nodes whose tunnels each replica URL holds.
    ///
    /// # Errors
    /// Redis failures.
    pub async fn census(
        &self,
    ) -> anyhow::Result<(Vec<ReplicaRecord>, HashMap<String, Vec<String>>)> {
        let mut replicas: Vec<ReplicaRecord> = self
            .scan("replica:*")
            .await?
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str(&json).ok())
            .collect();
        replicas.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        let node_prefix = format!("{}node:", self.prefix);
        let mut held: HashMap<String, Vec<String>> = HashMap::new();
        for (key, url) in self.scan("node:*").await? {
            if let Some(node) = key.strip_prefix(&node_prefix) {
                held.entry(url).or_default().push(node.to_owned());
            }
        }
        for nodes in held.values_mut() {
            nodes.sort_unstable();
        }
        Ok((replicas, held))
    }

    /// The replica that holds `node_id`'s tunnel, when it is another one.
    async fn holder(&self, node_id: &str) -> Option<String> {
        let mut conn = self.conn.clone();
        let url: Option<String> = match conn.get(self.key(node_id)).await {
            Ok(url) => url,
            Err(e) => {
                tracing::warn!(node.id = %node_id, error = %e, "reading the tunnel registry");
                None
            }
        };
        url.filter(|u| Some(u.as_str()) != self.me())
    }

    /// A connection to `node_id`'s agent through the replica that holds its tunnel.
    pub async fn remote(&self, node_id: &str) -> Option<Arc<AgentConn>> {
        let url = self.holder(node_id).await?;
        let sender = match self.peer(&url).await {
            Ok(sender) => sender,
            Err(e) => {
                tracing::warn!(peer = %url, error = %e, "cannot reach the replica holding a tunnel");
                return None;
            }
        };
        Some(Arc::new(AgentConn::via_peer(
            node_id,
            &url,
            sender,
            format!("/internal/agent/{node_id}"),
            self.token.clone(),
        )))
    }

    /// The live HTTP/2 connection to the peer at `url`, opened when there is none.
    async fn peer(&self, url: &str) -> anyhow::Result<SendRequest<Body>> {
        let cached = self
            .peers
            .lock()
            .ok()
            .and_then(|p| p.get(url).cloned())
            .filter(|s| !s.is_closed());
        if let Some(sender) = cached {
            return Ok(sender);
        }
        let uri: http::Uri = url.parse()?;
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("peer URL {url} has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "peer URL {url}: the replica listener speaks plain HTTP/2 (http://)"
        );
        let stream = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)),
        )
        .await??;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(shardlyn_net::tunnel::io::H2_STREAM_WINDOW_BYTES)
            .initial_connection_window_size(shardlyn_net::tunnel::io::H2_CONN_WINDOW_BYTES)
            .keep_alive_interval(Some(std::time::Duration::from_secs(15)))
            .keep_alive_timeout(std::time::Duration::from_secs(20))
            .handshake::<_, Body>(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "replica hop connection ended");
            }
        });
        if let Ok(mut peers) = self.peers.lock() {
            peers.insert(url.to_owned(), sender.clone());
        }
        Ok(sender)
    }

    /// How many peer replicas this one has opened a connection to.
    #[must_use]
    pub fn peers(&self) -> usize {
        self.peers.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Whether `presented` is the hop token.
    fn admits(&self, presented: &str) -> bool {
        digest_eq(presented, &self.token)
    }
}

/// The replica listener's routes: the relay into this replica's tunnels.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/internal/agent/{node}/{*rest}", axum::routing::any(relay))
        .fallback(|| async { AppError::NotFound("no such route".into()) })
        .with_state(state)
}

/// Relays a peer's agent request into the tunnel of `node` held here, streaming both
/// bodies.
async fn relay(
    State(state): State<AppState>,
    Path((node, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(registry) = state.tunnels.registry() else {
        return AppError::NotFound("no such route".into()).into_response();
    };
    let presented = req
        .headers()
        .get(HOP_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !registry.admits(presented) {
        return AppError::unauthorized("missing or wrong replica hop token").into_response();
    }
    let Some(conn) = state.tunnels.get(&node) else {
        return AppError::coded(
            StatusCode::CONFLICT,
            "NODE_OFFLINE",
            "the node is offline: its agent is not connected",
        )
        .into_response();
    };
    let (parts, body) = req.into_parts();
    let uri = match parts.uri.query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    let mut headers = parts.headers;
    headers.remove(HOP_HEADER);
    headers.remove(http::header::HOST);
    match conn
        .forward(parts.method, &uri, headers, Body::new(body))
        .await
    {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => e.into_response(),
    }
}

/// Serves the replica listener (HTTP/2 without TLS) until `stop`. Relayed streams live on
/// after it stops accepting, until their tunnels close.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = router(state);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "replica listener: accept failed");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .initial_stream_window_size(shardlyn_net::tunnel::io::H2_STREAM_WINDOW_BYTES)
                .initial_connection_window_size(shardlyn_net::tunnel::io::H2_CONN_WINDOW_BYTES)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "replica hop connection ended");
            }
        });
    }
}
