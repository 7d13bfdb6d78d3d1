//! One file from the old SFTP to the new volume, hashed (SHA-256) while it is read: a
//! small file as one streamed upload, a big one as a tus upload in [`PART`]-sized parts
//! (the next part is read while the previous one is sent; each carries its checksum,
//! which the agent checks), resumed from the offset the agent kept after a cut.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt as _;

use super::ledger::{self, Row};
use super::sftp::{Entry, remote};
use super::target::{Appended, Target};
use super::{CopyError, FILE_MODE, FileReport, PART, RefusedPath};
use crate::state::AppState;

/// A file modified this close to the walk (by the panel's clock; nodes keep time) is
/// "racy": rewritten within the same second at the same size, its mtime would not tell.
pub const RACY_SECS: i64 = 5;

/// How long a started tus upload may wait for the next pass on the agent.
const UPLOAD_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

/// Bytes read from SFTP at a time for a small file's upload.
const CHUNK: usize = 256 * 1024;

/// How one file went.
pub enum Outcome {
    /// Sent; the SHA-256 of its bytes.
    Sent(String),
    /// Read and hashed only (the volume seemed to have it already).
    Checked(String),
    /// The new node refused the path.
    Refused(String),
    /// It changed size or vanished while being read.
    Changed,
}

/// What the files of one pass share.
pub struct Pass<'a> {
    pub state: &'a AppState,
    pub sftp: &'a SftpSession,
    pub target: &'a Target,
    pub instance_id: &'a str,
    /// Files modified at or after this (s, the walk's start less [`RACY_SECS`]) may
    /// change again within the same second: their rows never let a later pass skip
    /// them on size and mtime alone.
    pub racy_from: i64,
    /// Parts the agent found corrupt and that were sent again.
    pub mismatches: AtomicU64,
    pub sent_bytes: AtomicU64,
    /// Rows not yet written: they go in batches of [`BATCH`] (and at the pass's end,
    /// cut or not), one transaction each rather than one per file.
    pub pending: Mutex<Vec<Row>>,
}

/// Ledger rows written at once.
const BATCH: usize = 256;

fn lost(path: &str, e: &dyn std::fmt::Display) -> CopyError {
    CopyError::SourceLost(format!("reading /{path}: {e}"))
}

fn poisoned() -> CopyError {
    CopyError::NodeUnavailable("a lock of the copy was poisoned".into())
}

fn vanished(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

impl Pass<'_> {
    pub fn now(&self) -> i64 {
        self.state.clock.now_ms()
    }

    /// Records that `file` (as listed) is on the new node with `sha256`.
    pub async fn remember(&self, file: &Entry, sha256: &str) -> Result<(), CopyError> {
        let row = Row {
            path: file.path.clone(),
            is_dir: false,
            size: i64::try_from(file.size).unwrap_or(i64::MAX),
            mtime: if file.mtime >= self.racy_from {
                -1
            } else {
                file.mtime
            },
            mode: i64::from(file.mode),
            sha256: sha256.to_owned(),
        };
        let full = {
            let mut pending = self.pending.lock().map_err(|_| poisoned())?;
            pending.push(row);
            if pending.len() >= BATCH {
                std::mem::take(&mut *pending)
            } else {
                Vec::new()
            }
        };
        if !full.is_empty() {
            ledger::put_many(&self.state.db.pool, self.instance_id, &full, self.now()).await?;
        }
        Ok(())
    }

    /// Writes the rows not yet written.
    pub async fn flush(&self) -> Result<(), CopyError> {
        let rows = std::mem::take(&mut *self.pending.lock().map_err(|_| poisoned())?);
        if !rows.is_empty() {
            ledger::put_many(&self.state.db.pool, self.instance_id, &rows, self.now()).await?;
        }
        Ok(())
    }

    /// Gives a file on the new node its source's mode.
    pub async fn chmod_file(&self, file: &Entry, report: &mut FileReport) -> Result<(), CopyError> {
        match self.target.chmod(&remote(&file.path), file.mode).await {
            Ok(()) => Ok(()),
            Err(r) if r.about_the_path() => {
                report.refused.push(RefusedPath {
                    path: file.path.clone(),
                    reason: r.message,
                });
                Ok(())
            }
            Err(r) => Err(r.into_error()),
        }
    }

    /// Sends (or, `check_only`, hashes) `file`; `force` starts a big file's upload over.
    /// Adds the bytes read to `done`.
    pub async fn run(
        &self,
        file: &Entry,
        check_only: bool,
        force: bool,
        done: &AtomicU64,
    ) -> Result<Outcome, CopyError> {
        let outcome = if check_only {
            self.check(file, done).await?
        } else if file.size > PART as u64 {
            self.send_big(file, force, done).await?
        } else {
            self.send_small(file, done).await?
        };
        let (Outcome::Sent(sha) | Outcome::Checked(sha)) = &outcome else {
            return Ok(outcome);
        };
        if file.mode != FILE_MODE
            && let Err(r) = self.target.chmod(&remote(&file.path), file.mode).await
        {
            if r.about_the_path() {
                return Ok(Outcome::Refused(r.message));
            }
            return Err(r.into_error());
        }
        self.remember(file, sha).await?;
        Ok(outcome)
    }

    /// The file opened for reading, at most its listed size: reading on to find the end
    /// would send SFTP reads past it, each answered "end of file" (russh-sftp queues
    /// [`super::sftp::READS_IN_FLIGHT`] of them), which cost the old node four times the work
    /// of the file itself for a small config file. Bytes past the listed size belong
    /// to a later pass anyway: the file changed since the walk.
    async fn open(
        &self,
        file: &Entry,
    ) -> Result<Option<tokio::io::Take<russh_sftp::client::fs::File>>, CopyError> {
        match self.sftp.open(remote(&file.path)).await {
            Ok(f) => Ok(Some(f.take(file.size))),
            Err(e) if vanished(&e) => Ok(None),
            Err(e) => Err(lost(&file.path, &e)),
        }
    }

    /// Reads the whole file, hashing it.
    async fn check(&self, file: &Entry, done: &AtomicU64) -> Result<Outcome, CopyError> {
        let Some(mut f) = self.open(file).await? else {
            return Ok(Outcome::Changed);
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f.read(&mut buf).await.map_err(|e| lost(&file.path, &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            done.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(Outcome::Checked(hex::encode(hasher.finalize())))
    }

    /// One streamed upload, hashed on the way; a read error cuts the body, so the
    /// agent keeps nothing of it.
    async fn send_small(&self, file: &Entry, done: &AtomicU64) -> Result<Outcome, CopyError> {
        let Some(f) = self.open(file).await? else {
            return Ok(Outcome::Changed);
        };
        let seen = Arc::new(Mutex::new(Read::default()));
        let body = {
            let seen = seen.clone();
            futures_util::stream::unfold(Some(f), move |f| {
                let seen = seen.clone();
                async move {
                    let mut f = f?;
                    let mut buf = BytesMut::with_capacity(CHUNK);
                    match f.read_buf(&mut buf).await {
                        Ok(0) => None,
                        Ok(_) => {
                            if let Ok(mut s) = seen.lock() {
                                s.hasher.update(&buf);
                                s.bytes += buf.len() as u64;
                            }
                            Some((Ok::<Bytes, std::io::Error>(buf.freeze()), Some(f)))
                        }
                        Err(e) => {
                            if let Ok(mut s) = seen.lock() {
                                s.failed = Some(e.to_string());
                            }
                            Some((Err(e), None))
                        }
                    }
                }
            })
        };
        let sent = self
            .target
            .upload(&remote(&file.path), Body::from_stream(body))
            .await;
        let read = std::mem::take(&mut *seen.lock().map_err(|_| lost(&file.path, &"poisoned"))?);
        if let Some(e) = read.failed {
            return Err(lost(&file.path, &e));
        }
        match sent {
            Ok(written) if written == read.bytes => {}
            Ok(written) => {
                return Err(CopyError::NodeUnavailable(format!(
                    "/{} arrived with {written} of {} bytes",
                    file.path, read.bytes
                )));
            }
            Err(r) if r.about_the_path() => return Ok(Outcome::Refused(r.message)),
            Err(r) => return Err(r.into_error()),
        }
        done.fetch_add(read.bytes, Ordering::Relaxed);
        self.sent_bytes.fetch_add(read.bytes, Ordering::Relaxed);
        Ok(Outcome::Sent(hex::encode(read.hasher.finalize())))
    }

    /// The tus upload of a big file: resumed from the agent's offset (the bytes before
    /// it are read again to hash them, not sent), then sent part by part.
    async fn send_big(
        &self,
        file: &Entry,
        force: bool,
        done: &AtomicU64,
    ) -> Result<Outcome, CopyError> {
        let upload = upload_id(self.instance_id, file);
        if force {
            self.target
                .tus_drop(&upload)
                .await
                .map_err(|r| r.into_error())?;
        }
        let path = remote(&file.path);
        let expires = self.now().saturating_add(UPLOAD_KEEP_MS);
        let status = match self
            .target
            .tus_open(&upload, &path, file.size, expires)
            .await
        {
            Ok(s) => s,
            Err(r) if r.about_the_path() => return Ok(Outcome::Refused(r.message)),
            Err(r) => return Err(r.into_error()),
        };
        if status.completed {
            // Placed by a pass cut before it recorded it: what is there is checked.
            return self.check(file, done).await;
        }
        let Some(mut f) = self.open(file).await? else {
            self.target
                .tus_drop(&upload)
                .await
                .map_err(|r| r.into_error())?;
            return Ok(Outcome::Changed);
        };
        let mut hasher = Sha256::new();
        let mut offset = status.offset;
        let mut prefix = offset;
        let mut buf = vec![0u8; CHUNK];
        while prefix > 0 {
            let want = usize::try_from(prefix).unwrap_or(CHUNK).min(CHUNK);
            let n = f
                .read(&mut buf[..want])
                .await
                .map_err(|e| lost(&file.path, &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            prefix -= n as u64;
            done.fetch_add(n as u64, Ordering::Relaxed);
        }
        if prefix > 0 {
            self.target
                .tus_drop(&upload)
                .await
                .map_err(|r| r.into_error())?;
            return Ok(Outcome::Changed);
        }
        let mut next = read_part(&mut f, file.size - offset, &mut hasher, &file.path).await?;
        loop {
            let Some((part, sha)) = next else {
                self.target
                    .tus_drop(&upload)
                    .await
                    .map_err(|r| r.into_error())?;
                return Ok(Outcome::Changed);
            };
            let len = part.len() as u64;
            let last = offset + len == file.size;
            let (sent, following) = if last {
                (self.append(&upload, offset, part, &sha).await, None)
            } else {
                let left = file.size - offset - len;
                let (sent, read) = tokio::join!(
                    self.append(&upload, offset, part, &sha),
                    read_part(&mut f, left, &mut hasher, &file.path),
                );
                (sent, Some(read?))
            };
            offset = sent?;
            done.fetch_add(len, Ordering::Relaxed);
            if last {
                break;
            }
            next = following.flatten();
        }
        Ok(Outcome::Sent(hex::encode(hasher.finalize())))
    }

    /// Appends one part (again once when the agent's checksum differs): the new offset.
    async fn append(
        &self,
        upload: &str,
        offset: u64,
        part: Bytes,
        sha: &[u8],
    ) -> Result<u64, CopyError> {
        for attempt in 0..2 {
            let len = part.len() as u64;
            match self
                .target
                .tus_append(upload, offset, part.clone(), sha)
                .await
            {
                Ok(Appended::At(status)) => {
                    self.sent_bytes.fetch_add(len, Ordering::Relaxed);
                    return Ok(status.offset);
                }
                Ok(Appended::Mismatch) => {
                    self.sent_bytes.fetch_add(len, Ordering::Relaxed);
                    if attempt == 0 {
                        self.mismatches.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(r) => return Err(r.into_error()),
            }
        }
        Err(CopyError::NodeUnavailable(format!(
            "a part at offset {offset} arrived corrupt twice"
        )))
    }
}

/// What a small file's upload read.
#[derive(Default)]
struct Read {
    hasher: Sha256,
    bytes: u64,
    failed: Option<String>,
}

/// The next part (at most [`PART`] bytes, at most `left`), added to `whole`, with its
/// own SHA-256; `None` when the file ended before `left` bytes.
async fn read_part(
    f: &mut tokio::io::Take<russh_sftp::client::fs::File>,
    left: u64,
    whole: &mut Sha256,
    path: &str,
) -> Result<Option<(Bytes, Vec<u8>)>, CopyError> {
    let want = usize::try_from(left).unwrap_or(PART).min(PART);
    let mut buf = BytesMut::with_capacity(want);
    while buf.len() < want {
        let mut limited = (&mut *f).take((want - buf.len()) as u64);
        let n = limited
            .read_buf(&mut buf)
            .await
            .map_err(|e| lost(path, &e))?;
        if n == 0 {
            return Ok(None);
        }
    }
    whole.update(&buf);
    let sha = Sha256::digest(&buf).to_vec();
    Ok(Some((buf.freeze(), sha)))
}

/// The tus upload of `file` as listed: the same source version resumes the same upload.
fn upload_id(instance_id: &str, file: &Entry) -> String {
    let mut h = Sha256::new();
    for part in [
        instance_id,
        file.path.as_str(),
        &file.size.to_string(),
        &file.mtime.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("ptdl-{}", &hex::encode(h.finalize())[..40])
}
