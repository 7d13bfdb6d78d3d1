//! The file sandbox: every access to an instance's files goes through a [`Sandbox`], a
//! capability handle (`cap_std::fs::Dir`) rooted at the instance's volume
//! (`DATA_DIR/volumes/{id}`). Paths are resolved *by the kernel relative to that
//! handle*, so `..`, absolute paths and symlinks pointing out cannot escape it, and no
//! check-then-use race can either (there is no separate check on an ambient path).
//!
//! # API (for the file routes, uploads, SFTP, backups)
//!
//! ```ignore
//! use shardlyn_agent::files::{Sandbox, RelPath, FileError};
//! // Blocking calls: run them in `tokio::task::spawn_blocking`.
//! let sb = Sandbox::open(&volume_path, &spec.file_denylist, disk_limit_bytes)?; // 0 = unlimited
//! let p: RelPath = sb.resolve("/world/level.dat")?;   // 400 BAD_PATH on NUL, `\`, escaping `..`
//! sb.check_allowed(&p, false)?;                        // 403 FILE_DENIED (denylist)
//! let n = sb.place(&agent_temp_file, "/plugins/x.jar")?; // finished upload → volume (moves it)
//! let mut w = sb.create("/server.properties")?;        // temp file beside the target
//! w.write_chunk(b"motd=hi\n")?;                         // 413 DISK_LIMIT when over disk_mb
//! w.commit()?;                                          // atomic rename; dropped = removed
//! let (file, meta) = sb.open_file("/logs/latest.log")?;
//! ```
//!
//! * User paths: `/` is the root, see [`RelPath::parse`].
//! * Denylist: the egg's `file_denylist`, gitignore semantics (`*.jar`, `/config/`,
//!   `!allowed.jar`); a denied path (or anything under a denied directory) cannot be
//!   read, written, deleted, renamed, moved onto, copied or placed. Listings still show
//!   it, with `denied: true`.
//! * Disk limit: a per-volume usage counter (one walk, then updated by every write made
//!   through a sandbox, re-walked when older than [`USAGE_TTL`] since the game server
//!   writes too). A write that would take usage over the limit fails with
//!   [`FileError::DiskLimit`] and leaves no partial file: data goes to a temp name in the
//!   target's directory and is renamed over the target only on [`PendingWrite::commit`].
//!
//! Errors are [`FileError`]; the API answers them through `crate::error::ApiError`.

mod archive;
mod error;
pub mod list;
mod path;
mod usage;
pub mod zipstream;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, OpenOptions};

pub use archive::{ArchiveFormat, compress, decompress, zip_dir_check, zip_dir_stream};
pub use error::FileError;
pub use list::{Entry, EntryKind, ListOptions, Listing, SortKey, search};
pub use path::RelPath;
pub use usage::USAGE_TTL;

/// Prefix of in-progress writes; listings hide these.
pub const TEMP_PREFIX: &str = ".shardlyn-tmp-";

/// A capability handle on one instance's volume. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Sandbox(Arc<Inner>);

struct Inner {
    root: Dir,
    volume: PathBuf,
    deny: Option<ignore::gitignore::Gitignore>,
    limit: u64,
    usage: Arc<usage::Usage>,
    /// Owner of the volume root: files and directories created here get it (matters
    /// when the agent runs as root and the server as another user).
    owner: Option<(u32, u32)>,
}

impl Sandbox {
    /// Opens the sandbox on `volume` (created if missing), with the egg's
    /// `file_denylist` and a disk limit in bytes (0 = unlimited).
    ///
    /// # Errors
    /// The volume cannot be created or opened; a denylist line is not a valid glob.
    pub fn open(
        volume: &Path,
        denylist: &[String],
        disk_limit_bytes: u64,
    ) -> Result<Self, FileError> {
        std::fs::create_dir_all(volume).map_err(|e| FileError::Io(format!("volume: {e}")))?;
        let root = Dir::open_ambient_dir(volume, ambient_authority())
            .map_err(|e| FileError::Io(format!("volume: {e}")))?;
        let deny = if denylist.iter().all(|l| l.trim().is_empty()) {
            None
        } else {
            let mut b = ignore::gitignore::GitignoreBuilder::new("");
            for line in denylist {
                b.add_line(None, line)
                    .map_err(|e| FileError::BadRequest(format!("file_denylist: {e}")))?;
            }
            Some(
                b.build()
                    .map_err(|e| FileError::BadRequest(format!("file_denylist: {e}")))?,
            )
        };
        let owner = {
            use cap_std::fs::MetadataExt;
            root.dir_metadata().ok().map(|m| (m.uid(), m.gid()))
        };
        Ok(Self(Arc::new(Inner {
            owner,
            root,
            volume: volume.to_path_buf(),
            deny,
            limit: disk_limit_bytes,
            usage: usage::Usage::for_volume(volume),
        })))
    }

    /// The sandbox of instance `id` of `manager` (its volume, denylist and disk limit).
    ///
    /// # Errors
    /// [`FileError::NoInstance`], or as [`Sandbox::open`].
    pub fn for_instance(manager: &crate::instances::Manager, id: &str) -> Result<Self, FileError> {
        let inst = manager.get(id).map_err(|_| FileError::NoInstance)?;
        let spec = inst.spec();
        let limit = u64::try_from(spec.limits.disk_mb)
            .unwrap_or(0)
            .saturating_mul(1024 * 1024);
        Self::open(&manager.0.paths.volume(id), &spec.file_denylist, limit)
    }

    /// Gives `fd` the volume owner (best effort: only works as root).
    fn own(&self, fd: &impl std::os::fd::AsFd) {
        if let Some((uid, gid)) = self.0.owner {
            let _ = std::os::unix::fs::fchown(fd, Some(uid), Some(gid));
        }
    }

    /// The root handle (for walks that need it, e.g. archives).
    #[must_use]
    pub fn root(&self) -> &Dir {
        &self.0.root
    }

    /// The volume's ambient path (for logging; never open files through it).
    #[must_use]
    pub fn volume(&self) -> &Path {
        &self.0.volume
    }

    /// Normalizes a user path (see [`RelPath::parse`]).
    ///
    /// # Errors
    /// [`FileError::BadPath`].
    pub fn resolve(&self, user: &str) -> Result<RelPath, FileError> {
        RelPath::parse(user)
    }

    /// Whether the denylist matches `p` or one of its parents.
    #[must_use]
    pub fn is_denied(&self, p: &RelPath, is_dir: bool) -> bool {
        let Some(deny) = &self.0.deny else {
            return false;
        };
        if p.is_root() {
            return false;
        }
        deny.matched_path_or_any_parents(p.as_path(), is_dir)
            .is_ignore()
    }

    /// [`FileError::Denied`] when the denylist matches `p`.
    ///
    /// # Errors
    /// [`FileError::Denied`].
    pub fn check_allowed(&self, p: &RelPath, is_dir: bool) -> Result<(), FileError> {
        if self.is_denied(p, is_dir) {
            Err(FileError::Denied(p.display()))
        } else {
            Ok(())
        }
    }

    /// Whether `p` is a directory (following symlinks inside the volume); `None` when
    /// it does not exist.
    fn kind_of(&self, p: &RelPath) -> Option<bool> {
        self.0.root.metadata(p.as_path()).ok().map(|m| m.is_dir())
    }

    /// Refuses `p` when it, or anything it contains, is denied (for deletes/moves).
    fn check_tree_allowed(&self, p: &RelPath) -> Result<(), FileError> {
        let is_dir = self.kind_of(p).unwrap_or(false);
        self.check_allowed(p, is_dir)?;
        if is_dir && self.0.deny.is_some() {
            let mut denied = None;
            list::walk(&self.0.root, p, &mut |entry, is_dir| {
                if denied.is_none() && self.is_denied(entry, is_dir) {
                    denied = Some(entry.display());
                }
                denied.is_none()
            })?;
            if let Some(d) = denied {
                return Err(FileError::Denied(d));
            }
        }
        Ok(())
    }

    /// A directory inside the volume (the root for `/`).
    ///
    /// # Errors
    /// Not found, not a directory, escape.
    pub fn open_dir(&self, p: &RelPath) -> Result<Dir, FileError> {
        if p.is_root() {
            return self.0.root.try_clone().map_err(|e| FileError::io("/", &e));
        }
        self.0
            .root
            .open_dir(p.as_path())
            .map_err(|e| FileError::io(&p.display(), &e))
    }

    /// Opens a regular file for reading, with its metadata.
    ///
    /// # Errors
    /// Bad path, denied, not found, a directory, escape.
    pub fn open_file(
        &self,
        user: &str,
    ) -> Result<(std::fs::File, cap_std::fs::Metadata), FileError> {
        let p = self.resolve(user)?;
        self.check_allowed(&p, false)?;
        let f = self
            .0
            .root
            .open(p.as_path())
            .map_err(|e| FileError::io(&p.display(), &e))?;
        let meta = f.metadata().map_err(|e| FileError::io(&p.display(), &e))?;
        if !meta.is_file() {
            return Err(FileError::WrongType(format!(
                "{} is not a file",
                p.display()
            )));
        }
        Ok((f.into_std(), meta))
    }

    /// One entry's details.
    ///
    /// # Errors
    /// Bad path, not found, escape.
    pub fn stat(&self, user: &str) -> Result<Entry, FileError> {
        let p = self.resolve(user)?;
        let meta = self
            .0
            .root
            .symlink_metadata(p.as_path())
            .map_err(|e| FileError::io(&p.display(), &e))?;
        Ok(list::entry_of(self, &p, &meta))
    }

    /// Lists a directory, one page (see [`ListOptions`]).
    ///
    /// # Errors
    /// Bad path, not found, not a directory, escape.
    pub fn list(&self, user: &str, opts: &ListOptions) -> Result<Listing, FileError> {
        let p = self.resolve(user)?;
        list::list(self, &p, opts)
    }

    /// Starts writing `user` (created or replaced on commit).
    ///
    /// # Errors
    /// Bad path, denied, the parent is missing, the target is a directory.
    pub fn create(&self, user: &str) -> Result<PendingWrite, FileError> {
        let p = self.resolve(user)?;
        self.create_at(&p)
    }

    fn create_at(&self, p: &RelPath) -> Result<PendingWrite, FileError> {
        let Some((parent, name)) = p.split_last() else {
            return Err(FileError::WrongType("/ is a directory".into()));
        };
        self.check_allowed(p, false)?;
        let dir = self.open_dir(&parent)?;
        let old_len = match dir.symlink_metadata(name) {
            Ok(m) if m.is_dir() => {
                return Err(FileError::WrongType(format!(
                    "{} is a directory",
                    p.display()
                )));
            }
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        };
        let tmp = format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>());
        let file = dir
            .open_with(&tmp, OpenOptions::new().write(true).create_new(true))
            .map_err(|e| FileError::io(&p.display(), &e))?;
        self.own(&file);
        Ok(PendingWrite {
            sandbox: self.clone(),
            dir,
            tmp,
            name: name.to_owned(),
            display: p.display(),
            old_len,
            written: 0,
            file: Some(file.into_std()),
            done: false,
        })
    }

    /// Writes `data` to `user` atomically.
    ///
    /// # Errors
    /// As [`Sandbox::create`], plus the disk limit.
    pub fn write_all(&self, user: &str, data: &[u8]) -> Result<u64, FileError> {
        let mut w = self.create(user)?;
        w.write_chunk(data)?;
        w.commit()
    }

    /// Moves an agent-owned file (`from`, outside the volume, e.g. a finished upload in
    /// `DATA_DIR/tmp`) into the volume at `to`, with every check (path, denylist, disk
    /// limit, atomic replace). `from` is gone afterwards on success. Returns the bytes
    /// placed.
    ///
    /// # Errors
    /// Bad path, denied, disk limit, the parent is missing, I/O.
    pub fn place(&self, from: &Path, to: &str) -> Result<u64, FileError> {
        let p = self.resolve(to)?;
        let mut w = self.create_at(&p)?;
        let src = std::fs::File::open(from).map_err(|e| FileError::Io(format!("upload: {e}")))?;
        let len = src
            .metadata()
            .map_err(|e| FileError::Io(format!("upload: {e}")))?
            .len();
        w.charge(len)?;
        // Same file system: a rename over the temp name (no copy); else copy.
        let renamed = match (from.parent(), from.file_name()) {
            (Some(parent), Some(name)) => Dir::open_ambient_dir(parent, ambient_authority())
                .and_then(|src_dir| src_dir.rename(name, &w.dir, &w.tmp))
                .is_ok(),
            _ => false,
        };
        if renamed {
            w.file = None;
        } else {
            // Charged above: copy without charging again.
            let mut src = src;
            let file = w
                .file
                .as_mut()
                .ok_or_else(|| FileError::Io("closed".into()))?;
            std::io::copy(&mut src, file).map_err(|e| FileError::io(&p.display(), &e))?;
            let _ = std::fs::remove_file(from);
        }
        w.commit()
    }

    /// Creates a directory and its missing parents.
    ///
    /// # Errors
    /// Bad path, denied, a file is in the way, escape.
    pub fn mkdir(&self, user: &str) -> Result<(), FileError> {
        let p = self.resolve(user)?;
        if p.is_root() {
            return Err(FileError::Exists("/ already exists".into()));
        }
        self.check_allowed(&p, true)?;
        self.0
            .root
            .create_dir_all(p.as_path())
            .map_err(|e| FileError::io(&p.display(), &e))?;
        // Own every component (best effort; a no-op unless root).
        let mut cur = RelPath::default();
        for c in p.components() {
            cur = cur.join(c);
            if let Ok(d) = self.0.root.open_dir(cur.as_path()) {
                self.own(&d);
            }
        }
        Ok(())
    }

    /// Deletes a file, a symlink (not its target) or a directory tree.
    ///
    /// # Errors
    /// Bad path, the root, denied (itself or something inside), not found.
    pub fn remove(&self, user: &str) -> Result<(), FileError> {
        let p = self.resolve(user)?;
        if p.is_root() {
            return Err(FileError::BadPath(
                "the server root cannot be deleted".into(),
            ));
        }
        let meta = self
            .0
            .root
            .symlink_metadata(p.as_path())
            .map_err(|e| FileError::io(&p.display(), &e))?;
        self.check_tree_allowed(&p)?;
        if meta.is_dir() {
            let size = list::tree_size(&self.0.root, &p);
            self.0
                .root
                .remove_dir_all(p.as_path())
                .map_err(|e| FileError::io(&p.display(), &e))?;
            self.0.usage.sub(size);
        } else {
            self.0
                .root
                .remove_file(p.as_path())
                .map_err(|e| FileError::io(&p.display(), &e))?;
            if meta.is_file() {
                self.0.usage.sub(meta.len());
            }
        }
        Ok(())
    }

    /// Moves or renames `from` to `to`; refuses to replace an existing `to`.
    ///
    /// # Errors
    /// Bad paths, denied (either side), not found, `to` exists, moving a directory
    /// into itself.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FileError> {
        let (a, b) = (self.resolve(from)?, self.resolve(to)?);
        let (Some((a_parent, a_name)), Some((b_parent, b_name))) = (a.split_last(), b.split_last())
        else {
            return Err(FileError::BadPath("the server root cannot be moved".into()));
        };
        if b.starts_with(&a) {
            return Err(FileError::BadRequest(format!(
                "cannot move {} into itself",
                a.display()
            )));
        }
        self.check_tree_allowed(&a)?;
        let is_dir = self.kind_of(&a).unwrap_or(false);
        self.check_allowed(&b, is_dir)?;
        let (src, dst) = (self.open_dir(&a_parent)?, self.open_dir(&b_parent)?);
        if dst.symlink_metadata(b_name).is_ok() {
            return Err(FileError::Exists(format!("{} already exists", b.display())));
        }
        src.rename(a_name, &dst, b_name)
            .map_err(|e| FileError::io(&a.display(), &e))
    }

    /// Copies a file or a directory tree to `to` (which must not exist).
    ///
    /// # Errors
    /// Bad paths, denied, not found, `to` exists, disk limit.
    pub fn copy(&self, from: &str, to: &str) -> Result<(), FileError> {
        let (a, b) = (self.resolve(from)?, self.resolve(to)?);
        if a.is_root() || b.is_root() || b.starts_with(&a) {
            return Err(FileError::BadRequest(
                "cannot copy a directory into itself".into(),
            ));
        }
        if self.0.root.symlink_metadata(b.as_path()).is_ok() {
            return Err(FileError::Exists(format!("{} already exists", b.display())));
        }
        let meta = self
            .0
            .root
            .symlink_metadata(a.as_path())
            .map_err(|e| FileError::io(&a.display(), &e))?;
        self.check_tree_allowed(&a)?;
        self.copy_tree(&a, &b, meta.is_dir())
    }

    fn copy_tree(&self, a: &RelPath, b: &RelPath, is_dir: bool) -> Result<(), FileError> {
        if !is_dir {
            let mut src = self
                .0
                .root
                .open(a.as_path())
                .map_err(|e| FileError::io(&a.display(), &e))?;
            let mut w = self.create_at(b)?;
            w.copy_from(&mut src)?;
            w.commit()?;
            return Ok(());
        }
        self.check_allowed(b, true)?;
        self.0
            .root
            .create_dir(b.as_path())
            .map_err(|e| FileError::io(&b.display(), &e))?;
        let entries = self
            .0
            .root
            .read_dir(a.as_path())
            .map_err(|e| FileError::io(&a.display(), &e))?;
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_symlink() {
                continue; // symlinks are not copied (their target may be anywhere)
            }
            self.copy_tree(&a.join(&name), &b.join(&name), ft.is_dir())?;
        }
        Ok(())
    }

    /// Sets the Unix mode bits (`0o000..=0o777`) of a file or directory.
    ///
    /// # Errors
    /// Bad path, denied, not found, a bad mode.
    pub fn chmod(&self, user: &str, mode: u32) -> Result<(), FileError> {
        use cap_std::fs::PermissionsExt;
        if mode > 0o777 {
            return Err(FileError::BadRequest(
                "mode must be between 000 and 777".into(),
            ));
        }
        let p = self.resolve(user)?;
        let is_dir = self.kind_of(&p).unwrap_or(false);
        self.check_allowed(&p, is_dir)?;
        let meta = self
            .0
            .root
            .symlink_metadata(p.as_path())
            .map_err(|e| FileError::io(&p.display(), &e))?;
        if meta.is_symlink() {
            return Err(FileError::WrongType("cannot chmod a symlink".into()));
        }
        self.0
            .root
            .set_permissions(p.as_path(), cap_std::fs::Permissions::from_mode(mode))
            .map_err(|e| FileError::io(&p.display(), &e))
    }

    /// Bytes used by the volume (cached, see the module doc).
    #[must_use]
    pub fn usage(&self) -> u64 {
        self.0.usage.current(&self.0.root)
    }

    /// The disk limit in bytes, 0 = unlimited.
    #[must_use]
    pub fn limit(&self) -> u64 {
        self.0.limit
    }

    /// Reserves `n` more bytes against the disk limit, `old` bytes being freed later.
    fn charge(&self, n: u64, old: u64) -> Result<(), FileError> {
        let current = self.usage();
        if self.0.limit > 0 && current.saturating_add(n) > self.0.limit.saturating_add(old) {
            return Err(FileError::DiskLimit {
                limit_mb: self.0.limit / (1024 * 1024),
            });
        }
        self.0.usage.add(n);
        Ok(())
    }
}

/// An in-progress write: a temp file beside the target. [`PendingWrite::commit`] renames
/// it over the target; dropping it removes the temp file and gives its bytes back.
pub struct PendingWrite {
    sandbox: Sandbox,
    dir: Dir,
    tmp: String,
    name: String,
    display: String,
    old_len: u64,
    written: u64,
    file: Option<std::fs::File>,
    done: bool,
}

impl PendingWrite {
    /// Charges `n` bytes against the disk limit (call before writing them).
    ///
    /// # Errors
    /// [`FileError::DiskLimit`].
    pub fn charge(&mut self, n: u64) -> Result<(), FileError> {
        // The replaced file's bytes are freed on commit, so they count as room.
        self.sandbox.charge(n, self.old_len)?;
        self.written += n;
        Ok(())
    }

    /// Charges and writes one chunk.
    ///
    /// # Errors
    /// Disk limit, I/O.
    pub fn write_chunk(&mut self, data: &[u8]) -> Result<(), FileError> {
        self.charge(data.len() as u64)?;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| FileError::Io("write after take_file".into()))?;
        file.write_all(data)
            .map_err(|e| FileError::io(&self.display, &e))
    }

    /// Copies a reader in, chunk by chunk, charging each.
    ///
    /// # Errors
    /// Disk limit, I/O.
    pub fn copy_from(&mut self, r: &mut impl Read) -> Result<u64, FileError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf).map_err(|e| FileError::Io(e.to_string()))?;
            if n == 0 {
                return Ok(total);
            }
            self.write_chunk(&buf[..n])?;
            total += n as u64;
        }
    }

    /// Takes the temp file to write it asynchronously (`tokio::fs::File::from_std`);
    /// call [`PendingWrite::charge`] before each chunk and drop the file before commit.
    #[must_use]
    pub fn take_file(&mut self) -> Option<std::fs::File> {
        self.file.take()
    }

    /// Bytes written (charged) so far.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Renames the temp file over the target; returns the bytes written.
    ///
    /// # Errors
    /// I/O (the temp file is then removed).
    pub fn commit(mut self) -> Result<u64, FileError> {
        if let Some(f) = self.file.take() {
            f.sync_data()
                .map_err(|e| FileError::io(&self.display, &e))?;
        }
        self.dir
            .rename(&self.tmp, &self.dir, &self.name)
            .map_err(|e| FileError::io(&self.display, &e))?;
        self.done = true;
        self.sandbox.0.usage.sub(self.old_len);
        Ok(self.written)
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if !self.done {
            self.file = None;
            let _ = self.dir.remove_file(&self.tmp);
            self.sandbox.0.usage.sub(self.written);
        }
    }
}

/// Opens a file for reading through a cap-std handle (helper for archive code).
pub(crate) fn open_in(dir: &Dir, p: &RelPath) -> Result<File, FileError> {
    dir.open(p.as_path())
        .map_err(|e| FileError::io(&p.display(), &e))
}

#[cfg(test)]
mod tests;
