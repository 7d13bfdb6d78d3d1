//! `GET /v1/agent/tunnel`: authenticates the agent token, checks the protocol version
//! and the agent's release (one minor version apart at most, `shardlyn_proto::version`),
//! answers the WebSocket upgrade, then turns the socket into an HTTP/2 client connection.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use shardlyn_net::tunnel::io::WsIo;
use shardlyn_net::tunnel::{PROTOCOL_HEADER, VERSION_HEADER};
use shardlyn_proto::agent_api::Metrics;
use shardlyn_proto::version::{PANEL_VERSION_HEADER, REFUSED_CODE};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{AgentConn, HEARTBEAT, TunnelEvent};
use crate::auth::extract::AgentNode;
use crate::auth::extract::peer_ip;
use crate::db::now_ms;
use crate::error::AppError;
use crate::state::AppState;

fn header_str<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Accepts an agent's tunnel.
pub async fn accept(
    State(state): State<AppState>,
    AgentNode(node): AgentNode,
    mut req: Request,
) -> Response {
    let protocol = header_str(&req, PROTOCOL_HEADER).and_then(|v| v.parse::<u32>().ok());
    if protocol != Some(shardlyn_proto::PROTOCOL_VERSION) {
        return AppError::BadRequest(format!(
            "agent protocol {protocol:?} is not supported; this panel speaks {}",
            shardlyn_proto::PROTOCOL_VERSION
        ))
        .into_response();
    }
    // Panel and agent one minor version apart work together (`shardlyn_proto::version`).
    if let Err(message) =
        shardlyn_proto::version::check(PANEL_VERSION, header_str(&req, VERSION_HEADER))
    {
        tracing::warn!(node.id = %node.id, %message, "agent version refused");
        return refused(message);
    }
    let is_upgrade =
        header_str(&req, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let (Some(key), true) = (header_str(&req, "sec-websocket-key"), is_upgrade) else {
        return AppError::BadRequest("expected a WebSocket upgrade".into()).into_response();
    };
    let accept_key = derive_accept_key(key.as_bytes());
    let version = header_str(&req, VERSION_HEADER)
        .unwrap_or("unknown")
        .chars()
        .take(64)
        .collect::<String>();
    let remote = peer_ip(req.extensions());
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return AppError::BadRequest("connection cannot be upgraded".into()).into_response();
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run(state, node.id, version, remote, upgraded).await,
            Err(e) => tracing::warn!(error = %e, "agent upgrade failed"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    headers.insert(
        PANEL_VERSION_HEADER,
        HeaderValue::from_static(PANEL_VERSION),
    );
    response
}

const PANEL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// 426 with the error envelope (`AGENT_VERSION_UNSUPPORTED`) and the panel's version.
fn refused(message: String) -> Response {
    let body = shardlyn_proto::ErrorBody::new(REFUSED_CODE, message);
    let mut response = (StatusCode::UPGRADE_REQUIRED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        PANEL_VERSION_HEADER,
        HeaderValue::from_static(PANEL_VERSION),
    );
    response
}

async fn run(
    state: AppState,
    node_id: String,
    version: String,
    remote: Option<String>,
    upgraded: hyper::upgrade::Upgraded,
) {
    let ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(shardlyn_net::tunnel::io::config()),
    )
    .await;
    let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_frame_size(shardlyn_net::tunnel::io::H2_MAX_FRAME_BYTES)
        .initial_stream_window_size(shardlyn_net::tunnel::io::H2_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(shardlyn_net::tunnel::io::H2_CONN_WINDOW_BYTES)
        .keep_alive_interval(Some(Duration::from_secs(15)))
        .keep_alive_timeout(Duration::from_secs(20))
        .handshake::<_, Body>(TokioIo::new(WsIo::new(ws)))
        .await;
    let (sender, connection) = match handshake {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(node.id = %node_id, error = %e, "tunnel HTTP/2 handshake failed");
            return;
        }
    };
    let mut driver = tokio::spawn(connection);
    let conn = state.tunnels.insert(AgentConn {
        node_id: node_id.clone(),
        version: version.clone(),
        remote,
        connected_at: now_ms(),
        conn_id: state.tunnels.next_id(),
        sender,
        requests: std::sync::atomic::AtomicU64::new(0),
        close: tokio::sync::Notify::new(),
        via: None,
    });
    state.metrics.health.tunnel_accepted();
    let registry = state.tunnels.registry().cloned();
    if let Some(r) = &registry {
        r.claim(&node_id).await;
    }
    tracing::info!(node.id = %node_id, agent.version = %version, "agent connected");
    // The areas' work for this connection (specs go out, state changes come back) lives
    // as long as it does.
    let mut with_conn = state.tunnels.listeners.connected(&state, &conn);
    let mut ticker = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = &mut driver => break,
            () = conn.close.notified() => break,
            _ = ticker.tick() => {}
        }
        if state
            .tunnels
            .get(&node_id)
            .is_none_or(|c| c.conn_id != conn.conn_id)
        {
            break;
        }
        // The heartbeat is a metrics sample: one round trip proves the tunnel works end
        // to end, and the areas record the node's and its servers' usage from it.
        let started = std::time::Instant::now();
        let sample = match conn.request::<Metrics>(&(), &(), &()).await {
            Ok(sample) => sample,
            Err(e) => {
                state.metrics.health.heartbeat_failed();
                tracing::warn!(node.id = %node_id, error = %e, "heartbeat failed: closing tunnel");
                break;
            }
        };
        state.metrics.observe_heartbeat(started.elapsed());
        if let Some(r) = &registry {
            r.claim(&node_id).await;
        }
        let beat = TunnelEvent::Heartbeat {
            node_id: node_id.clone(),
            version: version.clone(),
            sample: std::sync::Arc::new(sample),
        };
        state.tunnels.listeners.publish(&state, &beat).await;
    }
    state.tunnels.remove(&conn);
    with_conn.abort_all();
    driver.abort();
    let last = state.tunnels.get(&node_id).is_none();
    if let (Some(r), true) = (&registry, last) {
        r.release(&node_id).await;
    }
    let gone = TunnelEvent::Disconnected {
        node_id: node_id.clone(),
        version,
        last,
    };
    state.tunnels.listeners.publish(&state, &gone).await;
    tracing::info!(node.id = %node_id, "agent disconnected");
}
