//! Console plumbing of one instance: output lines go to the log file (buffered,
//! flushed every 100 ms, rotated past a size), to a ring of the last lines for
//! `send logs`, and to a broadcast of pre-serialized NDJSON chunks. The reader never
//! waits for subscribers: a slow one lags and is told how many lines it lost.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use shardlyn_proto::instance::{Event, InstanceState, REPLAY_LINES};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::lock;

/// Chunks a subscriber may fall behind before it lags.
const CHANNEL_CAPACITY: usize = 8192;

/// One broadcast item: NDJSON `Event` lines, serialized once for every subscriber.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Sequence number of the first console line in the chunk.
    pub seq: u64,
    /// Console lines in the chunk (0 for other events).
    pub lines: u64,
    /// `Event` JSON lines, each ending in `\n`.
    pub data: Bytes,
}

/// What a console subscriber starts from.
pub struct ConsoleSubscription {
    /// The replayed lines as NDJSON `console output` events, then a `status` event.
    pub replay: Bytes,
    pub receiver: broadcast::Receiver<Chunk>,
    /// Sequence number of the next console line.
    pub next_seq: u64,
}

struct Ring {
    lines: VecDeque<String>,
    next_seq: u64,
}

/// The console of one instance.
pub(crate) struct Console {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Chunk>,
    pub log: LogFile,
    pub install_log: LogFile,
}

/// Appends one `{"event": name, "args": [line]}` JSON line.
fn push_event_line(buf: &mut BytesMut, event: &str, line: &str) {
    buf.put_slice(b"{\"event\":\"");
    buf.put_slice(event.as_bytes());
    buf.put_slice(b"\",\"args\":[");
    let mut w = buf.writer();
    // Writing a str into memory cannot fail.
    let _ = serde_json::to_writer(&mut w, line);
    let buf = w.into_inner();
    buf.put_slice(b"]}\n");
}

impl Console {
    pub fn new(logs: &Path, id: &str, max_bytes: u64) -> Self {
        Self {
            ring: Mutex::new(Ring {
                lines: VecDeque::with_capacity(REPLAY_LINES),
                next_seq: 0,
            }),
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            log: LogFile::open(logs.join(format!("{id}.log")), max_bytes),
            install_log: LogFile::open(logs.join(format!("{id}-install.log")), max_bytes),
        }
    }

    /// Publishes console (or install) output lines: log file, ring, subscribers.
    pub fn lines(&self, event: &str, lines: &[String], install: bool) {
        if lines.is_empty() {
            return;
        }
        let mut data = BytesMut::with_capacity(lines.iter().map(|l| l.len() + 48).sum());
        let mut raw = BytesMut::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            push_event_line(&mut data, event, line);
            raw.put_slice(line.as_bytes());
            raw.put_u8(b'\n');
        }
        if install {
            self.install_log.write(raw.freeze());
        } else {
            self.log.write(raw.freeze());
        }
        let count = lines.len() as u64;
        let mut ring = lock(&self.ring);
        let seq = ring.next_seq;
        if !install {
            for line in lines.iter().skip(lines.len().saturating_sub(REPLAY_LINES)) {
                if ring.lines.len() == REPLAY_LINES {
                    ring.lines.pop_front();
                }
                ring.lines.push_back(line.clone());
            }
        }
        ring.next_seq += count;
        let _ = self.tx.send(Chunk {
            seq,
            lines: count,
            data: data.freeze(),
        });
    }

    /// Publishes one non-console event to the subscribers.
    pub fn emit(&self, event: &Event) {
        let mut data = serde_json::to_vec(event).unwrap_or_default();
        data.push(b'\n');
        let ring = lock(&self.ring);
        let _ = self.tx.send(Chunk {
            seq: ring.next_seq,
            lines: 0,
            data: data.into(),
        });
    }

    /// Replays the last `replay` lines (at most [`REPLAY_LINES`]) and subscribes, with no
    /// gap and no duplicate between the two.
    pub fn subscribe(&self, replay: usize, state: InstanceState) -> ConsoleSubscription {
        let ring = lock(&self.ring);
        let receiver = self.tx.subscribe();
        let mut buf = BytesMut::new();
        let skip = ring.lines.len().saturating_sub(replay.min(REPLAY_LINES));
        for line in ring.lines.iter().skip(skip) {
            push_event_line(
                &mut buf,
                shardlyn_proto::instance::events::CONSOLE_OUTPUT,
                line,
            );
        }
        push_event_line(
            &mut buf,
            shardlyn_proto::instance::events::STATUS,
            state.as_str(),
        );
        ConsoleSubscription {
            replay: buf.freeze(),
            receiver,
            next_seq: ring.next_seq,
        }
    }

    pub fn clear_ring(&self) {
        lock(&self.ring).lines.clear();
    }
}

/// Splits a byte stream into lines (`\n`, with a trailing `\r` dropped), keeping the
/// partial last line for the next chunk. Invalid UTF-8 is replaced.
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
}

/// A line longer than this is cut (a server printing without newlines).
const MAX_LINE: usize = 64 * 1024;

impl LineSplitter {
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<String>) {
        while let Some(pos) = bytes.iter().position(|b| *b == b'\n') {
            let (head, rest) = bytes.split_at(pos);
            bytes = &rest[1..];
            let line = if self.partial.is_empty() {
                to_line(head)
            } else {
                self.partial.extend_from_slice(head);
                let l = to_line(&self.partial);
                self.partial.clear();
                l
            };
            out.push(line);
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() > MAX_LINE {
            out.push(to_line(&self.partial));
            self.partial.clear();
        }
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        if !self.partial.is_empty() {
            out.push(to_line(&self.partial));
            self.partial.clear();
        }
    }
}

fn to_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Removes ANSI escape sequences (CSI, OSC and two-byte escapes).
pub(crate) fn strip_ansi(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\u{1b}') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // Until BEL or ST (ESC \).
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One `done` entry: a substring, or a regex after `regex:`.
pub(crate) enum Matcher {
    Substring(String),
    Regex(regex::Regex),
}

impl Matcher {
    /// Compiles the entries; a bad regex is reported and skipped.
    pub fn compile(done: &[String]) -> (Vec<Self>, Vec<String>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for d in done {
            if let Some(pattern) = d.strip_prefix("regex:") {
                match regex::Regex::new(pattern) {
                    Ok(r) => out.push(Self::Regex(r)),
                    Err(e) => errors.push(format!("invalid done pattern {pattern:?}: {e}")),
                }
            } else if !d.is_empty() {
                out.push(Self::Substring(d.clone()));
            }
        }
        (out, errors)
    }

    pub fn matches(&self, line: &str) -> bool {
        match self {
            Self::Substring(s) => line.contains(s.as_str()),
            Self::Regex(r) => r.is_match(line),
        }
    }
}

enum LogCmd {
    Write(Bytes),
    Truncate(oneshot::Sender<std::io::Result<()>>),
    Flush(oneshot::Sender<()>),
}

/// An append-only log file written by its own task: buffered, flushed at least every
/// 100 ms, renamed to `*.1` once past `max_bytes`.
pub(crate) struct LogFile {
    path: PathBuf,
    tx: mpsc::UnboundedSender<LogCmd>,
}

impl LogFile {
    pub fn open(path: PathBuf, max_bytes: u64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_log(path.clone(), max_bytes, rx));
        Self { path, tx }
    }

    pub fn write(&self, bytes: Bytes) {
        let _ = self.tx.send(LogCmd::Write(bytes));
    }

    pub async fn flush(&self) -> std::io::Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(LogCmd::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
        Ok(())
    }

    pub async fn truncate(&self) -> std::io::Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(LogCmd::Truncate(tx)).is_ok() {
            return rx.await.unwrap_or(Ok(()));
        }
        Ok(())
    }

    pub async fn read_all(&self) -> std::io::Result<Vec<u8>> {
        self.flush().await?;
        match tokio::fs::read(&self.path).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The last `n` lines: reads backwards from the end in growing windows.
    pub async fn tail(&self, n: usize) -> std::io::Result<Vec<String>> {
        use tokio::io::AsyncReadExt;
        self.flush().await?;
        let mut file = match tokio::fs::File::open(&self.path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let size = file.metadata().await?.len();
        let mut window = 64 * 1024u64;
        loop {
            let start = size.saturating_sub(window);
            file.seek(std::io::SeekFrom::Start(start)).await?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf).await?;
            let text = String::from_utf8_lossy(&buf);
            let mut lines: Vec<&str> = text.lines().collect();
            // The first line of a window that does not start the file may be cut.
            if start > 0 && !lines.is_empty() {
                lines.remove(0);
            }
            if lines.len() >= n || start == 0 {
                let skip = lines.len().saturating_sub(n);
                return Ok(lines[skip..].iter().map(|s| (*s).to_string()).collect());
            }
            window *= 4;
        }
    }
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

async fn write_log(path: PathBuf, max_bytes: u64, mut rx: mpsc::UnboundedReceiver<LogCmd>) {
    let mut file: Option<tokio::io::BufWriter<tokio::fs::File>> = None;
    let mut size = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
    let mut dirty = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(c) => c,
                None => break,
            },
            _ = tick.tick(), if dirty => {
                if let Some(f) = file.as_mut() {
                    let _ = f.flush().await;
                }
                dirty = false;
                continue;
            }
        };
        match cmd {
            LogCmd::Write(bytes) => {
                if size > max_bytes {
                    if let Some(mut f) = file.take() {
                        let _ = f.flush().await;
                    }
                    let _ = tokio::fs::rename(&path, path.with_extension("log.1")).await;
                    size = 0;
                }
                if file.is_none() {
                    match open_append(&path).await {
                        Ok(f) => file = Some(tokio::io::BufWriter::with_capacity(64 * 1024, f)),
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "console log");
                            continue;
                        }
                    }
                }
                if let Some(f) = file.as_mut()
                    && f.write_all(&bytes).await.is_ok()
                {
                    size += bytes.len() as u64;
                    dirty = true;
                }
            }
            LogCmd::Flush(done) => {
                if let Some(f) = file.as_mut() {
                    let _ = f.flush().await;
                }
                dirty = false;
                let _ = done.send(());
            }
            LogCmd::Truncate(done) => {
                if let Some(mut f) = file.take() {
                    let _ = f.flush().await;
                }
                let result = match tokio::fs::File::create(&path).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
                size = 0;
                dirty = false;
                let _ = done.send(result);
            }
        }
    }
    if let Some(mut f) = file {
        let _ = f.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_chunks() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(b"a\r\nb", &mut out);
        s.push(b"c\n\nd", &mut out);
        s.finish(&mut out);
        assert_eq!(out, ["a", "bc", "", "d"]);
    }

    #[test]
    fn ansi_codes_are_stripped() {
        assert_eq!(strip_ansi("\u{1b}[1;32mready\u{1b}[0m!"), "ready!");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}x"), "x");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn done_patterns_match_substrings_and_regexes() {
        let (m, errors) = Matcher::compile(&[
            "ready".into(),
            r"regex:^Done \(\d+s\)".into(),
            "regex:(".into(),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(errors.len(), 1);
        assert!(m[0].matches("server ready now"));
        assert!(m[1].matches("Done (12s)! For help"));
        assert!(!m[1].matches("not Done (1s)"));
    }

    #[test]
    fn events_are_valid_json_lines() {
        let mut b = BytesMut::new();
        push_event_line(&mut b, "console output", "a \"quoted\"\tline");
        let v: Event = serde_json::from_slice(&b[..b.len() - 1]).expect("json");
        assert_eq!(v, Event::new("console output", &["a \"quoted\"\tline"]));
    }
}
