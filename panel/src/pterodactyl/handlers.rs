//! `/v1/pterodactyl/*`: platform admins only (an import creates accounts on the
//! platform). `validate` reads the source and reports counts; `servers` lists what can
//! be imported and how; `import` starts (or, for the same source, continues) a job;
//! `imports[/{id}]` show its progress and report.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shardlyn_net::outbound::Outbound;

use super::database::DbConnection;
use super::model::{Counts, Mode, Snapshot, SourceError};
use super::run;
use super::store::{self, Import, Item};
use crate::auth::extract::AdminUser;
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::state::AppState;

/// Where the old panel is and how to read it.
#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Connection {
    /// The Application API: the panel's address and an application API key (`ptla_`).
    Api { url: String, api_key: String },
    /// The panel's MySQL/MariaDB database (a read-only login is enough) and the panel's
    /// `APP_KEY` (from its `.env`).
    Database {
        #[serde(flatten)]
        db: DbConnection,
        app_key: String,
    },
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Connection {
    #[must_use]
    pub fn mode(&self) -> Mode {
        match self {
            Self::Api { .. } => Mode::Api,
            Self::Database { .. } => Mode::Database,
        }
    }

    /// The source for display: the URL or `user@host:port/database` (no secret).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Api { url, .. } => url.trim_end_matches('/').to_owned(),
            Self::Database { db, .. } => {
                format!("{}@{}:{}/{}", db.username, db.host, db.port, db.database)
            }
        }
    }

    /// The host the admin entered.
    #[must_use]
    pub fn host(&self) -> String {
        match self {
            Self::Api { url, .. } => reqwest::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
            Self::Database { db, .. } => db.host.trim().to_owned(),
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// 400 naming the field.
    pub fn check(&self) -> AppResult<()> {
        match self {
            Self::Api { url, api_key } => {
                let parsed = reqwest::Url::parse(url.trim()).map_err(|_| {
                    AppError::invalid_field(
                        "url",
                        "give the panel's address, e.g. https://panel.example.com",
                    )
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(AppError::invalid_field(
                        "url",
                        "the panel's address must be an http(s) URL with a host",
                    ));
                }
                if api_key.trim().is_empty() || api_key.len() > 512 {
                    return Err(AppError::invalid_field(
                        "api_key",
                        "give an application API key (ptla_...)",
                    ));
                }
            }
            Self::Database { db, app_key } => {
                for (field, value) in [
                    ("host", &db.host),
                    ("database", &db.database),
                    ("username", &db.username),
                ] {
                    if value.trim().is_empty() || value.len() > 255 {
                        return Err(AppError::invalid_field(field, format!("give the {field}")));
                    }
                }
                if db.port == 0 {
                    return Err(AppError::invalid_field("port", "port must be 1 to 65535"));
                }
                if app_key.trim().is_empty() || app_key.len() > 512 {
                    return Err(AppError::invalid_field(
                        "app_key",
                        "give the panel's APP_KEY (base64:...) from its .env",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The outbound guard of this import: the panel's, with the host the admin entered
    /// (and the old nodes' hosts, for the files) allowed for this import only.
    ///
    /// # Errors
    /// 400 when a host cannot be an allow-list entry.
    pub fn outbound(&self, base: &Outbound, more: &[String]) -> AppResult<Outbound> {
        let mut hosts = vec![self.host()];
        hosts.extend(more.iter().cloned());
        hosts.retain(|h| !h.is_empty());
        base.extended(&hosts)
            .map_err(|e| AppError::invalid_field("host", e.to_string()))
    }

    /// Reads the source.
    ///
    /// # Errors
    /// The source's refusal as a clear 4xx/502 ([`source_error`]).
    pub async fn read(&self, base: &Outbound) -> AppResult<(Snapshot, Vec<String>)> {
        let outbound = self.outbound(base, &[])?;
        match self {
            Self::Api { url, api_key } => {
                let read = super::api::read_with_problems(&outbound, url.trim(), api_key.trim())
                    .await
                    .map_err(|e| source_error(&e))?;
                Ok((read.snapshot, read.problems))
            }
            Self::Database { db, app_key } => {
                let snapshot = super::database::read(&outbound, db, app_key.trim())
                    .await
                    .map_err(|e| source_error(&e))?;
                Ok((snapshot, Vec::new()))
            }
        }
    }
}

/// A source's refusal as an answer: 422 for credentials and `APP_KEY`, 502 for an
/// unreachable or strange source.
#[must_use]
pub fn source_error(e: &SourceError) -> AppError {
    let message = e.to_string();
    match e {
        SourceError::Credentials(_) => AppError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "SOURCE_CREDENTIALS",
            message,
        ),
        SourceError::AppKey(_) => {
            AppError::coded(StatusCode::UNPROCESSABLE_ENTITY, "APP_KEY_INVALID", message)
        }
        SourceError::Unreachable(_) => {
            AppError::coded(StatusCode::BAD_GATEWAY, "SOURCE_UNREACHABLE", message)
        }
        SourceError::Protocol(_) => {
            AppError::coded(StatusCode::BAD_GATEWAY, "SOURCE_PROTOCOL", message)
        }
    }
}

/// `POST /v1/pterodactyl/validate`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Validated {
    pub mode: Mode,
    pub counts: Counts,
    /// What will not come over (eggs that cannot be resolved, API mode's gaps).
    pub warnings: Vec<String>,
}

/// `POST /v1/pterodactyl/validate`: connects, reads, and reports what is there.
pub async fn validate(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppJson(body): AppJson<Connection>,
) -> AppResult<AppJson<Validated>> {
    body.check()?;
    let (snapshot, mut warnings) = body.read(&state.config.outbound).await?;
    if body.mode() == Mode::Api {
        warnings.push(
            "API mode cannot bring passwords (users get a set-your-password mail), 2FA secrets or schedules; database mode can".into(),
        );
    }
    Ok(AppJson(Validated {
        mode: body.mode(),
        counts: snapshot.counts(),
        warnings,
    }))
}

/// One server as `servers` lists it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ServerRow {
    pub uuid: String,
    pub identifier: String,
    pub name: String,
    pub owner_email: Option<String>,
    pub node: Option<String>,
    pub egg: Option<String>,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub cpu: i64,
    pub ports: Vec<u16>,
    /// Whether it can come over; `reason` says why not.
    pub importable: bool,
    pub reason: Option<String>,
    /// An earlier import made it already (`instance_id`).
    pub already_imported: bool,
    pub instance_id: Option<String>,
}

/// `POST /v1/pterodactyl/servers`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ServerList {
    pub data: Vec<ServerRow>,
}

/// `POST /v1/pterodactyl/servers`: what can be imported, and what it becomes.
pub async fn servers(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppJson(body): AppJson<Connection>,
) -> AppResult<AppJson<ServerList>> {
    body.check()?;
    let (snapshot, _) = body.read(&state.config.outbound).await?;
    let mut data = Vec::new();
    for s in &snapshot.servers {
        let refusal = run::refusal(&snapshot, s);
        let instance_id = store::mapped(&state.db.pool, "server", &s.uuid).await?;
        data.push(ServerRow {
            uuid: s.uuid.clone(),
            identifier: s.identifier.clone(),
            name: s.name.clone(),
            owner_email: snapshot
                .users
                .iter()
                .find(|u| u.id == s.owner_id)
                .map(|u| u.email.clone()),
            node: snapshot
                .nodes
                .iter()
                .find(|n| n.id == s.node_id)
                .map(|n| n.name.clone()),
            egg: snapshot
                .eggs
                .iter()
                .find(|e| e.id == s.egg_id)
                .map(|e| e.name.clone()),
            memory_mb: s.memory_mb,
            disk_mb: s.disk_mb,
            cpu: s.cpu,
            ports: s.allocations.iter().map(|a| a.port).collect(),
            importable: refusal.is_none(),
            reason: refusal,
            already_imported: instance_id.is_some(),
            instance_id,
        });
    }
    Ok(AppJson(ServerList { data }))
}

/// The old Wings' SFTP login of a root admin (Wings checks it against the old panel).
#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesLogin {
    /// The root admin's user name on the old panel.
    pub username: String,
    pub password: String,
}

/// `POST /v1/pterodactyl/import`.
#[derive(Clone, Deserialize, schemars::JsonSchema)]
pub struct ImportRequest {
    #[serde(flatten)]
    pub connection: Connection,
    /// Report what would happen and write nothing (the default: dry run first).
    #[serde(default = "yes")]
    pub dry_run: bool,
    /// Only these servers (UUIDs); every importable one when absent.
    #[serde(default)]
    pub servers: Option<Vec<String>>,
    /// Pterodactyl root admins become platform admins.
    #[serde(default)]
    pub root_admins_become_platform_admins: bool,
    /// The platform node to place the servers on; the best-fitting platform node when
    /// absent.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Copy the servers' files from the old Wings (its SFTP) with this login.
    #[serde(default)]
    pub files: Option<FilesLogin>,
    /// After the copy, stop each old server, copy what changed and start the new one
    /// (database mode: the old node's token stops it).
    #[serde(default)]
    pub switch_over: bool,
}

fn yes() -> bool {
    true
}

/// An import as the API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ImportView {
    pub id: String,
    pub mode: String,
    pub source: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub dry_run: bool,
    /// What it does now: `reading`, `users`, `eggs`, `servers`, `subusers`,
    /// `schedules`, `files`, `switch_over`, `done`.
    pub phase: String,
    /// Report lines by status.
    pub counts: serde_json::Value,
    pub error: Option<String>,
    #[schemars(with = "crate::types::Timestamp")]
    #[serde(with = "crate::db::ts")]
    pub created_at: i64,
    #[schemars(with = "crate::types::Timestamp")]
    #[serde(with = "crate::db::ts")]
    pub updated_at: i64,
    #[schemars(with = "Option<crate::types::Timestamp>")]
    #[serde(with = "crate::db::ts::option")]
    pub finished_at: Option<i64>,
    /// The report, one line per thing read (absent in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemView>>,
}

/// One report line.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ItemView {
    #[serde(flatten)]
    pub item: Item,
    /// Progress and figures (files copied, bytes), when there are any.
    pub detail: serde_json::Value,
}

/// Renders an import (with its report when `items`).
#[must_use]
pub fn view(i: &Import, items: Option<Vec<Item>>) -> ImportView {
    ImportView {
        id: i.id.clone(),
        mode: i.mode.clone(),
        source: i.source.clone(),
        status: i.status.clone(),
        dry_run: i.dry_run,
        phase: i.phase.clone(),
        counts: serde_json::from_str(&i.counts).unwrap_or_else(|_| serde_json::json!({})),
        error: i.error.clone(),
        created_at: i.created_at,
        updated_at: i.updated_at,
        finished_at: i.finished_at,
        items: items.map(|items| {
            items
                .into_iter()
                .map(|item| ItemView {
                    detail: serde_json::from_str(&item.detail)
                        .unwrap_or_else(|_| serde_json::json!({})),
                    item,
                })
                .collect()
        }),
    }
}

/// `POST /v1/pterodactyl/import`: checks the source can be read, then starts the job.
pub async fn import(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    AppJson(body): AppJson<ImportRequest>,
) -> AppResult<(StatusCode, AppJson<ImportView>)> {
    body.connection.check()?;
    if let Some(files) = &body.files
        && (files.username.trim().is_empty() || files.password.is_empty())
    {
        return Err(AppError::invalid_field(
            "files",
            "give the old panel's root-admin user name and password for the files",
        ));
    }
    if body.switch_over && body.files.is_none() {
        return Err(AppError::invalid_field(
            "switch_over",
            "a switch-over copies the files: give the files login too",
        ));
    }
    if body.switch_over && body.connection.mode() == Mode::Api {
        return Err(AppError::invalid_field(
            "switch_over",
            "a switch-over stops the old servers with the old nodes' tokens, which only database mode reads",
        ));
    }
    if let Some(node_id) = &body.node_id {
        let node = crate::nodes::store::find_any(&state.db.pool, node_id)
            .await?
            .filter(|n| n.platform)
            .ok_or_else(|| {
                AppError::invalid_field(
                    "node_id",
                    "not a platform node (mark it on /admin/platform-nodes)",
                )
            })?;
        let _ = node;
    }
    // A source that cannot be read fails here, before anything is stored.
    body.connection.read(&state.config.outbound).await?;
    let import = run::start(&state, &user, &body).await?;
    Ok((
        StatusCode::ACCEPTED,
        AppJson(view(&import, Some(Vec::new()))),
    ))
}

/// `GET /v1/pterodactyl/imports`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ImportList {
    pub data: Vec<ImportView>,
}

/// `GET /v1/pterodactyl/imports`: the newest 100.
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<ImportList>> {
    let data = store::list(&state.db.pool, 100)
        .await?
        .iter()
        .map(|i| view(i, None))
        .collect();
    Ok(AppJson(ImportList { data }))
}

/// `GET /v1/pterodactyl/imports/{id}`: progress and the report.
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<ImportView>> {
    let import = store::find(&state.db.pool, &id)
        .await?
        .ok_or_else(|| AppError::not_found("import"))?;
    let items = store::items(&state.db.pool, &id).await?;
    Ok(AppJson(view(&import, Some(items))))
}
