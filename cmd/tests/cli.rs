//! The `shardlyn` binary: config example, migrate, admin create, serve with graceful
//! shutdown on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{http_get, shardlyn};

#[test]
fn config_example_prints_every_section() {
    let out = shardlyn()
        .args(["config", "example"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    for needle in [
        "listen = \"127.0.0.1:8080\"",
        "[tls]",
        "mode = \"auto\"",
        "[auth]",
        "[rate_limit]",
        "# ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn migrate_and_admin_create_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf8 path");
    let out = shardlyn()
        .args(["migrate", "--data-dir", data])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("shardlyn.db").exists());
    let create = |email: &str, password: &str| {
        shardlyn()
            .args([
                "admin",
                "create",
                "--data-dir",
                data,
                "--email",
                email,
                "--password",
                password,
            ])
            .output()
            .expect("runs")
    };
    let first = create("root@example.com", "a-long-password");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("created platform admin root@example.com")
    );
    let dup = create("root@example.com", "a-long-password");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let short = create("other@example.com", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least"));
    // Generated keys are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("jwt.key"))
        .expect("jwt.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = shardlyn()
        .args(["migrate", "--config", "/nonexistent/shardlyn.toml"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn serve_prints_its_url_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = shardlyn()
        .args([
            "serve",
            "--data-dir",
            dir.path().to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("SHARDLYN_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf8");
    let url = first
        .strip_prefix("Shardlyn panel listening on ")
        .expect("url line")
        .to_string();
    let addr = url
        .strip_prefix("http://")
        .expect("http on loopback")
        .to_string();
    let rest: Vec<String> = lines.by_ref().take(3).map(|l| l.expect("line")).collect();
    assert!(
        rest.iter().any(|l| l.contains("shardlyn admin create")),
        "{rest:?}"
    );
    let health = http_get(&addr, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "panel did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `migrate --check` on a SQLite file one migration behind the baseline, then migrated,
/// then expanded by a "newer release" (exit 13: served, as an old replica of a rolling
/// upgrade would be), then contracted by it (exit 12: refused); exit codes 11, 0, 13 and
/// 12, and what it prints.
#[test]
fn migrate_check_reports_pending_serves_a_newer_expand_and_refuses_a_newer_contract() {
    use shardlyn_panel::db::{Db, contract::BASELINE};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf8 path");
    let check = || {
        let out = shardlyn()
            .args(["migrate", "--check", "--data-dir", data])
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), text)
    };
    // No database yet: everything pending, and the file is not made.
    let (code, text) = check();
    assert_eq!(code, Some(11), "{text}");
    assert!(!dir.path().join("shardlyn.db").exists());

    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("shardlyn.db").display()
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(Db::connect(&url, 1)).expect("connect");
    runtime
        .block_on(db.migrate_to(BASELINE - 1))
        .expect("migrate to the baseline minus one");
    runtime.block_on(db.pool.close());
    let (code, text) = check();
    assert_eq!(code, Some(11), "{text}");
    let pending: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("pending:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(
        pending
            .first()
            .is_some_and(|l| l.contains("0040 deployments") && l.contains("baseline")),
        "{text}"
    );
    assert!(
        text.contains(&format!("pending: {}", pending.len())),
        "{text}"
    );
    assert!(
        text.contains("stop every replica of the old version"),
        "{text}"
    );
    // --check changed nothing.
    let (code, _) = check();
    assert_eq!(code, Some(11));

    let out = shardlyn()
        .args(["migrate", "--data-dir", data])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let (code, text) = check();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("pending: 0"), "{text}");
    assert!(text.contains("verdict: up to date"), "{text}");

    // A newer release expanded the database: a table, recorded as its migration.
    let newer = |sql: &str| {
        let db = runtime.block_on(Db::connect(&url, 1)).expect("connect");
        runtime
            .block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&db.pool))
            .expect("a newer release's migration");
        runtime.block_on(db.pool.close());
    };
    newer(
        "CREATE TABLE zones (id TEXT PRIMARY KEY, name TEXT); \
         INSERT INTO _sqlx_migrations (version, description, success, checksum, \
         execution_time) VALUES (999998, 'zones', TRUE, x'00', 0)",
    );
    let (code, text) = check();
    assert_eq!(code, Some(13), "{text}");
    assert!(
        text.contains("unknown: 999998 zones (expand, applied by a newer shardlyn)"),
        "{text}"
    );
    assert!(text.contains("serves it as it is"), "{text}");
    // This binary, an old replica restarting in the middle of a rolling upgrade, writes
    // and serves on it, and migrates nothing.
    let admin = shardlyn()
        .args(["admin", "create", "--data-dir", data])
        .args([
            "--email",
            "old@example.com",
            "--password",
            "a-long-password",
        ])
        .output()
        .expect("runs");
    assert!(
        admin.status.success(),
        "{}",
        String::from_utf8_lossy(&admin.stderr)
    );
    let (health, _) = serve_and_stop(data);
    assert!(
        health
            .as_deref()
            .is_some_and(|h| h.starts_with("HTTP/1.1 200")),
        "{health:?}"
    );
    let (code, _) = check();
    assert_eq!(code, Some(13), "the old replica migrated nothing");

    // Then the newer release contracted it: this binary refuses to serve.
    newer(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
         execution_time) VALUES (999999, 'contract drop nodes location', TRUE, x'00', 0)",
    );
    let (code, text) = check();
    assert_eq!(code, Some(12), "{text}");
    assert!(
        text.contains("unknown: 999999 contract drop nodes location (contract"),
        "{text}"
    );
    assert!(text.contains("newer shardlyn"), "{text}");
    let (health, stderr) = serve_and_stop(data);
    assert!(health.is_none(), "served a contracted database");
    assert!(
        stderr.contains("999999 contract drop nodes location"),
        "{stderr}"
    );
}

/// Starts `shardlyn serve` on `data` and stops it: `/health`'s answer when it started
/// listening (`None` when it exited first), and what it wrote to stderr.
fn serve_and_stop(data: &str) -> (Option<String>, String) {
    let mut child = shardlyn()
        .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .env("SHARDLYN_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let health = lines.next().and_then(Result::ok).map(|first| {
        let url = first
            .strip_prefix("Shardlyn panel listening on http://")
            .expect("url line")
            .to_string();
        http_get(&url, "/health")
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    (health, String::from_utf8_lossy(&out.stderr).into_owned())
}
