//! The file manager's error: each variant maps to one status and stable code.

use http::StatusCode;

/// Why a file operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A malformed path (NUL, backslash, `..` leaving the root): 400 `BAD_PATH`.
    #[error("{0}")]
    BadPath(String),
    /// A bad request otherwise (mode, archive format...): 400 `BAD_REQUEST`.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing there: 404 `FILE_NOT_FOUND`.
    #[error("{0}")]
    NotFound(String),
    /// The egg's `file_denylist` matches: 403 `FILE_DENIED`.
    #[error("{0} is on the egg's file denylist")]
    Denied(String),
    /// A path led outside the volume (symlink escape): 403 `PATH_ESCAPE`.
    #[error("{0} leads outside the server root")]
    Escape(String),
    /// Already exists: 409 `FILE_EXISTS`.
    #[error("{0}")]
    Exists(String),
    /// A directory where a file is expected, or the reverse: 422 `WRONG_TYPE`.
    #[error("{0}")]
    WrongType(String),
    /// The volume's `disk_mb` would be exceeded: 413 `DISK_LIMIT`.
    #[error("the server's disk limit ({limit_mb} MiB) would be exceeded")]
    DiskLimit { limit_mb: u64 },
    /// Over a size cap of the request: 413 `TOO_LARGE`.
    #[error("{0}")]
    TooLarge(String),
    /// The file is not text: 422 `BINARY_FILE`.
    #[error("{0} looks like a binary file; download it instead")]
    Binary(String),
    /// The target instance is unknown: 404 `NOT_FOUND`.
    #[error("instance not found")]
    NoInstance,
    /// A URL the outbound guard refuses (pull): 422 `OUTBOUND_DENIED`,
    /// `OUTBOUND_UNRESOLVABLE` or `VALIDATION_ERROR`.
    #[error(transparent)]
    Outbound(#[from] shardlyn_net::outbound::OutboundError),
    /// Anything else: 500 `FILE_IO`.
    #[error("file operation failed: {0}")]
    Io(String),
}

impl FileError {
    /// The HTTP status and the stable code.
    #[must_use]
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadPath(_) => (StatusCode::BAD_REQUEST, "BAD_PATH"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "FILE_NOT_FOUND"),
            Self::NoInstance => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::Denied(_) => (StatusCode::FORBIDDEN, "FILE_DENIED"),
            Self::Escape(_) => (StatusCode::FORBIDDEN, "PATH_ESCAPE"),
            Self::Exists(_) => (StatusCode::CONFLICT, "FILE_EXISTS"),
            Self::WrongType(_) => (StatusCode::UNPROCESSABLE_ENTITY, "WRONG_TYPE"),
            Self::DiskLimit { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "DISK_LIMIT"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE"),
            Self::Binary(_) => (StatusCode::UNPROCESSABLE_ENTITY, "BINARY_FILE"),
            Self::Outbound(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.code()),
            Self::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "FILE_IO"),
        }
    }

    /// Maps an I/O error on `path` (user form) to the matching variant.
    #[must_use]
    pub fn io(path: &str, e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound => Self::NotFound(format!("{path} does not exist")),
            K::AlreadyExists => Self::Exists(format!("{path} already exists")),
            // cap-std reports an escape (`..` through a symlink, absolute symlink) as
            // PermissionDenied.
            K::PermissionDenied => Self::Escape(path.to_owned()),
            K::NotADirectory => Self::WrongType(format!("{path}: not a directory")),
            K::IsADirectory => Self::WrongType(format!("{path} is a directory")),
            K::DirectoryNotEmpty => Self::Exists(format!("{path} is not empty")),
            K::StorageFull | K::QuotaExceeded => Self::DiskLimit { limit_mb: 0 },
            _ => match e.raw_os_error() {
                Some(40) => Self::Escape(path.to_owned()), // ELOOP
                Some(20) => Self::WrongType(format!("{path}: not a directory")),
                Some(21) => Self::WrongType(format!("{path} is a directory")),
                _ => Self::Io(format!("{path}: {e}")),
            },
        }
    }
}
