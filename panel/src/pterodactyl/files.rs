//! Files of an imported server: copied from the old Wings over its SFTP into the new
//! instance's volume on its node, while the old server keeps running; nothing is
//! written on the old side (the switch-over's stop, [`super::wings::stop_old`], is the
//! one write, and it goes to Wings' API, not to the files).
//!
//! One [`copy`] is one pass:
//! 1. the old tree is listed (links never followed: each is reported and skipped, the
//!    agent has no way to create one), the volume's manifest read, and the ledger
//!    (`pterodactyl_files`, [`ledger`]) of what earlier passes sent;
//! 2. directories are made (empty ones too) and given their modes;
//! 3. each file is skipped when its source is what the ledger says was sent (same size
//!    and mtime; a file modified within seconds of the walk is never skipped on that
//!    alone, as a same-size rewrite within its second would not show) and the volume
//!    has it at that size; checked (read and hashed, not
//!    sent) when the volume has it at the same size but the ledger does not know it;
//!    else sent: small files in one streamed upload, big ones as a tus upload in
//!    [`PART`]-sized parts, each part with its SHA-256 for the agent to check, so a cut
//!    copy resumes inside a big file from what the agent kept;
//! 4. what earlier passes sent and the source no longer has is removed;
//! 5. the volume's manifest is read again with checksums: every file must have the
//!    SHA-256 computed while it was read from SFTP. A file that differs is sent again
//!    once ([`FileReport::checksum_mismatches_fixed`]); still different fails the copy.
//!
//! A pass cut in the middle (the old node went away, the new node's tunnel dropped)
//! fails with a [`CopyError::resumable`] error; the next pass sends only the rest. The
//! switch-over is: copy while running, stop the old server, copy again (only what
//! changed is sent), start the new one.

mod ledger;
mod send;
mod sftp;
mod target;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use shardlyn_net::outbound::Outbound;
use shardlyn_proto::transfer::EntryKind;

use crate::instances::Instance;
use crate::state::AppState;
use ledger::Row;
use send::{Outcome, Pass};
use sftp::{Entry, Kind};

pub use sftp::key_id;

/// Files larger than this go as tus uploads in parts of this size.
pub const PART: usize = 4 * 1024 * 1024;

/// Files copied at once (a big file holds two parts in memory: the one sent, the next
/// one read).
const CONCURRENCY: usize = 8;

/// Modes the agent gives what it creates (no `chmod` needed for these).
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// The old Wings' SFTP login for one server: `username` is the root admin's panel user
/// name and the server's identifier (`admin.1a2b3c4d`); Wings asks its panel about the
/// password, so the root admin's opens every server.
#[derive(Clone)]
pub struct WingsSftp {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    /// The host key remembered for this import (`ssh-ed25519 AAAA...`); `None` on first
    /// use: any key is accepted and reported ([`FileReport::host_key`]).
    pub known_host: Option<String>,
}

impl std::fmt::Debug for WingsSftp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WingsSftp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("known_host", &self.known_host)
            .finish()
    }
}

/// Where a pass stands; sent after every file (and every part of a big one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// A link of the old tree, not copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedLink {
    pub path: String,
    pub target: String,
    /// It points outside the server's directory (absolute, or climbing out).
    pub escapes: bool,
}

/// A path the new node refused (the egg's file denylist, a name it cannot hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedPath {
    pub path: String,
    pub reason: String,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// Files sent to the new node in this pass.
    pub files: u64,
    /// Bytes sent to the new node in this pass (parts sent again included).
    pub bytes: u64,
    /// Files the new node already had, unchanged at the source.
    pub skipped_same: u64,
    /// Files (or parts) whose checksum on the new node differed and were sent again.
    pub checksum_mismatches_fixed: u64,
    pub elapsed_ms: u64,
    /// Every file and directory of the old server.
    pub files_total: u64,
    pub bytes_total: u64,
    pub dirs: u64,
    /// Paths removed from the new server because the source no longer has them.
    pub removed: u64,
    /// The old node's host key: remember it for the rest of the import.
    pub host_key: String,
    pub links_skipped: Vec<SkippedLink>,
    pub refused: Vec<RefusedPath>,
    /// Files that changed size or vanished while being read (a running server): the
    /// next pass sends them again.
    pub changed_while_read: Vec<String>,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("cannot reach the old node's SFTP: {0}")]
    Unreachable(String),
    #[error(
        "the old node's SFTP refused the login {0}: check the root admin's username and \
         password (Wings checks them against the old panel)"
    )]
    LoginRefused(String),
    #[error(
        "the old node's SSH host key changed since the import started (expected {expected}, \
         got {seen}); refusing to send the password"
    )]
    HostKeyChanged { expected: String, seen: String },
    #[error("the old node went away mid-copy ({0}); running the import again resumes it")]
    SourceLost(String),
    #[error("the new node is unavailable ({0}); running the import again resumes the copy")]
    NodeUnavailable(String),
    #[error("{0}")]
    Refused(String),
    #[error("{} files still differ from the source after being sent again (first: {})", .0.len(), .0.first().map_or("", String::as_str))]
    ChecksumMismatch(Vec<String>),
    #[error(
        "the switch-over needs the old node's daemon token, which only a database-mode \
         import reads; import in database mode to switch over"
    )]
    NoDaemonToken,
    #[error("the old node's Wings API: {0}")]
    Wings(String),
    #[error("the old server did not stop within {0} s")]
    StopTimeout(u64),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl CopyError {
    /// Whether running the pass again may succeed (and resumes where this one stopped).
    #[must_use]
    pub fn resumable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_)
                | Self::SourceLost(_)
                | Self::NodeUnavailable(_)
                | Self::StopTimeout(_)
                | Self::Database(_)
        )
    }

    /// A stable code for the import's report.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "SFTP_UNREACHABLE",
            Self::LoginRefused(_) => "SFTP_LOGIN_REFUSED",
            Self::HostKeyChanged { .. } => "SFTP_HOST_KEY_CHANGED",
            Self::SourceLost(_) => "SOURCE_LOST",
            Self::NodeUnavailable(_) => "NODE_UNAVAILABLE",
            Self::Refused(_) => "TARGET_REFUSED",
            Self::ChecksumMismatch(_) => "CHECKSUM_MISMATCH",
            Self::NoDaemonToken => "SWITCH_OVER_NEEDS_DATABASE_MODE",
            Self::Wings(_) => "WINGS_API",
            Self::StopTimeout(_) => "OLD_SERVER_DID_NOT_STOP",
            Self::Database(_) => "DATABASE",
        }
    }
}

/// Copies the files of the old server `from` logs into, into `instance`'s volume (the
/// instance exists, stopped, on a connected node). `outbound` is the import's guard
/// (the hosts the admin entered allowed). `progress` is called as files complete.
///
/// # Errors
/// See [`CopyError`]; [`CopyError::resumable`] ones leave what was copied in place.
pub async fn copy(
    state: &AppState,
    outbound: &Outbound,
    from: &WingsSftp,
    instance: &Instance,
    progress: &(dyn Fn(FileProgress) + Send + Sync),
) -> Result<FileReport, CopyError> {
    let began = Instant::now();
    let walked_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let target = target::Target::open(state, instance).await?;
    let session = sftp::connect(outbound, from).await?;
    let tree = sftp::walk(&session.sftp).await?;
    let have = target.manifest(false).await?;
    let pool = &state.db.pool;
    let mut known = ledger::load(pool, &instance.id).await?;
    let mut report = FileReport {
        host_key: session.host_key.clone(),
        links_skipped: tree.links.clone(),
        ..FileReport::default()
    };
    let (dirs, files): (Vec<&Entry>, Vec<&Entry>) =
        tree.entries.iter().partition(|e| e.kind == Kind::Dir);
    report.dirs = dirs.len() as u64;
    report.files_total = files.len() as u64;
    report.bytes_total = files.iter().map(|f| f.size).sum();

    let pass = Pass {
        state,
        sftp: &session.sftp,
        target: &target,
        instance_id: &instance.id,
        racy_from: walked_at - send::RACY_SECS,
        mismatches: AtomicU64::new(0),
        sent_bytes: AtomicU64::new(0),
        pending: std::sync::Mutex::new(Vec::new()),
    };
    make_dirs(&pass, &dirs, &have, &mut known, &mut report).await?;

    let done_files = AtomicU64::new(0);
    let done_bytes = AtomicU64::new(0);
    let (files_total, bytes_total) = (report.files_total, report.bytes_total);
    let tell = || {
        progress(FileProgress {
            files_done: done_files.load(Ordering::Relaxed),
            files_total,
            bytes_done: done_bytes.load(Ordering::Relaxed),
            bytes_total,
        });
    };
    // What each file's SHA-256 on the new node must be, once the pass is done.
    let mut expected: BTreeMap<String, Expect<'_>> = BTreeMap::new();
    let mut work = Vec::new();
    for file in &files {
        let theirs = have
            .get(&file.path)
            .filter(|t| t.kind == EntryKind::File && t.size == file.size);
        let row = known.get(&file.path).filter(|r| !r.is_dir);
        match (theirs, row) {
            (Some(_), Some(row))
                if u64::try_from(row.size).ok() == Some(file.size) && row.mtime == file.mtime =>
            {
                report.skipped_same += 1;
                done_files.fetch_add(1, Ordering::Relaxed);
                done_bytes.fetch_add(file.size, Ordering::Relaxed);
                if i64::from(file.mode) != row.mode {
                    pass.chmod_file(file, &mut report).await?;
                    pass.remember(file, &row.sha256).await?;
                }
                expected.insert(file.path.clone(), Expect::new(&row.sha256, file, false));
            }
            (Some(_), None) => work.push((*file, true)),
            _ => work.push((*file, false)),
        }
    }
    tell();

    // At most CONCURRENCY files at once. A plain set of futures of one named async fn
    // (not a stream of closures) keeps the copy's future `Send`.
    let mut queue = work.into_iter();
    let mut running = FuturesUnordered::new();
    for (file, check_only) in queue.by_ref().take(CONCURRENCY) {
        running.push(one(&pass, file, check_only, &done_files, &done_bytes));
    }
    while let Some((file, check_only, outcome)) = running.next().await {
        if let Some((next, check)) = queue.next() {
            running.push(one(&pass, next, check, &done_files, &done_bytes));
        }
        tell();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // What finished before the cut is remembered: the next pass skips it.
                drop(running);
                pass.flush().await?;
                return Err(e);
            }
        };
        match outcome {
            Outcome::Sent(sha) => {
                report.files += 1;
                expected.insert(file.path.clone(), Expect::new(&sha, file, false));
            }
            Outcome::Checked(sha) => {
                expected.insert(file.path.clone(), Expect::new(&sha, file, check_only));
            }
            Outcome::Refused(reason) => report.refused.push(RefusedPath {
                path: file.path.clone(),
                reason,
            }),
            Outcome::Changed => report.changed_while_read.push(file.path.clone()),
        }
    }
    drop(running);
    pass.flush().await?;

    report.removed = prune(&pass, &tree.entries, &known).await?;
    verify(&pass, &mut expected, &mut report, &done_bytes).await?;
    pass.flush().await?;
    report.bytes = pass.sent_bytes.load(Ordering::Relaxed);
    report.checksum_mismatches_fixed += pass.mismatches.load(Ordering::Relaxed);
    report.changed_while_read.sort();
    report.refused.sort_by(|a, b| a.path.cmp(&b.path));
    report.elapsed_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// One file of the pass, counted done when it ends.
async fn one<'a>(
    pass: &Pass<'_>,
    file: &'a Entry,
    check_only: bool,
    done_files: &AtomicU64,
    done_bytes: &AtomicU64,
) -> (&'a Entry, bool, Result<Outcome, CopyError>) {
    let outcome = pass.run(file, check_only, false, done_bytes).await;
    done_files.fetch_add(1, Ordering::Relaxed);
    (file, check_only, outcome)
}

/// What a file's SHA-256 on the new node must be.
struct Expect<'a> {
    sha256: String,
    file: &'a Entry,
    /// Found there already and only checked: a difference is a first send, not a fix.
    checked: bool,
}

impl<'a> Expect<'a> {
    fn new(sha256: &str, file: &'a Entry, checked: bool) -> Self {
        Self {
            sha256: sha256.to_owned(),
            file,
            checked,
        }
    }
}

/// Makes every directory of the old tree the volume lacks, and gives each its mode.
async fn make_dirs(
    pass: &Pass<'_>,
    dirs: &[&Entry],
    have: &shardlyn_proto::transfer::Manifest,
    known: &mut BTreeMap<String, Row>,
    report: &mut FileReport,
) -> Result<(), CopyError> {
    for dir in dirs {
        let there = have
            .get(&dir.path)
            .is_some_and(|t| t.kind == EntryKind::Dir);
        let row = known.get(&dir.path).filter(|r| r.is_dir);
        let user = sftp::remote(&dir.path);
        if !there && let Err(r) = pass.target.mkdir(&user).await {
            if r.about_the_path() {
                report.refused.push(RefusedPath {
                    path: dir.path.clone(),
                    reason: r.message,
                });
                continue;
            }
            return Err(r.into_error());
        }
        let mode_known = row.is_some_and(|r| r.mode == i64::from(dir.mode));
        if !mode_known {
            if dir.mode != DIR_MODE || row.is_some() {
                pass.target
                    .chmod(&user, dir.mode)
                    .await
                    .map_err(target::Refusal::into_error)?;
            }
            let row = Row {
                path: dir.path.clone(),
                is_dir: true,
                size: 0,
                mtime: 0,
                mode: i64::from(dir.mode),
                sha256: String::new(),
            };
            ledger::put(&pass.state.db.pool, pass.instance_id, &row, pass.now()).await?;
            known.insert(dir.path.clone(), row);
        }
    }
    Ok(())
}

/// Removes from the volume what earlier passes sent and the source no longer has.
async fn prune(
    pass: &Pass<'_>,
    entries: &[Entry],
    known: &BTreeMap<String, Row>,
) -> Result<u64, CopyError> {
    let present: std::collections::HashSet<&str> =
        entries.iter().map(|e| e.path.as_str()).collect();
    let gone: Vec<String> = known
        .keys()
        .filter(|p| !present.contains(p.as_str()))
        .cloned()
        .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    // A directory's removal takes its contents: only the topmost gone paths are sent.
    let mut top: Vec<String> = Vec::new();
    for path in &gone {
        if !top.iter().any(|t| path.starts_with(&format!("{t}/"))) {
            top.push(path.clone());
        }
    }
    let have = pass.target.manifest(false).await?;
    let users: Vec<String> = top
        .iter()
        .filter(|p| have.contains_key(*p))
        .map(|p| sftp::remote(p))
        .collect();
    if !users.is_empty() {
        pass.target
            .delete(&users)
            .await
            .map_err(target::Refusal::into_error)?;
    }
    ledger::forget(&pass.state.db.pool, pass.instance_id, &gone).await?;
    Ok(gone.len() as u64)
}

/// Compares the volume's checksums with what was read from the source; sends what
/// differs once more, then compares again.
async fn verify(
    pass: &Pass<'_>,
    expected: &mut BTreeMap<String, Expect<'_>>,
    report: &mut FileReport,
    done_bytes: &AtomicU64,
) -> Result<(), CopyError> {
    for round in 0..2 {
        let theirs = pass.target.manifest(true).await?;
        let differ: Vec<String> = expected
            .iter()
            .filter(|(path, want)| {
                theirs
                    .get(*path)
                    .and_then(|t| t.sha256.as_deref())
                    .is_none_or(|t| t != want.sha256)
            })
            .map(|(p, _)| p.clone())
            .collect();
        if differ.is_empty() {
            return Ok(());
        }
        if round == 1 {
            return Err(CopyError::ChecksumMismatch(differ));
        }
        tracing::info!(
            files = differ.len(),
            "imported files differ from the source: sending them again"
        );
        let mut resent: HashMap<String, Outcome> = HashMap::new();
        for path in &differ {
            let Some(want) = expected.get(path) else {
                continue;
            };
            let outcome = pass.run(want.file, false, true, done_bytes).await?;
            resent.insert(path.clone(), outcome);
        }
        for (path, outcome) in resent {
            match outcome {
                Outcome::Sent(sha) | Outcome::Checked(sha) => {
                    if let Some(want) = expected.get_mut(&path) {
                        if want.checked {
                            report.files += 1;
                        } else {
                            report.checksum_mismatches_fixed += 1;
                        }
                        want.sha256 = sha;
                        want.checked = false;
                    }
                }
                Outcome::Refused(reason) => {
                    expected.remove(&path);
                    report.refused.push(RefusedPath { path, reason });
                }
                Outcome::Changed => {
                    expected.remove(&path);
                    report.changed_while_read.push(path);
                }
            }
        }
    }
    Ok(())
}

/// The copy's future can be spawned (the import runs it on a task).
#[cfg(test)]
#[expect(dead_code, reason = "a compile-time check")]
fn copy_is_send(
    state: &AppState,
    o: &Outbound,
    f: &WingsSftp,
    i: &Instance,
    p: &(dyn Fn(FileProgress) + Send + Sync),
) {
    fn is_send<T: Send>(_: &T) {}
    let fut = copy(state, o, f, i, p);
    is_send(&fut);
}
