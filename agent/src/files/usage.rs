//! The per-volume disk usage counter: one walk, then kept up to date by writes made
//! through a sandbox, re-walked when older than [`USAGE_TTL`] (the game server writes
//! to its volume too, behind our back).
//!
//! The counters live in a process-wide map keyed by volume path so that every sandbox
//! opened on a volume (file routes, uploads, SFTP) shares one. It holds plain numbers,
//! no connections.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use cap_std::fs::Dir;

/// How long a walked figure is trusted.
pub const USAGE_TTL: Duration = Duration::from_secs(60);

static COUNTERS: LazyLock<Mutex<HashMap<PathBuf, Arc<Usage>>>> = LazyLock::new(Mutex::default);

/// One volume's usage.
#[derive(Default)]
pub struct Usage {
    state: Mutex<Option<(u64, Instant)>>,
}

impl Usage {
    /// The shared counter of `volume`.
    pub fn for_volume(volume: &Path) -> Arc<Self> {
        let mut map = COUNTERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(volume.to_path_buf()).or_default().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, Instant)>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes used, walking `root` when the figure is missing or stale.
    pub fn current(&self, root: &Dir) -> u64 {
        if let Some((bytes, at)) = *self.lock()
            && at.elapsed() < USAGE_TTL
        {
            return bytes;
        }
        let walked = walk_size(root, 0);
        *self.lock() = Some((walked, Instant::now()));
        walked
    }

    /// Adds bytes (no-op before the first walk).
    pub fn add(&self, n: u64) {
        if let Some((bytes, _)) = self.lock().as_mut() {
            *bytes = bytes.saturating_add(n);
        }
    }

    /// Removes bytes (no-op before the first walk).
    pub fn sub(&self, n: u64) {
        if let Some((bytes, _)) = self.lock().as_mut() {
            *bytes = bytes.saturating_sub(n);
        }
    }
}

/// Total size of the regular files under `dir`, not following symlinks.
pub(crate) fn walk_size(dir: &Dir, depth: usize) -> u64 {
    if depth > 64 {
        return 0;
    }
    let Ok(entries) = dir.entries() else { return 0 };
    let mut total = 0u64;
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if let Ok(sub) = entry.open_dir() {
                total = total.saturating_add(walk_size(&sub, depth + 1));
            }
        } else if ft.is_file()
            && let Ok(m) = entry.metadata()
        {
            total = total.saturating_add(m.len());
        }
    }
    total
}
