//! `GET /v1/nodes/{id}/ssh` and `GET /v1/nodes/{id}/terminal`: a WebSocket to a shell
//! on the node, carried through the tunnel as the agent's `POST /v1/shell` (see
//! `shardlyn_proto::shell`).
//!
//! - `ssh` (the `nodes.ssh` permission): the panel makes a key and a one-minute
//!   certificate for `node:<node>:<login>` (`mint.rs`); the agent logs in to its own
//!   node's sshd on loopback with them and checks the host key against the node's files.
//! - `terminal` (`nodes.terminal`): a PTY shell the agent runs itself.
//!
//! Authentication as consoles: `?ticket=` (single use, 30 s, bought with
//! `POST .../ssh/tickets` or `.../terminal/tickets`) or an `Authorization` header.
//! Messages: binary frames carry the terminal's bytes both ways; text frames are JSON:
//! from the client `{"type": "resize", "cols": 120, "rows": 40}`; from the panel
//! `{"type": "session", "id": ...}` (its recording), `{"type": "ready", ...}`,
//! `{"type": "notice", "message": ...}` (a message it did not understand), and last
//! `{"type": "exit", "status": 0}` or `{"type": "error", "message": "..."}`, after which
//! the socket closes.
//!
//! Every session is audit-logged (`node.ssh.open` / `.close`) and recorded
//! (`recordings.rs`). It ends when its user may no longer open it: revoked certificate,
//! suspended user, signed out, or the permission withdrawn (checked every 2 s and at
//! every revocation).

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use shardlyn_proto::agent_api as api;
use shardlyn_proto::shell::{Decoder, Frame, MAX_PAYLOAD, ShellKind, ShellStart};
use tokio::sync::mpsc;

use super::mint;
use super::recordings::{self, Recorder};
use super::tickets::{self, kind_name};
use crate::audit::store as audit;
use crate::auth::extract::{ClientMeta, Credential, CurrentUser, authenticate_token};
use crate::authz;
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppPath, AppQuery, AppResult};
use crate::nodes::store::Node;
use crate::orgs::permissions::perm;
use crate::state::AppState;
use crate::tunnel::AgentConn;

/// How often a live session's user is checked again.
const RECHECK: Duration = Duration::from_secs(2);
/// Longest command.
const MAX_COMMAND: usize = 1024;
/// Largest message a client may send.
const MAX_MESSAGE: usize = 64 * 1024;
/// Frames queued towards the agent.
const TO_AGENT: usize = 64;

/// The socket's query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellQuery {
    /// A ticket from `POST /v1/nodes/{id}/ssh/tickets` (or `terminal/tickets`).
    #[serde(default)]
    ticket: Option<String>,
    /// Terminal width, 1 to 1000 (default 80).
    #[serde(default)]
    cols: Option<u16>,
    /// Terminal height, 1 to 1000 (default 24).
    #[serde(default)]
    rows: Option<u16>,
    /// SSH: the node login (default `shardlyn`; the node must list it in `ssh_logins`).
    #[serde(default)]
    login: Option<String>,
    /// A command to run on the PTY instead of a shell.
    #[serde(default)]
    command: Option<String>,
}

/// `GET /v1/nodes/{id}/ssh`.
pub async fn ssh(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<ShellQuery>,
    meta: ClientMeta,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    open(state, id, q, meta, &headers, ws.ok(), ShellKind::Ssh)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /v1/nodes/{id}/terminal`.
pub async fn terminal(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<ShellQuery>,
    meta: ClientMeta,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    open(state, id, q, meta, &headers, ws.ok(), ShellKind::Terminal)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Who opened the session, and what they proved it with.
struct Caller {
    user: CurrentUser,
    /// The token, or the credential the ticket was bought with.
    token: Option<String>,
    bought_with: Option<Credential>,
}

async fn authorize(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    kind: ShellKind,
) -> AppResult<Node> {
    let found = match kind {
        ShellKind::Ssh => authz::load::<Node, perm::NodesSsh>(state, &user.user, id).await,
        ShellKind::Terminal => {
            authz::load::<Node, perm::NodesTerminal>(state, &user.user, id).await
        }
    };
    found.map(|(node, _)| node)
}

/// The start frame the query asks for (without credentials), or why not.
fn start_of(q: &ShellQuery, kind: ShellKind) -> AppResult<ShellStart> {
    let size = |v: Option<u16>, default: u16, name: &str| -> AppResult<u16> {
        let v = v.unwrap_or(default);
        if (1..=1000).contains(&v) {
            Ok(v)
        } else {
            Err(AppError::invalid_field(
                name,
                format!("{name} must be 1 to 1000"),
            ))
        }
    };
    let cols = size(q.cols, 80, "cols")?;
    let rows = size(q.rows, 24, "rows")?;
    if let Some(command) = &q.command
        && (command.is_empty()
            || command.len() > MAX_COMMAND
            || command.chars().any(char::is_control))
    {
        return Err(AppError::invalid_field(
            "command",
            format!("command must be 1 to {MAX_COMMAND} characters without control characters"),
        ));
    }
    let login = match kind {
        ShellKind::Ssh => {
            let login = q.login.clone().unwrap_or_else(|| "shardlyn".into());
            if !crate::ssh::handlers::valid_login(&login) {
                return Err(AppError::invalid_field(
                    "login",
                    "login must be a user name (lowercase letters, digits, _ and -)",
                ));
            }
            Some(login)
        }
        ShellKind::Terminal if q.login.is_some() => {
            return Err(AppError::invalid_field(
                "login",
                "a terminal runs as the agent's user: login is for ssh",
            ));
        }
        ShellKind::Terminal => None,
    };
    Ok(ShellStart {
        kind,
        cols,
        rows,
        term: "xterm-256color".into(),
        command: q.command.clone(),
        login,
        private_key: None,
        certificate: None,
    })
}

#[allow(clippy::too_many_arguments)]
async fn open(
    state: AppState,
    id: String,
    q: ShellQuery,
    meta: ClientMeta,
    headers: &HeaderMap,
    ws: Option<WebSocketUpgrade>,
    kind: ShellKind,
) -> AppResult<Response> {
    let caller = match (&q.ticket, crate::instances::ops::console::bearer(headers)) {
        (Some(ticket), _) => {
            let (user, bought_with) = tickets::redeem(&state, ticket, &id, kind).await?;
            Caller {
                user,
                token: None,
                bought_with,
            }
        }
        (None, Some(token)) => Caller {
            user: authenticate_token(&state, &token).await?,
            token: Some(token),
            bought_with: None,
        },
        (None, None) => return Err(AppError::unauthorized("missing bearer token or ticket")),
    };
    let node = authorize(&state, &caller.user, &id, kind).await?;
    let start = start_of(&q, kind)?;
    let Some(ws) = ws else {
        return Err(AppError::BadRequest("expected a WebSocket upgrade".into()));
    };
    let conn = state.tunnels.route(&node.id).await?;
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let session = Session {
                state,
                node,
                caller,
                kind,
                remote_ip: meta.0.ip,
            };
            session.run(socket, conn, start).await;
        }))
}

struct Session {
    state: AppState,
    node: Node,
    caller: Caller,
    kind: ShellKind,
    remote_ip: Option<String>,
}

fn say(value: &serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn error_message(message: &str) -> Message {
    say(&json!({"type": "error", "message": message}))
}

/// A resize request from the client.
#[derive(Deserialize)]
struct ClientText {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    cols: u16,
    #[serde(default)]
    rows: u16,
}

/// How the session ended.
struct Ending {
    status: Option<i32>,
    reason: &'static str,
}

impl Session {
    async fn audit(&self, action: &str, session_id: &str, result: &'static str) {
        let entry = audit::NewEntry {
            actor_id: Some(self.caller.user.user.id.clone()),
            actor_email: Some(self.caller.user.user.email.clone()),
            action: action.to_owned(),
            method: "GET".into(),
            path: format!("/v1/nodes/{}/{}", self.node.id, kind_name(self.kind)),
            target: Some(session_id.to_owned()),
            ip: self.remote_ip.clone(),
            status: 101,
            result,
        };
        if let Err(e) = audit::insert(&self.state.db.pool, &entry).await {
            tracing::error!(error = %e, "writing a shell session's audit entry");
        }
    }

    /// Whether the caller may still hold the session: `None` when it cannot be told now.
    async fn still_allowed(&self, cert_id: Option<&str>) -> Option<bool> {
        let state = &self.state;
        let user = if let Some(token) = &self.caller.token {
            match authenticate_token(state, token).await {
                Ok(user) => user,
                Err(AppError::Unauthorized(_)) => return Some(false),
                Err(_) => return None,
            }
        } else {
            if let Some(credential) = &self.caller.bought_with {
                match crate::instances::ops::tickets::credential_stands(state, credential).await {
                    Ok(true) => {}
                    Ok(false) => return Some(false),
                    Err(_) => return None,
                }
            }
            match crate::users::store::find(&state.db.pool, &self.caller.user.user.id).await {
                Ok(Some(user)) if !user.suspended => CurrentUser {
                    user,
                    credential: Credential::Ticket,
                },
                Ok(_) => return Some(false),
                Err(_) => return None,
            }
        };
        if let Some(cert) = cert_id {
            match mint::revoked(state, cert).await {
                Ok(true) => return Some(false),
                Ok(false) => {}
                Err(_) => return None,
            }
        }
        match authorize(state, &user, &self.node.id, self.kind).await {
            Ok(_) => Some(true),
            Err(AppError::NotFound(_) | AppError::Forbidden(_) | AppError::Unauthorized(_)) => {
                Some(false)
            }
            Err(_) => None,
        }
    }

    async fn run(self, socket: WebSocket, conn: std::sync::Arc<AgentConn>, mut start: ShellStart) {
        let (mut sink, mut stream) = socket.split();
        let session_id = new_id();
        let user = &self.caller.user.user;
        let mut cert_id = None;
        if self.kind == ShellKind::Ssh {
            let login = start.login.clone().unwrap_or_default();
            match mint::mint(&self.state, user, &self.node.id, &login, &session_id).await {
                Ok(minted) => {
                    cert_id = Some(minted.cert_id);
                    start.private_key = Some(minted.private_key);
                    start.certificate = Some(minted.certificate);
                }
                Err(e) => {
                    let _ = sink.send(error_message(&e.to_string())).await;
                    let _ = sink.close().await;
                    return;
                }
            }
        }
        let row = recordings::Row {
            id: session_id.clone(),
            node_id: self.node.id.clone(),
            user_id: user.id.clone(),
            user_email: user.email.clone(),
            kind: kind_name(self.kind).into(),
            login: start.login.clone(),
            command: start.command.clone(),
            certificate_id: cert_id.clone(),
            remote_ip: self.remote_ip.clone(),
            term: start.term.clone(),
            cols: i32::from(start.cols),
            rows: i32::from(start.rows),
            started_at: now_ms(),
            updated_at: now_ms(),
            ended_at: None,
            exit_status: None,
            end_reason: None,
            recorded_bytes: 0,
            truncated: false,
        };
        if let Err(e) = recordings::insert(&self.state.db.pool, &row).await {
            tracing::error!(error = %e, "storing a shell session");
            let _ = sink
                .send(error_message("the session could not be recorded"))
                .await;
            let _ = sink.close().await;
            return;
        }
        let action = format!("node.{}", kind_name(self.kind));
        self.audit(&format!("{action}.open"), &session_id, "success")
            .await;
        let recorder = Recorder::start(self.state.db.pool.clone(), session_id.clone());

        // The request body: frames towards the agent, the start first.
        let (to_agent, rx) = mpsc::channel::<Bytes>(TO_AGENT);
        let _ = to_agent
            .send(Bytes::from(Frame::Start(start).encode()))
            .await;
        let body =
            axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
            }));
        let ending = match conn
            .open::<api::Shell>(&(), &(), HeaderMap::new(), body)
            .await
        {
            Ok(response) if response.status().is_success() => {
                let _ = sink
                    .send(say(&json!({"type": "session", "id": session_id})))
                    .await;
                self.pump(
                    &mut sink,
                    &mut stream,
                    &to_agent,
                    response.into_body(),
                    &recorder,
                    cert_id.as_deref(),
                )
                .await
            }
            Ok(response) => {
                let message = crate::tunnel::read_json(response).await.err().map_or_else(
                    || "the node refused the session".to_owned(),
                    |e| e.to_string(),
                );
                let _ = sink.send(error_message(&message)).await;
                Ending {
                    status: None,
                    reason: "error",
                }
            }
            Err(e) => {
                let _ = sink.send(error_message(&e.to_string())).await;
                Ending {
                    status: None,
                    reason: "error",
                }
            }
        };
        drop(to_agent);
        recorder.finish(ending.status, ending.reason).await;
        self.audit(&format!("{action}.close"), &session_id, "success")
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    }

    /// Moves bytes both ways until the shell exits, the client leaves or loses access.
    async fn pump(
        &self,
        sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
        stream: &mut futures_util::stream::SplitStream<WebSocket>,
        to_agent: &mpsc::Sender<Bytes>,
        mut from_agent: hyper::body::Incoming,
        recorder: &Recorder,
        cert_id: Option<&str>,
    ) -> Ending {
        let mut decoder = Decoder::default();
        let mut revocations = self.state.auth_cache.watch();
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.reset();
        let lost = Ending {
            status: None,
            reason: "node",
        };
        loop {
            tokio::select! {
                frame = from_agent.frame() => {
                    let Some(Ok(frame)) = frame else {
                        let _ = sink.send(error_message("the connection to the node was lost")).await;
                        return lost;
                    };
                    let Some(data) = frame.data_ref() else { continue };
                    decoder.push(data);
                    loop {
                        let next = match decoder.next_frame() {
                            Ok(Some(next)) => next,
                            Ok(None) => break,
                            Err(e) => {
                                let _ = sink.send(error_message(&format!("the node sent a bad frame: {e}"))).await;
                                return lost;
                            }
                        };
                        match next {
                            Frame::Output(bytes) => {
                                recorder.output(&bytes).await;
                                if sink.feed(Message::Binary(bytes.into())).await.is_err() {
                                    return Ending { status: None, reason: "closed" };
                                }
                            }
                            Frame::Ready(ready) => {
                                let _ = sink.feed(say(&json!({"type": "ready", "user": ready.user, "host_key": ready.host_key}))).await;
                            }
                            Frame::Exit(status) => {
                                let _ = sink.send(say(&json!({"type": "exit", "status": status}))).await;
                                return Ending { status: Some(status), reason: "exit" };
                            }
                            Frame::Error(message) => {
                                let _ = sink.send(error_message(&message)).await;
                                return Ending { status: None, reason: "error" };
                            }
                            Frame::Start(_) | Frame::Input(_) | Frame::Resize { .. } => {}
                        }
                    }
                    if sink.flush().await.is_err() {
                        return Ending { status: None, reason: "closed" };
                    }
                }
                message = stream.next() => {
                    let Some(Ok(message)) = message else {
                        return Ending { status: None, reason: "closed" };
                    };
                    let frames: Vec<Frame> = match message {
                        Message::Binary(bytes) => Frame::chunks(&bytes, Frame::Input).collect(),
                        Message::Text(text) => match serde_json::from_str::<ClientText>(text.as_str()) {
                            Ok(t) if t.kind == "resize" && (1..=1000).contains(&t.cols) && (1..=1000).contains(&t.rows) => {
                                recorder.resize(t.cols, t.rows).await;
                                vec![Frame::Resize { cols: t.cols, rows: t.rows }]
                            }
                            _ => {
                                let note = json!({"type": "notice", "message": "text messages are {\"type\": \"resize\", \"cols\": 1-1000, \"rows\": 1-1000}"});
                                let _ = sink.send(say(&note)).await;
                                continue;
                            }
                        },
                        Message::Close(_) => return Ending { status: None, reason: "closed" },
                        _ => continue,
                    };
                    for frame in frames {
                        debug_assert!(matches!(&frame, Frame::Input(b) if b.len() <= MAX_PAYLOAD) || matches!(frame, Frame::Resize { .. }));
                        if to_agent.send(Bytes::from(frame.encode())).await.is_err() {
                            return lost;
                        }
                    }
                }
                changed = revocations.changed() => {
                    if changed.is_err() || self.still_allowed(cert_id).await == Some(false) {
                        let _ = sink.send(error_message("access to this node ended (revoked, signed out or permissions changed)")).await;
                        return Ending { status: None, reason: "revoked" };
                    }
                }
                _ = recheck.tick() => {
                    if self.still_allowed(cert_id).await == Some(false) {
                        let _ = sink.send(error_message("access to this node ended (revoked, signed out or permissions changed)")).await;
                        return Ending { status: None, reason: "revoked" };
                    }
                }
            }
        }
    }
}
