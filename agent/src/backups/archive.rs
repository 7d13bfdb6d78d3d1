//! The archive format: a tar of the server directory, compressed with multithreaded
//! zstd, hashed (SHA-256) and counted as it is written; and its safe extraction.
//!
//! Ignore files in gitignore syntax are honoured anywhere in the tree: `.shardlynignore`
//! and `.pteroignore` (servers migrated from Pterodactyl), plus the patterns given with
//! the request (rooted at the server directory).

use std::io::{self, Read, Write};
use std::path::{Component, Path};

use ignore::WalkBuilder;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

/// zstd level: 1 keeps a backup of a live server cheap on CPU (the server shares the
/// cores) and still compresses game worlds well.
pub const LEVEL: i32 = 1;

/// Ignore file names read in every directory of the tree.
pub const IGNORE_FILES: [&str; 2] = [".shardlynignore", ".pteroignore"];

/// A writer that hashes and counts what passes through.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-256 (hex) and size of everything `reader` yields.
///
/// # Errors
/// The reader fails.
pub fn hash_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The request's extra patterns, rooted at `root`.
fn extra_patterns(root: &Path, ignored: &str) -> io::Result<Gitignore> {
    let mut builder = GitignoreBuilder::new(root);
    for line in ignored.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        builder.add_line(None, line).map_err(other)?;
    }
    builder.build().map_err(other)
}

/// Writes the archive of `root` (minus ignored paths) into `out`; `threads` zstd
/// workers.
///
/// # Errors
/// Reading the tree or writing `out` fails.
pub fn write_archive<W: Write>(root: &Path, ignored: &str, threads: u32, out: W) -> io::Result<W> {
    let extra = extra_patterns(root, ignored)?;
    let mut encoder = zstd::stream::write::Encoder::new(out, LEVEL)?;
    if threads > 1 {
        encoder.multithread(threads)?;
    }
    {
        let mut tar = tar::Builder::new(&mut encoder);
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Complete);
        let mut walk = WalkBuilder::new(root);
        walk.standard_filters(false)
            .hidden(false)
            .parents(false)
            .follow_links(false)
            .same_file_system(false)
            .filter_entry(move |e| {
                let is_dir = e.file_type().is_some_and(|t| t.is_dir());
                !extra.matched(e.path(), is_dir).is_ignore()
            });
        for name in IGNORE_FILES {
            walk.add_custom_ignore_filename(name);
        }
        for entry in walk.build() {
            let entry = match entry {
                Ok(e) => e,
                // A file removed while the walk runs (a live server) is left out.
                Err(e)
                    if e.io_error()
                        .is_some_and(|e| e.kind() == io::ErrorKind::NotFound) =>
                {
                    continue;
                }
                Err(e) => return Err(other(e)),
            };
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            if rel.as_os_str().is_empty() {
                continue;
            }
            match tar.append_path_with_name(path, rel) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        tar.finish()?;
    }
    encoder.finish()
}

/// Whether a symlink at `entry` (relative) pointing to `target` stays inside the root.
fn link_stays_inside(entry: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = 0;
    let parent = entry.parent().unwrap_or_else(|| Path::new(""));
    for c in parent.components().chain(target.components()) {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Empties `root` (keeps the directory itself).
///
/// # Errors
/// A removal fails.
pub fn truncate(root: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Extracts an archive made by [`write_archive`] into `root`. Entries that would land
/// outside `root` (`..`, absolute paths, through symlinks), symlinks pointing outside,
/// hard links and device nodes are skipped. Returns the number of entries skipped.
///
/// # Errors
/// The archive is unreadable or a write fails.
pub fn extract(reader: impl Read, root: &Path) -> io::Result<u64> {
    let decoder = zstd::stream::read::Decoder::new(reader)?;
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    let mut skipped = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let allowed = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory => {
                true
            }
            tar::EntryType::Symlink => {
                let path = entry.path()?.into_owned();
                match entry.link_name()? {
                    Some(target) => link_stays_inside(&path, &target),
                    None => false,
                }
            }
            _ => false,
        };
        if !allowed || !entry.unpack_in(root)? {
            skipped += 1;
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_honours_ignore_files() {
        let src = tempfile::tempdir().expect("tmp");
        let root = src.path();
        std::fs::create_dir_all(root.join("world/region")).expect("mkdir");
        std::fs::write(root.join("world/region/r.0.0.mca"), vec![7u8; 100_000]).expect("w");
        std::fs::write(root.join("server.properties"), "motd=hi\n").expect("w");
        std::fs::create_dir_all(root.join("logs")).expect("mkdir");
        std::fs::write(root.join("logs/latest.log"), "noise").expect("w");
        std::fs::write(root.join("cache.tmp"), "noise").expect("w");
        std::fs::write(root.join(".shardlynignore"), "logs/\n").expect("w");
        std::fs::write(root.join("world/.pteroignore"), "*.lock\n").expect("w");
        std::fs::write(root.join("world/session.lock"), "x").expect("w");
        let mut out = Vec::new();
        let w = write_archive(root, "*.tmp\n", 2, HashWriter::new(&mut out)).expect("archive");
        let (_, sha, size) = w.finish();
        assert_eq!(size, out.len() as u64);
        assert_eq!(hash_reader(&out[..]).expect("hash").0, sha);
        let dst = tempfile::tempdir().expect("tmp");
        assert_eq!(extract(&out[..], dst.path()).expect("extract"), 0);
        let d = dst.path();
        assert_eq!(
            std::fs::read(d.join("world/region/r.0.0.mca")).expect("r"),
            vec![7u8; 100_000]
        );
        assert!(d.join("server.properties").exists());
        assert!(!d.join("logs").exists(), ".shardlynignore");
        assert!(!d.join("cache.tmp").exists(), "request patterns");
        assert!(!d.join("world/session.lock").exists(), ".pteroignore");
    }

    #[test]
    fn symlinks_out_are_refused() {
        assert!(link_stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("a/b"), Path::new("../../c")));
        assert!(!link_stays_inside(Path::new("a"), Path::new("/etc/passwd")));
        let mut raw = Vec::new();
        {
            let enc = zstd::stream::write::Encoder::new(&mut raw, 1).expect("enc");
            let mut tar = tar::Builder::new(enc);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, "evil", "/etc").expect("link");
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            tar.append_data(&mut h, "ok.txt", &b"ok"[..]).expect("data");
            tar.into_inner().expect("tar").finish().expect("zstd");
        }
        let dst = tempfile::tempdir().expect("tmp");
        assert_eq!(extract(&raw[..], dst.path()).expect("extract"), 1);
        assert!(std::fs::symlink_metadata(dst.path().join("evil")).is_err());
        assert_eq!(std::fs::read(dst.path().join("ok.txt")).expect("r"), b"ok");
    }
}
