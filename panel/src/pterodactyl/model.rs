//! What an import reads from a Pterodactyl panel, the same for both ways in: the
//! Application API ([`super::api`]) and the panel's database ([`super::database`]).
//! Each reader fills a [`Snapshot`]; the importer ([`super::run`]) maps it onto
//! Shardlyn's objects, keyed by the Pterodactyl UUIDs so a re-run adds nothing twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the panel was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The Application API with a `ptla_` key: no password hashes, 2FA secrets or
    /// schedules.
    Api,
    /// The panel's MySQL/MariaDB database, read only, with its `APP_KEY`.
    Database,
}

/// Everything one import reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub locations: Vec<Location>,
    pub nodes: Vec<Node>,
    pub eggs: Vec<Egg>,
    pub users: Vec<User>,
    pub servers: Vec<Server>,
    /// Database mode only (the Application API does not list subusers' permissions
    /// for every server alike; API mode fills them from `include=subusers`).
    pub subusers: Vec<Subuser>,
    /// Database mode only: the Application API has no schedules.
    pub schedules: Vec<Schedule>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Location {
    pub id: i64,
    pub short: String,
    pub long: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub location_id: i64,
    /// The host Wings answers on (also its SFTP host).
    pub fqdn: String,
    /// `http` or `https`.
    pub scheme: String,
    pub daemon_listen: u16,
    /// Wings' SFTP port (2022 by default).
    pub daemon_sftp: u16,
    pub memory_mb: i64,
    pub disk_mb: i64,
    /// Database mode: the node's token id and the decrypted token.
    pub daemon_token_id: Option<String>,
    pub daemon_token: Option<String>,
}

/// An egg with `config_from` and `copy_script_from` already resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Egg {
    pub id: i64,
    pub uuid: String,
    pub nest_id: i64,
    pub nest_name: String,
    pub name: String,
    /// The egg as a PTDL_v2 export document (what `POST /v1/workloads/import-egg`
    /// takes): `docker_images` as a map (a 0.7 single `docker_image` becomes a map of
    /// one), `config.files`/`startup`/`logs` as JSON strings, `scripts.installation`,
    /// `variables`.
    pub ptdl: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub uuid: String,
    pub username: String,
    pub email: String,
    pub name_first: String,
    pub name_last: String,
    pub root_admin: bool,
    /// Database mode: the bcrypt hash as stored (`$2y$10$...`).
    pub password_hash: Option<String>,
    /// Database mode: the decrypted base32 TOTP secret, when `use_totp`.
    pub totp_secret: Option<String>,
    pub use_totp: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allocation {
    pub id: i64,
    pub ip: String,
    pub port: u16,
    pub alias: Option<String>,
    /// The server's default allocation.
    pub primary: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Server {
    pub id: i64,
    pub uuid: String,
    /// The short id (first 8 characters of the UUID), part of Wings' SFTP user name.
    pub identifier: String,
    pub name: String,
    pub description: String,
    /// Owner's Pterodactyl user id.
    pub owner_id: i64,
    pub node_id: i64,
    pub egg_id: i64,
    /// `installing`, `install_failed`, `suspended`, `restoring_backup` or none.
    pub status: Option<String>,
    pub suspended: bool,
    pub memory_mb: i64,
    pub swap_mb: i64,
    pub disk_mb: i64,
    pub io: i64,
    /// Percent of one core; 0 means unlimited.
    pub cpu: i64,
    pub threads: Option<String>,
    pub oom_disabled: bool,
    pub startup: String,
    pub image: String,
    pub skip_scripts: bool,
    pub backup_limit: i64,
    pub allocations: Vec<Allocation>,
    /// Every egg variable by `env_variable`: the server's value, else the egg's default.
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subuser {
    pub server_id: i64,
    pub user_id: i64,
    /// Pterodactyl's keys (`control.console`, `file.read`, ...).
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    pub id: i64,
    pub server_id: i64,
    pub name: String,
    pub cron_minute: String,
    pub cron_hour: String,
    pub cron_day_of_month: String,
    pub cron_month: String,
    pub cron_day_of_week: String,
    pub is_active: bool,
    pub only_when_online: bool,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub sequence_id: i64,
    /// `command`, `power` or `backup`.
    pub action: String,
    pub payload: String,
    pub time_offset: i64,
    pub continue_on_failure: bool,
}

/// Counts `validate` reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    pub locations: usize,
    pub nodes: usize,
    pub eggs: usize,
    pub users: usize,
    pub servers: usize,
    pub subusers: usize,
    pub schedules: usize,
}

impl Snapshot {
    #[must_use]
    pub fn counts(&self) -> Counts {
        Counts {
            locations: self.locations.len(),
            nodes: self.nodes.len(),
            eggs: self.eggs.len(),
            users: self.users.len(),
            servers: self.servers.len(),
            subusers: self.subusers.len(),
            schedules: self.schedules.len(),
        }
    }
}

/// Why a source could not be read; each maps to a clear 4xx in the routes.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Could not connect (refused, DNS, TLS, blocked by the outbound guard).
    #[error("cannot reach the Pterodactyl panel: {0}")]
    Unreachable(String),
    /// The key, database login or `APP_KEY` was refused or lacks permissions.
    #[error("the Pterodactyl panel refused the credentials: {0}")]
    Credentials(String),
    /// `APP_KEY` does not decrypt the panel's values (their MAC does not match).
    #[error("APP_KEY does not decrypt this panel's data: {0}")]
    AppKey(String),
    /// The answer was not what Pterodactyl sends.
    #[error("the Pterodactyl panel answered something unexpected: {0}")]
    Protocol(String),
}
