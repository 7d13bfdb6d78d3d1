//! Shell sessions and their recordings: one `shell_sessions` row per session, and its
//! output as asciicast v2 event lines in `shell_recording_chunks`, written by a
//! [`Recorder`] at least every second while the session runs. A panel or agent that
//! dies mid-session loses at most that second; the session then reads `cut`.
//!
//! `GET /v1/nodes/{id}/recordings`, `.../{rid}` and `.../{rid}/cast` (the recording,
//! `application/x-asciicast`, playable by `asciinema play` and the node page).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use tokio::sync::mpsc;

use crate::authz::{Authorized, perm};
use crate::db::now_ms;
use crate::db::row::Flag;
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::files::typed::{Bytes, Media};
use crate::nodes::store::Node;
use crate::pagination::PageParams;
use crate::state::AppState;
use crate::types::Timestamp;

/// Output recorded per session at most; past it the recording says it was cut short.
pub const MAX_RECORDED: u64 = 32 * 1024 * 1024;
/// How often the recorder writes at the latest.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// A chunk is written early once it holds this much.
const CHUNK_BYTES: usize = 256 * 1024;
/// A session whose recorder wrote nothing for this long, without an end, was cut.
const LIVE_WITHIN_MS: i64 = 10_000;
/// Chunks read at a time for a download.
const CHUNKS_PER_READ: i64 = 64;

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub node_id: String,
    pub user_id: String,
    pub user_email: String,
    pub kind: String,
    pub login: Option<String>,
    pub command: Option<String>,
    pub certificate_id: Option<String>,
    pub remote_ip: Option<String>,
    pub term: String,
    pub cols: i32,
    pub rows: i32,
    pub started_at: i64,
    pub updated_at: i64,
    pub ended_at: Option<i64>,
    pub exit_status: Option<i32>,
    pub end_reason: Option<String>,
    pub recorded_bytes: i64,
    #[sqlx(try_from = "Flag")]
    pub truncated: bool,
}

macro_rules! columns {
    () => {
        "id, node_id, user_id, user_email, kind, login, command, certificate_id, remote_ip, \
         term, cols, rows, started_at, updated_at, ended_at, exit_status, end_reason, \
         recorded_bytes, truncated"
    };
}

/// Stores a new session.
///
/// # Errors
/// Database failures.
pub async fn insert(pool: &AnyPool, r: &Row) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO shell_sessions (id, node_id, user_id, user_email, kind, login, command, \
         certificate_id, remote_ip, term, cols, rows, started_at, updated_at, recorded_bytes, \
         truncated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, 0, 0)",
    )
    .bind(&r.id)
    .bind(&r.node_id)
    .bind(&r.user_id)
    .bind(&r.user_email)
    .bind(&r.kind)
    .bind(r.login.as_deref())
    .bind(r.command.as_deref())
    .bind(r.certificate_id.as_deref())
    .bind(r.remote_ip.as_deref())
    .bind(&r.term)
    .bind(r.cols)
    .bind(r.rows)
    .bind(r.started_at)
    .execute(pool)
    .await?;
    Ok(())
}

async fn find(pool: &AnyPool, node_id: &str, id: &str) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM shell_sessions WHERE id = $1 AND node_id = $2"
    ))
    .bind(id)
    .bind(node_id)
    .fetch_optional(pool)
    .await
}

/// A session, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Recording {
    pub id: String,
    pub node_id: String,
    pub user_id: String,
    pub user_email: String,
    /// `ssh` or `terminal`.
    pub kind: String,
    /// SSH: the node login.
    pub login: Option<String>,
    /// The command run instead of a shell, if any.
    pub command: Option<String>,
    /// SSH: the one-minute certificate the session logged in with.
    pub certificate_id: Option<String>,
    pub remote_ip: Option<String>,
    pub cols: i32,
    pub rows: i32,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// `live`, `ended`, or `cut` (the panel or the node went away mid-session).
    pub state: String,
    pub exit_status: Option<i32>,
    /// Why it ended: `exit`, `closed` (the browser left), `revoked`, `error`...
    pub end_reason: Option<String>,
    /// Output bytes recorded.
    pub recorded_bytes: i64,
    /// The output passed [`MAX_RECORDED`] and the rest was not recorded.
    pub truncated: bool,
    /// Where the asciicast v2 recording downloads from.
    pub cast_url: String,
}

/// When a session still open in the database counts as cut.
#[derive(Clone, Copy)]
pub struct Liveness {
    /// Now, on the panel's clock.
    pub now: i64,
    /// Without Redis this panel is the only replica: what an earlier run of it left open
    /// (started before this run did) was cut when that run died.
    pub this_run_since: Option<i64>,
}

impl Liveness {
    fn of(state: &AppState) -> Self {
        Self {
            now: state.clock.now_ms(),
            this_run_since: state.redis.is_none().then(|| state.started_at_ms()),
        }
    }
}

impl Recording {
    fn from_row(r: Row, at: Liveness) -> Self {
        let state = match r.ended_at {
            Some(_) => "ended",
            None if at.this_run_since.is_some_and(|since| r.started_at < since) => "cut",
            None if at.now - r.updated_at <= LIVE_WITHIN_MS => "live",
            None => "cut",
        };
        Self {
            cast_url: format!("/v1/nodes/{}/recordings/{}/cast", r.node_id, r.id),
            id: r.id,
            node_id: r.node_id,
            user_id: r.user_id,
            user_email: r.user_email,
            kind: r.kind,
            login: r.login,
            command: r.command,
            certificate_id: r.certificate_id,
            remote_ip: r.remote_ip,
            cols: r.cols,
            rows: r.rows,
            started_at: Timestamp(r.started_at),
            ended_at: r.ended_at.map(Timestamp),
            state: state.into(),
            exit_status: r.exit_status,
            end_reason: r.end_reason,
            recorded_bytes: r.recorded_bytes,
            truncated: r.truncated,
        }
    }
}

/// A page of recordings, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RecordingList {
    pub data: Vec<Recording>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

/// The node's recordings, newest first, their state as `at` tells.
///
/// # Errors
/// Database failures; 400 for a bad page.
pub async fn page(
    pool: &AnyPool,
    node_id: &str,
    params: PageParams,
    at: Liveness,
) -> AppResult<RecordingList> {
    let (limit, offset) = params.limit_offset()?;
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM shell_sessions WHERE node_id = $1 \
         ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(node_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shell_sessions WHERE node_id = $1")
        .bind(node_id)
        .fetch_one(pool)
        .await?;
    Ok(RecordingList {
        data: rows
            .into_iter()
            .map(|r| Recording::from_row(r, at))
            .collect(),
        page: params.page,
        per_page: params.per_page,
        total,
    })
}

/// `GET /v1/nodes/{id}/recordings`.
pub async fn list(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesTerminal>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<AppJson<RecordingList>> {
    Ok(AppJson(
        page(&state.db.pool, &node.id, params, Liveness::of(&state)).await?,
    ))
}

/// The `{id}` and `{rid}` of a recording route.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RecordingPath {
    pub id: String,
    pub rid: String,
}

async fn load(state: &AppState, node: &Node, rid: &str) -> AppResult<Row> {
    find(&state.db.pool, &node.id, rid)
        .await?
        .ok_or_else(|| AppError::not_found("recording"))
}

/// `GET /v1/nodes/{id}/recordings/{rid}`.
pub async fn get(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesTerminal>,
    AppPath(path): AppPath<RecordingPath>,
) -> AppResult<AppJson<Recording>> {
    let row = load(&state, &node, &path.rid).await?;
    Ok(AppJson(Recording::from_row(row, Liveness::of(&state))))
}

/// An asciicast v2 file.
pub struct Cast;

impl Media for Cast {
    const TYPE: &'static str = "application/x-asciicast";
    const DESCRIPTION: &'static str =
        "The session's recording, asciicast v2 (a JSON header line, then one event per line)";
}

/// The asciicast v2 header line of a session.
fn header_line(r: &Row) -> String {
    let header = serde_json::json!({
        "version": 2,
        "width": r.cols,
        "height": r.rows,
        "timestamp": r.started_at / 1000,
        "title": format!(
            "{} on node {} by {}",
            r.kind, r.node_id, r.user_email
        ),
        "env": {"TERM": r.term},
    });
    format!("{header}\n")
}

/// `GET /v1/nodes/{id}/recordings/{rid}/cast`: the recording as written so far (a live
/// session's too), streamed.
pub async fn cast(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesTerminal>,
    AppPath(path): AppPath<RecordingPath>,
) -> AppResult<Bytes<Cast>> {
    let row = load(&state, &node, &path.rid).await?;
    let pool = state.db.pool.clone();
    let id = row.id.clone();
    let head = header_line(&row);
    // The header, then the chunks a page at a time, until there are no more.
    let stream =
        futures_util::stream::unfold((Some(head), 0i64, false), move |(head, next, done)| {
            let (pool, id) = (pool.clone(), id.clone());
            async move {
                if let Some(head) = head {
                    return Some((Ok(bytes::Bytes::from(head)), (None, next, false)));
                }
                if done {
                    return None;
                }
                let chunks: Result<Vec<(i32, String)>, sqlx::Error> = sqlx::query_as(
                    "SELECT seq, events FROM shell_recording_chunks \
                     WHERE session_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                )
                .bind(&id)
                .bind(next)
                .bind(CHUNKS_PER_READ)
                .fetch_all(&pool)
                .await;
                match chunks {
                    Err(e) => Some((
                        Err(std::io::Error::other(e.to_string())),
                        (None, next, true),
                    )),
                    Ok(chunks) => {
                        let last = chunks.last().map(|c| i64::from(c.0))?;
                        let more = i64::try_from(chunks.len()).unwrap_or(0) == CHUNKS_PER_READ;
                        let text: String = chunks.into_iter().map(|c| c.1).collect();
                        Some((Ok(bytes::Bytes::from(text)), (None, last + 1, !more)))
                    }
                }
            }
        });
    let filename = format!("shardlyn-{}-{}.cast", row.kind, row.id);
    Ok(Bytes::from(
        (
            [
                (header::CONTENT_TYPE, Cast::TYPE.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                ),
            ],
            Body::from_stream(stream),
        )
            .into_response(),
    ))
}

/// What the session tells its recorder.
enum Note {
    Output(Vec<u8>),
    Resize(u16, u16),
    End { status: Option<i32>, reason: String },
}

/// Writes one session's recording on its own task, so a slow database never holds the
/// terminal up for long (its queue is small: a stalled writer slows output down rather
/// than grow without bound).
pub struct Recorder {
    tx: mpsc::Sender<Note>,
    done: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts recording session `id` (its row already stored).
    #[must_use]
    pub fn start(pool: AnyPool, id: String) -> Self {
        let (tx, rx) = mpsc::channel(16);
        let done = tokio::spawn(write(pool, id, rx));
        Self { tx, done }
    }

    /// Records output.
    pub async fn output(&self, bytes: &[u8]) {
        let _ = self.tx.send(Note::Output(bytes.to_vec())).await;
    }

    /// Records a resize.
    pub async fn resize(&self, cols: u16, rows: u16) {
        let _ = self.tx.send(Note::Resize(cols, rows)).await;
    }

    /// Ends the recording and waits until it is written.
    pub async fn finish(self, status: Option<i32>, reason: &str) {
        let _ = self
            .tx
            .send(Note::End {
                status,
                reason: reason.to_owned(),
            })
            .await;
        drop(self.tx);
        let _ = self.done.await;
    }
}

/// Event lines not yet written, and the state of the UTF-8 decoding.
struct Pending {
    started: Instant,
    lines: String,
    /// The start of a character cut at the end of the last output.
    carry: Vec<u8>,
    recorded: u64,
    truncated: bool,
}

impl Pending {
    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn event(&mut self, code: &str, data: &str) {
        let line = serde_json::json!([(self.elapsed() * 1e6).round() / 1e6, code, data]);
        self.lines.push_str(&line.to_string());
        self.lines.push('\n');
    }

    fn output(&mut self, bytes: &[u8]) {
        if self.truncated {
            return;
        }
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(bytes);
        // Keep an incomplete character at the end for the next output.
        let keep = incomplete_tail(&data);
        self.carry = data.split_off(data.len() - keep);
        if data.is_empty() {
            return;
        }
        self.recorded += data.len() as u64;
        let text = String::from_utf8_lossy(&data).into_owned();
        self.event("o", &text);
        if self.recorded >= MAX_RECORDED {
            self.truncated = true;
            self.event(
                "m",
                "recording stopped here: the session's output passed the recording limit",
            );
        }
    }
}

/// How many bytes at the end of `data` begin a UTF-8 character not complete yet.
fn incomplete_tail(data: &[u8]) -> usize {
    for back in 1..=3.min(data.len()) {
        let b = data[data.len() - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

async fn flush(pool: &AnyPool, id: &str, seq: &mut i32, p: &mut Pending) {
    let now = now_ms();
    if !p.lines.is_empty() {
        let events = std::mem::take(&mut p.lines);
        let written = sqlx::query(
            "INSERT INTO shell_recording_chunks (session_id, seq, events) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(*seq)
        .bind(&events)
        .execute(pool)
        .await;
        match written {
            Ok(_) => *seq += 1,
            Err(e) => tracing::warn!(session = id, error = %e, "writing a recording chunk"),
        }
    }
    let _ = sqlx::query(
        "UPDATE shell_sessions SET updated_at = $1, recorded_bytes = $2, truncated = $3 \
         WHERE id = $4",
    )
    .bind(now)
    .bind(i64::try_from(p.recorded).unwrap_or(i64::MAX))
    .bind(i32::from(p.truncated))
    .bind(id)
    .execute(pool)
    .await;
}

async fn write(pool: AnyPool, id: String, mut rx: mpsc::Receiver<Note>) {
    let mut p = Pending {
        started: Instant::now(),
        lines: String::new(),
        carry: Vec::new(),
        recorded: 0,
        truncated: false,
    };
    let mut seq = 0i32;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut end: Option<(Option<i32>, String)> = None;
    loop {
        tokio::select! {
            note = rx.recv() => match note {
                Some(Note::Output(bytes)) => {
                    p.output(&bytes);
                    if p.lines.len() >= CHUNK_BYTES {
                        flush(&pool, &id, &mut seq, &mut p).await;
                    }
                }
                Some(Note::Resize(cols, rows)) => p.event("r", &format!("{cols}x{rows}")),
                Some(Note::End { status, reason }) => {
                    end = Some((status, reason));
                    break;
                }
                None => break,
            },
            _ = tick.tick() => flush(&pool, &id, &mut seq, &mut p).await,
        }
    }
    if !p.carry.is_empty() {
        let rest = std::mem::take(&mut p.carry);
        let text = String::from_utf8_lossy(&rest).into_owned();
        p.event("o", &text);
    }
    flush(&pool, &id, &mut seq, &mut p).await;
    let (status, reason) = end.unwrap_or((None, "closed".into()));
    let _ = sqlx::query(
        "UPDATE shell_sessions SET ended_at = $1, updated_at = $1, exit_status = $2, \
         end_reason = $3 WHERE id = $4",
    )
    .bind(now_ms())
    .bind(status)
    .bind(&reason)
    .bind(&id)
    .execute(&pool)
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_characters_wait_for_their_end() {
        let euro = "€".as_bytes();
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail(&euro[..1]), 1);
        assert_eq!(incomplete_tail(&euro[..2]), 2);
        assert_eq!(incomplete_tail(euro), 0);
        assert_eq!(incomplete_tail(&[b'a', 0xF0, 0x9F, 0x98]), 3);
        assert_eq!(incomplete_tail(&[0xFF]), 0);
    }

    #[test]
    fn output_split_inside_a_character_is_recorded_whole() {
        let mut p = Pending {
            started: Instant::now(),
            lines: String::new(),
            carry: Vec::new(),
            recorded: 0,
            truncated: false,
        };
        let text = "caf€!".as_bytes();
        p.output(&text[..4]);
        p.output(&text[4..]);
        let data: Vec<String> = p
            .lines
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                assert_eq!(v[1], "o");
                v[2].as_str().expect("str").to_owned()
            })
            .collect();
        assert_eq!(data.concat(), "caf€!");
    }
}
