//! `POST /v1/shell`: a shell on this node, carried through the tunnel as frames
//! (`shardlyn_proto::shell`). This module owns the route and the pumping: it reads the
//! panel's request body into [`Control`]s, and turns a session's [`Event`]s into the
//! answer's frames. The sessions themselves are behind it: [`ssh`] (a russh client to
//! this node's own sshd on loopback) and [`pty`] (a PTY shell the agent runs itself).
//!
//! A session is a pair of bounded channels and a task that owns the process or
//! connection: dropping the control sender (the panel's body ended or failed) or the
//! event receiver (the answer went away) hangs it up, and its task then ends the shell.
//! Output is gathered into frames as it queues up, never waiting for more: a busy
//! session sends large frames, an idle one sends each keystroke's echo at once.

mod pty;
mod ssh;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::StatusCode;
use shardlyn_proto::shell::{Decoder, Frame, MAX_PAYLOAD, ShellKind, ShellReady, ShellStart};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::Instrument;

use crate::api::AgentState;
use crate::error::{ApiError, ApiResult};

/// How long the panel has to send its `Start` frame.
const START_WAIT: Duration = Duration::from_secs(30);
/// Output bytes gathered into one frame when they queue up.
const BATCH_BYTES: usize = 256 * 1024;
/// Frames of the answer waiting for the tunnel (its backpressure).
const ANSWER_FRAMES: usize = 8;
/// Bytes of the panel's body read ahead while the session takes no input.
const LOOKAHEAD_BYTES: usize = 2 * MAX_PAYLOAD;
/// Inputs waiting for the session, and outputs waiting for the pump.
const CHANNEL_DEPTH: usize = 32;

/// Panel → session.
#[derive(Debug)]
pub(crate) enum Control {
    Input(Bytes),
    Resize { cols: u16, rows: u16 },
}

/// Session → panel.
#[derive(Debug)]
pub(crate) enum Event {
    Output(Bytes),
    /// The last event: the exit status (128 + n for a signal n).
    Exit(i32),
}

/// A running shell. Dropping `control` or `events` hangs it up.
pub(crate) struct Session {
    pub ready: ShellReady,
    pub control: mpsc::Sender<Control>,
    pub events: mpsc::Receiver<Event>,
}

/// The channels of a session, both ends: the pump keeps a [`Session`], the session's
/// task the [`Ends`].
pub(crate) struct Ends {
    pub control: mpsc::Receiver<Control>,
    pub events: mpsc::Sender<Event>,
}

pub(crate) fn channels(ready: ShellReady) -> (Session, Ends) {
    let (control_tx, control_rx) = mpsc::channel(CHANNEL_DEPTH);
    let (events_tx, events_rx) = mpsc::channel(CHANNEL_DEPTH);
    (
        Session {
            ready,
            control: control_tx,
            events: events_rx,
        },
        Ends {
            control: control_rx,
            events: events_tx,
        },
    )
}

/// The shells open on this node, at most `max` at once.
#[derive(Clone)]
pub struct Sessions {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Sessions {
    /// Room for `max` shells.
    #[must_use]
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Shells open now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

/// What a session needs from the settings.
#[derive(Debug, Clone)]
pub(crate) struct ShellSettings {
    pub ssh_port: u16,
    pub ssh_host_keys_dir: std::path::PathBuf,
    pub terminal_shell: String,
}

/// `POST /v1/shell`: reads the `Start` frame, then answers 200 with the frames of the
/// session. Refusals before that are the usual JSON errors: 409 `TOO_MANY_SESSIONS`,
/// 400 for a body that does not begin with a valid `Start`.
pub async fn open(State(state): State<AgentState>, body: Body) -> ApiResult<Response> {
    let permit = state
        .shells
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                StatusCode::CONFLICT,
                "TOO_MANY_SESSIONS",
                format!("{} shells are open on this node already", state.shells.max),
            )
        })?;
    let mut input = body.into_data_stream();
    let mut decoder = Decoder::default();
    let start = tokio::time::timeout(START_WAIT, first_frame(&mut input, &mut decoder))
        .await
        .map_err(|_| ApiError::bad_request("no Start frame within 30 s"))??;
    check(&start)?;
    let settings = &state.instances.0.settings;
    let settings = ShellSettings {
        ssh_port: settings.ssh_port,
        ssh_host_keys_dir: settings.ssh_host_keys_dir.clone().into(),
        terminal_shell: settings.terminal_shell.clone(),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(ANSWER_FRAMES);
    let span = tracing::info_span!("shell", shell.kind = ?start.kind, shell.login = ?start.login);
    tokio::spawn(run(start, settings, input, decoder, tx, permit).instrument(span));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        [(http::header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The `Start` frame the body begins with.
async fn first_frame(input: &mut BodyDataStream, decoder: &mut Decoder) -> ApiResult<ShellStart> {
    loop {
        match decoder.next_frame() {
            Ok(Some(Frame::Start(start))) => return Ok(start),
            Ok(Some(_)) => return Err(ApiError::bad_request("the first frame must be Start")),
            Err(e) => return Err(ApiError::bad_request(e.to_string())),
            Ok(None) => {}
        }
        match input.next().await {
            Some(Ok(chunk)) => decoder.push(&chunk),
            Some(Err(e)) => return Err(ApiError::bad_request(format!("reading the body: {e}"))),
            None => return Err(ApiError::bad_request("the body ended before a Start frame")),
        }
    }
}

/// A `Start` this agent can act on.
fn check(start: &ShellStart) -> ApiResult<()> {
    if start.kind == ShellKind::Ssh {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if !given(&start.private_key) || !given(&start.certificate) {
            return Err(ApiError::bad_request(
                "an ssh shell needs private_key and certificate",
            ));
        }
    }
    if start.term.is_empty() || start.term.len() > 64 || start.term.contains(['\0', '\n']) {
        return Err(ApiError::bad_request("term must be a short name"));
    }
    Ok(())
}

/// `(cols, rows)` with 0 read as the classic 80x24.
pub(crate) fn size(cols: u16, rows: u16) -> (u16, u16) {
    (
        if cols == 0 { 80 } else { cols },
        if rows == 0 { 24 } else { rows },
    )
}

/// Opens the session, then pumps it until it ends; holds the session's permit.
async fn run(
    start: ShellStart,
    settings: ShellSettings,
    input: BodyDataStream,
    decoder: Decoder,
    out: mpsc::Sender<Bytes>,
    permit: OwnedSemaphorePermit,
) {
    let opening = async {
        match start.kind {
            ShellKind::Ssh => ssh::open(&start, &settings).await,
            ShellKind::Terminal => pty::open(&start, &settings.terminal_shell),
        }
    };
    let session = tokio::select! {
        session = opening => session,
        () = out.closed() => return,
    };
    let session = match session {
        Ok(session) => session,
        Err(message) => {
            tracing::info!(error = %message, "shell refused");
            let _ = send(&out, &Frame::Error(message)).await;
            return;
        }
    };
    tracing::info!(shell.user = %session.ready.user, "shell open");
    if send(&out, &Frame::Ready(session.ready.clone())).await {
        pump(session, input, decoder, &out).await;
    }
    tracing::info!("shell closed");
    // Free before the answer ends, so a panel that saw the end may open the next.
    drop(permit);
}

async fn send(out: &mpsc::Sender<Bytes>, frame: &Frame) -> bool {
    out.send(Bytes::from(frame.encode())).await.is_ok()
}

/// Aborts the panel-reading task when the pump ends, whichever way.
struct AbortOnDrop(tokio::task::JoinHandle<Option<String>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Moves frames both ways until the session exits, breaks, or the panel goes away.
async fn pump(
    session: Session,
    input: BodyDataStream,
    decoder: Decoder,
    out: &mpsc::Sender<Bytes>,
) {
    let Session {
        control,
        mut events,
        ..
    } = session;
    let mut reader = AbortOnDrop(tokio::spawn(read_input(input, decoder, control)));
    let mut reading = true;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Output(bytes)) => {
                    let (batch, exit) = gather(bytes, &mut events);
                    for frame in Frame::chunks(&batch, Frame::Output) {
                        if !send(out, &frame).await {
                            return;
                        }
                    }
                    if let Some(status) = exit {
                        let _ = send(out, &Frame::Exit(status)).await;
                        return;
                    }
                }
                Some(Event::Exit(status)) => {
                    let _ = send(out, &Frame::Exit(status)).await;
                    return;
                }
                None => {
                    let _ = send(out, &Frame::Error("the session ended without an exit status".into())).await;
                    return;
                }
            },
            broken = &mut reader.0, if reading => {
                reading = false;
                if let Ok(Some(message)) = broken {
                    let _ = send(out, &Frame::Error(message)).await;
                    return;
                }
                // The panel hung up: the session ends and says how; its last output and
                // its exit still go out, should the panel still read.
            }
            () = out.closed() => return,
        }
    }
}

/// Output queued behind `first`, up to [`BATCH_BYTES`], and the exit when it came.
/// Takes only what is already there: nothing is held back waiting for more.
fn gather(first: Bytes, events: &mut mpsc::Receiver<Event>) -> (Bytes, Option<i32>) {
    let mut batch: Option<BytesMut> = None;
    let mut exit = None;
    while batch.as_ref().map_or(first.len(), BytesMut::len) < BATCH_BYTES {
        match events.try_recv() {
            Ok(Event::Output(more)) => batch
                .get_or_insert_with(|| BytesMut::from(&first[..]))
                .extend_from_slice(&more),
            Ok(Event::Exit(status)) => {
                exit = Some(status);
                break;
            }
            Err(_) => break,
        }
    }
    (batch.map_or(first, BytesMut::freeze), exit)
}

/// Reads the panel's frames into the session until the body ends (the hang-up): `Some`
/// when the stream broke the protocol.
async fn read_input(
    mut input: BodyDataStream,
    mut decoder: Decoder,
    control: mpsc::Sender<Control>,
) -> Option<String> {
    loop {
        loop {
            let message = match decoder.next_frame() {
                Ok(Some(Frame::Input(bytes))) => Control::Input(bytes.into()),
                Ok(Some(Frame::Resize { cols, rows })) => {
                    let (cols, rows) = size(cols, rows);
                    Control::Resize { cols, rows }
                }
                Ok(Some(frame)) => {
                    return Some(format!("unexpected frame from the panel: {}", kind(&frame)));
                }
                Ok(None) => break,
                Err(e) => return Some(e.to_string()),
            };
            // While the session takes no input (a shell that reads none), the body is
            // still read, a bounded way ahead, so its end still hangs up.
            let mut message = Some(message);
            while let Some(next) = message.take() {
                tokio::select! {
                    permit = control.reserve() => match permit {
                        Ok(permit) => permit.send(next),
                        Err(_) => return None,
                    },
                    chunk = input.next(), if decoder.pending() < LOOKAHEAD_BYTES => {
                        match chunk {
                            Some(Ok(chunk)) => decoder.push(&chunk),
                            Some(Err(_)) | None => return None,
                        }
                        message = Some(next);
                    }
                }
            }
        }
        match input.next().await {
            Some(Ok(chunk)) => decoder.push(&chunk),
            Some(Err(_)) | None => return None,
        }
    }
}

fn kind(frame: &Frame) -> &'static str {
    match frame {
        Frame::Start(_) => "Start",
        Frame::Input(_) => "Input",
        Frame::Resize { .. } => "Resize",
        Frame::Ready(_) => "Ready",
        Frame::Output(_) => "Output",
        Frame::Exit(_) => "Exit",
        Frame::Error(_) => "Error",
    }
}

const _: () = assert!(BATCH_BYTES <= MAX_PAYLOAD);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::instances::Manager;
    use tower::ServiceExt;

    fn app(dir: &std::path::Path, max: usize) -> axum::Router {
        let settings = Settings {
            shell_max_sessions: max,
            terminal_shell: "/bin/sh".into(),
            ..Settings::default()
        };
        let manager = Manager::with_docker(dir, settings, None).expect("manager");
        crate::api::router(AgentState::new("node-test".into(), manager))
    }

    fn terminal(command: &str) -> ShellStart {
        ShellStart {
            kind: ShellKind::Terminal,
            cols: 80,
            rows: 24,
            term: "xterm".into(),
            command: Some(command.into()),
            login: None,
            private_key: None,
            certificate: None,
        }
    }

    /// A shell request whose body the test keeps writing: the sender, and the answer.
    async fn call(app: &axum::Router, first: Vec<u8>) -> (mpsc::Sender<Bytes>, Response) {
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        tx.send(first.into()).await.expect("queued");
        (tx, answer(app, rx).await)
    }

    async fn answer(app: &axum::Router, rx: mpsc::Receiver<Bytes>) -> Response {
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
        });
        let request = http::Request::post("/v1/shell")
            .body(Body::from_stream(body))
            .expect("request");
        app.clone().oneshot(request).await.expect("answer")
    }

    async fn error_code(response: Response) -> (StatusCode, String) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        (status, body["code"].as_str().unwrap_or_default().to_owned())
    }

    /// Every frame of the answer until it ends.
    async fn frames(response: Response) -> Vec<Frame> {
        let mut body = response.into_body().into_data_stream();
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let read = async {
            while let Some(chunk) = body.next().await {
                decoder.push(&chunk.expect("chunk"));
                while let Some(frame) = decoder.next_frame().expect("frames") {
                    out.push(frame);
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the answer ends");
        out
    }

    #[tokio::test]
    async fn the_first_frame_must_be_a_valid_start() {
        let dir = tempfile::tempdir().expect("dir");
        let app = app(dir.path(), 4);
        let (_tx, r) = call(&app, Frame::Input(b"ls".to_vec()).encode()).await;
        assert_eq!(
            error_code(r).await,
            (StatusCode::BAD_REQUEST, "BAD_REQUEST".into())
        );
        let (_tx, r) = call(&app, vec![42, 0, 0, 0, 0]).await;
        assert_eq!(error_code(r).await.0, StatusCode::BAD_REQUEST);
        let (tx, rx) = mpsc::channel(1);
        tx.send(Bytes::from_static(&[1, 0, 0]))
            .await
            .expect("queued");
        drop(tx);
        let r = answer(&app, rx).await;
        assert_eq!(error_code(r).await.0, StatusCode::BAD_REQUEST);
        let mut ssh = terminal("true");
        ssh.kind = ShellKind::Ssh;
        ssh.certificate = Some("ssh-ed25519-cert-v01@openssh.com AAAA".into());
        let (_tx, r) = call(&app, Frame::Start(ssh).encode()).await;
        assert_eq!(
            error_code(r).await.0,
            StatusCode::BAD_REQUEST,
            "no private key"
        );
    }

    #[tokio::test]
    async fn a_terminal_streams_ready_output_and_exit() {
        let dir = tempfile::tempdir().expect("dir");
        let app = app(dir.path(), 4);
        let (tx, r) = call(
            &app,
            Frame::Start(terminal("read a; echo got $a; exit 7")).encode(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        tx.send(Frame::Input(b"x\n".to_vec()).encode().into())
            .await
            .expect("input");
        let frames = frames(r).await;
        assert!(
            matches!(frames.first(), Some(Frame::Ready(_))),
            "{frames:?}"
        );
        assert_eq!(frames.last(), Some(&Frame::Exit(7)), "{frames:?}");
        let output: Vec<u8> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Output(b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(
            String::from_utf8_lossy(&output).contains("got x"),
            "{frames:?}"
        );
    }

    #[tokio::test]
    async fn a_bad_frame_mid_stream_is_an_error_frame() {
        let dir = tempfile::tempdir().expect("dir");
        let app = app(dir.path(), 4);
        let (tx, r) = call(&app, Frame::Start(terminal("sleep 600")).encode()).await;
        tx.send(Frame::Exit(1).encode().into())
            .await
            .expect("queued");
        let frames = frames(r).await;
        assert!(
            matches!(frames.last(), Some(Frame::Error(m)) if m.contains("Exit")),
            "{frames:?}"
        );
    }

    /// The panel goes away while the shell reads no input and the agent holds input it
    /// cannot deliver: the shell still ends.
    #[tokio::test]
    async fn a_panel_gone_ends_a_shell_that_takes_no_input() {
        let dir = tempfile::tempdir().expect("dir");
        let app = app(dir.path(), 4);
        let command = "stty raw -echo; echo pid= $$; exec sleep 600";
        let (tx, r) = call(&app, Frame::Start(terminal(command)).encode()).await;
        let mut body = r.into_body().into_data_stream();
        let mut decoder = Decoder::default();
        let mut text = String::new();
        while !text.split("pid=").nth(1).is_some_and(|r| r.contains('\n')) {
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                .await
                .expect("output")
                .expect("not ended")
                .expect("chunk");
            decoder.push(&chunk);
            while let Some(frame) = decoder.next_frame().expect("frames") {
                if let Frame::Output(b) = frame {
                    text.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
        let pid: i32 = text
            .split("pid=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("pid");
        let input = Bytes::from(Frame::Input(vec![b'x'; 60_000]).encode());
        let mut sent = 0;
        while tokio::time::timeout(Duration::from_millis(300), tx.send(input.clone()))
            .await
            .is_ok()
        {
            sent += 1;
            assert!(sent < 1000, "the agent never stopped taking input");
        }
        drop((tx, body));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z'))
        }) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{pid} outlived the panel"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn sessions_are_capped() {
        let dir = tempfile::tempdir().expect("dir");
        let app = app(dir.path(), 1);
        let (first, r) = call(&app, Frame::Start(terminal("sleep 600")).encode()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let (_tx, refused) = call(&app, Frame::Start(terminal("true")).encode()).await;
        assert_eq!(
            error_code(refused).await,
            (StatusCode::CONFLICT, "TOO_MANY_SESSIONS".into())
        );
        // The panel hangs the first up: its answer ends with the hang-up's status, and
        // its place is free again.
        drop(first);
        assert_eq!(frames(r).await.last(), Some(&Frame::Exit(129)));
        let (_tx, again) = call(&app, Frame::Start(terminal("true")).encode()).await;
        assert_eq!(again.status(), StatusCode::OK);
    }
}
