//! The database: one sqlx `Any` pool over SQLite or PostgreSQL, one migration folder per
//! engine, and the column conventions both engines share (ids TEXT UUIDv7, times BIGINT
//! unix milliseconds, booleans BIGINT 0/1).

pub mod contract;
pub mod row;
#[cfg(test)]
mod tests;
pub mod upgrade;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which engine a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The engine named by a URL's scheme.
    ///
    /// # Errors
    /// Any scheme but `sqlite:` and `postgres:`/`postgresql:`.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!("database_url must start with sqlite: or postgres:")
        }
    }

    /// Name shown in health reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A connected pool and its engine.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// The file a `sqlite://` URL names (`None` for PostgreSQL and in-memory databases).
#[must_use]
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Claims a SQLite database file for this process: an exclusive lock on `<file>.lock`,
/// held until the returned file is dropped (or the process ends, however it ends).
///
/// # Errors
/// Another process holds it (a second panel on the same file), or the lock file cannot
/// be created.
pub fn claim_sqlite(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another panel process already serves the SQLite database {}: a SQLite file \
             serves one process. Stop the other one, or run several replicas on PostgreSQL \
             (database_url = \"postgres://...\") with redis_url set",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("locking {}: {e}", lock_path.display())
        }
    }
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The migrations this binary carries for `backend`.
#[must_use]
pub fn migrator(backend: Backend) -> &'static sqlx::migrate::Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATOR,
        Backend::Postgres => &POSTGRES_MIGRATOR,
    }
}

impl Db {
    /// Connects to `url`. SQLite files are created when missing and put in WAL mode.
    ///
    /// # Errors
    /// An unreachable server or an unwritable file.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyConnectOptions::from_str(url).context("parsing database_url")?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a file handle in this process: no server can drop it,
            // so the ping before each use (a round trip to its worker thread) buys nothing.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to the {} database", backend.name()))?;
        Ok(Self { pool, backend })
    }

    /// Applies every pending migration of this engine. A database a newer release only
    /// expanded ([`upgrade::Report::newer_expand_only`]) is left as it is: this binary is
    /// then an old replica of a rolling upgrade, and serves it.
    ///
    /// # Errors
    /// A failed migration (the database is left at the last applied one); a database
    /// this binary must not serve (a newer release's contract migration, an edited one).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let report = self.upgrade_report().await?;
        if report.newer_expand_only() {
            tracing::warn!(
                newer = ?report.unknown,
                "a newer shardlyn expanded this database: serving it as it is, migrating nothing"
            );
            return Ok(());
        }
        if !report.unknown.is_empty() {
            anyhow::bail!("{}", report.render().trim_end());
        }
        migrator(self.backend)
            .run(&self.pool)
            .await
            .context("running migrations")?;
        Ok(())
    }

    /// Applies the pending migrations up to and including `version` (upgrade tests build
    /// a database of an older release this way).
    ///
    /// # Errors
    /// A failed migration.
    pub async fn migrate_to(&self, version: i64) -> anyhow::Result<()> {
        migrator(self.backend)
            .run_to(version, &self.pool)
            .await
            .context("running migrations")?;
        Ok(())
    }

    /// `SELECT 1`, for readiness checks.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// A transaction that reads before it writes: `BEGIN IMMEDIATE` on SQLite, which
    /// takes the write lock at once (waiting `busy_timeout` for it), where a plain `BEGIN`
    /// would fail with "database is locked" when another writer commits between the read
    /// and the write; a plain one on PostgreSQL.
    ///
    /// # Errors
    /// Database failures.
    pub async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }
}

/// Now, as unix milliseconds (the stored time format).
#[must_use]
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new time-ordered id.
#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Renders stored milliseconds as RFC 3339 (`2026-01-31T00:00:00Z`).
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Serde helpers rendering stored milliseconds as RFC 3339 strings.
pub mod ts {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::types::Timestamp;

    /// Serializes milliseconds as RFC 3339.
    ///
    /// # Errors
    /// Never, beyond the serializer's own.
    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*ms))
    }

    /// Reads RFC 3339 back as milliseconds (a page reading the API's answer).
    ///
    /// # Errors
    /// Anything but an RFC 3339 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        Timestamp::deserialize(d).map(Timestamp::millis)
    }

    /// Optional milliseconds as RFC 3339 or null.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use crate::types::Timestamp;

        /// Serializes optional milliseconds.
        ///
        /// # Errors
        /// Never, beyond the serializer's own.
        pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&super::super::rfc3339(*ms)),
                None => s.serialize_none(),
            }
        }

        /// Reads RFC 3339 or null back as optional milliseconds.
        ///
        /// # Errors
        /// Anything but an RFC 3339 string or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            Ok(Option::<Timestamp>::deserialize(d)?.map(Timestamp::millis))
        }
    }
}
