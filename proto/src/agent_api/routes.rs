//! Every route of the agent API, one zero-sized type each (see [`super::Endpoint`]), and
//! [`ROUTES`], the same list as data. `Params` is `()`, `&str` (`{id}`) or a pair.

use super::{
    ContainerLogsQuery, ContainerPowerQuery, Endpoint, FilePath, LinesQuery, Method, PathParams,
    ReplayQuery, Route, Scope, Streamed, UploadOffset,
};
use crate::backup::{BackupInfo, CreateBackup, RestoreBackup};
use crate::files::{
    ChmodRequest, CompressRequest, DecompressRequest, DeleteRequest, Deleted, Entry, Extracted,
    FromTo, ListQuery, Listing, MkdirRequest, PathQuery, PullRequest, SearchQuery, SearchResults,
    Written,
};
use crate::git::{SyncRequest, SyncResult};
use crate::instance::{
    CommandRequest, InstanceSpec, InstanceStats, InstanceStatus, LogLines, PowerRequest,
};
use crate::inventory::{
    ContainerInfo, ContainerLogs, DiskInfo, Inventory, KillProcessRequest, NetworkInterface,
    ProcessInfo, SystemInfo, SystemUser,
};
use crate::metrics::NodeSample;
use crate::register::AgentHealth;
use crate::sftp::AuthAnswer;
use crate::ssh::{SshTrust, TrustInstalled};
use crate::transfer::{ArchiveSelect, Keep, Manifest, Notice, PartQuery, Pruned, Received};
use crate::upload::{CreateUpload, UploadStatus};

/// Declares each route's type and its `Endpoint` impl, and [`ROUTES`].
macro_rules! endpoints {
    ($(
        $(#[$doc:meta])*
        $name:ident: $method:ident $path:literal,
            params $params:ty, query $query:ty, request $req:ty, response $resp:ty;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;

            impl Endpoint for $name {
                const METHOD: Method = Method::$method;
                const PATH: &'static str = $path;
                type Params<'a> = $params;
                type Query = $query;
                type Request = $req;
                type Response = $resp;
            }
        )*

        /// Every route of the agent API.
        pub const ROUTES: &[Route] = &[$(
            Route {
                name: stringify!($name),
                method: Method::$method,
                path: $path,
                params: <<$name as Endpoint>::Params<'static> as PathParams>::COUNT,
            },
        )*];
    };
}

endpoints! {
    /// Liveness, version and protocol of the agent.
    Health: Get "/v1/health",
        params (), query (), request (), response AgentHealth;
    /// Everything the inventory routes below answer, at once.
    InventoryAll: Get "/v1/inventory",
        params (), query (), request (), response Inventory;
    InventorySystem: Get "/v1/inventory/system",
        params (), query (), request (), response SystemInfo;
    InventoryNetwork: Get "/v1/inventory/network",
        params (), query (), request (), response Vec<NetworkInterface>;
    InventoryDisks: Get "/v1/inventory/disks",
        params (), query (), request (), response Vec<DiskInfo>;
    InventoryUsers: Get "/v1/inventory/users",
        params (), query (), request (), response Vec<SystemUser>;
    InventoryProcesses: Get "/v1/inventory/processes",
        params (), query (), request (), response Vec<ProcessInfo>;
    /// The heartbeat: node and running servers' usage.
    Metrics: Get "/v1/metrics",
        params (), query (), request (), response NodeSample;
    Containers: Get "/v1/containers",
        params (), query Scope, request (), response Vec<ContainerInfo>;
    ContainerLogsRoute: Get "/v1/containers/{id}/logs",
        params &'a str, query ContainerLogsQuery, request (), response ContainerLogs;
    /// `{action}`: start, stop, restart or kill.
    ContainerPower: Post "/v1/containers/{id}/{action}",
        params (&'a str, &'a str), query ContainerPowerQuery, request (), response ();
    ProcessKill: Post "/v1/processes/{pid}/kill",
        params &'a str, query Scope, request KillProcessRequest, response ();
    /// State changes of every instance, as a stream of JSON lines.
    Events: Get "/v1/events",
        params (), query (), request (), response Streamed;
    /// The panel's answer to an SFTP login the agent asked about.
    SftpAnswer: Post "/v1/sftp/auth/{id}",
        params &'a str, query (), request AuthAnswer, response ();
    Instances: Get "/v1/instances",
        params (), query (), request (), response Vec<InstanceStatus>;
    InstanceGet: Get "/v1/instances/{id}",
        params &'a str, query (), request (), response InstanceStatus;
    InstancePut: Put "/v1/instances/{id}",
        params &'a str, query (), request InstanceSpec, response InstanceStatus;
    InstanceDelete: Delete "/v1/instances/{id}",
        params &'a str, query (), request (), response ();
    InstanceInstall: Post "/v1/instances/{id}/install",
        params &'a str, query (), request (), response InstanceStatus;
    InstancePower: Post "/v1/instances/{id}/power",
        params &'a str, query (), request PowerRequest, response InstanceStatus;
    InstanceCommand: Post "/v1/instances/{id}/command",
        params &'a str, query (), request CommandRequest, response ();
    InstanceStatsRoute: Get "/v1/instances/{id}/stats",
        params &'a str, query (), request (), response InstanceStats;
    InstanceLogs: Get "/v1/instances/{id}/logs",
        params &'a str, query LinesQuery, request (), response LogLines;
    InstanceLogsClear: Delete "/v1/instances/{id}/logs",
        params &'a str, query (), request (), response ();
    InstanceLogsDownload: Get "/v1/instances/{id}/logs/download",
        params &'a str, query (), request (), response Streamed;
    InstanceInstallLogs: Get "/v1/instances/{id}/install-logs",
        params &'a str, query LinesQuery, request (), response LogLines;
    /// One instance's console output and state changes, as a stream of JSON lines.
    InstanceEvents: Get "/v1/instances/{id}/events",
        params &'a str, query ReplayQuery, request (), response Streamed;

    FilesList: Get "/v1/instances/{id}/files",
        params &'a str, query ListQuery, request (), response Listing;
    FilesDelete: Delete "/v1/instances/{id}/files",
        params &'a str, query (), request DeleteRequest, response Deleted;
    FilesStat: Get "/v1/instances/{id}/files/stat",
        params &'a str, query PathQuery, request (), response Entry;
    FilesRead: Get "/v1/instances/{id}/files/content",
        params &'a str, query PathQuery, request (), response Streamed;
    FilesWrite: Put "/v1/instances/{id}/files/content",
        params &'a str, query PathQuery, request Streamed, response Written;
    FilesMkdir: Post "/v1/instances/{id}/files/mkdir",
        params &'a str, query (), request MkdirRequest, response Entry;
    FilesMove: Post "/v1/instances/{id}/files/move",
        params &'a str, query (), request FromTo, response Entry;
    FilesCopy: Post "/v1/instances/{id}/files/copy",
        params &'a str, query (), request FromTo, response Entry;
    FilesChmod: Post "/v1/instances/{id}/files/chmod",
        params &'a str, query (), request ChmodRequest, response Entry;
    FilesCompress: Post "/v1/instances/{id}/files/compress",
        params &'a str, query (), request CompressRequest, response Entry;
    FilesDecompress: Post "/v1/instances/{id}/files/decompress",
        params &'a str, query (), request DecompressRequest, response Extracted;
    FilesSearch: Get "/v1/instances/{id}/files/search",
        params &'a str, query SearchQuery, request (), response SearchResults;
    FilesDownload: Get "/v1/instances/{id}/files/download",
        params &'a str, query PathQuery, request (), response Streamed;
    FilesDownloadZip: Get "/v1/instances/{id}/files/download-zip",
        params &'a str, query PathQuery, request (), response Streamed;
    FilesPull: Post "/v1/instances/{id}/files/pull",
        params &'a str, query (), request PullRequest, response Written;
    /// One file's bytes, streamed to `?path=`.
    FilesUpload: Post "/v1/instances/{id}/files/upload",
        params &'a str, query FilePath, request Streamed, response Written;

    UploadCreate: Post "/v1/instances/{id}/uploads",
        params &'a str, query (), request CreateUpload, response UploadStatus;
    UploadGet: Get "/v1/instances/{id}/uploads/{upload}",
        params (&'a str, &'a str), query (), request (), response UploadStatus;
    /// Appends the streamed body at `?offset=`.
    UploadWrite: Post "/v1/instances/{id}/uploads/{upload}",
        params (&'a str, &'a str), query UploadOffset, request Streamed, response UploadStatus;
    UploadDelete: Delete "/v1/instances/{id}/uploads/{upload}",
        params (&'a str, &'a str), query (), request (), response ();

    BackupList: Get "/v1/instances/{id}/backups",
        params &'a str, query (), request (), response Vec<BackupInfo>;
    BackupCreate: Post "/v1/instances/{id}/backups",
        params &'a str, query (), request CreateBackup, response BackupInfo;
    BackupGet: Get "/v1/instances/{id}/backups/{bid}",
        params (&'a str, &'a str), query (), request (), response BackupInfo;
    BackupDelete: Delete "/v1/instances/{id}/backups/{bid}",
        params (&'a str, &'a str), query (), request (), response ();
    BackupDownload: Get "/v1/instances/{id}/backups/{bid}/download",
        params (&'a str, &'a str), query (), request (), response Streamed;
    BackupRestore: Post "/v1/instances/{id}/backups/{bid}/restore",
        params (&'a str, &'a str), query (), request RestoreBackup, response ();

    /// Source side of a move: the manifest of the server's files (`?part=backups`: its
    /// local backups), checksums with `?hash=true`.
    TransferManifest: Get "/v1/instances/{id}/transfer/manifest",
        params &'a str, query PartQuery, request (), response Manifest;
    /// Source side: a tar + zstd archive of the entries the body selects.
    TransferArchive: Post "/v1/instances/{id}/transfer/archive",
        params &'a str, query PartQuery, request ArchiveSelect, response Streamed;
    /// Target side: extracts the streamed archive into the server's staging directory.
    TransferReceive: Put "/v1/transfers/{id}/archive",
        params &'a str, query PartQuery, request Streamed, response Received;
    /// Target side: the manifest of the staging directory.
    TransferStaged: Get "/v1/transfers/{id}/manifest",
        params &'a str, query PartQuery, request (), response Manifest;
    /// Target side: removes staged entries the source does not have.
    TransferPrune: Post "/v1/transfers/{id}/prune",
        params &'a str, query PartQuery, request Keep, response Pruned;
    /// Target side: the staged files become the server's, and the server this node's.
    TransferAdopt: Post "/v1/transfers/{id}/adopt",
        params &'a str, query (), request InstanceSpec, response InstanceStatus;
    /// Target side: forgets what was staged.
    TransferDiscard: Delete "/v1/transfers/{id}",
        params &'a str, query (), request (), response ();
    /// What the node's sshd trusts (CA keys, revocation list), installed where the
    /// operator enabled it.
    SshTrustPut: Put "/v1/ssh/trust",
        params (), query (), request SshTrust, response TrustInstalled;
    /// A shell on the node (SSH to its sshd, or a PTY of the agent's own): both bodies
    /// are streams of `shell::Frame`s.
    Shell: Post "/v1/shell",
        params (), query (), request Streamed, response Streamed;
    /// Target side, when the source is offline: extracts a backup (S3) into the staging
    /// directory, after checking its SHA-256.
    TransferRestore: Post "/v1/transfers/{id}/restore",
        params &'a str, query (), request RestoreBackup, response Received;
    /// Either side: tells the server's console how its move goes (Wings' `transfer
    /// status` and `transfer logs` events).
    TransferNotice: Post "/v1/instances/{id}/transfer/notice",
        params &'a str, query (), request Notice, response ();

    GitSync: Post "/v1/instances/{id}/git/sync",
        params &'a str, query (), request SyncRequest, response SyncResult;
    GitForget: Delete "/v1/instances/{id}/git",
        params &'a str, query (), request (), response ();
}
