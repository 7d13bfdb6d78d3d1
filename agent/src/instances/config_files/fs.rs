//! Reading and writing a config file without leaving the server's directory.
//!
//! A `config.files` path is always relative to the server root: a leading `/` (six
//! corpus eggs write `/TheIsle/...`) or `/home/container/` means the root, as in Wings.
//! `..` is refused, and every existing component below the root is checked with
//! `symlink_metadata` so a symlink planted by the server cannot redirect the write.
//! Missing parent directories are created one by one under the same checks. Writes go to
//! a temporary file in the same directory that is then renamed over the target, with the
//! old file's mode and owner (a new file gets 0644 and the owner of its directory).

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::Error;

/// Largest config file we edit; anything bigger is not a config file.
pub(crate) const MAX_BYTES: u64 = 8 * 1024 * 1024;

/// A checked path under the server root.
#[derive(Debug)]
pub(crate) struct Target {
    root: PathBuf,
    /// Normal components below the root; never empty.
    parts: Vec<String>,
}

/// A file that exists, with what we need to write it back the same way.
#[derive(Debug)]
pub(crate) struct Existing {
    pub content: String,
    meta: Metadata,
}

impl Target {
    pub(crate) fn resolve(root: &Path, relative: &str) -> Result<Self, Error> {
        let unsafe_path = |why: &str| Error::UnsafePath(format!("`{relative}` {why}"));
        if relative.contains('\0') {
            return Err(unsafe_path("contains a NUL byte"));
        }
        let trimmed = relative
            .strip_prefix("/home/container/")
            .unwrap_or(relative)
            .trim_start_matches('/');
        let mut parts = Vec::new();
        for component in Path::new(trimmed).components() {
            match component {
                Component::Normal(part) => {
                    let part = part
                        .to_str()
                        .ok_or_else(|| unsafe_path("is not valid UTF-8"))?;
                    parts.push(part.to_owned());
                }
                Component::CurDir => {}
                Component::ParentDir => return Err(unsafe_path("contains `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(unsafe_path("is absolute"));
                }
            }
        }
        if parts.is_empty() {
            return Err(unsafe_path("names no file"));
        }
        Ok(Self {
            root: root.to_path_buf(),
            parts,
        })
    }

    fn path(&self) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(&self.parts);
        path
    }

    /// Reads the file, or `None` when it (or one of its directories) does not exist.
    pub(crate) fn read(&self) -> Result<Option<Existing>, Error> {
        let mut path = self.root.clone();
        let last = self.parts.len() - 1;
        for (i, part) in self.parts.iter().enumerate() {
            path.push(part);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(io("checking path", source)),
            };
            if meta.file_type().is_symlink() {
                return Err(Error::UnsafePath(format!(
                    "`{}` is a symlink",
                    self.parts[..=i].join("/")
                )));
            }
            if i < last && !meta.is_dir() {
                return Err(Error::UnsafePath(format!(
                    "`{}` is not a directory",
                    self.parts[..=i].join("/")
                )));
            }
            if i == last && !meta.is_file() {
                return Err(Error::UnsafePath(format!(
                    "`{}` is not a regular file",
                    self.parts.join("/")
                )));
            }
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| io("checking path", e))?;
        if meta.len() > MAX_BYTES {
            return Err(Error::TooLarge);
        }
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| io("reading file", e))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(Error::TooLarge);
        }
        let content = String::from_utf8(bytes).map_err(|_| Error::NotUtf8)?;
        Ok(Some(Existing { content, meta }))
    }

    /// Writes `content` atomically, creating missing parent directories.
    pub(crate) fn write(&self, content: &str, existing: Option<&Existing>) -> Result<(), Error> {
        let dir = self.ensure_parent()?;
        let path = self.path();
        let name = self.parts.last().map_or("config", String::as_str);
        let (mode, owner) = match existing {
            Some(file) => (
                file.meta.permissions().mode() & 0o7777,
                (file.meta.uid(), file.meta.gid()),
            ),
            None => {
                let dir_meta = fs::symlink_metadata(&dir).map_err(|e| io("checking path", e))?;
                (0o644, (dir_meta.uid(), dir_meta.gid()))
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!(
            ".{name}.shardlyn-{}-{nanos}.tmp",
            std::process::id()
        ));
        let result = write_new(&tmp, content, mode, owner).and_then(|()| {
            // Re-check right before the rename: the target must still not be a symlink
            // (rename would replace the link itself, but we refuse rather than guess).
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => Err(std::io::Error::other(
                    "target became a symlink while it was being edited",
                )),
                _ => fs::rename(&tmp, &path),
            }
        });
        if let Err(source) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io("writing file", source));
        }
        Ok(())
    }

    /// Creates missing directories between the root and the file, refusing symlinks.
    fn ensure_parent(&self) -> Result<PathBuf, Error> {
        let mut dir = self.root.clone();
        let dirs = &self.parts[..self.parts.len() - 1];
        for (i, part) in dirs.iter().enumerate() {
            dir.push(part);
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::UnsafePath(format!(
                        "`{}` is a symlink",
                        dirs[..=i].join("/")
                    )));
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(Error::UnsafePath(format!(
                        "`{}` is not a directory",
                        dirs[..=i].join("/")
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir(&dir).map_err(|e| io("creating directory", e))?;
                    if let Some(parent) = dir.parent()
                        && let Ok(parent_meta) = fs::symlink_metadata(parent)
                    {
                        copy_owner(&dir, (parent_meta.uid(), parent_meta.gid()));
                    }
                }
                Err(source) => return Err(io("checking path", source)),
            }
        }
        Ok(dir)
    }
}

fn write_new(tmp: &Path, content: &str, mode: u32, owner: (u32, u32)) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    file.write_all(content.as_bytes())?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    copy_owner(tmp, owner);
    file.sync_all()
}

/// Gives `path` the owner the old file (or its directory) had, so the game server, which
/// runs as another user than the agent, can still write its own config. Best effort: an
/// agent not running as root cannot chown, and then the owner is already right.
fn copy_owner(path: &Path, (uid, gid): (u32, u32)) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if (meta.uid(), meta.gid()) != (uid, gid) {
        let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
    }
}

fn io(context: &'static str, source: std::io::Error) -> Error {
    Error::Io { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/srv/x");
        for bad in ["../etc/passwd", "a/../../b", "", "/", "./", "a/\0"] {
            assert!(Target::resolve(root, bad).is_err(), "{bad:?} accepted");
        }
        for (good, parts) in [
            ("server.properties", vec!["server.properties"]),
            ("/TheIsle/Game.ini", vec!["TheIsle", "Game.ini"]),
            ("/home/container/a/b.yml", vec!["a", "b.yml"]),
            ("./config/./c.json", vec!["config", "c.json"]),
        ] {
            let target = Target::resolve(root, good).expect(good);
            assert_eq!(target.parts, parts);
        }
    }

    #[test]
    fn write_keeps_the_mode_and_creates_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = Target::resolve(dir.path(), "a/b/c.txt").expect("target");
        assert!(target.read().expect("read").is_none());
        target.write("one\n", None).expect("write");
        let path = dir.path().join("a/b/c.txt");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let existing = target.read().expect("read").expect("exists");
        assert_eq!(existing.content, "one\n");
        target.write("two\n", Some(&existing)).expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "two\n");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("a/b")).expect("dir").collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
    }
}
