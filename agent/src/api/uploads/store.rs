//! On-disk state of an upload: `DATA_DIR/uploads/{id}.part` (the bytes received) and
//! `DATA_DIR/uploads/{id}.json` (the sidecar). The sidecar's `offset` is the committed
//! offset: bytes past it in the part file (a crash mid-append) are cut off on the next
//! append, so a restart never reports bytes that were not synced.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use shardlyn_proto::upload::UploadStatus;

/// The sidecar of one upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sidecar {
    pub id: String,
    pub instance_id: String,
    /// Target path relative to the server's files.
    pub path: String,
    pub length: u64,
    pub offset: u64,
    pub expires_at: i64,
    #[serde(default)]
    pub completed: bool,
}

impl Sidecar {
    pub fn status(&self) -> UploadStatus {
        UploadStatus {
            id: self.id.clone(),
            offset: self.offset,
            length: self.length,
            completed: self.completed,
            expires_at: self.expires_at,
        }
    }

    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at < now_ms
    }
}

/// The uploads directory of an agent.
#[derive(Debug, Clone)]
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn part(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}.part"))
    }

    fn sidecar(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}.json"))
    }

    /// The sidecar of `id`, if any (an unreadable one counts as missing).
    pub fn load(&self, id: &str) -> Option<Sidecar> {
        let text = std::fs::read(self.sidecar(id)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Writes the sidecar atomically (temporary file, fsync, rename).
    pub fn save(&self, s: &Sidecar) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.0)?;
        let path = self.sidecar(&s.id);
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(s).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    }

    /// Removes the part file and the sidecar of `id`.
    pub fn remove(&self, id: &str) {
        for p in [self.part(id), self.sidecar(id)] {
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %p.display(), error = %e, "removing upload data");
            }
        }
    }

    /// Every sidecar in the directory.
    pub fn all(&self) -> Vec<Sidecar> {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                self.load(id)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_round_trip_and_list() {
        let root = tempfile::tempdir().expect("tempdir");
        let d = Dir(root.path().join("uploads"));
        let s = Sidecar {
            id: "u1".into(),
            instance_id: "i1".into(),
            path: "/a.txt".into(),
            length: 5,
            offset: 3,
            expires_at: 10,
            completed: false,
        };
        d.save(&s).expect("save");
        assert_eq!(d.load("u1").map(|s| s.offset), Some(3));
        assert_eq!(d.all().len(), 1);
        assert!(s.expired(11) && !s.expired(10));
        d.remove("u1");
        assert!(d.load("u1").is_none());
    }
}
