//! A shell on a node, carried through the tunnel: the panel's `GET /v1/nodes/{id}/ssh`
//! and `GET /v1/nodes/{id}/terminal` sockets become one agent request,
//! `POST /v1/shell`, whose request body (panel → agent) and answer body (agent → panel)
//! are both streams of [`Frame`]s. HTTP/2 carries the two directions at once.
//!
//! A frame is one kind byte, a big-endian `u32` payload length and the payload, at most
//! [`MAX_PAYLOAD`] bytes. The first frame the panel sends is [`Frame::Start`]; the agent
//! answers [`Frame::Ready`] once the session runs (or [`Frame::Error`] and the end of its
//! body), then [`Frame::Output`]s, and last [`Frame::Exit`]. The panel ending its body
//! hangs the session up.

use serde::{Deserialize, Serialize};

/// Largest payload of one frame.
pub const MAX_PAYLOAD: usize = 1024 * 1024;
/// Bytes before a frame's payload.
pub const HEADER: usize = 5;

/// What kind of shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShellKind {
    /// An SSH session to the node's own sshd on loopback, logged in with a certificate.
    Ssh,
    /// A PTY shell the agent runs itself (nodes without sshd).
    Terminal,
}

/// The first frame: what to open.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShellStart {
    pub kind: ShellKind,
    /// Terminal size.
    pub cols: u16,
    pub rows: u16,
    /// `TERM` for the PTY.
    #[serde(default = "default_term")]
    pub term: String,
    /// A command to run instead of a login shell (still on a PTY).
    #[serde(default)]
    pub command: Option<String>,
    /// SSH only: the local user to log in as.
    #[serde(default)]
    pub login: Option<String>,
    /// SSH only: the ephemeral private key, OpenSSH format.
    #[serde(default)]
    pub private_key: Option<String>,
    /// SSH only: its certificate, one OpenSSH line.
    #[serde(default)]
    pub certificate: Option<String>,
}

impl std::fmt::Debug for ShellStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellStart")
            .field("kind", &self.kind)
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("command", &self.command)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

fn default_term() -> String {
    "xterm-256color".into()
}

/// What the agent says once the session runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShellReady {
    /// The user the shell runs as.
    pub user: String,
    /// SSH only: the SHA-256 fingerprint of the sshd host key that was checked.
    #[serde(default)]
    pub host_key: Option<String>,
}

/// One message of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Panel → agent, first: what to open.
    Start(ShellStart),
    /// Panel → agent: keystrokes.
    Input(Vec<u8>),
    /// Panel → agent: the terminal's new size.
    Resize { cols: u16, rows: u16 },
    /// Agent → panel: the session runs.
    Ready(ShellReady),
    /// Agent → panel: what the PTY wrote.
    Output(Vec<u8>),
    /// Agent → panel, last: the exit status (128 + n for a signal n).
    Exit(i32),
    /// Agent → panel: the session could not open or broke; the body ends after it.
    Error(String),
}

const START: u8 = 1;
const INPUT: u8 = 2;
const RESIZE: u8 = 3;
const READY: u8 = 4;
const OUTPUT: u8 = 5;
const EXIT: u8 = 6;
const ERROR: u8 = 7;

impl Frame {
    /// The frame as bytes on the wire.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, std::borrow::Cow<'_, [u8]>) = match self {
            Self::Start(start) => (START, serde_json::to_vec(start).unwrap_or_default().into()),
            Self::Input(bytes) => (INPUT, bytes.as_slice().into()),
            Self::Resize { cols, rows } => {
                let mut b = Vec::with_capacity(4);
                b.extend_from_slice(&cols.to_be_bytes());
                b.extend_from_slice(&rows.to_be_bytes());
                (RESIZE, b.into())
            }
            Self::Ready(ready) => (READY, serde_json::to_vec(ready).unwrap_or_default().into()),
            Self::Output(bytes) => (OUTPUT, bytes.as_slice().into()),
            Self::Exit(status) => (EXIT, status.to_be_bytes().to_vec().into()),
            Self::Error(message) => (ERROR, message.as_bytes().into()),
        };
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.push(kind);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Frames of output (or input) for `bytes`, split at [`MAX_PAYLOAD`].
    pub fn chunks(bytes: &[u8], make: fn(Vec<u8>) -> Self) -> impl Iterator<Item = Self> + '_ {
        bytes.chunks(MAX_PAYLOAD).map(move |c| make(c.to_vec()))
    }
}

/// Why a byte stream is not frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame payload of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
}

/// Cuts a byte stream into frames: [`Decoder::push`] bytes as they come, then take
/// [`Decoder::next_frame`] until it is `Ok(None)`.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
}

impl Decoder {
    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet cut into a frame.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// The stream is not frames (the connection should end).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < HEADER {
            self.compact();
            return Ok(None);
        }
        let kind = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        if rest.len() < HEADER + len {
            self.compact();
            return Ok(None);
        }
        let payload = &rest[HEADER..HEADER + len];
        let frame = match kind {
            START => Frame::Start(
                serde_json::from_slice(payload).map_err(|_| FrameError::Malformed("start"))?,
            ),
            INPUT => Frame::Input(payload.to_vec()),
            RESIZE => match payload {
                [a, b, c, d] => Frame::Resize {
                    cols: u16::from_be_bytes([*a, *b]),
                    rows: u16::from_be_bytes([*c, *d]),
                },
                _ => return Err(FrameError::Malformed("resize")),
            },
            READY => Frame::Ready(
                serde_json::from_slice(payload).map_err(|_| FrameError::Malformed("ready"))?,
            ),
            OUTPUT => Frame::Output(payload.to_vec()),
            EXIT => match payload {
                [a, b, c, d] => Frame::Exit(i32::from_be_bytes([*a, *b, *c, *d])),
                _ => return Err(FrameError::Malformed("exit")),
            },
            ERROR => Frame::Error(String::from_utf8_lossy(payload).into_owned()),
            other => return Err(FrameError::UnknownKind(other)),
        };
        self.start += HEADER + len;
        Ok(Some(frame))
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> ShellStart {
        ShellStart {
            kind: ShellKind::Ssh,
            cols: 120,
            rows: 40,
            term: default_term(),
            command: Some("echo hi".into()),
            login: Some("shardlyn".into()),
            private_key: Some("secret".into()),
            certificate: None,
        }
    }

    #[test]
    fn frames_survive_any_split() {
        let frames = vec![
            Frame::Start(start()),
            Frame::Input(b"ls\r".to_vec()),
            Frame::Resize { cols: 80, rows: 24 },
            Frame::Ready(ShellReady {
                user: "shardlyn".into(),
                host_key: Some("SHA256:x".into()),
            }),
            Frame::Output(vec![0, 255, 10]),
            Frame::Exit(-1),
            Frame::Error("nope".into()),
            Frame::Output(Vec::new()),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for step in [1, 2, 3, 7, wire.len()] {
            let mut decoder = Decoder::default();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                decoder.push(piece);
                while let Some(frame) = decoder.next_frame().expect("valid") {
                    got.push(frame);
                }
            }
            assert_eq!(got, frames, "split every {step} bytes");
            assert_eq!(decoder.pending(), 0);
        }
    }

    #[test]
    fn bad_streams_are_refused() {
        let mut decoder = Decoder::default();
        decoder.push(&[9, 0, 0, 0, 0]);
        assert_eq!(decoder.next_frame(), Err(FrameError::UnknownKind(9)));
        let mut decoder = Decoder::default();
        decoder.push(&[OUTPUT, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(decoder.next_frame(), Err(FrameError::TooLarge(_))));
        let mut decoder = Decoder::default();
        decoder.push(&[RESIZE, 0, 0, 0, 1, 7]);
        assert_eq!(decoder.next_frame(), Err(FrameError::Malformed("resize")));
        let mut decoder = Decoder::default();
        decoder.push(&[START, 0, 0, 0, 2, b'{', b'x']);
        assert_eq!(decoder.next_frame(), Err(FrameError::Malformed("start")));
    }

    #[test]
    fn the_private_key_never_reaches_a_log() {
        let shown = format!("{:?}", start());
        assert!(!shown.contains("secret"), "{shown}");
    }
}
