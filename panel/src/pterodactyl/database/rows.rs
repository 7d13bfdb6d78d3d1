//! The tables of a Pterodactyl 1.x database other than eggs, read into the snapshot's
//! types. Integer columns are `CAST(.. AS SIGNED)` (Pterodactyl's ids are unsigned) and
//! JSON columns `CAST(.. AS CHAR)` (MySQL's JSON type, MariaDB's checked `LONGTEXT`).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::mysql::MySqlConnection;

use super::eggs::EggSet;
use super::{group, open, paged, source_error};
use crate::pterodactyl::model::{
    Allocation, Location, Node, Schedule, Server, SourceError, Subuser, Task, User,
};

/// A row read by [`paged`]: its `id`, the cursor of the next page.
pub(super) trait Keyed {
    fn key(&self) -> i64;
}

macro_rules! keyed {
    ($($t:ty),*) => { $(impl Keyed for $t { fn key(&self) -> i64 { self.id } })* };
}

keyed!(
    LocationRow,
    NodeRow,
    UserRow,
    ServerRow,
    AllocationRow,
    ServerVariableRow,
    SubuserRow,
    ScheduleRow,
    TaskRow
);

/// The tables the import reads.
const TABLES: &[&str] = &[
    "users",
    "locations",
    "nodes",
    "nests",
    "eggs",
    "egg_variables",
    "servers",
    "server_variables",
    "allocations",
    "subusers",
    "schedules",
    "tasks",
];

/// The columns of each table this login can see, to read the shapes of several
/// Pterodactyl versions (`docker_image` before 1.0, `status` since 1.3...).
pub(super) struct Columns(BTreeMap<String, BTreeSet<String>>);

impl Columns {
    pub(super) async fn load(db: &mut MySqlConnection) -> Result<Self, SourceError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
        )
        .fetch_all(&mut *db)
        .await
        .map_err(source_error)?;
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (table, column) in rows {
            map.entry(table.to_ascii_lowercase())
                .or_default()
                .insert(column.to_ascii_lowercase());
        }
        let missing: Vec<&str> = TABLES
            .iter()
            .copied()
            .filter(|t| !map.contains_key(*t))
            .collect();
        if missing.len() == TABLES.len() {
            return Err(SourceError::Credentials(
                "this login cannot read any of Pterodactyl's tables in this database".into(),
            ));
        }
        if !missing.is_empty() {
            return Err(SourceError::Protocol(format!(
                "not a Pterodactyl 1.x database (or the login cannot read them): no table {}",
                missing.join(", ")
            )));
        }
        Ok(Self(map))
    }

    pub(super) fn has(&self, table: &str, column: &str) -> bool {
        self.0.get(table).is_some_and(|c| c.contains(column))
    }

    /// `expr` when `table.column` exists, else `fallback` (both SQL).
    pub(super) fn or<'a>(
        &self,
        table: &str,
        column: &str,
        expr: &'a str,
        fallback: &'a str,
    ) -> &'a str {
        if self.has(table, column) {
            expr
        } else {
            fallback
        }
    }
}

fn port(value: i64, what: &str) -> Result<u16, SourceError> {
    u16::try_from(value).map_err(|_| SourceError::Protocol(format!("{what}: port {value}")))
}

#[derive(sqlx::FromRow)]
pub(super) struct LocationRow {
    id: i64,
    short: String,
    long: Option<String>,
}

pub(super) async fn locations(db: &mut MySqlConnection) -> Result<Vec<Location>, SourceError> {
    let rows: Vec<LocationRow> = paged(
        db,
        "CAST(id AS SIGNED) AS id, short, `long`",
        "locations",
        "id",
        None,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Location {
            id: r.id,
            short: r.short,
            long: r.long.unwrap_or_default(),
        })
        .collect())
}

#[derive(sqlx::FromRow)]
pub(super) struct NodeRow {
    id: i64,
    uuid: String,
    name: String,
    location_id: i64,
    fqdn: String,
    scheme: String,
    daemon_listen: i64,
    daemon_sftp: i64,
    memory: i64,
    disk: i64,
    daemon_token_id: Option<String>,
    daemon_token: Option<String>,
}

pub(super) async fn nodes(
    db: &mut MySqlConnection,
    app_key: &str,
) -> Result<Vec<Node>, SourceError> {
    let rows: Vec<NodeRow> = paged(
        db,
        "CAST(id AS SIGNED) AS id, uuid, name, CAST(location_id AS SIGNED) AS location_id, \
         fqdn, scheme, CAST(daemonListen AS SIGNED) AS daemon_listen, \
         CAST(daemonSFTP AS SIGNED) AS daemon_sftp, CAST(memory AS SIGNED) AS memory, \
         CAST(disk AS SIGNED) AS disk, daemon_token_id, daemon_token",
        "nodes",
        "id",
        None,
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            let what = format!("node {} ({})", r.id, r.name);
            let daemon_token = match r.daemon_token.as_deref() {
                Some(t) if !t.is_empty() => {
                    Some(open(app_key, t, &format!("{what} daemon_token"))?)
                }
                _ => None,
            };
            Ok(Node {
                daemon_listen: port(r.daemon_listen, &what)?,
                daemon_sftp: port(r.daemon_sftp, &what)?,
                id: r.id,
                uuid: r.uuid,
                name: r.name,
                location_id: r.location_id,
                fqdn: r.fqdn,
                scheme: r.scheme,
                memory_mb: r.memory,
                disk_mb: r.disk,
                daemon_token_id: r.daemon_token_id.filter(|t| !t.is_empty()),
                daemon_token,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    uuid: String,
    username: String,
    email: String,
    name_first: Option<String>,
    name_last: Option<String>,
    root_admin: i64,
    password: Option<String>,
    use_totp: i64,
    totp_secret: Option<String>,
}

pub(super) async fn users(
    db: &mut MySqlConnection,
    app_key: &str,
) -> Result<Vec<User>, SourceError> {
    let rows: Vec<UserRow> = paged(
        db,
        "CAST(id AS SIGNED) AS id, uuid, username, email, name_first, name_last, \
         CAST(root_admin AS SIGNED) AS root_admin, password, \
         CAST(use_totp AS SIGNED) AS use_totp, totp_secret",
        "users",
        "id",
        None,
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            let use_totp = bit(r.use_totp);
            let totp_secret = match r.totp_secret.as_deref() {
                Some(s) if use_totp && !s.is_empty() => {
                    Some(open(app_key, s, &format!("user {} totp_secret", r.id))?)
                }
                _ => None,
            };
            Ok(User {
                id: r.id,
                uuid: r.uuid,
                username: r.username,
                email: r.email,
                name_first: r.name_first.unwrap_or_default(),
                name_last: r.name_last.unwrap_or_default(),
                root_admin: bit(r.root_admin),
                password_hash: r.password.filter(|p| !p.is_empty()),
                use_totp: use_totp && totp_secret.is_some(),
                totp_secret,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
pub(super) struct ServerRow {
    id: i64,
    uuid: String,
    identifier: String,
    name: String,
    description: Option<String>,
    status: Option<String>,
    suspended: i64,
    owner_id: i64,
    node_id: i64,
    egg_id: i64,
    memory: i64,
    swap: i64,
    disk: i64,
    io: i64,
    cpu: i64,
    threads: Option<String>,
    oom_disabled: i64,
    startup: String,
    image: String,
    skip_scripts: i64,
    backup_limit: i64,
    allocation_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(super) struct AllocationRow {
    id: i64,
    server_id: i64,
    ip: String,
    ip_alias: Option<String>,
    port: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct ServerVariableRow {
    id: i64,
    server_id: i64,
    variable_id: i64,
    variable_value: Option<String>,
}

pub(super) async fn servers(
    db: &mut MySqlConnection,
    columns: &Columns,
    eggs: &EggSet,
) -> Result<Vec<Server>, SourceError> {
    let select = format!(
        "CAST(id AS SIGNED) AS id, uuid, uuidShort AS identifier, name, description, \
         {status} AS status, {suspended} AS suspended, CAST(owner_id AS SIGNED) AS owner_id, \
         CAST(node_id AS SIGNED) AS node_id, CAST(egg_id AS SIGNED) AS egg_id, \
         CAST(memory AS SIGNED) AS memory, CAST(swap AS SIGNED) AS swap, \
         CAST(disk AS SIGNED) AS disk, CAST(io AS SIGNED) AS io, CAST(cpu AS SIGNED) AS cpu, \
         {threads} AS threads, CAST(oom_disabled AS SIGNED) AS oom_disabled, startup, image, \
         CAST(skip_scripts AS SIGNED) AS skip_scripts, {backup_limit} AS backup_limit, \
         CAST(allocation_id AS SIGNED) AS allocation_id",
        status = columns.or("servers", "status", "status", "NULL"),
        suspended = columns.or("servers", "suspended", "CAST(suspended AS SIGNED)", "0"),
        threads = columns.or("servers", "threads", "threads", "NULL"),
        backup_limit = columns.or(
            "servers",
            "backup_limit",
            "CAST(COALESCE(backup_limit, 0) AS SIGNED)",
            "0"
        ),
    );
    let rows: Vec<ServerRow> = paged(db, &select, "servers", "id", None).await?;
    let allocations: Vec<AllocationRow> = paged(
        db,
        "CAST(id AS SIGNED) AS id, CAST(server_id AS SIGNED) AS server_id, ip, ip_alias, \
         CAST(port AS SIGNED) AS port",
        "allocations",
        "id",
        Some("server_id IS NOT NULL"),
    )
    .await?;
    let values: Vec<ServerVariableRow> = paged(
        db,
        "CAST(id AS SIGNED) AS id, CAST(server_id AS SIGNED) AS server_id, \
         CAST(variable_id AS SIGNED) AS variable_id, variable_value",
        "server_variables",
        "id",
        None,
    )
    .await?;
    let mut allocations = group(allocations.into_iter().map(|a| (a.server_id, a)));
    let values: BTreeMap<(i64, i64), Option<String>> = values
        .into_iter()
        .map(|v| ((v.server_id, v.variable_id), v.variable_value))
        .collect();
    rows.into_iter()
        .map(|r| {
            let allocations = allocations
                .remove(&r.id)
                .unwrap_or_default()
                .into_iter()
                .map(|a| {
                    Ok(Allocation {
                        port: port(a.port, &format!("allocation {}", a.id))?,
                        primary: r.allocation_id == Some(a.id),
                        id: a.id,
                        ip: a.ip,
                        alias: a.ip_alias.filter(|s| !s.is_empty()),
                    })
                })
                .collect::<Result<Vec<_>, SourceError>>()?;
            let variables = eggs
                .variables
                .get(&r.egg_id)
                .into_iter()
                .flatten()
                .map(|v| {
                    let value = values
                        .get(&(r.id, v.id))
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| v.default_value.clone());
                    (v.env_variable.clone(), value)
                })
                .collect();
            Ok(Server {
                suspended: bit(r.suspended) || r.status.as_deref() == Some("suspended"),
                id: r.id,
                uuid: r.uuid,
                identifier: r.identifier,
                name: r.name,
                description: r.description.unwrap_or_default(),
                owner_id: r.owner_id,
                node_id: r.node_id,
                egg_id: r.egg_id,
                status: r.status.filter(|s| !s.is_empty()),
                memory_mb: r.memory,
                swap_mb: r.swap,
                disk_mb: r.disk,
                io: r.io,
                cpu: r.cpu,
                threads: r.threads.filter(|t| !t.is_empty()),
                oom_disabled: bit(r.oom_disabled),
                startup: r.startup,
                image: r.image,
                skip_scripts: bit(r.skip_scripts),
                backup_limit: r.backup_limit,
                allocations,
                variables,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
pub(super) struct SubuserRow {
    id: i64,
    user_id: i64,
    server_id: i64,
    permissions: Option<String>,
}

pub(super) async fn subusers(db: &mut MySqlConnection) -> Result<Vec<Subuser>, SourceError> {
    let rows: Vec<SubuserRow> = paged(
        db,
        "CAST(id AS SIGNED) AS id, CAST(user_id AS SIGNED) AS user_id, \
         CAST(server_id AS SIGNED) AS server_id, CAST(permissions AS CHAR) AS permissions",
        "subusers",
        "id",
        None,
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            let permissions = match r.permissions.as_deref().map(str::trim) {
                None | Some("" | "null") => Vec::new(),
                Some(json) => serde_json::from_str::<Vec<String>>(json).map_err(|e| {
                    SourceError::Protocol(format!("subuser {} permissions: {e}", r.id))
                })?,
            };
            Ok(Subuser {
                server_id: r.server_id,
                user_id: r.user_id,
                permissions,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
pub(super) struct ScheduleRow {
    id: i64,
    server_id: i64,
    name: Option<String>,
    cron_minute: String,
    cron_hour: String,
    cron_day_of_month: String,
    cron_month: String,
    cron_day_of_week: String,
    is_active: i64,
    only_when_online: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct TaskRow {
    id: i64,
    schedule_id: i64,
    sequence_id: i64,
    action: String,
    payload: Option<String>,
    time_offset: i64,
    continue_on_failure: i64,
}

pub(super) async fn schedules(
    db: &mut MySqlConnection,
    columns: &Columns,
) -> Result<Vec<Schedule>, SourceError> {
    let select = format!(
        "CAST(id AS SIGNED) AS id, CAST(server_id AS SIGNED) AS server_id, name, \
         cron_minute, cron_hour, cron_day_of_month, {month} AS cron_month, cron_day_of_week, \
         CAST(is_active AS SIGNED) AS is_active, {online} AS only_when_online",
        month = columns.or("schedules", "cron_month", "cron_month", "'*'"),
        online = columns.or(
            "schedules",
            "only_when_online",
            "CAST(only_when_online AS SIGNED)",
            "0"
        ),
    );
    let rows: Vec<ScheduleRow> = paged(db, &select, "schedules", "id", None).await?;
    let select = format!(
        "CAST(id AS SIGNED) AS id, CAST(schedule_id AS SIGNED) AS schedule_id, \
         CAST(sequence_id AS SIGNED) AS sequence_id, action, payload, \
         CAST(time_offset AS SIGNED) AS time_offset, {cont} AS continue_on_failure",
        cont = columns.or(
            "tasks",
            "continue_on_failure",
            "CAST(continue_on_failure AS SIGNED)",
            "0"
        ),
    );
    let tasks: Vec<TaskRow> = paged(db, &select, "tasks", "id", None).await?;
    let mut tasks = group(tasks.into_iter().map(|t| (t.schedule_id, t)));
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut list = tasks.remove(&r.id).unwrap_or_default();
            list.sort_by_key(|t| (t.sequence_id, t.id));
            Schedule {
                id: r.id,
                server_id: r.server_id,
                name: r.name.unwrap_or_default(),
                cron_minute: r.cron_minute,
                cron_hour: r.cron_hour,
                cron_day_of_month: r.cron_day_of_month,
                cron_month: r.cron_month,
                cron_day_of_week: r.cron_day_of_week,
                is_active: bit(r.is_active),
                only_when_online: bit(r.only_when_online),
                tasks: list
                    .into_iter()
                    .map(|t| Task {
                        sequence_id: t.sequence_id,
                        action: t.action,
                        payload: t.payload.unwrap_or_default(),
                        time_offset: t.time_offset,
                        continue_on_failure: bit(t.continue_on_failure),
                    })
                    .collect(),
            }
        })
        .collect())
}

/// A 0/1 column of the source's MySQL tables (read as `SIGNED`): the Any pool's
/// `db::row::Flag` decodes our own engines only.
fn bit(v: i64) -> bool {
    v != 0
}
