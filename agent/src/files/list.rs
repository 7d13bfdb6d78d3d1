//! Directory listings (paged, sorted, dirs first), entry details, walks and name search.
//!
//! A listing reads the directory once (names and `d_type` only), selects the requested
//! page, and `stat`s only that page when sorting by name, so one page of a
//! 100,000-entry directory stays cheap. Size and time orders `stat` every entry, spread
//! over the cores.

use std::time::UNIX_EPOCH;

use cap_std::fs::{Dir, Metadata};
use serde::Deserialize;
pub use shardlyn_proto::files::{Entry, EntryKind, Listing, SortKey};

use super::{FileError, RelPath, Sandbox, TEMP_PREFIX};

/// Largest `per_page`.
pub const MAX_PER_PAGE: usize = 1000;
/// Files up to this size are `editable` in listings (the content route's cap).
pub const EDITABLE_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The entry of `p`, from its (not followed) metadata.
pub(crate) fn entry_of(sb: &Sandbox, p: &RelPath, meta: &Metadata) -> Entry {
    use cap_std::fs::PermissionsExt;
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_dir() {
        EntryKind::Directory
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    let denied = sb.is_denied(p, kind == EntryKind::Directory);
    let modified = meta
        .modified()
        .ok()
        .map(cap_std::time::SystemTime::into_std)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok());
    Entry {
        name: p.name().unwrap_or("").to_owned(),
        path: p.display(),
        kind,
        size: meta.len(),
        modified,
        mode: format!("{:o}", meta.permissions().mode() & 0o7777),
        denied,
        editable: kind == EntryKind::File && !denied && meta.len() <= EDITABLE_MAX_BYTES,
    }
}

/// Paging and order of a listing.
#[derive(Debug, Clone, Deserialize)]
pub struct ListOptions {
    /// 1-based.
    #[serde(default = "one")]
    pub page: usize,
    #[serde(default = "default_per_page")]
    pub per_page: usize,
    #[serde(default)]
    pub sort: SortKey,
    /// Descending (directories still come first).
    #[serde(default)]
    pub desc: bool,
}

fn one() -> usize {
    1
}
fn default_per_page() -> usize {
    100
}

impl Default for ListOptions {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: default_per_page(),
            sort: SortKey::Name,
            desc: false,
        }
    }
}

struct Raw {
    name: String,
    is_dir: bool,
    /// Size or modification time (ns since the epoch), for the non-name orders.
    key: u128,
}

/// Entries `stat`ed per thread at least; below this one thread does it all.
const STAT_CHUNK: usize = 4096;

/// The sort key of one entry (0 when it vanished meanwhile).
fn sort_key(dir: &Dir, name: &str, sort: SortKey) -> u128 {
    let Ok(meta) = dir.symlink_metadata(name) else {
        return 0;
    };
    match sort {
        SortKey::Name => 0,
        SortKey::Size => u128::from(meta.len()),
        SortKey::Modified => meta
            .modified()
            .ok()
            .map(cap_std::time::SystemTime::into_std)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos()),
    }
}

/// Fills the sort keys, `stat`ing in parallel on the available cores: ordering a big
/// directory by size or time is one `stat` per entry, which dominates the listing.
fn fill_keys(dir: &Dir, raw: &mut [Raw], sort: SortKey) {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(raw.len() / STAT_CHUNK)
        .max(1);
    if threads == 1 {
        for r in raw.iter_mut() {
            r.key = sort_key(dir, &r.name, sort);
        }
        return;
    }
    let per = raw.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for chunk in raw.chunks_mut(per) {
            scope.spawn(move || {
                for r in chunk {
                    r.key = sort_key(dir, &r.name, sort);
                }
            });
        }
    });
}

pub(crate) fn list(sb: &Sandbox, p: &RelPath, opts: &ListOptions) -> Result<Listing, FileError> {
    let page = opts.page.max(1);
    let per_page = opts.per_page.clamp(1, MAX_PER_PAGE);
    let dir = sb.open_dir(p)?;
    let entries = dir.entries().map_err(|e| FileError::io(&p.display(), &e))?;
    let mut raw: Vec<Raw> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        raw.push(Raw {
            name,
            is_dir,
            key: 0,
        });
    }
    if opts.sort != SortKey::Name {
        fill_keys(&dir, &mut raw, opts.sort);
    }
    let order = |a: &Raw, b: &Raw| {
        let ord = a.key.cmp(&b.key).then_with(|| a.name.cmp(&b.name));
        let ord = if opts.desc { ord.reverse() } else { ord };
        b.is_dir.cmp(&a.is_dir).then(ord)
    };
    let total = raw.len();
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    // Only the page needs its order: select its bounds (linear on average), then sort
    // the page alone. Names are unique in a directory, so the order is total.
    if start < end {
        if start > 0 {
            raw.select_nth_unstable_by(start, order);
        }
        let rest = &mut raw[start..];
        let len = end - start;
        if len < rest.len() {
            rest.select_nth_unstable_by(len - 1, order);
        }
        rest[..len].sort_by(order);
    }
    let entries = raw[start..end]
        .iter()
        .filter_map(|r| {
            let meta = dir.symlink_metadata(&r.name).ok()?;
            Some(entry_of(sb, &p.join(&r.name), &meta))
        })
        .collect();
    Ok(Listing {
        path: p.display(),
        entries,
        total,
        page,
        per_page,
    })
}

/// Visits every entry under `p` (not following symlinks), depth first; `f` returns
/// false to stop.
pub(crate) fn walk(
    root: &Dir,
    p: &RelPath,
    f: &mut dyn FnMut(&RelPath, bool) -> bool,
) -> Result<(), FileError> {
    fn inner(
        dir: &Dir,
        p: &RelPath,
        depth: usize,
        f: &mut dyn FnMut(&RelPath, bool) -> bool,
    ) -> bool {
        if depth > 64 {
            return true;
        }
        let Ok(entries) = dir.entries() else {
            return true;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(ft) = entry.file_type() else { continue };
            let child = p.join(&name);
            if !f(&child, ft.is_dir()) {
                return false;
            }
            if ft.is_dir()
                && let Ok(sub) = entry.open_dir()
                && !inner(&sub, &child, depth + 1, f)
            {
                return false;
            }
        }
        true
    }
    let dir = if p.is_root() {
        root.try_clone()
    } else {
        root.open_dir(p.as_path())
    }
    .map_err(|e| FileError::io(&p.display(), &e))?;
    inner(&dir, p, 0, f);
    Ok(())
}

/// Total size of regular files under `p`.
pub(crate) fn tree_size(root: &Dir, p: &RelPath) -> u64 {
    match root.open_dir(p.as_path()) {
        Ok(d) => super::usage::walk_size(&d, 0),
        Err(_) => 0,
    }
}

/// Most results of a search.
pub const MAX_SEARCH_RESULTS: usize = 1000;
/// Most entries a search looks at.
pub const MAX_SEARCH_VISITS: usize = 500_000;

/// Finds entries under `base` whose name matches `query`: a glob when it has `*`, `?`
/// or `[`, else a case-insensitive substring. At most `limit` results.
///
/// # Errors
/// Bad path, bad glob, not found.
pub fn search(
    sb: &Sandbox,
    base: &str,
    query: &str,
    limit: usize,
) -> Result<Vec<Entry>, FileError> {
    let base = sb.resolve(base)?;
    let limit = limit.clamp(1, MAX_SEARCH_RESULTS);
    let query = query.trim();
    if query.is_empty() {
        return Err(FileError::BadRequest("query is empty".into()));
    }
    let glob = if query.contains(['*', '?', '[']) {
        Some(
            globset::GlobBuilder::new(query)
                .case_insensitive(true)
                .build()
                .map_err(|e| FileError::BadRequest(format!("bad glob: {e}")))?
                .compile_matcher(),
        )
    } else {
        None
    };
    let needle = query.to_lowercase();
    let mut found = Vec::new();
    let mut visits = 0usize;
    walk(sb.root(), &base, &mut |p, _| {
        visits += 1;
        let name = p.name().unwrap_or("");
        if name.starts_with(TEMP_PREFIX) {
            return true;
        }
        let hit = match &glob {
            Some(g) => g.is_match(name),
            None => name.to_lowercase().contains(&needle),
        };
        if hit && let Ok(meta) = sb.root().symlink_metadata(p.as_path()) {
            found.push(entry_of(sb, p, &meta));
        }
        found.len() < limit && visits < MAX_SEARCH_VISITS
    })?;
    Ok(found)
}
