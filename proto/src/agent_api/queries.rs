//! Query strings of the agent API that both sides read: the panel serializes them, the
//! agent's handlers deserialize the same types.

use serde::{Deserialize, Serialize};

/// `?all=true`: every container of the node, not only Shardlyn's (platform admins).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default)]
    pub all: bool,
}

/// `GET /v1/containers/{id}/logs`: the last `tail` lines (100 when absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerLogsQuery {
    pub tail: Option<u32>,
    #[serde(default)]
    pub all: bool,
}

/// `POST /v1/containers/{id}/{action}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerPowerQuery {
    /// Seconds to wait before SIGKILL on stop/restart.
    pub timeout: Option<u32>,
    /// Signal for kill (default SIGKILL).
    pub signal: Option<String>,
    /// Every container of the node, not only Shardlyn's (platform admins).
    #[serde(default)]
    pub all: bool,
}

/// `?lines=N` of the log routes (each route has its own default and bound).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinesQuery {
    pub lines: Option<usize>,
}

/// `?replay=N` of an instance's event stream: how many past console lines come first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayQuery {
    pub replay: Option<usize>,
}

/// `?offset=N` of a tus append: where the bytes go.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UploadOffset {
    pub offset: u64,
}

/// `?path=...` of a streamed file upload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FilePath {
    pub path: String,
}
