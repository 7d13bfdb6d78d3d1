//! The archive format: a tar of the server directory, compressed with multithreaded
//! zstd, hashed (SHA-256) and counted as it is written (extraction: `restore.rs`).
//!
//! Ignore files in gitignore syntax are honoured anywhere in the tree: `.shardlynignore`
//! and `.pteroignore` (servers migrated from Pterodactyl), plus the patterns given with
//! the request (rooted at the server directory).

use std::io::{self, Read, Write};
use std::path::Path;

use ignore::WalkBuilder;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

use super::progress::{Counted, Reporter};

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

/// The walk of `root` an archive takes: every entry but ignored ones, links not followed.
fn walk(root: &Path, extra: Gitignore) -> ignore::Walk {
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
    walk.build()
}

/// Tar block size: headers and the padding of file contents.
const BLOCK: u64 = 512;

/// About how many bytes the tar stream of `root`'s archive will hold (before
/// compression): a header per entry (two for long names are not counted), each file's
/// contents padded to a block, and the two closing blocks. What the backup's progress is
/// measured against.
///
/// # Errors
/// The ignore patterns do not parse.
pub fn estimate(root: &Path, ignored: &str) -> io::Result<u64> {
    let extra = extra_patterns(root, ignored)?;
    let mut total = 2 * BLOCK;
    for entry in walk(root, extra).flatten() {
        if entry.path() == root {
            continue;
        }
        total += BLOCK;
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
        {
            total += meta.len().div_ceil(BLOCK) * BLOCK;
        }
    }
    Ok(total)
}

/// Writes the archive of `root` (minus ignored paths) into `out`; `threads` zstd
/// workers; `reporter` counts the tar stream's bytes.
///
/// # Errors
/// Reading the tree or writing `out` fails.
pub fn write_archive<W: Write>(
    root: &Path,
    ignored: &str,
    threads: u32,
    out: W,
    reporter: &Reporter,
) -> io::Result<W> {
    let extra = extra_patterns(root, ignored)?;
    let mut encoder = zstd::stream::write::Encoder::new(out, LEVEL)?;
    if threads > 1 {
        encoder.multithread(threads)?;
    }
    {
        let mut tar = tar::Builder::new(Counted {
            inner: &mut encoder,
            reporter,
        });
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Complete);
        for entry in walk(root, extra) {
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
        let (tx, _rx) = tokio::sync::broadcast::channel(4);
        let reporter = Reporter::new(
            tx,
            "i",
            "b",
            shardlyn_proto::backup::BackupOperation::Backup,
            std::time::Duration::ZERO,
        );
        let estimate = estimate(root, "*.tmp\n").expect("estimate");
        let w = write_archive(root, "*.tmp\n", 2, HashWriter::new(&mut out), &reporter)
            .expect("archive");
        let (_, sha, size) = w.finish();
        assert_eq!(size, out.len() as u64);
        // tar pads its end to 10 KiB records; the estimate counts blocks only.
        let written = reporter.done();
        assert!(
            written >= estimate && written - estimate < 10 * 1024,
            "estimated {estimate}, wrote {written}"
        );
        assert_eq!(hash_reader(&out[..]).expect("hash").0, sha);
        let dst = tempfile::tempdir().expect("tmp");
        let dir = cap_std::fs::Dir::open_ambient_dir(dst.path(), cap_std::ambient_authority())
            .expect("dir");
        assert_eq!(
            super::super::restore::extract(&out[..], &dir).expect("extract"),
            0
        );
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
}
