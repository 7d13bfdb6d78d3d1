//! Archives: compress (zip, tar.gz, tar.zst), decompress (zip-slip safe, charged to the
//! disk limit), and a streamed zip of a directory for downloads. Symlinks are never
//! archived nor extracted; denied files are skipped when archiving.

use std::io::{Read, Seek, Write};

use super::{FileError, PendingWrite, RelPath, Sandbox, TEMP_PREFIX, open_in};

pub use shardlyn_proto::files::ArchiveFormat;

impl Seek for PendingWrite {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        match self.file.as_mut() {
            Some(f) => f.seek(pos),
            None => Err(std::io::Error::other("file taken")),
        }
    }
}

impl Write for PendingWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_chunk(buf)
            .map_err(|e| std::io::Error::other(Box::new(e)))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Recovers a [`FileError`] smuggled through `io::Error` (disk limit while writing).
fn unwrap_io(e: std::io::Error, what: &str) -> FileError {
    if e.get_ref().is_some_and(|inner| inner.is::<FileError>()) {
        if let Some(inner) = e.into_inner()
            && let Ok(fe) = inner.downcast::<FileError>()
        {
            return *fe;
        }
        return FileError::Io(what.to_owned());
    }
    FileError::Io(format!("{what}: {e}"))
}

/// Every regular file under the selection, as (path in the volume, name in the archive).
fn collect(
    sb: &Sandbox,
    base: &RelPath,
    items: &[RelPath],
) -> Result<Vec<(RelPath, String, bool)>, FileError> {
    let mut out = Vec::new();
    let strip = |p: &RelPath| p.components()[base.components().len()..].join("/");
    for item in items {
        let meta = sb
            .root()
            .symlink_metadata(item.as_path())
            .map_err(|e| FileError::io(&item.display(), &e))?;
        if meta.is_file() {
            if !sb.is_denied(item, false) {
                out.push((item.clone(), strip(item), false));
            }
        } else if meta.is_dir() {
            if !item.is_root() && item != base {
                out.push((item.clone(), strip(item), true));
            }
            super::list::walk(sb.root(), item, &mut |p, is_dir| {
                let name = p.name().unwrap_or("");
                if !name.starts_with(TEMP_PREFIX) && !sb.is_denied(p, is_dir) {
                    let is_file = is_dir
                        || sb
                            .root()
                            .symlink_metadata(p.as_path())
                            .is_ok_and(|m| m.is_file());
                    if is_file {
                        out.push((p.clone(), strip(p), is_dir));
                    }
                }
                true
            })?;
        }
    }
    Ok(out)
}

/// Writes the selection as a zip into `w` (streaming: `w` need not seek).
fn write_zip<W: Write + Seek>(
    sb: &Sandbox,
    files: &[(RelPath, String, bool)],
    w: W,
) -> Result<W, FileError> {
    let mut zip = zip::ZipWriter::new(w);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (p, name, is_dir) in files {
        if *is_dir {
            zip.add_directory(name.as_str(), opts)
                .map_err(|e| FileError::Io(format!("zip: {e}")))?;
            continue;
        }
        let Ok(mut f) = open_in(sb.root(), p) else {
            continue;
        };
        zip.start_file(name.as_str(), opts)
            .map_err(|e| FileError::Io(format!("zip: {e}")))?;
        std::io::copy(&mut f, &mut zip).map_err(|e| unwrap_io(e, "zip"))?;
    }
    let inner = zip.finish().map_err(|e| match e {
        zip::result::ZipError::Io(io) => unwrap_io(io, "zip"),
        other => FileError::Io(format!("zip: {other}")),
    })?;
    Ok(inner)
}

fn write_tar<W: Write>(
    sb: &Sandbox,
    files: &[(RelPath, String, bool)],
    w: W,
) -> Result<W, FileError> {
    let mut tar = tar::Builder::new(w);
    tar.follow_symlinks(false);
    for (p, name, is_dir) in files {
        if *is_dir {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())
                .map_err(|e| unwrap_io(e, "tar"))?;
            continue;
        }
        let Ok(f) = open_in(sb.root(), p) else {
            continue;
        };
        let Ok(meta) = f.metadata() else { continue };
        let mut h = tar::Header::new_gnu();
        h.set_size(meta.len());
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, f)
            .map_err(|e| unwrap_io(e, "tar"))?;
    }
    tar.into_inner().map_err(|e| unwrap_io(e, "tar"))
}

/// Compresses `items` (user paths inside `base`) into a new archive in `base`, named
/// `name` or `archive-{unix secs}.{ext}`. Returns the archive's user path.
///
/// # Errors
/// Bad paths, an item outside `base`, not found, denied target, disk limit.
pub fn compress(
    sb: &Sandbox,
    base: &str,
    items: &[String],
    format: ArchiveFormat,
    name: Option<&str>,
) -> Result<String, FileError> {
    let base = sb.resolve(base)?;
    let mut paths = Vec::new();
    for item in items {
        let p = sb.resolve(&format!("{}/{item}", base.display()))?;
        if !p.starts_with(&base) || p == base {
            return Err(FileError::BadPath(format!(
                "{item} is not inside {}",
                base.display()
            )));
        }
        paths.push(p);
    }
    if paths.is_empty() {
        paths.push(base.clone());
    }
    let file_name = match name {
        Some(n) if !n.contains('/') && !n.is_empty() && n != ".." && n != "." => n.to_owned(),
        Some(_) => return Err(FileError::BadPath("name must be a plain file name".into())),
        None => format!(
            "archive-{}.{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            format.extension()
        ),
    };
    let target = base.join(&file_name);
    if sb.root().symlink_metadata(target.as_path()).is_ok() {
        return Err(FileError::Exists(format!(
            "{} already exists",
            target.display()
        )));
    }
    let files = collect(sb, &base, &paths)?;
    let w = sb.create(&target.display())?;
    let w = match format {
        ArchiveFormat::Zip => write_zip(sb, &files, w)?,
        ArchiveFormat::TarGz => {
            let enc = flate2::write::GzEncoder::new(w, flate2::Compression::default());
            write_tar(sb, &files, enc)?
                .finish()
                .map_err(|e| unwrap_io(e, "gzip"))?
        }
        ArchiveFormat::TarZst => {
            let enc = zstd::Encoder::new(w, 3).map_err(|e| unwrap_io(e, "zstd"))?;
            write_tar(sb, &files, enc)?
                .finish()
                .map_err(|e| unwrap_io(e, "zstd"))?
        }
    };
    w.commit()?;
    Ok(target.display())
}

/// Checks that `dir` can be downloaded as a zip (a directory inside the volume, not
/// denied) and returns it resolved. The download route calls this before it starts
/// streaming, so these errors are still proper JSON responses.
///
/// # Errors
/// Bad path, not found, not a directory, denied.
pub fn zip_dir_check(sb: &Sandbox, dir: &str) -> Result<RelPath, FileError> {
    let base = sb.resolve(dir)?;
    let meta = sb
        .root()
        .metadata(base.as_path())
        .map_err(|e| FileError::io(&base.display(), &e))?;
    if !meta.is_dir() {
        return Err(FileError::WrongType(format!(
            "{} is not a directory",
            base.display()
        )));
    }
    sb.check_allowed(&base, true)?;
    Ok(base)
}

/// Streams a zip of directory `dir` into `w` (which need not seek: see
/// [`super::zipstream`]), with the same entries as [`compress`] would archive: denied
/// paths and in-progress writes skipped, symlinks not followed, files that vanish
/// meanwhile left out. Returns `w`.
///
/// # Errors
/// As [`zip_dir_check`]; I/O, including `w` failing (the reader went away).
pub fn zip_dir_stream<W: Write>(sb: &Sandbox, dir: &str, w: W) -> Result<W, FileError> {
    let base = zip_dir_check(sb, dir)?;
    let files = collect(sb, &base, std::slice::from_ref(&base))?;
    let mut zip = super::zipstream::ZipStream::new(w);
    let io = |e: std::io::Error| unwrap_io(e, "zip");
    for (p, name, is_dir) in files {
        if is_dir {
            let (mode, mtime) = match sb.root().symlink_metadata(p.as_path()) {
                Ok(m) => zip_attrs(&m),
                Err(_) => continue,
            };
            zip.add_dir(&name, mode, mtime).map_err(io)?;
            continue;
        }
        let Ok(f) = open_in(sb.root(), &p) else {
            continue;
        };
        let Ok(meta) = f.metadata() else { continue };
        let (mode, mtime) = zip_attrs(&meta);
        zip.add_file(&name, mode, mtime, &mut f.into_std())
            .map_err(io)?;
    }
    zip.finish().map_err(io)
}

/// Permission bits and modification time of an archived entry.
fn zip_attrs(meta: &cap_std::fs::Metadata) -> (u32, std::time::SystemTime) {
    use cap_std::fs::PermissionsExt;
    let mtime = meta
        .modified()
        .map_or(std::time::UNIX_EPOCH, cap_std::time::SystemTime::into_std);
    (meta.permissions().mode() & 0o7777, mtime)
}

/// Where an archive entry named `name` lands under `dest`; `None` when it would leave
/// `dest` (zip-slip) or is empty.
fn entry_target(dest: &RelPath, name: &str) -> Option<RelPath> {
    let name = name.replace('\\', "/");
    let p = RelPath::parse(&format!("{}/{name}", dest.display())).ok()?;
    (p.starts_with(dest) && p != *dest).then_some(p)
}

fn extract_file(sb: &Sandbox, target: &RelPath, r: &mut impl Read) -> Result<(), FileError> {
    if let Some((parent, _)) = target.split_last()
        && !parent.is_root()
    {
        sb.root()
            .create_dir_all(parent.as_path())
            .map_err(|e| FileError::io(&parent.display(), &e))?;
    }
    if sb.is_denied(target, false) {
        return Ok(()); // denied files are not written
    }
    let mut w = sb.create(&target.display())?;
    w.copy_from(r)?;
    w.commit()?;
    Ok(())
}

/// Extracts `archive` (user path) into directory `dest`. Entries leaving `dest`,
/// symlinks and denied paths are skipped; every byte is charged to the disk limit.
/// Returns the number of files written.
///
/// # Errors
/// Bad paths, unknown format, a corrupt archive, disk limit.
pub fn decompress(sb: &Sandbox, archive: &str, dest: &str) -> Result<usize, FileError> {
    let format = ArchiveFormat::from_name(archive).ok_or_else(|| {
        FileError::BadRequest("unknown archive format (zip, tar.gz, tar.zst)".into())
    })?;
    let (file, _) = sb.open_file(archive)?;
    let dest = sb.resolve(dest)?;
    if !dest.is_root() {
        sb.root()
            .create_dir_all(dest.as_path())
            .map_err(|e| FileError::io(&dest.display(), &e))?;
    }
    let mut count = 0usize;
    match format {
        ArchiveFormat::Zip => {
            let mut zip = zip::ZipArchive::new(file)
                .map_err(|e| FileError::BadRequest(format!("not a zip archive: {e}")))?;
            for i in 0..zip.len() {
                let mut entry = zip
                    .by_index(i)
                    .map_err(|e| FileError::BadRequest(format!("corrupt zip: {e}")))?;
                if entry.is_symlink() {
                    continue;
                }
                let Some(target) = entry_target(&dest, entry.name()) else {
                    continue;
                };
                if entry.is_dir() {
                    sb.root()
                        .create_dir_all(target.as_path())
                        .map_err(|e| FileError::io(&target.display(), &e))?;
                } else {
                    extract_file(sb, &target, &mut entry)?;
                    count += 1;
                }
            }
        }
        ArchiveFormat::TarGz => {
            count = extract_tar(sb, &dest, flate2::read::GzDecoder::new(file))?;
        }
        ArchiveFormat::TarZst => {
            let dec = zstd::Decoder::new(file)
                .map_err(|e| FileError::BadRequest(format!("zstd: {e}")))?;
            count = extract_tar(sb, &dest, dec)?;
        }
    }
    Ok(count)
}

fn extract_tar(sb: &Sandbox, dest: &RelPath, r: impl Read) -> Result<usize, FileError> {
    let mut tar = tar::Archive::new(r);
    let mut count = 0;
    let entries = tar
        .entries()
        .map_err(|e| FileError::BadRequest(format!("corrupt tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| FileError::BadRequest(format!("corrupt tar: {e}")))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(target) = entry_target(dest, &name) else {
            continue;
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => sb
                .root()
                .create_dir_all(target.as_path())
                .map_err(|e| FileError::io(&target.display(), &e))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                extract_file(sb, &target, &mut entry)?;
                count += 1;
            }
            _ => {}
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A volume with nested directories, a denied file and directory, a symlink and an
    /// in-progress write.
    fn volume() -> (tempfile::TempDir, Sandbox) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("world/region")).unwrap();
        std::fs::create_dir_all(root.join("secret")).unwrap();
        std::fs::write(root.join("world/level.dat"), b"level").unwrap();
        std::fs::write(root.join("world/region/r.0.0.mca"), vec![7u8; 100_000]).unwrap();
        std::fs::write(root.join("world/empty"), b"").unwrap();
        std::fs::write(root.join("world/key.pem"), b"denied").unwrap();
        std::fs::write(root.join("secret/x"), b"denied").unwrap();
        std::fs::write(root.join(format!("world/{TEMP_PREFIX}1")), b"tmp").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("world/link")).unwrap();
        let deny = ["*.pem".to_owned(), "/secret/".to_owned()];
        let sb = Sandbox::open(root, &deny, 0).unwrap();
        (dir, sb)
    }

    #[test]
    fn streamed_zip_has_what_compress_archives() {
        let (_dir, sb) = volume();
        let bytes = zip_dir_stream(&sb, "/", Vec::new()).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "world/",
                "world/empty",
                "world/level.dat",
                "world/region/",
                "world/region/r.0.0.mca"
            ]
        );
        let mut f = zip.by_name("world/region/r.0.0.mca").unwrap();
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        assert_eq!(out, vec![7u8; 100_000]);
        // A subdirectory: names are relative to it.
        let bytes = zip_dir_stream(&sb, "/world/region", Vec::new()).unwrap();
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.file_names().collect::<Vec<_>>(), ["r.0.0.mca"]);
    }

    #[test]
    fn zip_dir_check_refuses_before_streaming() {
        let (_dir, sb) = volume();
        let code = |p: &str| zip_dir_check(&sb, p).unwrap_err().status_code().1;
        assert_eq!(code("/world/level.dat"), "WRONG_TYPE");
        assert_eq!(code("/nope"), "FILE_NOT_FOUND");
        assert_eq!(code("/secret"), "FILE_DENIED");
        assert_eq!(code("/a\\b"), "BAD_PATH");
        assert_eq!(zip_dir_check(&sb, "/world").unwrap().display(), "/world");
    }
}
