//! Specs on disk: `DATA_DIR/instances/{id}.json` (mode 0600), written atomically,
//! holding the spec the panel pushed plus what the agent must remember (installed).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shardlyn_proto::instance::InstanceSpec;

/// One stored instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub spec: InstanceSpec,
    #[serde(default)]
    pub installed: bool,
}

fn file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Writes the spec, replacing the previous one, readable by the agent only.
pub(crate) fn save(dir: &Path, stored: &Stored) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = file(dir, &stored.spec.id);
    let tmp = path.with_extension("json.tmp");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    out.write_all(&serde_json::to_vec_pretty(stored).map_err(std::io::Error::other)?)?;
    out.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// Every stored instance; unreadable files are logged and skipped.
pub(crate) fn load_all(dir: &Path) -> Vec<Stored> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Stored>(&b).map_err(|e| e.to_string()))
        {
            Ok(s) if super::valid_id(&s.spec.id) => out.push(s),
            Ok(_) => tracing::warn!(path = %path.display(), "stored instance with a bad id"),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "unreadable instance"),
        }
    }
    out
}

pub(crate) fn remove(dir: &Path, id: &str) -> std::io::Result<()> {
    match std::fs::remove_file(file(dir, id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Gives `path` and everything under it to `uid:gid`, never following symlinks.
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Bytes used under `path`, not following symlinks.
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| disk_usage(&e.path()))
            .sum::<u64>()
    })
}
