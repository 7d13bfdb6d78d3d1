//! Extracting a backup archive into an instance's volume, through the file sandbox: every
//! write goes through the capability handle rooted at the volume (`crate::files`), so
//! the kernel resolves each path inside it and a symlink (one the server made, or one
//! planted earlier in the same archive) cannot carry a later entry outside.
//!
//! Entries that cannot be placed safely are skipped and counted, not fatal: the restore
//! may already have emptied the directory, and giving back every legitimate file beats
//! leaving half a server. Skipped are: paths with `..` or a root, hard links, device
//! nodes and FIFOs, symlinks whose target leaves the volume (judged from where the link
//! really lands, so `a -> .` then `a/x -> ..` is refused), and entries whose parent
//! leads outside through a symlink. Modes keep only the permission bits (no setuid).

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use std::os::unix::fs::PermissionsExt as _;

use cap_std::fs::{Dir, OpenOptions, PermissionsExt as _};

/// Warnings logged per restore before the rest are only counted.
const MAX_WARNINGS: u64 = 20;

/// Whether a symlink at `entry` (relative to the root, parents already resolved)
/// pointing to `target` stays inside the root.
pub(crate) fn link_stays_inside(entry: &Path, target: &Path) -> bool {
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

/// Empties the volume (keeps the directory itself); symlinks are removed, not followed.
///
/// # Errors
/// A removal fails.
pub fn truncate(root: &Dir) -> io::Result<()> {
    for entry in root.entries()? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            root.remove_dir_all(&name)?;
        } else {
            root.remove_file(&name)?;
        }
    }
    Ok(())
}

/// An entry's path as plain relative components; `None` with `..`, a root or nothing.
fn relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Why an entry was not placed, or the I/O error that stops the restore.
enum Placed {
    Done,
    Skipped(String),
}

/// Errors that mean "this path cannot be reached safely" rather than "the disk failed":
/// cap-std reports an escape as `PermissionDenied`; a directory in a file's way, or a
/// file in a directory's way, is the archive's problem too.
fn is_unsafe(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::AlreadyExists
            | io::ErrorKind::DirectoryNotEmpty
    ) || e.raw_os_error() == Some(40) // ELOOP
}

/// Gives `fd` the volume owner (only works as root; the game server runs as that user).
fn own(fd: &impl std::os::fd::AsFd, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::fchown(fd, Some(uid), Some(gid));
    }
}

/// Removes a file or symlink at `name` in `dir` (never follows it); a directory stays.
fn clear(dir: &Dir, name: &Path) -> io::Result<()> {
    match dir.symlink_metadata(name) {
        Ok(m) if m.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "a directory is in the way",
        )),
        Ok(_) => dir.remove_file(name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The parent directory of `rel`, created as needed, and `rel`'s last component.
fn parent_of<'a>(root: &Dir, rel: &'a Path) -> io::Result<(Dir, &'a Path)> {
    let name = Path::new(rel.file_name().unwrap_or_default());
    match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => {
            root.create_dir_all(parent)?;
            Ok((root.open_dir(parent)?, name))
        }
        None => Ok((root.try_clone()?, name)),
    }
}

fn place<R: Read>(
    root: &Dir,
    owner: Option<(u32, u32)>,
    entry: &mut tar::Entry<'_, R>,
) -> io::Result<Placed> {
    let raw = entry.path()?.into_owned();
    let Some(rel) = relative(&raw) else {
        return Ok(Placed::Skipped(
            "the path leaves the server directory".into(),
        ));
    };
    let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
    match entry.header().entry_type() {
        tar::EntryType::Directory => {
            root.create_dir_all(&rel)?;
            own(&root.open_dir(&rel)?, owner);
            // The owner keeps full access, so the entries inside can still be written.
            root.set_permissions(&rel, cap_std::fs::Permissions::from_mode(mode | 0o700))?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let (dir, name) = parent_of(root, &rel)?;
            clear(&dir, name)?;
            let mut file = dir
                .open_with(name, OpenOptions::new().write(true).create_new(true))?
                .into_std();
            own(&file, owner);
            io::copy(entry, &mut file)?;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            if let Ok(secs) = entry.header().mtime() {
                let _ =
                    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
            }
        }
        tar::EntryType::Symlink => {
            let Some(target) = entry.link_name()? else {
                return Ok(Placed::Skipped("a symlink without a target".into()));
            };
            let (dir, name) = parent_of(root, &rel)?;
            // Judge the target from where the link really lands: its parent may itself
            // go through a symlink placed earlier.
            let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
            let landed = root
                .canonicalize(parent.unwrap_or_else(|| Path::new(".")))?
                .join(name);
            if !link_stays_inside(&landed, &target) {
                return Ok(Placed::Skipped(format!(
                    "a symlink to {} leaves the server directory",
                    target.display()
                )));
            }
            clear(&dir, name)?;
            dir.symlink(&target, name)?;
        }
        other => {
            return Ok(Placed::Skipped(format!(
                "{other:?} entries are not restored"
            )));
        }
    }
    Ok(Placed::Done)
}

/// Extracts an archive made by `archive::write_archive` into the volume `root`. Returns
/// the number of entries skipped (see the module doc).
///
/// # Errors
/// The archive is unreadable or a write fails for another reason than safety.
pub fn extract(reader: impl Read, root: &Dir) -> io::Result<u64> {
    extract_within(reader, root, None)
}

/// [`extract`], refusing (`StorageFull`) once the files' contents pass `budget` bytes.
///
/// # Errors
/// As [`extract`]; `StorageFull` past the budget (what was written stays: the caller
/// drops the directory).
pub fn extract_within(reader: impl Read, root: &Dir, budget: Option<u64>) -> io::Result<u64> {
    let owner = {
        use cap_std::fs::MetadataExt;
        root.dir_metadata().ok().map(|m| (m.uid(), m.gid()))
    };
    let decoder = zstd::stream::read::Decoder::new(reader)?;
    let mut archive = tar::Archive::new(decoder);
    let mut skipped = 0u64;
    let mut written = 0u64;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if let Some(budget) = budget
            && entry.header().entry_type().is_file()
        {
            written = written.saturating_add(entry.header().size().unwrap_or(0));
            if written > budget {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "the node's disk budget for server files is full ({} MiB left)",
                        budget >> 20
                    ),
                ));
            }
        }
        let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let why = match place(root, owner, &mut entry) {
            Ok(Placed::Done) => continue,
            Ok(Placed::Skipped(why)) => why,
            Err(e) if is_unsafe(&e) => format!("cannot be placed safely: {e}"),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{shown}: {e}"))),
        };
        skipped += 1;
        if skipped <= MAX_WARNINGS {
            tracing::warn!(entry = %shown, reason = %why, "restore skipped an archive entry");
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests;
