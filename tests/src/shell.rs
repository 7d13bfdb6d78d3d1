//! A WebSocket client for the node shell sockets (`/v1/nodes/{id}/ssh` and `/terminal`):
//! binary messages carry the terminal's bytes, text messages JSON control.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub use crate::console::Refused;
use crate::console::Ws;

use crate::agent::{LocalAgent, register_node, wait_node};
use crate::sshd::Sshd;
use crate::{Engine, TestApp, spawn_app};

/// How long the node gets to come up.
const WAIT: Duration = Duration::from_secs(20);

/// One connected shell socket.
pub struct Shell {
    ws: Ws,
    /// Every output byte received so far.
    pub output: Vec<u8>,
    /// Every control message received so far.
    pub control: Vec<Value>,
}

/// What ended a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// `{"type": "exit"}` with this status.
    Exit(i64),
    /// `{"type": "error"}` with this message.
    Error(String),
    /// The socket closed without either.
    Closed,
}

impl Shell {
    /// Connects to `url` (`http://` becomes `ws://`), with an optional bearer.
    ///
    /// # Errors
    /// The HTTP answer when the server refused the upgrade.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn connect(url: &str, bearer: Option<&str>) -> Result<Self, Refused> {
        crate::console::handshake(url, bearer).await.map(|ws| Self {
            ws,
            output: Vec::new(),
            control: Vec::new(),
        })
    }

    /// Types `bytes`.
    ///
    /// # Panics
    /// When the socket is closed.
    pub async fn input(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("send input");
    }

    /// Resizes the terminal.
    ///
    /// # Panics
    /// When the socket is closed.
    pub async fn resize(&mut self, cols: u16, rows: u16) {
        let text = json!({"type": "resize", "cols": cols, "rows": rows}).to_string();
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send resize");
    }

    /// Sends a raw text message.
    ///
    /// # Panics
    /// When the socket is closed.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send text");
    }

    /// Reads one message into [`Self::output`] / [`Self::control`]: `Some` when the
    /// session ended with it, `None` otherwise. `Err(())` after `wait` without any.
    async fn read_one(&mut self, wait: Duration) -> Result<Option<Ended>, ()> {
        let message = tokio::time::timeout(wait, self.ws.next())
            .await
            .map_err(|_| ())?;
        match message {
            Some(Ok(Message::Binary(bytes))) => {
                self.output.extend_from_slice(&bytes);
                Ok(None)
            }
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                self.control.push(value.clone());
                match value["type"].as_str() {
                    Some("exit") => Ok(Some(Ended::Exit(value["status"].as_i64().unwrap_or(-1)))),
                    Some("error") => Ok(Some(Ended::Error(
                        value["message"].as_str().unwrap_or("").to_owned(),
                    ))),
                    _ => Ok(None),
                }
            }
            Some(Ok(Message::Close(_)) | Err(_)) | None => Ok(Some(Ended::Closed)),
            Some(Ok(_)) => Ok(None),
        }
    }

    /// Reads until the output holds `needle`; `Err` with what ended the session instead,
    /// or `Ended::Closed` after `wait`.
    ///
    /// # Errors
    /// The session ended (or `wait` passed) first.
    pub async fn wait_output(&mut self, needle: &str, wait: Duration) -> Result<(), Ended> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if String::from_utf8_lossy(&self.output).contains(needle) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_one(left).await {
                Ok(None) => {}
                Ok(Some(ended)) => return Err(ended),
                Err(()) => return Err(Ended::Closed),
            }
        }
    }

    /// Reads until the session ends (or `wait` passes: `Ended::Closed`).
    pub async fn wait_end(&mut self, wait: Duration) -> Ended {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_one(left).await {
                Ok(None) => {}
                Ok(Some(ended)) => return ended,
                Err(()) => return Ended::Closed,
            }
        }
    }

    /// The next output message's bytes, skipping control messages; `None` when the
    /// session ended or `wait` passed.
    pub async fn next_output(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = tokio::time::timeout(left, self.ws.next()).await.ok()??;
            match message {
                Ok(Message::Binary(bytes)) => return Some(bytes.to_vec()),
                Ok(Message::Text(text)) => {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    let done = matches!(value["type"].as_str(), Some("exit" | "error"));
                    self.control.push(value);
                    if done {
                        return None;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The control message of `kind` received so far, if any.
    #[must_use]
    pub fn control_of(&self, kind: &str) -> Option<&Value> {
        self.control.iter().find(|v| v["type"] == kind)
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The agent of a node whose sshd is the test's (trusting what the agent installs) and
/// whose host key files hold that sshd's key.
pub struct SshNode {
    pub app: TestApp,
    /// The platform admin's access token.
    pub token: String,
    pub node: String,
    pub sshd: Sshd,
    /// Holds the sshd's files (`host.pub`...).
    pub dir: tempfile::TempDir,
    _agent: LocalAgent,
    _node_dir: tempfile::TempDir,
}

impl SshNode {
    /// A panel on `engine`, its admin, and the node.
    ///
    /// # Panics
    /// When any part does not start.
    pub async fn start(engine: Engine) -> Self {
        let app = spawn_app(engine).await;
        Self::on(app).await
    }

    /// The node, registered on `app` by its first admin.
    ///
    /// # Panics
    /// When any part does not start.
    pub async fn on(app: TestApp) -> Self {
        let admin = app.bootstrap_admin().await;
        let a = admin.access.clone();
        let dir = tempfile::tempdir().expect("tmp");
        let trust = dir.path().join("trust");
        std::fs::create_dir_all(&trust).expect("trust dir");
        let sshd = Sshd::trusting(dir.path(), &trust).await;
        let host_keys = dir.path().join("host-keys");
        std::fs::create_dir_all(&host_keys).expect("mkdir");
        std::fs::copy(
            dir.path().join("host.pub"),
            host_keys.join("ssh_host_ed25519_key.pub"),
        )
        .expect("copy");
        let (config, node_dir) = register_node(&app, &a).await;
        std::fs::write(
        node_dir.path().join("settings.toml"),
        format!(
            "ssh_trust_dir = \"{}\"\nssh_logins = [\"shardlyn\", \"root\"]\nssh_port = {}\nssh_host_keys_dir = \"{}\"\n",
            trust.display(),
            sshd.port,
            host_keys.display()
        ),
    )
    .expect("settings");
        let node = config.node_id.clone();
        let agent = LocalAgent::start(config, node_dir.path());
        wait_node(&app, &a, &node, "online").await;
        // The CA key reaches the node before the first login.
        app.get("/v1/ssh/ca-public-key", None).await.expect(200);
        let deadline = tokio::time::Instant::now() + WAIT;
        while !trust.join("revoked.krl").exists() || !trust.join("ca.pub").exists() {
            assert!(tokio::time::Instant::now() < deadline, "no trust installed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SshNode {
            app,
            token: a,
            node,
            _agent: agent,
            sshd,
            dir,
            _node_dir: node_dir,
        }
    }
}
