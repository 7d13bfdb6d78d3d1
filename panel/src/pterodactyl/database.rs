//! Database mode: reads a Pterodactyl 1.x panel's MySQL/MariaDB database, read only, and
//! opens its encrypted columns with the panel's `APP_KEY`.
//!
//! Source reader of the Pterodactyl import (domain over sqlx's MySQL driver; a separate
//! connection, not the panel's `Any` pool). The host is checked by the outbound guard and
//! the connection goes to the address it resolved. Everything is read inside one
//! `START TRANSACTION READ ONLY` (one consistent snapshot), table by table in pages of
//! [`PAGE`] rows keyed by `id`, so 500 servers take a handful of queries. The key is
//! checked on the first encrypted value before anything else is read.

mod eggs;
mod rows;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use shardlyn_net::outbound::Outbound;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlSslMode};
use sqlx::{ConnectOptions, Connection};

use super::laravel::{self, LaravelError};
use super::model::{Snapshot, SourceError};

/// Rows per query.
pub const PAGE: usize = 1000;

/// Longest a connection (TCP and login) may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// How to reach the panel's database: a login with `SELECT` on its tables is enough.
/// `Debug` hides the password; `Serialize` keeps it (seal before storing).
#[derive(Clone, serde::Serialize, Deserialize, schemars::JsonSchema)]
pub struct DbConnection {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: String,
}

fn default_port() -> u16 {
    3306
}

impl fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConnection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Reads everything an import needs from the panel's database.
///
/// # Errors
/// [`SourceError::Unreachable`] when the host is refused by `outbound` or does not
/// answer; [`SourceError::Credentials`] when the login is refused or cannot `SELECT`;
/// [`SourceError::AppKey`] when `app_key` is malformed or does not open the panel's
/// encrypted values (checked first); [`SourceError::Protocol`] when the tables are not
/// Pterodactyl's.
pub async fn read(
    outbound: &Outbound,
    conn: &DbConnection,
    app_key: &str,
) -> Result<Snapshot, SourceError> {
    laravel::key_bytes(app_key).map_err(|e| SourceError::AppKey(e.to_string()))?;
    let mut db = connect(outbound, conn).await?;
    let snapshot = read_all(&mut db, app_key).await;
    // Nothing was written; ending the read-only transaction and the session is tidy,
    // and a failure to do so changes nothing at the source.
    let _ = sqlx::query("ROLLBACK").execute(&mut db).await;
    let _ = db.close().await;
    snapshot
}

async fn read_all(db: &mut MySqlConnection, app_key: &str) -> Result<Snapshot, SourceError> {
    sqlx::query("SET SESSION TRANSACTION READ ONLY")
        .execute(&mut *db)
        .await
        .map_err(source_error)?;
    sqlx::query("START TRANSACTION READ ONLY")
        .execute(&mut *db)
        .await
        .map_err(source_error)?;
    let columns = rows::Columns::load(db).await?;
    check_key(db, &columns, app_key).await?;
    let locations = rows::locations(db).await?;
    let nodes = rows::nodes(db, app_key).await?;
    let users = rows::users(db, app_key).await?;
    let egg_set = eggs::read(db, &columns).await?;
    let servers = rows::servers(db, &columns, &egg_set).await?;
    let subusers = rows::subusers(db).await?;
    let schedules = rows::schedules(db, &columns).await?;
    Ok(Snapshot {
        locations,
        nodes,
        eggs: egg_set.eggs,
        users,
        servers,
        subusers,
        schedules,
    })
}

/// Resolves the host through the guard and logs in to the first address that answers.
async fn connect(outbound: &Outbound, conn: &DbConnection) -> Result<MySqlConnection, SourceError> {
    let addrs = outbound
        .resolve(&conn.host, conn.port)
        .await
        .map_err(|e| SourceError::Unreachable(e.to_string()))?;
    let mut last = SourceError::Unreachable(format!("{} has no address", conn.host));
    for addr in addrs {
        let options = MySqlConnectOptions::new()
            .host(&addr.ip().to_string())
            .port(addr.port())
            .username(&conn.username)
            .password(&conn.password)
            .database(&conn.database)
            .ssl_mode(MySqlSslMode::Preferred)
            .charset("utf8mb4")
            .disable_statement_logging();
        match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(e)) => match source_error(e) {
                SourceError::Unreachable(m) => {
                    last = SourceError::Unreachable(format!("{}:{}: {m}", conn.host, conn.port));
                }
                other => return Err(other),
            },
            Err(_) => {
                last = SourceError::Unreachable(format!(
                    "{}:{} did not answer within {}s",
                    conn.host,
                    conn.port,
                    CONNECT_TIMEOUT.as_secs()
                ));
            }
        }
    }
    Err(last)
}

/// Opens the first encrypted value (a node's daemon token, else a TOTP secret): another
/// key fails here, before any row is returned.
async fn check_key(
    db: &mut MySqlConnection,
    columns: &rows::Columns,
    app_key: &str,
) -> Result<(), SourceError> {
    let mut first: Option<(String, String)> = sqlx::query_as(
        "SELECT 'nodes.daemon_token', daemon_token FROM nodes \
             WHERE daemon_token IS NOT NULL AND daemon_token <> '' ORDER BY id LIMIT 1",
    )
    .fetch_optional(&mut *db)
    .await
    .map_err(source_error)?;
    if first.is_none() && columns.has("users", "totp_secret") {
        first = sqlx::query_as(
            "SELECT 'users.totp_secret', totp_secret FROM users \
             WHERE use_totp <> 0 AND totp_secret IS NOT NULL AND totp_secret <> '' \
             ORDER BY id LIMIT 1",
        )
        .fetch_optional(&mut *db)
        .await
        .map_err(source_error)?;
    }
    match first {
        Some((what, payload)) => open(app_key, &payload, &what).map(drop),
        None => Ok(()),
    }
}

/// Decrypts one column value; `what` names it in errors.
fn open(app_key: &str, payload: &str, what: &str) -> Result<String, SourceError> {
    laravel::decrypt_string(app_key, payload).map_err(|e| match e {
        LaravelError::Key | LaravelError::Mac => SourceError::AppKey(format!("{what}: {e}")),
        other => SourceError::Protocol(format!("{what}: {other}")),
    })
}

/// MySQL error numbers of a refused login or a missing privilege.
const DENIED: &[u16] = &[
    1044, // ER_DBACCESS_DENIED_ERROR
    1045, // ER_ACCESS_DENIED_ERROR
    1049, // ER_BAD_DB_ERROR: the database named does not exist
    1142, // ER_TABLEACCESS_DENIED_ERROR
    1143, // ER_COLUMNACCESS_DENIED_ERROR
    1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR
    1251, // ER_NOT_SUPPORTED_AUTH_MODE
    1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    1862, // ER_MUST_CHANGE_PASSWORD_LOGIN
    4151, // MariaDB ER_ACCOUNT_HAS_BEEN_LOCKED
];

/// Maps a driver error onto the reasons `validate` reports.
fn source_error(e: sqlx::Error) -> SourceError {
    match e {
        sqlx::Error::Io(e) => SourceError::Unreachable(e.to_string()),
        sqlx::Error::Tls(e) => SourceError::Unreachable(format!("TLS: {e}")),
        sqlx::Error::PoolTimedOut => SourceError::Unreachable("timed out".into()),
        sqlx::Error::Database(db) => {
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(MySqlDatabaseError::number);
            if number.is_some_and(|n| DENIED.contains(&n)) {
                SourceError::Credentials(db.message().to_owned())
            } else {
                SourceError::Protocol(db.message().to_owned())
            }
        }
        other => SourceError::Protocol(other.to_string()),
    }
}

/// Rows keyed by `id`, read a page at a time: `select` lists the columns (the first is
/// the `id` cursor, as a signed integer), `from` is the table (with joins), `filter` an
/// extra condition.
async fn paged<T>(
    db: &mut MySqlConnection,
    select: &str,
    from: &str,
    id: &str,
    filter: Option<&str>,
) -> Result<Vec<T>, SourceError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::mysql::MySqlRow> + Send + Unpin + rows::Keyed,
{
    let filter = filter.map_or(String::new(), |f| format!(" AND ({f})"));
    let sql =
        format!("SELECT {select} FROM {from} WHERE {id} > ?{filter} ORDER BY {id} LIMIT {PAGE}");
    let mut out: Vec<T> = Vec::new();
    let mut after = -1_i64;
    loop {
        // The SQL is ours: fixed column lists and table names chosen in this module.
        let page: Vec<T> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(after)
            .fetch_all(&mut *db)
            .await
            .map_err(source_error)?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            after = last.key();
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// Groups `items` by `key`, keeping their order.
fn group<K: Ord, V>(items: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, Vec<V>> {
    let mut map: BTreeMap<K, Vec<V>> = BTreeMap::new();
    for (k, v) in items {
        map.entry(k).or_default().push(v);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let c = DbConnection {
            host: "db.example.com".into(),
            port: 3306,
            database: "panel".into(),
            username: "ro".into(),
            password: "hunter2-secret".into(),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.example.com"), "{shown}");
    }

    #[test]
    fn the_port_defaults_to_3306() {
        let c: DbConnection = serde_json::from_value(serde_json::json!({
            "host": "h", "database": "d", "username": "u", "password": "p"
        }))
        .unwrap();
        assert_eq!(c.port, 3306);
    }

    #[test]
    fn group_keeps_the_order() {
        let g = group([(2, 'x'), (1, 'y'), (2, 'z')]);
        assert_eq!(g[&2], ['x', 'z']);
    }
}
