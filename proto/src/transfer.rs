//! Moving a server's files from one node to another (a migration), between panel and
//! agents. The two agents never talk to each other: the panel reads an archive from the
//! source agent and streams it into the target agent, through both tunnels.
//!
//! On the source, `/v1/instances/{id}/transfer/...` reads the server's directory. On the
//! target, `/v1/transfers/{id}/...` fills a staging directory that becomes the server's
//! directory only when the panel adopts it (`adopt`): until then nothing of the server
//! exists on the target and the source stays authoritative.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What an entry of a server's directory is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One entry of a [`Manifest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ManifestEntry {
    pub kind: EntryKind,
    /// Bytes (files only).
    #[serde(default)]
    pub size: u64,
    /// Last modification, in whole seconds since the epoch (what tar keeps).
    #[serde(default)]
    pub mtime: i64,
    /// Hex SHA-256 of a file's contents, when asked for (`?hash=true`).
    #[serde(default)]
    pub sha256: Option<String>,
    /// A symlink's target.
    #[serde(default)]
    pub target: Option<String>,
}

/// Every entry of a directory, by path relative to it (`/`-separated, no leading `/`).
pub type Manifest = BTreeMap<String, ManifestEntry>;

/// Which of a server's directories a transfer route reads or fills.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TransferPart {
    /// The server's files.
    #[default]
    Files,
    /// Its local backups (archives and records).
    Backups,
}

/// `?part=&hash=` of the transfer routes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PartQuery {
    #[serde(default)]
    pub part: TransferPart,
    /// Manifests: hash every file (slower: reads every byte).
    #[serde(default)]
    pub hash: bool,
}

/// Which entries the source's archive holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArchiveSelect {
    /// Entries the target already has: a file whose size and mtime match is left out.
    #[serde(default)]
    pub have: Manifest,
    /// Only these paths (files whose checksums differed), when given.
    #[serde(default)]
    pub only: Option<Vec<String>>,
}

/// What the target took in from one archive.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Received {
    /// Archive bytes read (compressed).
    pub bytes: u64,
    /// Entries that could not be placed safely and were skipped.
    pub skipped: u64,
}

/// Body of `POST /v1/transfers/{id}/prune`: the paths the source has; the target removes
/// every other entry of its staging directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Keep {
    pub paths: Vec<String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Pruned {
    pub removed: u64,
}

/// A line for the console of a server being moved: `status` becomes a `transfer status`
/// event (the move's state), `line` a `transfer logs` event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Notice {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub line: Option<String>,
}

/// The paths whose entries differ between two manifests (missing on either side, another
/// kind, another link target, or another checksum when both have one).
#[must_use]
pub fn differences(source: &Manifest, target: &Manifest) -> Vec<String> {
    let mut out: Vec<String> = source
        .iter()
        .filter(|(path, s)| {
            target.get(*path).is_none_or(|t| {
                t.kind != s.kind
                    || t.target != s.target
                    || (s.kind == EntryKind::File
                        && (t.size != s.size
                            || (s.sha256.is_some() && t.sha256.is_some() && t.sha256 != s.sha256)))
            })
        })
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(target.keys().filter(|p| !source.contains_key(*p)).cloned());
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, sha: &str) -> ManifestEntry {
        ManifestEntry {
            kind: EntryKind::File,
            size,
            mtime: 1,
            sha256: Some(sha.into()),
            target: None,
        }
    }

    #[test]
    fn differences_name_every_path_that_is_not_the_same() {
        let mut a = Manifest::new();
        a.insert("same".into(), file(1, "x"));
        a.insert("changed".into(), file(1, "x"));
        a.insert("only-source".into(), file(1, "x"));
        let mut b = Manifest::new();
        b.insert("same".into(), file(1, "x"));
        b.insert("changed".into(), file(1, "y"));
        b.insert("only-target".into(), file(1, "x"));
        assert_eq!(
            differences(&a, &b),
            vec!["changed", "only-source", "only-target"]
        );
    }
}
