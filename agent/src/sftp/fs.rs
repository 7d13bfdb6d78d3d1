//! The SFTP subsystem on an instance's [`Sandbox`]: every path goes through the same
//! capability handle, denylist and disk limit as the file API. Uploads are written to a
//! temp file beside the target ([`PendingWrite`]) and appear under their name only when
//! the client closes the handle after a clean transfer; a failed write (disk limit)
//! or a dropped connection leaves nothing behind.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;

use crate::files::{FileError, PendingWrite, RelPath, Sandbox, TEMP_PREFIX};

/// Open handles per session.
const MAX_HANDLES: usize = 64;
/// Largest read answered at once.
const MAX_READ: u32 = 256 * 1024;
/// Directory entries per `READDIR` answer.
const DIR_PAGE: usize = 256;
/// Entries read from one directory at most.
const MAX_DIR_ENTRIES: usize = 200_000;

/// An open handle.
enum Open {
    Dir(std::vec::IntoIter<File>),
    Read(std::fs::File),
    Write(Upload),
}

/// A file being written.
struct Upload {
    pending: PendingWrite,
    file: std::fs::File,
    /// Bytes charged against the disk limit so far (the temp file's size).
    size: u64,
    append: bool,
    /// A write failed: closing discards the upload.
    failed: bool,
}

/// One SFTP session.
pub struct SftpFs {
    sandbox: Sandbox,
    read: bool,
    write: bool,
    handles: HashMap<String, Open>,
    next: u64,
    version: Option<u32>,
}

type Reply<T> = Result<T, StatusReply>;

fn denied() -> StatusReply {
    StatusCode::PermissionDenied.with_message("permission denied")
}

fn file_error(e: &FileError) -> StatusReply {
    let code = match e {
        FileError::NotFound(_) | FileError::NoInstance => StatusCode::NoSuchFile,
        FileError::BadPath(_) | FileError::Denied(_) | FileError::Escape(_) => {
            StatusCode::PermissionDenied
        }
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Reply<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StatusCode::Failure.with_message("internal error"))
}

/// SFTP attributes of a cap-std entry.
fn attrs(meta: &cap_std::fs::Metadata) -> FileAttributes {
    use cap_std::fs::MetadataExt;
    FileAttributes {
        size: Some(meta.len()),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
        permissions: Some(meta.mode()),
        atime: u32::try_from(meta.atime()).ok(),
        mtime: u32::try_from(meta.mtime()).ok(),
        ..FileAttributes::default()
    }
}

impl SftpFs {
    /// A session on `sandbox` with the panel's read/write rights.
    #[must_use]
    pub fn new(sandbox: Sandbox, read: bool, write: bool) -> Self {
        Self {
            sandbox,
            read,
            write,
            handles: HashMap::new(),
            next: 0,
            version: None,
        }
    }

    fn need_read(&self) -> Reply<()> {
        if self.read { Ok(()) } else { Err(denied()) }
    }

    fn need_write(&self) -> Reply<()> {
        if self.write { Ok(()) } else { Err(denied()) }
    }

    fn path(&self, user: &str) -> Reply<RelPath> {
        self.sandbox.resolve(user).map_err(|e| file_error(&e))
    }

    fn add(&mut self, id: u32, open: Open) -> Reply<Handle> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure.with_message("too many open handles"));
        }
        self.next += 1;
        let handle = format!("h{}", self.next);
        self.handles.insert(handle.clone(), open);
        Ok(Handle { id, handle })
    }

    /// Takes a handle out for blocking work (put back with [`Self::put`]).
    fn take(&mut self, handle: &str) -> Reply<Open> {
        self.handles
            .remove(handle)
            .ok_or_else(|| StatusCode::Failure.with_message("invalid handle"))
    }

    fn put(&mut self, handle: String, open: Open) {
        self.handles.insert(handle, open);
    }

    async fn stat_path(&self, id: u32, path: &str, follow: bool) -> Reply<Attrs> {
        self.need_read()?;
        let p = self.path(path)?;
        let sb = self.sandbox.clone();
        let meta = blocking(move || {
            let root = sb.root();
            let m = if follow {
                root.metadata(p.as_path())
            } else {
                root.symlink_metadata(p.as_path())
            };
            m.map_err(|e| FileError::io(&p.display(), &e))
        })
        .await?
        .map_err(|e| file_error(&e))?;
        Ok(Attrs {
            id,
            attrs: attrs(&meta),
        })
    }

    fn open_upload(sb: &Sandbox, p: &RelPath, flags: OpenFlags) -> Result<Upload, FileError> {
        let existing = sb.root().symlink_metadata(p.as_path()).ok();
        let exists = existing.is_some();
        if flags.contains(OpenFlags::EXCLUDE) && exists {
            return Err(FileError::Exists(format!("{} already exists", p.display())));
        }
        if !exists && !flags.contains(OpenFlags::CREATE) {
            return Err(FileError::NotFound(format!(
                "{} does not exist",
                p.display()
            )));
        }
        let mut pending = sb.create(&p.display())?;
        let mut size = 0;
        if exists && !flags.contains(OpenFlags::TRUNCATE) {
            // A partial overwrite or an append keeps the current bytes: start from a copy.
            let (mut current, _) = sb.open_file(&p.display())?;
            size = pending.copy_from(&mut current)?;
        }
        let file = pending
            .take_file()
            .ok_or_else(|| FileError::Io("upload file missing".into()))?;
        Ok(Upload {
            pending,
            file,
            size,
            append: flags.contains(OpenFlags::APPEND),
            failed: false,
        })
    }
}

fn write_at(up: &mut Upload, offset: u64, data: &[u8]) -> Result<(), FileError> {
    if up.failed {
        return Err(FileError::Io("an earlier write failed".into()));
    }
    let offset = if up.append { up.size } else { offset };
    let end = offset
        .checked_add(data.len() as u64)
        .ok_or_else(|| FileError::BadRequest("offset out of range".into()))?;
    if end > up.size {
        up.pending.charge(end - up.size)?;
        up.size = end;
    }
    up.file
        .write_all_at(data, offset)
        .map_err(|e| FileError::Io(e.to_string()))
}

fn read_dir(sb: &Sandbox, p: &RelPath) -> Result<Vec<File>, FileError> {
    let dir = sb.open_dir(p)?;
    let entries = dir.entries().map_err(|e| FileError::io(&p.display(), &e))?;
    let mut files = vec![
        File::new(".", FileAttributes::dummy()),
        File::new("..", FileAttributes::dummy()),
    ];
    for entry in entries.flatten().take(MAX_DIR_ENTRIES) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let Ok(meta) = dir.symlink_metadata(name) else {
            continue;
        };
        files.push(File::new(name, attrs(&meta)));
    }
    Ok(files)
}

impl russh_sftp::server::Handler for SftpFs {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.into()
    }

    async fn init(&mut self, version: u32, _extensions: HashMap<String, String>) -> Reply<Version> {
        if self.version.is_some() {
            return Err(StatusCode::ConnectionLost.into());
        }
        self.version = Some(version);
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Reply<Name> {
        let p = self.path(&path)?;
        Ok(Name {
            id,
            files: vec![File::dummy(p.display())],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Reply<Attrs> {
        self.stat_path(id, &path, true).await
    }

    async fn lstat(&mut self, id: u32, path: String) -> Reply<Attrs> {
        self.stat_path(id, &path, false).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Reply<Attrs> {
        let open = self.take(&handle)?;
        let (open, meta) = blocking(move || {
            let meta = match &open {
                Open::Read(f) => f.metadata().ok(),
                Open::Write(u) => u.file.metadata().ok(),
                Open::Dir(_) => None,
            };
            (open, meta)
        })
        .await?;
        self.put(handle, open);
        let meta = meta.ok_or_else(|| StatusReply::from(StatusCode::Failure))?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn opendir(&mut self, id: u32, path: String) -> Reply<Handle> {
        self.need_read()?;
        let p = self.path(&path)?;
        let sb = self.sandbox.clone();
        let files = blocking(move || read_dir(&sb, &p))
            .await?
            .map_err(|e| file_error(&e))?;
        self.add(id, Open::Dir(files.into_iter()))
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Reply<Name> {
        let Some(Open::Dir(iter)) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        };
        let files: Vec<File> = iter.take(DIR_PAGE).collect();
        if files.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Reply<Handle> {
        let writing = pflags.intersects(
            OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        );
        let p = self.path(&filename)?;
        let sb = self.sandbox.clone();
        if writing {
            self.need_write()?;
            if pflags.contains(OpenFlags::READ) {
                self.need_read()?;
            }
            let upload = blocking(move || Self::open_upload(&sb, &p, pflags))
                .await?
                .map_err(|e| file_error(&e))?;
            self.add(id, Open::Write(upload))
        } else {
            self.need_read()?;
            let (file, _) = blocking(move || sb.open_file(&p.display()))
                .await?
                .map_err(|e| file_error(&e))?;
            self.add(id, Open::Read(file))
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Reply<Data> {
        let open = self.take(&handle)?;
        let (open, result) = blocking(move || {
            let mut buf = vec![0u8; len.min(MAX_READ) as usize];
            let result = match &open {
                Open::Read(f) => f.read_at(&mut buf, offset).map(Some),
                Open::Write(u) => u.file.read_at(&mut buf, offset).map(Some),
                Open::Dir(_) => Ok(None),
            };
            (
                open,
                result.map(|n| {
                    n.map(|n| {
                        buf.truncate(n);
                        buf
                    })
                }),
            )
        })
        .await?;
        self.put(handle, open);
        match result {
            Ok(Some(data)) if data.is_empty() => Err(StatusCode::Eof.into()),
            Ok(Some(data)) => Ok(Data { id, data }),
            Ok(None) => Err(StatusCode::Failure.with_message("not a file handle")),
            Err(e) => Err(StatusCode::Failure.with_message(e.to_string())),
        }
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Reply<Status> {
        let open = self.take(&handle)?;
        let Open::Write(mut up) = open else {
            self.put(handle, open);
            return Err(denied());
        };
        let (up, result) = blocking(move || {
            let r = write_at(&mut up, offset, &data);
            if r.is_err() {
                up.failed = true;
            }
            (up, r)
        })
        .await?;
        self.put(handle, Open::Write(up));
        result.map(|()| ok(id)).map_err(|e| file_error(&e))
    }

    async fn close(&mut self, id: u32, handle: String) -> Reply<Status> {
        match self.take(&handle)? {
            Open::Write(up) => {
                if up.failed {
                    // Dropping the pending write removes the temp file.
                    return Err(
                        StatusCode::Failure.with_message("upload discarded after a failed write")
                    );
                }
                let Upload { pending, file, .. } = up;
                blocking(move || {
                    file.sync_data().map_err(|e| FileError::Io(e.to_string()))?;
                    drop(file);
                    pending.commit()
                })
                .await?
                .map_err(|e| file_error(&e))?;
                Ok(ok(id))
            }
            Open::Read(_) | Open::Dir(_) => Ok(ok(id)),
        }
    }

    async fn mkdir(&mut self, id: u32, path: String, _attrs: FileAttributes) -> Reply<Status> {
        self.need_write()?;
        let p = self.path(&path)?;
        let sb = self.sandbox.clone();
        blocking(move || {
            if p.is_root() || sb.root().symlink_metadata(p.as_path()).is_ok() {
                return Err(FileError::Exists(format!("{} already exists", p.display())));
            }
            let (parent, _) = p
                .split_last()
                .ok_or_else(|| FileError::BadPath("/".into()))?;
            sb.open_dir(&parent)?;
            sb.mkdir(&p.display())
        })
        .await?
        .map_err(|e| file_error(&e))?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Reply<Status> {
        self.need_write()?;
        let p = self.path(&path)?;
        let sb = self.sandbox.clone();
        blocking(move || {
            let dir = sb.open_dir(&p)?;
            let empty = dir
                .entries()
                .map_err(|e| FileError::io(&p.display(), &e))?
                .next()
                .is_none();
            if !empty {
                return Err(FileError::Exists(format!("{} is not empty", p.display())));
            }
            sb.remove(&p.display())
        })
        .await?
        .map_err(|e| file_error(&e))?;
        Ok(ok(id))
    }

    async fn remove(&mut self, id: u32, filename: String) -> Reply<Status> {
        self.need_write()?;
        let p = self.path(&filename)?;
        let sb = self.sandbox.clone();
        blocking(move || {
            let meta = sb
                .root()
                .symlink_metadata(p.as_path())
                .map_err(|e| FileError::io(&p.display(), &e))?;
            if meta.is_dir() {
                return Err(FileError::WrongType(format!(
                    "{} is a directory",
                    p.display()
                )));
            }
            sb.remove(&p.display())
        })
        .await?
        .map_err(|e| file_error(&e))?;
        Ok(ok(id))
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Reply<Status> {
        self.need_write()?;
        let (a, b) = (self.path(&oldpath)?, self.path(&newpath)?);
        let sb = self.sandbox.clone();
        blocking(move || sb.rename(&a.display(), &b.display()))
            .await?
            .map_err(|e| file_error(&e))?;
        Ok(ok(id))
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Reply<Status> {
        self.need_write()?;
        if attrs.size.is_some() {
            return Err(StatusCode::OpUnsupported.with_message("truncating is not supported"));
        }
        let p = self.path(&path)?;
        if let Some(mode) = attrs.permissions {
            let sb = self.sandbox.clone();
            blocking(move || sb.chmod(&p.display(), mode & 0o777))
                .await?
                .map_err(|e| file_error(&e))?;
        }
        Ok(ok(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Reply<Status> {
        self.need_write()?;
        if !self.handles.contains_key(&handle) {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        }
        if attrs.size.is_some() {
            return Err(StatusCode::OpUnsupported.with_message("truncating is not supported"));
        }
        // Times and modes of an open upload: the committed file keeps the defaults.
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Reply<Name> {
        self.need_read()?;
        let p = self.path(&path)?;
        let sb = self.sandbox.clone();
        let target = blocking(move || {
            sb.root()
                .read_link(p.as_path())
                .map_err(|e| FileError::io(&p.display(), &e))
        })
        .await?
        .map_err(|e| file_error(&e))?;
        Ok(Name {
            id,
            files: vec![File::dummy(target.to_string_lossy())],
        })
    }

    async fn symlink(&mut self, _id: u32, _linkpath: String, _targetpath: String) -> Reply<Status> {
        Err(StatusCode::PermissionDenied.with_message("symlinks cannot be created over SFTP"))
    }
}
