//! The files API of an instance (`/v1/instances/{id}/files...`), once for the panel,
//! the agent and API clients: the queries of the reads, the JSON request bodies of the
//! writes, the listing and its entries, and every JSON answer. The agent parses and
//! answers these types; the panel validates its callers' input with them, relays them
//! to the agent, and its OpenAPI document describes them.
//!
//! Wire layer: no I/O. Field names and defaults are the ones clients already send.

use serde::{Deserialize, Serialize};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entry {
    /// The last component of the path.
    pub name: String,
    /// Full user path, `/a/b`.
    pub path: String,
    /// File, directory, symlink (never followed) or other.
    pub kind: EntryKind,
    /// Size in bytes (of the link itself for a symlink).
    pub size: u64,
    /// Last modification, Unix ms; null when the file system does not say.
    pub modified: Option<i64>,
    /// Octal permission bits, e.g. `"644"`.
    pub mode: String,
    /// Matched by the egg's `file_denylist`: not readable nor writable through the API.
    pub denied: bool,
    /// A file the content editor may open (not denied, not too large).
    pub editable: bool,
}

/// Sort key of a listing.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    Name,
    Size,
    Modified,
}

/// One page of a directory: directories first, then in the requested order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Listing {
    /// The directory listed, as a user path.
    pub path: String,
    /// The entries of this page.
    pub entries: Vec<Entry>,
    /// Entries in the whole directory.
    pub total: usize,
    /// The page, 1-based.
    pub page: usize,
    /// Entries per page (after capping).
    pub per_page: usize,
}

/// `?path=`: one file or directory (the root when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PathQuery {
    /// User path inside the server's files, `/` based.
    #[serde(default)]
    pub path: String,
}

/// The query of a listing. Not `#[serde(flatten)]`: with it, query strings cannot fill
/// numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    /// The directory to list (the root when absent).
    #[serde(default)]
    pub path: String,
    /// The page, 1-based (1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<usize>,
    /// Entries per page (100 when absent, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<usize>,
    /// The order within directories and files.
    #[serde(default)]
    pub sort: SortKey,
    /// Descending order (directories still come first).
    #[serde(default)]
    pub desc: bool,
}

/// Default of [`SearchQuery::limit`].
pub const SEARCH_LIMIT: usize = 100;

fn search_limit() -> usize {
    SEARCH_LIMIT
}

/// The query of a search by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchQuery {
    /// The directory searched, recursively (the root when absent).
    #[serde(default)]
    pub path: String,
    /// A glob when it has `*`, `?` or `[`, else a case-insensitive substring of names.
    pub q: String,
    /// Most results (100 when absent, at most 1000).
    #[serde(default = "search_limit")]
    pub limit: usize,
}

/// The entries a search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchResults {
    /// Matching entries, in walk order.
    pub entries: Vec<Entry>,
    /// The search stopped early (limit reached); more entries may match.
    pub truncated: bool,
}

/// A file written (content write, upload, pull).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Written {
    /// Its user path.
    pub path: String,
    /// Bytes written.
    pub size: u64,
}

/// The files of a multipart upload, in the order they came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Uploaded {
    /// One per file part.
    pub files: Vec<Written>,
}

/// `DELETE /files`: `path`, `paths`, or both (at most 1000 in all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeleteRequest {
    /// One path to delete (directories recursively).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// More paths to delete.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// What a delete removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Deleted {
    /// How many of the given paths were deleted.
    pub deleted: usize,
}

/// `POST /files/mkdir`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MkdirRequest {
    /// The directory to create, with its missing parents.
    #[serde(default)]
    pub path: String,
}

/// `POST /files/move` and `POST /files/copy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FromTo {
    /// The existing file or directory.
    pub from: String,
    /// Its new path (must not exist).
    pub to: String,
}

/// `POST /files/chmod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChmodRequest {
    /// The file or directory.
    pub path: String,
    /// Octal permission bits, e.g. `"755"` (a `0o` prefix is accepted).
    pub mode: String,
}

/// An archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ArchiveFormat {
    #[serde(rename = "zip")]
    Zip,
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "tar.zst")]
    TarZst,
}

impl ArchiveFormat {
    /// The format of a file name (`.zip`, `.tar.gz`/`.tgz`, `.tar.zst`/`.tzst`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        if n.ends_with(".zip") {
            Some(Self::Zip)
        } else if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
            Some(Self::TarGz)
        } else if n.ends_with(".tar.zst") || n.ends_with(".tzst") {
            Some(Self::TarZst)
        } else {
            None
        }
    }

    /// The extension, without the dot.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Zip => "zip",
            Self::TarGz => "tar.gz",
            Self::TarZst => "tar.zst",
        }
    }
}

fn zip_format() -> ArchiveFormat {
    ArchiveFormat::Zip
}

/// `POST /files/compress`: an archive of items of one directory, written into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompressRequest {
    /// The directory the items are in, and where the archive is written (the root
    /// when absent).
    #[serde(default)]
    pub root: String,
    /// Names inside `root`; empty = everything in `root`.
    #[serde(default)]
    pub files: Vec<String>,
    /// The archive's format (`zip` when absent).
    #[serde(default = "zip_format")]
    pub format: ArchiveFormat,
    /// The archive's file name; a dated one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `POST /files/decompress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DecompressRequest {
    /// The archive (format from its extension: zip, tar.gz, tar.zst).
    pub path: String,
    /// Where to extract; the archive's directory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// What a decompress extracted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Extracted {
    /// How many entries (files and directories) were written.
    pub files: usize,
}

/// `POST /files/pull`: download a public URL into the files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PullRequest {
    /// An `http(s)` URL of a public address (or one the node's `[outbound] allow` lists).
    pub url: String,
    /// Directory to save into (the root when absent).
    #[serde(default)]
    pub path: String,
    /// File name; the URL's last segment when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_their_defaults() {
        let c: CompressRequest = serde_json::from_str("{}").expect("all optional");
        assert_eq!(
            (c.root.as_str(), c.format, c.name),
            ("", ArchiveFormat::Zip, None)
        );
        let d: DeleteRequest = serde_json::from_str(r#"{"path":"/a"}"#).expect("path only");
        assert_eq!((d.path.as_deref(), d.paths.len()), (Some("/a"), 0));
        let s: SearchQuery = serde_urlencoded::from_str("q=x").expect("q only");
        assert_eq!((s.path.as_str(), s.limit), ("", SEARCH_LIMIT));
        assert!(serde_json::from_str::<FromTo>(r#"{"from":"/a"}"#).is_err());
    }

    #[test]
    fn a_list_query_round_trips_as_a_query_string() {
        let q = ListQuery {
            path: "/a b".into(),
            page: Some(2),
            per_page: None,
            sort: SortKey::Modified,
            desc: true,
        };
        let s = serde_urlencoded::to_string(&q).expect("form");
        assert_eq!(s, "path=%2Fa+b&page=2&sort=modified&desc=true");
        assert_eq!(
            serde_urlencoded::from_str::<ListQuery>(&s).expect("back"),
            q
        );
    }
}
