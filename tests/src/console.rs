//! A WebSocket client for the console and logs sockets, speaking Wings' event shape.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A client WebSocket.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens a WebSocket to `url` (`http://` is turned into `ws://`), with an optional
/// bearer, without Nagle's delay.
///
/// # Errors
/// The HTTP answer when the server refused the upgrade.
///
/// # Panics
/// When the server cannot be reached.
pub async fn handshake(url: &str, bearer: Option<&str>) -> Result<Ws, Refused> {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut request = ws_url.as_str().into_client_request().expect("request");
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    let host = request.uri().host().expect("host").to_string();
    let port = request.uri().port_u16().expect("port");
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(Refused {
            status: response.status().as_u16(),
            body: response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        }),
        Err(e) => panic!("websocket handshake: {e}"),
    }
}

/// One connected socket.
pub struct Console {
    ws: Ws,
}

/// An event received: its name and arguments.
#[derive(Debug, Clone)]
pub struct Received {
    pub event: String,
    pub args: Vec<Value>,
}

impl Received {
    /// The first argument as text (empty when absent).
    #[must_use]
    pub fn arg(&self) -> &str {
        self.args.first().and_then(Value::as_str).unwrap_or("")
    }
}

/// Why a connection was refused before the upgrade.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl Console {
    /// Connects to `url` (`http://` is turned into `ws://`), with an optional bearer.
    ///
    /// # Errors
    /// The HTTP answer when the server refused the upgrade.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn connect(url: &str, bearer: Option<&str>) -> Result<Self, Refused> {
        handshake(url, bearer).await.map(|ws| Self { ws })
    }

    /// Sends `{"event": event, "args": args}`.
    ///
    /// # Panics
    /// When the socket is closed.
    pub async fn send(&mut self, event: &str, args: &[&str]) {
        let text = json!({"event": event, "args": args}).to_string();
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next event within `wait`, or `None` when the socket closed or went quiet.
    pub async fn next(&mut self, wait: Duration) -> Option<Received> {
        loop {
            let message = tokio::time::timeout(wait, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(text.as_str()).ok()?;
                    return Some(Received {
                        event: v["event"].as_str().unwrap_or_default().to_string(),
                        args: v["args"].as_array().cloned().unwrap_or_default(),
                    });
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// The next text message as sent, within `wait` (for benchmarks: no parsing).
    pub async fn next_text(&mut self, wait: Duration) -> Option<String> {
        loop {
            let message = tokio::time::timeout(wait, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => return Some(text.as_str().to_owned()),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads until an event satisfies `want`, returning it; panics after `wait`.
    ///
    /// # Panics
    /// When no such event arrives in time; the events seen are printed.
    pub async fn wait_for(
        &mut self,
        wait: Duration,
        what: &str,
        want: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(event) if want(&event) => return event,
                Some(event) => {
                    seen.push(format!("{} {:?}", event.event, event.args));
                    if seen.len() > 50 {
                        seen.remove(0);
                    }
                }
                None => panic!("no {what} within {wait:?}; last events: {seen:#?}"),
            }
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
