//! The database part of the panel's backup: SQLite through `VACUUM INTO` (a consistent
//! copy while the panel serves), PostgreSQL through `pg_dump --format=custom` of at
//! least the server's major version, restored with the `pg_restore` beside it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;

use crate::config::SystemBackupConfig;
use crate::db::{Backend, Db};

/// The file name of the dump inside the archive, per engine.
#[must_use]
pub fn file_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "database.sqlite",
        Backend::Postgres => "database.pgdump",
    }
}

/// Writes a consistent copy of the database to `out` (which must not exist).
///
/// # Errors
/// The copy fails, or no `pg_dump` of the server's major version or newer is installed.
pub async fn dump(
    db: &Db,
    database_url: &str,
    settings: &SystemBackupConfig,
    out: &Path,
) -> anyhow::Result<()> {
    match db.backend {
        Backend::Sqlite => {
            let target = out
                .to_str()
                .context("the backup's temporary path is not UTF-8")?;
            // A quoted literal; VACUUM INTO takes no bound parameter on every build.
            let sql = format!("VACUUM INTO '{}'", target.replace('\'', "''"));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&db.pool)
                .await
                .context("VACUUM INTO")?;
            Ok(())
        }
        Backend::Postgres => {
            let server: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
                .fetch_one(&db.pool)
                .await
                .context("reading the PostgreSQL server's version")?;
            let server_major = server.trim().parse::<u32>().unwrap_or(0) / 10_000;
            let tool = pg_tool(settings, "pg_dump");
            let tool_major = tool_major(&tool).await?;
            anyhow::ensure!(
                tool_major >= server_major,
                "{} is PostgreSQL {tool_major}, older than the server ({server_major}): \
                 install postgresql-client-{server_major} or set system_backup.pg_dump",
                tool.display()
            );
            let (dbname, password) = without_password(database_url)?;
            let mut cmd = tokio::process::Command::new(&tool);
            cmd.arg("--format=custom")
                .arg("--no-owner")
                .arg("--no-privileges")
                .arg("--file")
                .arg(out)
                .arg("--dbname")
                .arg(dbname);
            run(cmd, password, "pg_dump").await
        }
    }
}

/// Loads a dump made by [`dump`] into the empty database at `database_url`.
///
/// # Errors
/// The load fails (the PostgreSQL database is then left as `pg_restore` left it: it ran
/// in one transaction, so empty).
pub async fn load(
    backend: Backend,
    database_url: &str,
    settings: &SystemBackupConfig,
    dump: &Path,
) -> anyhow::Result<()> {
    match backend {
        Backend::Sqlite => {
            let path = crate::db::sqlite_path(database_url)
                .context("restoring needs a SQLite file, not an in-memory database")?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::copy(dump, &path).with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        }
        Backend::Postgres => {
            let tool = pg_tool(settings, "pg_restore");
            let (dbname, password) = without_password(database_url)?;
            let mut cmd = tokio::process::Command::new(&tool);
            cmd.arg("--no-owner")
                .arg("--no-privileges")
                .arg("--exit-on-error")
                .arg("--single-transaction")
                .arg("--dbname")
                .arg(dbname)
                .arg(dump);
            run(cmd, password, "pg_restore").await
        }
    }
}

/// `name` beside the configured `pg_dump`, else the newest under
/// `/usr/lib/postgresql/*/bin`, else from `PATH`.
fn pg_tool(settings: &SystemBackupConfig, name: &str) -> PathBuf {
    if let Some(dump) = &settings.pg_dump {
        return dump.with_file_name(name);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let tool = e.path().join("bin").join(name);
            tool.is_file().then_some((major, tool))
        })
        .max_by_key(|(major, _)| *major);
    newest.map_or_else(|| PathBuf::from(name), |(_, tool)| tool)
}

/// The major version `tool --version` reports (`pg_dump (PostgreSQL) 15.8 ...`).
async fn tool_major(tool: &Path) -> anyhow::Result<u32> {
    let out = tokio::process::Command::new(tool)
        .arg("--version")
        .output()
        .await
        .with_context(|| {
            format!(
                "running {} (install postgresql-client, or set system_backup.pg_dump)",
                tool.display()
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|word| word.split('.').next()?.parse::<u32>().ok())
        .with_context(|| format!("{} --version said {text:?}", tool.display()))
}

/// The URL without its password (it would show in the process list), and the password
/// for `PGPASSWORD`.
fn without_password(database_url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut url = reqwest::Url::parse(database_url).context("parsing database_url")?;
    let password = url.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let _ = url.set_password(None);
    Ok((url.to_string(), password))
}

async fn run(
    mut cmd: tokio::process::Command,
    password: Option<String>,
    what: &str,
) -> anyhow::Result<()> {
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let (url, pw) = without_password("postgres://u:p%40ss@db:5432/shardlyn?sslmode=require")
            .expect("parses");
        assert_eq!(url, "postgres://u@db:5432/shardlyn?sslmode=require");
        assert_eq!(pw.as_deref(), Some("p@ss"));
        let (url, pw) = without_password("postgres://db/shardlyn").expect("parses");
        assert_eq!(url, "postgres://db/shardlyn");
        assert_eq!(pw, None);
    }

    #[test]
    fn a_configured_pg_dump_brings_its_pg_restore() {
        let settings = SystemBackupConfig {
            pg_dump: Some("/opt/pg17/bin/pg_dump".into()),
            ..SystemBackupConfig::default()
        };
        assert_eq!(
            pg_tool(&settings, "pg_restore"),
            PathBuf::from("/opt/pg17/bin/pg_restore")
        );
    }
}
