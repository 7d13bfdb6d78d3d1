//! Copies a fetched commit's files into an instance through its sandbox.
//!
//! Everything is checked before the first write (paths, the denylist, files or
//! directories in the way, the disk limit), so a refused sync leaves the instance's files
//! as they were. The source is read through a capability handle on the staging work tree,
//! so even a path that git left behind a symlink cannot lead out of it. A manifest of the
//! written paths (`DATA_DIR/git/{instance}/manifest.json`) lets the next sync into the same
//! target remove the files the repository dropped.

use std::collections::BTreeSet;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use super::GitError;
use crate::files::{FileError, RelPath, Sandbox};

/// What the previous sync wrote.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    target_dir: String,
    files: BTreeSet<String>,
}

/// One file to write: where it comes from in the work tree, where it goes, its size.
struct Planned {
    source: String,
    dest: RelPath,
    len: u64,
}

/// Copies `files` (work-tree paths of `repo`) under `target_dir` of `sb`; returns the
/// files written and the stale files removed.
///
/// # Errors
/// [`GitError::Files`] for a refused path, the denylist, the disk limit or a conflict;
/// nothing is written then.
pub fn deploy(
    sb: &Sandbox,
    repo: &Path,
    files: &[String],
    target_dir: &str,
    manifest_path: &Path,
) -> Result<(u64, u64), GitError> {
    let source = Dir::open_ambient_dir(repo, ambient_authority())
        .map_err(|e| GitError::Io(format!("{}: {e}", repo.display())))?;
    let target = sb.resolve(target_dir)?;
    sb.check_allowed(&target, true)?;
    let plan = plan(sb, &source, &target, files)?;
    check_space(sb, &plan)?;

    if !target.is_root() {
        sb.mkdir(&target.display())?;
    }
    let mut written = BTreeSet::new();
    for p in &plan {
        if let Some((parent, _)) = p.dest.split_last()
            && !parent.is_root()
        {
            sb.mkdir(&parent.display())?;
        }
        let mut src = source
            .open(&p.source)
            .map_err(|e| FileError::io(&p.source, &e))?;
        let mut w = sb.create(&p.dest.display())?;
        w.copy_from(&mut src)?;
        w.commit()?;
        written.insert(p.dest.display());
    }

    let previous = read_manifest(manifest_path);
    let mut removed = 0;
    if previous.target_dir == target.display() {
        for stale in previous.files.difference(&written) {
            if remove_file(sb, stale) {
                removed += 1;
            }
        }
    }
    let manifest = Manifest {
        target_dir: target.display(),
        files: written,
    };
    let text = serde_json::to_vec(&manifest).map_err(|e| GitError::Io(e.to_string()))?;
    std::fs::write(manifest_path, text).map_err(|e| GitError::Io(format!("manifest: {e}")))?;
    Ok((manifest.files.len() as u64, removed))
}

/// Resolves and checks every destination before anything is written.
fn plan(
    sb: &Sandbox,
    source: &Dir,
    target: &RelPath,
    files: &[String],
) -> Result<Vec<Planned>, GitError> {
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let rel = RelPath::parse(file)?;
        if rel.is_root() {
            continue;
        }
        let meta = source
            .symlink_metadata(rel.as_path())
            .map_err(|e| FileError::io(file, &e))?;
        if !meta.is_file() {
            continue; // not a regular file in the work tree (never follow links)
        }
        let mut dest = target.clone();
        for c in rel.components() {
            dest = dest.join(c);
        }
        sb.check_allowed(&dest, false)?;
        check_in_the_way(sb, &dest)?;
        out.push(Planned {
            source: rel.as_path().to_string_lossy().into_owned(),
            dest,
            len: meta.len(),
        });
    }
    Ok(out)
}

/// Refuses a directory where the file goes, or a non-directory where a parent goes.
fn check_in_the_way(sb: &Sandbox, dest: &RelPath) -> Result<(), GitError> {
    let mut cur = RelPath::default();
    let components = dest.components();
    for (i, c) in components.iter().enumerate() {
        cur = cur.join(c);
        let Ok(meta) = sb.root().metadata(cur.as_path()) else {
            return Ok(()); // missing: created on the way
        };
        let last = i + 1 == components.len();
        if last && meta.is_dir() {
            return Err(FileError::WrongType(format!(
                "{} is a directory in the server files but a file in the repository",
                cur.display()
            ))
            .into());
        }
        if !last && !meta.is_dir() {
            return Err(FileError::WrongType(format!(
                "{} is a file in the server files but a directory in the repository",
                cur.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Refuses a sync that would take the volume over its disk limit.
fn check_space(sb: &Sandbox, plan: &[Planned]) -> Result<(), GitError> {
    if sb.limit() == 0 {
        return Ok(());
    }
    let mut grow: u64 = 0;
    let mut freed: u64 = 0;
    for p in plan {
        grow = grow.saturating_add(p.len);
        if let Ok(m) = sb.root().symlink_metadata(p.dest.as_path())
            && m.is_file()
        {
            freed = freed.saturating_add(m.len());
        }
    }
    if sb.usage().saturating_add(grow) > sb.limit().saturating_add(freed) {
        return Err(FileError::DiskLimit {
            limit_mb: sb.limit() / (1024 * 1024),
        }
        .into());
    }
    Ok(())
}

fn read_manifest(path: &Path) -> Manifest {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Removes a file a previous sync wrote, if it is still a regular file there.
fn remove_file(sb: &Sandbox, user: &str) -> bool {
    let Ok(p) = sb.resolve(user) else {
        return false;
    };
    match sb.root().symlink_metadata(p.as_path()) {
        Ok(m) if m.is_file() => sb.remove(user).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    fn names(files: &[(&str, &str)]) -> Vec<String> {
        files.iter().map(|(p, _)| (*p).to_owned()).collect()
    }

    #[test]
    fn copies_then_removes_dropped_files() {
        let vol = tempfile::tempdir().expect("tempdir");
        let state = tempfile::tempdir().expect("tempdir");
        let manifest = state.path().join("manifest.json");
        let sb = Sandbox::open(vol.path(), &[], 0).expect("sandbox");
        let first = [("a.txt", "one"), ("conf/b.yml", "b: 1")];
        let repo = repo_with(&first);
        let n = deploy(&sb, repo.path(), &names(&first), "/app", &manifest).expect("deploy");
        assert_eq!(n, (2, 0));
        assert_eq!(
            std::fs::read_to_string(vol.path().join("app/conf/b.yml")).expect("read"),
            "b: 1"
        );

        std::fs::write(vol.path().join("app/user.txt"), "mine").expect("write");
        let second = [("a.txt", "two")];
        let repo = repo_with(&second);
        let n = deploy(&sb, repo.path(), &names(&second), "app", &manifest).expect("deploy");
        assert_eq!(n, (1, 1));
        assert_eq!(
            std::fs::read_to_string(vol.path().join("app/a.txt")).expect("read"),
            "two"
        );
        assert!(!vol.path().join("app/conf/b.yml").exists());
        assert!(
            vol.path().join("app/user.txt").exists(),
            "files the sync did not write stay"
        );
    }

    #[test]
    fn symlinks_are_not_followed_and_refusals_write_nothing() {
        let vol = tempfile::tempdir().expect("tempdir");
        let state = tempfile::tempdir().expect("tempdir");
        let manifest = state.path().join("manifest.json");
        let repo = repo_with(&[("ok.txt", "fine")]);
        std::os::unix::fs::symlink("/etc/passwd", repo.path().join("leak")).expect("symlink");
        let sb = Sandbox::open(vol.path(), &["*.jar".to_owned()], 0).expect("sandbox");
        let files = vec!["ok.txt".to_owned(), "leak".to_owned()];
        assert_eq!(
            deploy(&sb, repo.path(), &files, "/", &manifest).expect("deploy"),
            (1, 0)
        );
        assert!(!vol.path().join("leak").exists());

        let repo = repo_with(&[("new.txt", "x"), ("plugin.jar", "jar")]);
        let files = vec!["new.txt".to_owned(), "plugin.jar".to_owned()];
        let err = deploy(&sb, repo.path(), &files, "/", &manifest).expect_err("denied");
        assert!(
            matches!(err, GitError::Files(FileError::Denied(_))),
            "{err}"
        );
        assert!(
            !vol.path().join("new.txt").exists(),
            "nothing written on refusal"
        );

        let small = Sandbox::open(vol.path(), &[], 1024 * 1024).expect("sandbox");
        let big = "x".repeat(2 * 1024 * 1024);
        let repo = repo_with(&[("big.bin", &big)]);
        let err = deploy(&small, repo.path(), &["big.bin".to_owned()], "/", &manifest)
            .expect_err("over the limit");
        assert!(
            matches!(err, GitError::Files(FileError::DiskLimit { .. })),
            "{err}"
        );
        assert!(!vol.path().join("big.bin").exists());
    }
}
