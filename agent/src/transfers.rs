//! Moving a server between nodes (`shardlyn_proto::transfer`): on the source, the
//! manifest of a server's directory and archives of some or all of it; on the target, a
//! staging directory `DATA_DIR/transfers/{id}` filled from those archives, pruned to the
//! source's entries, and adopted as the server's directory when the panel switches.
//!
//! Nothing here touches a server that lives on this node except reading its files: the
//! staging directory only becomes a volume in [`Transfers::adopt`], and only for a server
//! this node does not run. The archive format is the backups' (tar + zstd), and
//! extraction goes through the same sandboxed code (`backups::restore`).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use shardlyn_proto::backup::{RestoreBackup, Target};
use shardlyn_proto::instance::{Event, InstanceSpec, InstanceStatus, events};
use shardlyn_proto::transfer::{
    ArchiveSelect, EntryKind, Keep, Manifest, ManifestEntry, Notice, Pruned, Received, TransferPart,
};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::backups::restore;
use crate::backups::s3::ChannelWriter;
use crate::instances::{InstanceError, Manager, lock, valid_id};

/// Archive bytes handed to the response at a time.
const CHUNK: usize = 256 * 1024;

/// Transfers of this node; one per agent process, cheap to clone.
#[derive(Clone)]
pub struct Transfers(Arc<Inner>);

struct Inner {
    /// `DATA_DIR/transfers`.
    dir: PathBuf,
    /// `DATA_DIR/backups` (local backups, one directory per server).
    backups: PathBuf,
    manager: Manager,
    /// Staging directories in use: the holder's serial and its cancel.
    busy: Mutex<HashMap<String, (u64, CancellationToken)>>,
    serial: AtomicU64,
    released: Notify,
}

fn internal(e: impl std::fmt::Display) -> InstanceError {
    InstanceError::Internal(e.to_string())
}

/// Holds a staging directory (one archive, prune or adoption at a time). Dropping it
/// releases the directory.
struct Claim {
    inner: Arc<Inner>,
    id: String,
    serial: u64,
    /// Cancelled when the panel takes the directory over (a discard, or the next
    /// archive of a resumed copy): a receive then stops at its next read.
    cancel: CancellationToken,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut busy = lock(&self.inner.busy);
        if busy.get(&self.id).is_some_and(|(s, _)| *s == self.serial) {
            busy.remove(&self.id);
        }
        drop(busy);
        self.inner.released.notify_waiters();
    }
}

/// How long the panel's next call waits for the one holding a staging directory to let
/// go once told to.
const TAKEOVER_WAIT: Duration = Duration::from_secs(10);

/// A receive whose archive sends nothing for this long gives up (the source or the
/// panel went away without the body ending).
const RECEIVE_IDLE: Duration = Duration::from_secs(30);

impl Transfers {
    #[must_use]
    pub fn new(manager: &Manager) -> Self {
        let data_dir = manager
            .0
            .paths
            .volumes
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self(Arc::new(Inner {
            dir: data_dir.join("transfers"),
            backups: data_dir.join("backups"),
            manager: manager.clone(),
            busy: Mutex::default(),
            serial: AtomicU64::new(0),
            released: Notify::new(),
        }))
    }

    fn staging(&self, id: &str) -> Result<PathBuf, InstanceError> {
        if !valid_id(id) {
            return Err(InstanceError::NotFound);
        }
        Ok(self.0.dir.join(id))
    }

    /// Where `part` of server `id` is staged.
    fn staged(&self, id: &str, part: TransferPart) -> Result<PathBuf, InstanceError> {
        Ok(self.staging(id)?.join(match part {
            TransferPart::Files => "files",
            TransferPart::Backups => "backups",
        }))
    }

    /// Takes the staging directory of `id`. The panel runs one step of a move at a time,
    /// so a holder still there belongs to a step it gave up on (a cut copy whose
    /// receive has not noticed yet): it is told to stop, and awaited.
    async fn claim(&self, id: &str) -> Result<Claim, InstanceError> {
        let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
        loop {
            let released = self.0.released.notified();
            {
                let mut busy = lock(&self.0.busy);
                match busy.get(id) {
                    Some((_, holder)) => holder.cancel(),
                    None => {
                        let serial = self.0.serial.fetch_add(1, Ordering::Relaxed);
                        let cancel = CancellationToken::new();
                        busy.insert(id.to_owned(), (serial, cancel.clone()));
                        return Ok(Claim {
                            inner: self.0.clone(),
                            id: id.to_owned(),
                            serial,
                            cancel,
                        });
                    }
                }
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Err(InstanceError::Conflict(
                    "the staging directory of that server is still in use".into(),
                ));
            }
        }
    }

    /// `part` of a server this node runs.
    fn source(&self, id: &str, part: TransferPart) -> Result<PathBuf, InstanceError> {
        self.0.manager.get(id)?;
        Ok(match part {
            TransferPart::Files => self.0.manager.0.paths.volume(id),
            TransferPart::Backups => self.0.backups.join(id),
        })
    }

    /// The manifest of `part` of a server on this (the source) node.
    ///
    /// # Errors
    /// `NotFound` for a server this node does not run.
    pub async fn source_manifest(
        &self,
        id: &str,
        part: TransferPart,
        hash: bool,
    ) -> Result<Manifest, InstanceError> {
        manifest_of(self.source(id, part)?, hash).await
    }

    /// The manifest of a staging directory (empty when there is none yet).
    ///
    /// # Errors
    /// `NotFound` for a bad id.
    pub async fn staged_manifest(
        &self,
        id: &str,
        part: TransferPart,
        hash: bool,
    ) -> Result<Manifest, InstanceError> {
        manifest_of(self.staged(id, part)?, hash).await
    }

    /// Streams an archive of the entries of a server's directory that `select` asks for.
    ///
    /// # Errors
    /// `NotFound` for a server this node does not run.
    pub fn archive(
        &self,
        id: &str,
        part: TransferPart,
        select: ArchiveSelect,
    ) -> Result<mpsc::Receiver<Bytes>, InstanceError> {
        let root = self.source(id, part)?;
        let (tx, rx) = mpsc::channel(4);
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let out = ChannelWriter::new(tx, CHUNK);
            if let Err(e) = write_selected(&root, &select, out) {
                // The body ends early: the target's extraction fails and the panel
                // retries or gives up; nothing on this node changed.
                tracing::warn!(instance = %id, error = %e, "transfer archive stopped");
            }
        });
        Ok(rx)
    }

    /// Extracts an archive (a request body) into the staging directory of `id`.
    ///
    /// # Errors
    /// `Conflict` while another archive is received for it, or when this node runs
    /// that server; `BadRequest` for an unreadable archive.
    pub async fn receive(
        &self,
        id: &str,
        part: TransferPart,
        body: axum::body::Body,
    ) -> Result<Received, InstanceError> {
        let root = self.staged(id, part)?;
        if self.0.manager.get(id).is_ok() {
            return Err(InstanceError::Conflict(
                "this node already runs that server".into(),
            ));
        }
        let claim = self.claim(id).await?;
        std::fs::create_dir_all(&root)?;
        let budget = self.budget_left().await?;
        let stream = guarded(body, claim.cancel.clone());
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        let result = tokio::task::spawn_blocking(move || {
            let _claim = claim;
            let mut counted = Counted {
                inner: reader,
                bytes: 0,
            };
            let sandbox = crate::files::Sandbox::open(&root, &[], 0)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let skipped = restore::extract_within(&mut counted, sandbox.root(), budget)?;
            Ok::<_, io::Error>(Received {
                bytes: counted.bytes,
                skipped,
            })
        })
        .await
        .map_err(internal)?;
        // A cut archive leaves what it wrote: every file it finished is whole (its mtime
        // is set last), so a resumed copy sends only the rest. The panel discards the
        // staging when it gives the move up.
        result.map_err(|e| {
            if e.kind() == io::ErrorKind::StorageFull {
                InstanceError::Conflict(e.to_string())
            } else {
                InstanceError::BadRequest(format!("the archive: {e}"))
            }
        })
    }

    /// Extracts a backup of `id` (S3: the source node is offline) into its staging
    /// directory, after checking the archive's SHA-256 against the one recorded.
    ///
    /// # Errors
    /// `BadRequest` for a local backup, `Conflict` on a checksum mismatch, an
    /// unreachable bucket, a full budget, or when this node runs that server.
    pub async fn restore(&self, id: &str, req: RestoreBackup) -> Result<Received, InstanceError> {
        let root = self.staged(id, TransferPart::Files)?;
        if self.0.manager.get(id).is_ok() {
            return Err(InstanceError::Conflict(
                "this node already runs that server".into(),
            ));
        }
        if !matches!(req.target, Target::S3(_)) {
            return Err(InstanceError::BadRequest(
                "only a backup in S3 can rebuild a server on another node".into(),
            ));
        }
        let claim = self.claim(id).await?;
        let outbound = self.0.manager.0.settings.outbound.clone();
        let nowhere = Path::new("");
        let (sha, _) = crate::backups::read_with(&req.target, &outbound, nowhere, |r, _| {
            crate::backups::archive::hash_reader(r)
        })
        .await?;
        if !sha.eq_ignore_ascii_case(req.sha256.trim()) {
            return Err(InstanceError::Conflict(format!(
                "checksum mismatch: the archive's SHA-256 is {sha}, the backup recorded {}",
                req.sha256
            )));
        }
        // A clean slate: what an earlier attempt staged is not the backup.
        match tokio::fs::remove_dir_all(self.staging(id)?).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        std::fs::create_dir_all(&root)?;
        let budget = self.budget_left().await?;
        crate::backups::read_with(&req.target, &outbound, nowhere, move |r, _| {
            let _claim = claim;
            let mut counted = Counted { inner: r, bytes: 0 };
            let sandbox = crate::files::Sandbox::open(&root, &[], 0)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let skipped = restore::extract_within(&mut counted, sandbox.root(), budget)?;
            Ok(Received {
                bytes: counted.bytes,
                skipped,
            })
        })
        .await
    }

    /// Tells the console of server `id` (on this node) how its move goes.
    ///
    /// # Errors
    /// `NotFound` for a server this node does not run.
    pub fn notice(&self, id: &str, notice: &Notice) -> Result<(), InstanceError> {
        let inst = self.0.manager.get(id)?;
        if let Some(status) = &notice.status {
            inst.console
                .emit(&Event::new(events::TRANSFER_STATUS, &[status.as_str()]));
        }
        if let Some(line) = &notice.line {
            inst.console
                .emit(&Event::new(events::TRANSFER_LOGS, &[line.as_str()]));
        }
        Ok(())
    }

    /// Bytes the node's budget for server files (`volumes_budget_mb`) has left, counting
    /// every volume and everything staged; `None` without a budget.
    async fn budget_left(&self) -> Result<Option<u64>, InstanceError> {
        let budget = self
            .0
            .manager
            .0
            .settings
            .volumes_budget_mb
            .saturating_mul(1 << 20);
        if budget == 0 {
            return Ok(None);
        }
        let roots = [self.0.manager.0.paths.volumes.clone(), self.0.dir.clone()];
        let used = tokio::task::spawn_blocking(move || {
            roots
                .iter()
                .flat_map(|root| walk(root))
                .filter_map(|(_, path)| std::fs::symlink_metadata(path).ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
                .sum::<u64>()
        })
        .await
        .map_err(internal)?;
        Ok(Some(budget.saturating_sub(used)))
    }

    /// Removes every entry of the staging directory that the source does not have.
    ///
    /// # Errors
    /// `NotFound` when nothing is staged.
    pub async fn prune(
        &self,
        id: &str,
        part: TransferPart,
        keep: Keep,
    ) -> Result<Pruned, InstanceError> {
        let root = self.staged(id, part)?;
        if !root.is_dir() {
            return Ok(Pruned::default());
        }
        let _claim = self.claim(id).await?;
        tokio::task::spawn_blocking(move || {
            let keep: HashSet<String> = keep.paths.into_iter().collect();
            let staged = manifest(&root, false)?;
            // Deepest first, so a directory's entries go before it.
            let mut gone: Vec<&String> = staged.keys().filter(|p| !keep.contains(*p)).collect();
            gone.sort_by_key(|p| std::cmp::Reverse(p.len()));
            let mut removed = 0;
            for rel in gone {
                let path = root.join(rel);
                let result = match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
                    Ok(_) => std::fs::remove_file(&path),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(Pruned { removed })
        })
        .await
        .map_err(internal)?
        .map_err(internal)
    }

    /// Makes the staged files of `spec.id` its server's directory (and the staged
    /// backups its local backups), and the server one of this node's, installed (its
    /// files came with it).
    ///
    /// # Errors
    /// `Conflict` when nothing is staged or this node already runs that server.
    pub async fn adopt(&self, spec: InstanceSpec) -> Result<InstanceStatus, InstanceError> {
        let staged = self.staged(&spec.id, TransferPart::Files)?;
        let staged_backups = self.staged(&spec.id, TransferPart::Backups)?;
        if self.0.manager.get(&spec.id).is_ok() {
            return Err(InstanceError::Conflict(
                "this node already runs that server".into(),
            ));
        }
        if !staged.is_dir() {
            return Err(InstanceError::Conflict(
                "no files of that server are staged on this node".into(),
            ));
        }
        let _claim = self.claim(&spec.id).await?;
        let volume = self.0.manager.0.paths.volume(&spec.id);
        if let Some(parent) = volume.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Left by an earlier, unfinished move to this node.
        match std::fs::remove_dir_all(&volume) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        std::fs::rename(&staged, &volume)?;
        if staged_backups.is_dir() {
            let backups = self.0.backups.join(&spec.id);
            std::fs::create_dir_all(&self.0.backups)?;
            match std::fs::remove_dir_all(&backups) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            std::fs::rename(&staged_backups, &backups)?;
        }
        let _ = std::fs::remove_dir_all(self.staging(&spec.id)?);
        self.0.manager.take_over(spec).await
    }

    /// Removes the staging directory of `id`, if any.
    ///
    /// # Errors
    /// The removal fails.
    pub async fn discard(&self, id: &str) -> Result<(), InstanceError> {
        let root = self.staging(id)?;
        let _claim = self.claim(id).await?;
        match tokio::fs::remove_dir_all(&root).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The manifest of `root` on a blocking thread (empty when it does not exist).
async fn manifest_of(root: PathBuf, hash: bool) -> Result<Manifest, InstanceError> {
    if !root.is_dir() {
        return Ok(Manifest::new());
    }
    tokio::task::spawn_blocking(move || manifest(&root, hash))
        .await
        .map_err(internal)?
        .map_err(internal)
}

/// The body of an archive as a byte stream that fails when its claim is taken over or
/// when nothing arrives for [`RECEIVE_IDLE`].
fn guarded(
    body: axum::body::Body,
    cancel: CancellationToken,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Unpin {
    use futures_util::StreamExt as _;
    let stream = body.into_data_stream();
    Box::pin(futures_util::stream::unfold(
        Some((stream, cancel)),
        |held| async move {
            let (mut stream, cancel) = held?;
            let next = tokio::select! {
                () = cancel.cancelled() => Err(io::Error::other(
                    "stopped: the panel took this server's staging directory over",
                )),
                next = tokio::time::timeout(RECEIVE_IDLE, stream.next()) => match next {
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no archive data arrived for 30 s",
                    )),
                    Ok(None) => return None,
                    Ok(Some(Ok(bytes))) => Ok(bytes),
                    Ok(Some(Err(e))) => Err(io::Error::other(e)),
                },
            };
            Some(match next {
                Ok(bytes) => (Ok(bytes), Some((stream, cancel))),
                Err(e) => (Err(e), None),
            })
        },
    ))
}

/// A reader that counts its bytes.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Every entry under `root` (links not followed), by `/`-separated relative path.
fn walk(root: &Path) -> impl Iterator<Item = (String, PathBuf)> + use<> {
    let root = root.to_path_buf();
    ignore::WalkBuilder::new(&root)
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .follow_links(false)
        .same_file_system(false)
        .build()
        .flatten()
        .filter_map(move |e| {
            let rel = e.path().strip_prefix(&root).ok()?;
            if rel.as_os_str().is_empty() {
                return None;
            }
            Some((rel.to_string_lossy().into_owned(), e.path().to_path_buf()))
        })
}

fn sha256_of(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The manifest entry of `path` (links not followed), hashing a file when asked;
/// `None` for what is never archived (sockets, FIFOs, devices) or was removed meanwhile.
fn entry_of(path: &Path, hash: bool) -> io::Result<Option<ManifestEntry>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let bare = |kind| ManifestEntry {
        kind,
        size: 0,
        mtime: 0,
        sha256: None,
        target: None,
    };
    if meta.file_type().is_symlink() {
        return Ok(Some(ManifestEntry {
            target: std::fs::read_link(path)
                .ok()
                .map(|t| t.to_string_lossy().into_owned()),
            ..bare(EntryKind::Symlink)
        }));
    }
    if meta.is_dir() {
        return Ok(Some(bare(EntryKind::Dir)));
    }
    if !meta.is_file() {
        return Ok(None);
    }
    let sha256 = if hash {
        match sha256_of(path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    use std::os::unix::fs::MetadataExt as _;
    Ok(Some(ManifestEntry {
        size: meta.len(),
        mtime: meta.mtime(),
        sha256,
        ..bare(EntryKind::File)
    }))
}

/// The manifest of `root`.
///
/// # Errors
/// Reading an entry fails (one removed meanwhile is left out).
pub fn manifest(root: &Path, hash: bool) -> io::Result<Manifest> {
    let mut out = Manifest::new();
    for (rel, path) in walk(root) {
        if let Some(entry) = entry_of(&path, hash)? {
            out.insert(rel, entry);
        }
    }
    Ok(out)
}

/// Whether the target's entry makes sending `ours` unnecessary.
fn already_there(ours: &ManifestEntry, theirs: Option<&ManifestEntry>) -> bool {
    let Some(theirs) = theirs else {
        return false;
    };
    match ours.kind {
        EntryKind::File => {
            theirs.kind == EntryKind::File && theirs.size == ours.size && theirs.mtime == ours.mtime
        }
        EntryKind::Symlink => theirs.kind == EntryKind::Symlink && theirs.target == ours.target,
        EntryKind::Dir => theirs.kind == EntryKind::Dir,
    }
}

/// Writes the archive of the entries of `root` that `select` asks for.
fn write_selected(root: &Path, select: &ArchiveSelect, out: ChannelWriter) -> io::Result<()> {
    let threads =
        std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1));
    let mut encoder = zstd::stream::write::Encoder::new(out, crate::backups::archive::LEVEL)?;
    if threads > 1 {
        encoder.multithread(threads)?;
    }
    let only: Option<HashSet<&str>> = select
        .only
        .as_ref()
        .map(|l| l.iter().map(String::as_str).collect());
    {
        let mut tar = tar::Builder::new(&mut encoder);
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Complete);
        for (rel, path) in walk(root) {
            if let Some(only) = &only {
                if !only.contains(rel.as_str()) {
                    continue;
                }
            } else {
                let Some(ours) = entry_of(&path, false)? else {
                    continue;
                };
                if already_there(&ours, select.have.get(&rel)) {
                    continue;
                }
            }
            match tar.append_path_with_name(&path, &rel) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        tar.finish()?;
    }
    let mut out = encoder.finish()?;
    std::io::Write::flush(&mut out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("world/region")).expect("mkdir");
        let mut x: u32 = 1;
        let region: Vec<u8> = (0..50_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect();
        std::fs::write(root.join("world/region/r.0.0.mca"), region).expect("w");
        std::fs::write(root.join("server.properties"), "motd=hi\n").expect("w");
        std::os::unix::fs::symlink("server.properties", root.join("link")).expect("ln");
    }

    async fn copy(src: &Path, dst: &Path, select: &ArchiveSelect) -> Received {
        let (tx, mut rx) = mpsc::channel(4);
        let (root, select) = (src.to_path_buf(), select.clone());
        let writer = tokio::task::spawn_blocking(move || {
            write_selected(&root, &select, ChannelWriter::new(tx, CHUNK))
        });
        let mut bytes = Vec::new();
        while let Some(b) = rx.recv().await {
            bytes.extend_from_slice(&b);
        }
        writer.await.expect("join").expect("archive");
        let dir =
            cap_std::fs::Dir::open_ambient_dir(dst, cap_std::ambient_authority()).expect("dir");
        let skipped = restore::extract(&bytes[..], &dir).expect("extract");
        Received {
            bytes: bytes.len() as u64,
            skipped,
        }
    }

    #[tokio::test]
    async fn a_second_pass_sends_only_what_changed_and_the_manifests_then_match() {
        let (src, dst) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        tree(src.path());
        let first = copy(src.path(), dst.path(), &ArchiveSelect::default()).await;
        assert_eq!(first.skipped, 0);
        assert_eq!(
            manifest(src.path(), true).expect("m"),
            manifest(dst.path(), true).expect("m")
        );
        // One file changes (another size), one appears.
        std::fs::write(src.path().join("server.properties"), "motd=changed\n").expect("w");
        std::fs::write(src.path().join("world/new.dat"), "new").expect("w");
        let have = manifest(dst.path(), false).expect("m");
        let second = copy(src.path(), dst.path(), &ArchiveSelect { have, only: None }).await;
        assert!(
            second.bytes < first.bytes / 4,
            "the region file was not sent again: {} then {}",
            first.bytes,
            second.bytes
        );
        let (a, b) = (
            manifest(src.path(), true).expect("m"),
            manifest(dst.path(), true).expect("m"),
        );
        assert!(
            shardlyn_proto::transfer::differences(&a, &b).is_empty(),
            "{a:?}\n{b:?}"
        );
    }
}
