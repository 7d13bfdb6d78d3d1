//! The tunnel: the agent dials `wss://PANEL/v1/agent/tunnel` and serves the agent API
//! over HTTP/2 on that WebSocket. It reconnects with exponential backoff and jitter and
//! never touches running servers while the panel is away.

pub use shardlyn_net::tunnel::io;
pub use shardlyn_net::tunnel::{PROTOCOL_HEADER, TOKEN_HEADER, VERSION_HEADER};

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rand::Rng;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::api::{AgentState, router};
use crate::config::{AgentConfig, Settings};
use crate::instances::Manager;
use crate::tls;
use io::WsIo;

/// Delay before reconnect attempt `n` (0-based): 1 s doubling to 60 s, with ±25 % jitter.
#[must_use]
pub fn backoff(attempt: u32) -> Duration {
    let base = 1_000u64.saturating_mul(1u64 << attempt.min(6)).min(60_000);
    let jitter = rand::thread_rng().gen_range(0.75..1.25);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "bounded to 75 s"
    )]
    Duration::from_millis((base as f64 * jitter) as u64)
}

fn tunnel_url(panel: &str) -> anyhow::Result<String> {
    let rest = panel
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| panel.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .context("panel URL must start with http:// or https://")?;
    Ok(format!("{}/v1/agent/tunnel", rest.trim_end_matches('/')))
}

/// Connects once and serves until the tunnel closes, with a throw-away instance manager
/// (diagnostics and tests; [`run`] keeps one manager across connections).
///
/// # Errors
/// The panel is unreachable, refuses the token, or the connection drops.
pub async fn connect_and_serve(config: &AgentConfig) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("shardlyn-agent-{}", std::process::id()));
    let manager = Manager::new(&dir, Settings::default())?;
    connect_and_serve_with(config, AgentState::new(config.node_id.clone(), manager)).await
}

/// Connects once and serves `state` until the tunnel closes.
///
/// # Errors
/// The panel is unreachable, refuses the token, or the connection drops.
pub async fn connect_and_serve_with(config: &AgentConfig, state: AgentState) -> anyhow::Result<()> {
    connect_and_serve_reporting(config, state, crate::VERSION).await
}

/// The panel refused the version this agent reported (`shardlyn_proto::version`):
/// reconnecting soon cannot help, the agent (or the panel) needs an upgrade.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VersionRefused(pub String);

/// How long an agent whose version the panel refused waits before asking again (the
/// panel may have been rolled back meanwhile); a plain failure backs off to 60 s.
pub const REFUSED_RETRY: Duration = Duration::from_secs(600);

/// [`connect_and_serve_with`], reporting `version` as the agent's release: the test
/// hook for an old agent (tests report an old version instead of building one).
///
/// # Errors
/// As [`connect_and_serve_with`]; a refused version is a [`VersionRefused`].
pub async fn connect_and_serve_reporting(
    config: &AgentConfig,
    state: AgentState,
    version: &str,
) -> anyhow::Result<()> {
    let url = tunnel_url(&config.panel_url)?;
    let mut request = url.as_str().into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(TOKEN_HEADER, HeaderValue::from_str(&config.agent_token)?);
    headers.insert(
        PROTOCOL_HEADER,
        HeaderValue::from(shardlyn_proto::PROTOCOL_VERSION),
    );
    headers.insert(VERSION_HEADER, HeaderValue::from_str(version)?);
    let host = request
        .uri()
        .host()
        .context("panel URL has no host")?
        .to_string();
    let secure = url.starts_with("wss://");
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if secure { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("connecting to {host}:{port}"))?;
    tcp.set_nodelay(true)?;
    if secure {
        let connector =
            tokio_rustls::TlsConnector::from(tls::client_config(config.ca_pem.as_deref())?);
        let name = rustls::pki_types::ServerName::try_from(host.clone())?;
        let stream = connector
            .connect(name, tcp)
            .await
            .context("TLS handshake with the panel")?;
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(io::config()))
                .await
                .map_err(|e| handshake_error(e, version))?;
        serve(ws, state).await
    } else {
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(io::config()))
            .await
            .map_err(|e| handshake_error(e, version))?;
        serve(ws, state).await
    }
}

/// A failed upgrade, with the panel's error message when it sent one; 426 is a
/// [`VersionRefused`].
fn handshake_error(e: tokio_tungstenite::tungstenite::Error, version: &str) -> anyhow::Error {
    use shardlyn_proto::version::{PANEL_VERSION_HEADER, REFUSED_CODE};
    let tokio_tungstenite::tungstenite::Error::Http(response) = &e else {
        return anyhow::Error::new(e).context("tunnel handshake");
    };
    let body: Option<shardlyn_proto::ErrorBody> = response
        .body()
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok());
    let status = response.status();
    if status.as_u16() == 426 || body.as_ref().is_some_and(|b| b.code == REFUSED_CODE) {
        let panel = response
            .headers()
            .get(PANEL_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        let message = body.map_or_else(
            || format!("panel {panel} refused agent {version}: upgrade the agent"),
            |b| b.error,
        );
        return VersionRefused(message).into();
    }
    match body {
        Some(b) => anyhow::anyhow!(
            "tunnel handshake: the panel answered {status}: {} ({})",
            b.error,
            b.code
        ),
        None => anyhow::Error::new(e).context("tunnel handshake"),
    }
}

async fn serve<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    state: AgentState,
) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tracing::info!(node.id = %state.node_id, "tunnel connected");
    let io = TokioIo::new(WsIo::new(ws));
    let service = TowerToHyperService::new(router(state));
    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_frame_size(io::H2_MAX_FRAME_BYTES)
        .initial_stream_window_size(io::H2_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(io::H2_CONN_WINDOW_BYTES)
        .keep_alive_interval(Some(Duration::from_secs(15)))
        .keep_alive_timeout(Duration::from_secs(20))
        .serve_connection(io, service)
        .await
        .context("tunnel closed")
}

/// The agent: builds the instance manager over `data_dir` once (re-adopting running
/// servers), then keeps the tunnel up until `shutdown` resolves, reconnecting with
/// backoff. Servers keep running (and crash restarts keep working) while the panel is
/// away; they are left running at shutdown.
pub async fn run(config: AgentConfig, data_dir: PathBuf, shutdown: impl Future<Output = ()>) {
    run_allowing(config, data_dir, &[], shutdown).await;
}

/// [`run`] with `allow` added to the settings' `[outbound] allow` list: how `shardlyn
/// up` hands its panel's list to its in-process agent.
pub async fn run_allowing(
    config: AgentConfig,
    data_dir: PathBuf,
    allow: &[String],
    shutdown: impl Future<Output = ()>,
) {
    // Everything below (volumes mounted into containers, SFTP host keys, uploads) takes
    // its paths from here: make them absolute once, whatever the working directory was.
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    let mut settings = Settings::load(&data_dir).unwrap_or_else(|e| {
        tracing::warn!(error = %format!("{e:#}"), "agent settings; using the defaults");
        Settings::default()
    });
    match settings.outbound.extended(allow) {
        Ok(outbound) => settings.outbound = outbound,
        Err(e) => tracing::warn!(error = %e, "outbound allow list not extended"),
    }
    let sftp_settings = settings.clone();
    let sweep_every = Duration::from_secs(settings.upload_sweep_secs.max(1));
    let manager = match Manager::new(&data_dir, settings) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "instance manager");
            return;
        }
    };
    if let Err(e) = manager.adopt().await {
        tracing::warn!(error = %e, "re-adopting instances");
    }
    let state = AgentState::new(config.node_id.clone(), manager.clone());
    // SFTP runs from start-up, with or without a panel (logins then wait or fail).
    let sftp = crate::sftp::start(
        &sftp_settings,
        &data_dir,
        manager.clone(),
        state.sftp.clone(),
    )
    .await
    .inspect_err(|e| tracing::warn!(error = %format!("{e:#}"), "SFTP server not started"))
    .ok();
    // Expired resumable uploads lose their partial data even when nobody uploads again.
    let sweeper = tokio::spawn(crate::api::uploads::sweep_every(state.clone(), sweep_every));
    serve_forever(&config, state, shutdown).await;
    sweeper.abort();
    drop(sftp);
    manager.flush().await;
}

/// Keeps the tunnel up with `state` until `shutdown` resolves, reconnecting with backoff.
pub async fn serve_forever(
    config: &AgentConfig,
    state: AgentState,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut attempt = 0u32;
    loop {
        let started = std::time::Instant::now();
        let mut refused = false;
        tokio::select! {
            result = connect_and_serve_with(config, state.clone()) => {
                match result {
                    Ok(()) => tracing::warn!("tunnel closed by the panel"),
                    Err(err) => match err.downcast_ref::<VersionRefused>() {
                        Some(VersionRefused(message)) => {
                            refused = true;
                            tracing::error!(%message, agent.version = crate::VERSION, "the panel refused this agent");
                        }
                        None => tracing::warn!(error = %format!("{err:#}"), "tunnel down"),
                    },
                }
            }
            () = &mut shutdown => return,
        }
        // A tunnel that stayed up a while resets the backoff.
        attempt = if started.elapsed() > Duration::from_secs(60) {
            0
        } else {
            attempt + 1
        };
        let delay = if refused {
            REFUSED_RETRY
        } else {
            backoff(attempt)
        };
        tracing::info!(
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "reconnecting"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap_with_jitter() {
        for attempt in 0..20 {
            let d = backoff(attempt).as_millis();
            let base = 1_000u128 * (1 << attempt.min(6));
            let base = base.min(60_000);
            assert!(
                d >= base * 3 / 4 && d <= base * 5 / 4,
                "attempt {attempt}: {d} ms"
            );
        }
    }

    #[test]
    fn tunnel_urls_follow_the_scheme() {
        assert_eq!(
            tunnel_url("https://p.example.com:8443/").expect("url"),
            "wss://p.example.com:8443/v1/agent/tunnel"
        );
        assert_eq!(
            tunnel_url("http://127.0.0.1:8080").expect("url"),
            "ws://127.0.0.1:8080/v1/agent/tunnel"
        );
        assert!(tunnel_url("ftp://x").is_err());
    }
}
