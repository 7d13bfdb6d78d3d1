//! `GET /v1/instances/{id}/console` and `GET /v1/instances/{id}/logs`: WebSockets
//! speaking Wings' event vocabulary, proxied to the agent's event stream through the
//! tunnel.
//!
//! Authentication: `?ticket=` (single use, 30 s), an `Authorization` header, or a first
//! message `{"event": "auth", "args": [token]}` carrying a JWT or API token. A socket
//! ends when its caller may no longer use it: checked again at every revocation (logout,
//! token deletion, suspension, password change) and every minute (membership and
//! permission changes), against the token, or the credential a ticket was bought with.
//! Each socket
//! has its own bounded queue: a slow client loses its oldest lines and is told so; the
//! agent stream it reads from is never slowed down, so neither is the server nor any
//! other client.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use shardlyn_proto::instance::{Event, PowerAction, REPLAY_LINES, events};

use super::power::{act, connected, send_command};
use super::tickets;
use crate::auth::extract::{Credential, CurrentUser, authenticate_token};
use crate::authz::{self, perm};
use crate::db::now_ms;
use crate::error::{AppError, AppPath, AppQuery, AppResult};
use crate::instances::Instance;
use crate::orgs::permissions::Membership;
use crate::state::AppState;
use shardlyn_proto::agent_api as api;

/// Sockets one instance may have open at once.
pub const MAX_SOCKETS_PER_INSTANCE: usize = 30;
/// Messages a socket may have queued before its oldest are dropped.
const QUEUE: usize = 8192;
/// How long a socket may stay silent before its `auth` message.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// `token expiring` is sent this long before the token dies.
const EXPIRY_WARNING_MS: i64 = 60_000;
/// How often an open socket's caller is checked again without a revocation anywhere.
const RECHECK: Duration = Duration::from_secs(60);
/// Client messages kept while the agent stream is being opened.
const MAX_HELD: usize = 64;

/// Open sockets per instance.
#[derive(Default)]
pub struct Consoles {
    open: Mutex<HashMap<String, usize>>,
}

/// A counted socket; the count drops with it.
pub struct Slot {
    consoles: Arc<Consoles>,
    instance: String,
}

impl Consoles {
    /// Takes a slot for `instance`, or `None` when it already has the most sockets.
    #[must_use]
    pub fn acquire(self: &Arc<Self>, instance: &str) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(instance.to_owned()).or_insert(0);
        if *count >= MAX_SOCKETS_PER_INSTANCE {
            return None;
        }
        *count += 1;
        Some(Slot {
            consoles: self.clone(),
            instance: instance.to_owned(),
        })
    }

    fn has_room(&self, instance: &str) -> bool {
        self.open
            .lock()
            .is_ok_and(|o| o.get(instance).copied().unwrap_or(0) < MAX_SOCKETS_PER_INSTANCE)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.consoles.open.lock()
            && let Some(count) = open.get_mut(&self.instance)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.instance);
            }
        }
    }
}

/// Interactive console or read-only logs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Console,
    Logs,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SocketQuery {
    ticket: Option<String>,
}

/// `GET /v1/instances/{id}/console`.
pub async fn console(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<SocketQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    open(state, id, q, &headers, ws.ok(), Mode::Console)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /v1/instances/{id}/logs`.
pub async fn logs(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<SocketQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    open(state, id, q, &headers, ws.ok(), Mode::Logs)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Who is on the socket and until when their token is good.
struct Caller {
    user: CurrentUser,
    expires_at: Option<i64>,
    proof: Proof,
}

/// What the socket's caller is checked against again.
enum Proof {
    /// The token it authenticated with.
    Token(String),
    /// The credential its ticket was bought with (`None`: nothing but the user).
    Bought(Option<Credential>),
}

async fn caller_from_token(state: &AppState, token: &str) -> AppResult<Caller> {
    let user = authenticate_token(state, token).await?;
    let expires_at = state.jwt.verify(token).ok().map(|c| c.exp * 1000);
    Ok(Caller {
        user,
        expires_at,
        proof: Proof::Token(token.to_owned()),
    })
}

/// Whether the socket's caller may still use it: the credential stands, and the
/// instance is still theirs with the same permissions (a changed set ends the socket;
/// the client reconnects with the new one). `None` when it cannot be told (a database
/// hiccup keeps the socket).
async fn still_allowed(
    state: &AppState,
    caller: &Caller,
    instance_id: &str,
    membership: &Membership,
) -> Option<bool> {
    let user = match &caller.proof {
        Proof::Token(token) => match authenticate_token(state, token).await {
            Ok(user) => user,
            Err(AppError::Unauthorized(_)) => return Some(false),
            Err(_) => return None,
        },
        Proof::Bought(credential) => {
            if let Some(credential) = credential {
                match tickets::credential_stands(state, credential).await {
                    Ok(true) => {}
                    Ok(false) => return Some(false),
                    Err(_) => return None,
                }
            }
            match crate::users::store::find(&state.db.pool, &caller.user.user.id).await {
                Ok(Some(user)) if !user.suspended => CurrentUser {
                    user,
                    credential: Credential::Ticket,
                },
                Ok(_) => return Some(false),
                Err(_) => return None,
            }
        }
    };
    match authorize(state, &user, instance_id).await {
        Ok((_, now)) => Some(now.effective() == membership.effective()),
        Err(AppError::NotFound(_) | AppError::Forbidden(_) | AppError::Unauthorized(_)) => {
            Some(false)
        }
        Err(_) => None,
    }
}

async fn open(
    state: AppState,
    id: String,
    q: SocketQuery,
    headers: &HeaderMap,
    ws: Option<WebSocketUpgrade>,
    mode: Mode,
) -> AppResult<Response> {
    let caller = match (&q.ticket, bearer(headers)) {
        (Some(ticket), _) => {
            let (user, bought_with) = tickets::redeem(&state, ticket, &id).await?;
            Some(Caller {
                user,
                expires_at: None,
                proof: Proof::Bought(bought_with),
            })
        }
        (None, Some(token)) => Some(caller_from_token(&state, &token).await?),
        (None, None) if ws.is_some() => None,
        (None, None) => return Err(AppError::unauthorized("missing bearer token")),
    };
    let mut target = None;
    if let Some(caller) = &caller {
        target = Some(authorize(&state, &caller.user, &id).await?);
    }
    let Some(ws) = ws else {
        return Err(AppError::BadRequest("expected a WebSocket upgrade".into()));
    };
    if !state.consoles.has_room(&id) {
        return Err(AppError::coded(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_SOCKETS",
            format!("this instance already has {MAX_SOCKETS_PER_INSTANCE} open sockets"),
        ));
    }
    Ok(ws
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            session(socket, state, id, caller.zip(target), mode).await;
        }))
}

/// The token of an `Authorization: Bearer` header, if any (the sockets also take a
/// ticket instead).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

/// The socket's instance, through the same check as every routed request.
async fn authorize(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
) -> AppResult<(Instance, Membership)> {
    authz::load::<Instance, perm::InstancesLogs>(state, &user.user, id).await
}

fn text(event: &Event) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(event).unwrap_or_default(),
    ))
}

fn say(event: &str, message: &str) -> Message {
    text(&Event::new(event, &[message]))
}

/// The socket's outgoing queue: bounded, dropping the oldest when full.
struct Outbox {
    queue: Mutex<VecDeque<Utf8Bytes>>,
    dropped: AtomicU64,
    ready: tokio::sync::Notify,
}

impl Outbox {
    fn push(&self, line: Utf8Bytes) {
        if let Ok(mut q) = self.queue.lock() {
            if q.len() >= QUEUE {
                q.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(line);
        }
        self.ready.notify_one();
    }

    fn take(&self, into: &mut Vec<Utf8Bytes>) {
        if let Ok(mut q) = self.queue.lock() {
            into.extend(q.drain(..));
        }
    }
}

/// Which agent events a caller may see.
fn visible(event: &str, membership: &Membership) -> bool {
    match event {
        events::STATS => membership.can("instances.read"),
        _ => true,
    }
}

/// Reads the agent's NDJSON event stream into the outbox until it ends.
async fn pump(
    mut body: hyper::body::Incoming,
    outbox: Arc<Outbox>,
    membership: Arc<Membership>,
    mode: Mode,
) {
    let mut pending: Vec<u8> = Vec::with_capacity(64 * 1024);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(offset) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = &pending[start..start + offset];
            start += offset + 1;
            if line.is_empty() {
                continue;
            }
            // The fast path: console lines are forwarded as the agent wrote them.
            let name = event_name(line);
            let wanted = match mode {
                Mode::Console => visible(name, &membership),
                Mode::Logs => name != events::STATS,
            };
            if wanted && let Ok(s) = std::str::from_utf8(line) {
                outbox.push(Utf8Bytes::from(normalize(name, s)));
            }
        }
        pending.drain(..start);
    }
}

/// The `event` of an NDJSON line, read without a full parse when it comes first.
fn event_name(line: &[u8]) -> &str {
    const HEAD: &[u8] = b"{\"event\":\"";
    if let Some(rest) = line.strip_prefix(HEAD)
        && let Some(end) = rest.iter().position(|b| *b == b'"')
    {
        return std::str::from_utf8(&rest[..end]).unwrap_or("");
    }
    ""
}

/// Wings sends `stats` as a JSON string argument; an object from the agent is encoded so.
fn normalize(name: &str, line: &str) -> String {
    if name == events::STATS
        && let Ok(mut event) = serde_json::from_str::<Event>(line)
        && let Some(first) = event.args.first_mut()
        && first.is_object()
    {
        *first = Value::String(first.to_string());
        return serde_json::to_string(&event).unwrap_or_default();
    }
    line.to_owned()
}

async fn session(
    socket: WebSocket,
    state: AppState,
    id: String,
    authed: Option<(Caller, (Instance, Membership))>,
    mode: Mode,
) {
    let (mut sink, mut stream) = socket.split();
    let (mut caller, instance, membership) = match authed {
        Some((caller, (instance, membership))) => (caller, instance, membership),
        None => match first_auth(&state, &id, &mut stream).await {
            Ok((caller, (instance, membership))) => (caller, instance, membership),
            Err(message) => {
                let _ = sink.send(say(events::JWT_ERROR, &message)).await;
                let _ = sink.close().await;
                return;
            }
        },
    };
    let Some(_slot) = state.consoles.acquire(&id) else {
        let _ = sink
            .send(say(
                events::DAEMON_ERROR,
                "too many open sockets for this instance",
            ))
            .await;
        let _ = sink.close().await;
        return;
    };
    let membership = Arc::new(membership);
    let _ = sink
        .send(text(&Event::new(events::AUTH_SUCCESS, &[])))
        .await;
    // A server suspended for non-payment says why, first thing.
    if let Ok(true) = crate::billing::dunning::is_suspended(&state, &instance.id).await {
        let reason = crate::billing::dunning::SUSPENDED_MESSAGE;
        let _ = sink.send(say(events::DAEMON_MESSAGE, reason)).await;
    }
    let conn = match connected(&state, &instance.node_id).await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = sink.send(say(events::DAEMON_ERROR, &e.to_string())).await;
            let _ = sink.close().await;
            return;
        }
    };
    let outbox = Arc::new(Outbox {
        queue: Mutex::new(VecDeque::new()),
        dropped: AtomicU64::new(0),
        ready: tokio::sync::Notify::new(),
    });
    // The agent stream is opened inside the task, so the socket notices its client
    // leaving (and frees its place) even while a busy node is slow to answer.
    let id = instance.id.clone();
    let (opened_tx, mut opened) = tokio::sync::oneshot::channel::<()>();
    let mut pump = {
        let outbox = outbox.clone();
        let membership = membership.clone();
        tokio::spawn(async move {
            let replay = api::ReplayQuery { replay: Some(0) };
            match conn
                .stream::<api::InstanceEvents>(&id.as_str(), &replay)
                .await
            {
                Ok(response) => {
                    // The agent subscribed before it answered: from here on no output
                    // is missed, so the client's commands may go through.
                    let _ = opened_tx.send(());
                    pump(response.into_body(), outbox, membership, mode).await;
                }
                Err(e) => outbox.push(Utf8Bytes::from(
                    serde_json::to_string(&Event::new(events::DAEMON_ERROR, &[&e.to_string()]))
                        .unwrap_or_default(),
                )),
            }
        })
    };
    // Client messages that arrive before the agent stream is open wait here, so the
    // echo of a command sent right after `auth success` is not lost.
    let mut subscribed = false;
    let mut held: Vec<Utf8Bytes> = Vec::new();
    let mut batch = Vec::new();
    let mut warned = false;
    let mut revocations = state.auth_cache.watch();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.reset();
    loop {
        let expiry = caller.expires_at.map(|at| at - now_ms());
        let warn_in = expiry
            .filter(|_| !warned)
            .map(|left| u64::try_from(left - EXPIRY_WARNING_MS).unwrap_or(0));
        let expire_in = expiry.map(|left| u64::try_from(left).unwrap_or(0));
        tokio::select! {
            () = outbox.ready.notified() => {
                batch.clear();
                outbox.take(&mut batch);
                let dropped = outbox.dropped.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    let note = format!("{dropped} messages were dropped: the connection is too slow");
                    if sink.feed(say(events::DAEMON_MESSAGE, &note)).await.is_err() {
                        break;
                    }
                }
                let mut failed = false;
                for line in batch.drain(..) {
                    if sink.feed(Message::Text(line)).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || sink.flush().await.is_err() {
                    break;
                }
            }
            // Resolves once: when the stream is open, or when opening it failed (the
            // pump branch then reports the failure).
            _ = &mut opened, if !subscribed => {
                subscribed = true;
                let mut gone = false;
                for raw in std::mem::take(&mut held) {
                    if !answer(&mut sink, &state, &instance, &membership, mode, &mut caller, &mut warned, &raw).await {
                        gone = true;
                        break;
                    }
                }
                if gone { break; }
            }
            message = stream.next() => {
                let Some(Ok(message)) = message else { break };
                let Message::Text(raw) = message else {
                    if matches!(message, Message::Close(_)) { break; }
                    continue;
                };
                if !subscribed {
                    if held.len() >= MAX_HELD {
                        if sink.send(say(events::DAEMON_ERROR, "the node has not answered yet; message dropped")).await.is_err() { break; }
                    } else {
                        held.push(raw);
                    }
                    continue;
                }
                if !answer(&mut sink, &state, &instance, &membership, mode, &mut caller, &mut warned, &raw).await {
                    break;
                }
            }
            changed = revocations.changed() => {
                if changed.is_err() || !keeps_access(&mut sink, &state, &caller, &instance, &membership).await {
                    break;
                }
            }
            _ = recheck.tick() => {
                if !keeps_access(&mut sink, &state, &caller, &instance, &membership).await {
                    break;
                }
            }
            () = sleep_opt(warn_in) => {
                warned = true;
                if sink.send(text(&Event::new(events::TOKEN_EXPIRING, &[]))).await.is_err() { break; }
            }
            () = sleep_opt(expire_in) => {
                let _ = sink.send(text(&Event::new(events::TOKEN_EXPIRED, &[]))).await;
                break;
            }
            _ = &mut pump => {
                batch.clear();
                outbox.take(&mut batch);
                for line in batch.drain(..) {
                    let _ = sink.feed(Message::Text(line)).await;
                }
                let _ = sink
                    .send(say(events::DAEMON_ERROR, "the connection to the node was lost"))
                    .await;
                break;
            }
        }
    }
    pump.abort();
    // A client that already went away may never complete the close handshake.
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

/// Checks the caller again ([`still_allowed`]); `false`, after telling the client, when
/// the socket must end.
async fn keeps_access(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    state: &AppState,
    caller: &Caller,
    instance: &Instance,
    membership: &Membership,
) -> bool {
    if still_allowed(state, caller, &instance.id, membership).await == Some(false) {
        let message = "access to this console ended (signed out, revoked or permissions changed)";
        let _ = sink.send(say(events::JWT_ERROR, message)).await;
        return false;
    }
    true
}

/// Handles one client message and writes the replies; `false` when the client is gone.
#[allow(clippy::too_many_arguments)]
async fn answer(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    state: &AppState,
    instance: &Instance,
    membership: &Membership,
    mode: Mode,
    caller: &mut Caller,
    warned: &mut bool,
    raw: &str,
) -> bool {
    let before = caller.expires_at;
    match handle(state, instance, membership, mode, caller, raw).await {
        Ok(replies) => {
            if caller.expires_at != before {
                *warned = false;
            }
            for reply in replies {
                if sink.feed(reply).await.is_err() {
                    return false;
                }
            }
            sink.flush().await.is_ok()
        }
        Err(e) => sink
            .send(say(events::DAEMON_ERROR, &e.to_string()))
            .await
            .is_ok(),
    }
}

async fn sleep_opt(after_ms: Option<u64>) {
    match after_ms {
        Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => std::future::pending().await,
    }
}

async fn first_auth(
    state: &AppState,
    id: &str,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<(Caller, (Instance, Membership)), String> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, stream.next())
        .await
        .map_err(|_| "authentication timed out: send an auth event first".to_owned())?;
    let Some(Ok(Message::Text(raw))) = first else {
        return Err("expected an auth event".into());
    };
    let event: Event =
        serde_json::from_str(raw.as_str()).map_err(|_| "expected an auth event".to_owned())?;
    let token = event
        .args
        .first()
        .and_then(Value::as_str)
        .filter(|_| event.event == events::AUTH)
        .ok_or_else(|| "expected an auth event carrying a token".to_owned())?;
    let caller = caller_from_token(state, token)
        .await
        .map_err(|e| e.to_string())?;
    let target = authorize(state, &caller.user, id)
        .await
        .map_err(|e| e.to_string())?;
    Ok((caller, target))
}

/// Answers one client event.
async fn handle(
    state: &AppState,
    instance: &Instance,
    membership: &Membership,
    mode: Mode,
    caller: &mut Caller,
    raw: &str,
) -> AppResult<Vec<Message>> {
    let event: Event = serde_json::from_str(raw).map_err(|_| {
        AppError::BadRequest("messages are {\"event\": ..., \"args\": [...]}".into())
    })?;
    let arg = event.args.first().and_then(Value::as_str).unwrap_or("");
    let deny = |what: &str| AppError::Forbidden(format!("permission denied: {what}"));
    match event.event.as_str() {
        events::AUTH => {
            let fresh = caller_from_token(state, arg).await?;
            if fresh.user.user.id != caller.user.user.id {
                return Err(AppError::Forbidden("a socket cannot change users".into()));
            }
            *caller = fresh;
            Ok(vec![text(&Event::new(events::AUTH_SUCCESS, &[]))])
        }
        events::SEND_LOGS => {
            let conn = connected(state, &instance.node_id).await?;
            let query = api::LinesQuery {
                lines: Some(REPLAY_LINES),
            };
            let answer = conn
                .request::<api::InstanceLogs>(&instance.id.as_str(), &query, &())
                .await?;
            Ok(answer
                .lines
                .iter()
                .map(|l| say(events::CONSOLE_OUTPUT, l))
                .collect())
        }
        events::SEND_STATS => {
            if !membership.can("instances.read") {
                return Err(deny("stats"));
            }
            let conn = connected(state, &instance.node_id).await?;
            let stats = conn
                .request::<api::InstanceStatsRoute>(&instance.id.as_str(), &(), &())
                .await?;
            let stats = serde_json::to_string(&stats).map_err(|e| AppError::Internal(e.into()))?;
            Ok(vec![say(events::STATS, &stats)])
        }
        events::SEND_COMMAND if mode == Mode::Console => {
            if !membership.can("instances.console") {
                return Err(deny("console commands"));
            }
            send_command(state, instance, arg).await?;
            Ok(Vec::new())
        }
        events::SET_STATE if mode == Mode::Console => {
            if !membership.can("instances.power") {
                return Err(deny("power actions"));
            }
            let action = PowerAction::parse(arg).ok_or_else(|| {
                AppError::BadRequest("set state takes start, stop, restart or kill".into())
            })?;
            let status = act(state, instance, action).await?;
            Ok(vec![say(events::STATUS, status.state.as_str())])
        }
        other => Err(AppError::BadRequest(format!(
            "unknown event {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_names_are_read_from_the_line_head() {
        assert_eq!(
            event_name(br#"{"event":"console output","args":["x"]}"#),
            "console output"
        );
        assert_eq!(event_name(br#"{"args":[],"event":"stats"}"#), "");
        assert_eq!(event_name(b"garbage"), "");
    }

    #[test]
    fn stats_objects_become_json_strings() {
        let line = r#"{"event":"stats","args":[{"memory_bytes":1}]}"#;
        let out: Event = serde_json::from_str(&normalize("stats", line)).expect("json");
        assert_eq!(out.args[0], json!("{\"memory_bytes\":1}"));
        assert_eq!(normalize("console output", "x"), "x");
    }

    #[test]
    fn a_full_outbox_drops_its_oldest_lines() {
        let outbox = Outbox {
            queue: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            ready: tokio::sync::Notify::new(),
        };
        for i in 0..QUEUE + 5 {
            outbox.push(Utf8Bytes::from(i.to_string()));
        }
        let mut out = Vec::new();
        outbox.take(&mut out);
        assert_eq!(out.len(), QUEUE);
        assert_eq!(out[0].as_str(), "5");
        assert_eq!(outbox.dropped.load(Ordering::Relaxed), 5);
    }
}
