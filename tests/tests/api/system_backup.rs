//! The panel's own backup (issue 21 §3), on both engines: `shardlyn backup` and
//! `shardlyn restore` run as the real binary; the restored database is compared table by
//! table with the original, every sealed secret opens under the restored key, an old
//! access token still works, and an agent that pinned the old panel's CA reconnects to
//! the restored one. The scheduled run goes to a real S3 server (moto) under a pinned
//! clock, keeps `keep` archives, and shows in `GET /v1/system/backup-config` with its
//! secrets redacted. An archive made to an age public key opens with the real `age`
//! (Debian), and restores with `--identity`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::config::Config;
use shardlyn_panel::db::{Backend, Db};
use shardlyn_tests::agent::{LocalAgent, agent_binary, free_port, wait_node};
use shardlyn_tests::{Engine, both_engines, spawn_app_with, start_with_config};

const PASSPHRASE: &str = "correct horse battery staple";

fn shardlyn(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let bin = agent_binary().with_file_name("shardlyn");
    std::process::Command::new(&bin)
        .args(args)
        .env_remove("SHARDLYN_BACKUP_PASSPHRASE")
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

fn said(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `config` as the TOML file the CLI reads (registration closed: open
/// registration needs SMTP, which the test panels' in-memory mailer stands in for).
fn write_config(config: &Config, at: &Path) -> PathBuf {
    let mut config = config.clone();
    config.auth.registration = shardlyn_panel::config::Registration::Closed;
    let text = toml::to_string(&config).expect("config serializes");
    std::fs::write(at, text).expect("write config");
    at.to_path_buf()
}

/// Every table's rows as text, sorted: `table -> rows`.
async fn snapshot(url: &str) -> BTreeMap<String, Vec<Vec<Option<String>>>> {
    let db = Db::connect(url, 1).await.expect("connect");
    let tables: Vec<String> = match db.backend {
        Backend::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        ),
        Backend::Postgres => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        ),
    }
    .fetch_all(&db.pool)
    .await
    .expect("tables");
    let mut all = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = match db.backend {
            Backend::Sqlite => {
                sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
            }
            Backend::Postgres => sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
            ),
        }
        .bind(&table)
        .fetch_all(&db.pool)
        .await
        .expect("columns");
        // As text; SQLite's blobs (sqlx's migration checksums) as hex, PostgreSQL's bytea
        // reads as hex text already.
        let select = columns
            .iter()
            .map(|c| match db.backend {
                Backend::Sqlite => format!(
                    "CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE CAST(\"{c}\" AS TEXT) END"
                ),
                Backend::Postgres => format!("CAST(\"{c}\" AS TEXT)"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        // Names from the database's own catalog.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {select} FROM \"{table}\""
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"));
        let mut rows: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|row| {
                use sqlx::Row;
                (0..columns.len())
                    .map(|i| row.try_get::<Option<String>, _>(i).expect("text"))
                    .collect()
            })
            .collect();
        rows.sort();
        all.insert(table, rows);
    }
    db.pool.close().await;
    all
}

fn master_key(data_dir: &Path) -> [u8; 32] {
    let hex = std::fs::read_to_string(data_dir.join("master.key")).expect("master.key");
    hex::decode(hex.trim())
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

/// A TLS panel (self-signed CA: the bind is not loopback) on `port`, without jobs, so
/// its database changes only when the test asks.
fn tls_config(dir: &Path, url: String, port: u16) -> Config {
    let mut config = shardlyn_tests::test_config(dir, url);
    config.listen = format!("0.0.0.0:{port}").parse().expect("addr");
    config.jobs.enabled = false;
    config.system_backup.passphrase = shardlyn_panel::config::Secret(PASSPHRASE.into());
    config
}

both_engines! {
    async fn a_restored_panel_has_every_row_secret_and_agent(engine) {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let url = shardlyn_tests::fresh_database(engine, dir.path()).await;
        let config = tls_config(dir.path(), url.clone(), port);
        let app = start_with_config(engine, dir, config.clone()).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let org = app.create_org(&admin.access, "Restored Co").await;
        // Sealed secrets: the SSH CA's private key and a webhook token's secret.
        app.post("/v1/ssh/ca/keys", t, json!({})).await.expect(201);
        app.post("/v1/webhook-tokens", t, json!({"name": "ci", "organization_id": org}))
            .await
            .expect(201);
        // An agent that pinned this panel's CA.
        let ca = app.get("/v1/ca", None).await.expect(200);
        let fingerprint = ca.body["sha256"].as_str().expect("sha256").to_string();
        let token = app
            .post("/v1/nodes/register-token", t, json!({"name": "pinned"}))
            .await
            .expect(201);
        let agent_dir = tempfile::tempdir().expect("tempdir");
        let agent_config = shardlyn_agent::register::register(
            &app.base,
            token.body["token"].as_str().expect("token"),
            Some(&fingerprint),
            agent_dir.path(),
        )
        .await
        .expect("agent registers with the pinned CA");
        let node_id = agent_config.node_id.clone();
        let agent = LocalAgent::start(agent_config.clone(), agent_dir.path());
        wait_node(&app, &admin.access, &node_id, "online").await;
        agent.stop().await;
        wait_node(&app, &admin.access, &node_id, "offline").await;
        let old_dir = app.stop_keep_dir().await;

        let before = snapshot(&url).await;
        let old_key = master_key(old_dir.path());
        let work = tempfile::tempdir().expect("tempdir");
        let old_toml = write_config(&config, &work.path().join("old.toml"));
        let archive = work.path().join("panel.tar.gz.age");
        let out = shardlyn(
            &["backup", "-c", old_toml.to_str().expect("utf8"), "--out", archive.to_str().expect("utf8")],
            &[],
        );
        assert!(out.status.success(), "backup: {}", said(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("backup written"), "{}", said(&out));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&archive).expect("archive").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the archive is its owner's only");
        let bytes = std::fs::read(&archive).expect("archive");
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "an age file");
        assert!(
            !bytes.windows(32).any(|w| w == hex::encode(old_key).as_bytes()),
            "the master key is not in the clear"
        );
        // The run is recorded in the old panel's database.
        let old_db = Db::connect(&url, 1).await.expect("connect");
        let (trigger, status): (String, String) =
            sqlx::query_as("SELECT trigger, status FROM system_backup_runs")
                .fetch_one(&old_db.pool)
                .await
                .expect("one run");
        assert_eq!((trigger.as_str(), status.as_str()), ("cli", "succeeded"));
        old_db.pool.close().await;

        // The new machine: an empty data directory and an empty database.
        let new_dir = tempfile::tempdir().expect("tempdir");
        let data = new_dir.path().join("data");
        let new_url = match engine {
            Engine::Sqlite => format!("sqlite://{}?mode=rwc", data.join("shardlyn.db").display()),
            Engine::Postgres => shardlyn_tests::fresh_database(engine, new_dir.path()).await,
        };
        let mut new_config = tls_config(&data, new_url.clone(), port);
        new_config.system_backup.passphrase = shardlyn_panel::config::Secret::default();
        let new_toml = write_config(&new_config, &work.path().join("new.toml"));
        let new_toml = new_toml.to_str().expect("utf8");
        let pass_file = work.path().join("pass");
        std::fs::write(&pass_file, format!("{PASSPHRASE}\n")).expect("write");
        let wrong_file = work.path().join("wrong");
        std::fs::write(&wrong_file, "not the passphrase at all").expect("write");

        // Refusals first: each leaves the target untouched.
        let out = shardlyn(&["restore", "-c", new_toml, archive.to_str().expect("utf8"), "--passphrase-file", wrong_file.to_str().expect("utf8")], &[]);
        assert!(!out.status.success(), "{}", said(&out));
        assert!(said(&out).contains("passphrase does not open it"), "{}", said(&out));
        assert!(!data.exists(), "nothing written after a wrong passphrase");
        let out = shardlyn(&["restore", "-c", new_toml, archive.to_str().expect("utf8")], &[]);
        assert!(!out.status.success(), "{}", said(&out));
        assert!(said(&out).contains("give the key"), "{}", said(&out));
        let damaged = work.path().join("damaged.age");
        let mut cut = bytes.clone();
        let middle = cut.len() / 2;
        cut[middle] ^= 0x55;
        std::fs::write(&damaged, &cut).expect("write");
        let out = shardlyn(&["restore", "-c", new_toml, damaged.to_str().expect("utf8"), "--passphrase-file", pass_file.to_str().expect("utf8")], &[]);
        assert!(!out.status.success(), "a damaged archive is refused: {}", said(&out));
        assert!(!data.exists(), "nothing written from a damaged archive");
        std::fs::create_dir_all(&data).expect("mkdir");
        std::fs::write(data.join("stray"), "x").expect("write");
        let out = shardlyn(&["restore", "-c", new_toml, archive.to_str().expect("utf8"), "--passphrase-file", pass_file.to_str().expect("utf8")], &[]);
        assert!(said(&out).contains("is not empty"), "{}", said(&out));
        std::fs::remove_file(data.join("stray")).expect("rm");

        let out = shardlyn(
            &["restore", "-c", new_toml, archive.to_str().expect("utf8")],
            &[("SHARDLYN_BACKUP_PASSPHRASE", PASSPHRASE)],
        );
        assert!(out.status.success(), "restore: {}", said(&out));
        assert!(said(&out).contains("TLS CA agents pin is back"), "{}", said(&out));

        // Every table, row for row.
        let after = snapshot(&new_url).await;
        assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
        for (table, rows) in &before {
            assert_eq!(rows, &after[table], "table {table} differs after the restore");
        }
        assert!(before.values().map(Vec::len).sum::<usize>() > 20, "the comparison saw rows");
        // Every sealed secret opens under the restored key, to the same plaintext.
        let new_key = master_key(&data);
        let mut opened = 0;
        for (table, rows) in &before {
            for (r, row) in rows.iter().enumerate() {
                for (c, cell) in row.iter().enumerate() {
                    let Some(text) = cell else { continue };
                    let Ok(plain) = shardlyn_panel::sealed::open(&old_key, text) else {
                        continue;
                    };
                    let restored = after[table][r][c].as_deref().expect("same cell");
                    let again = shardlyn_panel::sealed::open(&new_key, restored)
                        .unwrap_or_else(|e| panic!("{table}: a sealed value does not open: {e}"));
                    assert_eq!(plain, again);
                    opened += 1;
                }
            }
        }
        assert!(opened >= 2, "the SSH CA key and the webhook secret, at least: {opened}");

        // The restored panel serves: the old access token works, the pinned agent returns.
        let restored = start_with_config(engine, new_dir, new_config).await;
        let nodes = restored.get("/v1/nodes", t).await.expect(200);
        assert!(nodes.text.contains(&node_id), "{}", nodes.text);
        let ca = restored.get("/v1/ca", None).await.expect(200);
        assert_eq!(ca.body["sha256"].as_str(), Some(fingerprint.as_str()));
        let agent = LocalAgent::start(agent_config, agent_dir.path());
        wait_node(&restored, &admin.access, &node_id, "online").await;
        agent.stop().await;
        restored.stop().await;
    }
}

/// Runs `age` or `age-keygen` (Debian `age`).
fn age(args: &[&str]) -> Output {
    std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{} runs (scripts/dev-services installs age): {e}", args[0]))
}

both_engines! {
    async fn a_scheduled_backup_goes_to_s3_keeps_the_newest_and_is_shown_redacted(engine) {
        let moto = shardlyn_tests::moto::Moto::start().await;
        let work = tempfile::tempdir().expect("tempdir");
        let key_file = work.path().join("key.txt");
        let out = age(&["age-keygen", "-o", key_file.to_str().expect("utf8")]);
        assert!(out.status.success(), "{}", said(&out));
        let public = String::from_utf8_lossy(&out.stderr)
            .split_whitespace()
            .find(|w| w.starts_with("age1"))
            .expect("age-keygen prints the public key")
            .to_string();
        let bucket = "panel-backups";
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", moto.url))
            .send()
            .await
            .expect("moto");
        assert!(created.status().is_success());
        let (endpoint, public_key) = (moto.url.clone(), public.clone());
        let app = spawn_app_with(engine, move |c| {
            c.system_backup.schedule = "0 3 * * *".into();
            c.system_backup.keep = 2;
            c.system_backup.recipients = vec![public_key];
            c.system_backup.s3_bucket = bucket.into();
            c.system_backup.s3_endpoint = endpoint;
            c.system_backup.s3_access_key_id = "AKIDPANEL".into();
            c.system_backup.s3_secret_access_key =
                shardlyn_panel::config::Secret("s3-secret-never-shown".into());
            c.jobs.poll_interval_ms = 50;
        })
        .await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let member = app.register("member@example.com").await;
        app.get("/v1/system/backup-config", Some(&member.access))
            .await
            .expect_error(403, "FORBIDDEN");
        app.get("/v1/system/backup-config", None).await.expect(401);

        let view = app.get("/v1/system/backup-config", t).await.expect(200);
        assert!(!view.text.contains("s3-secret-never-shown"), "{}", view.text);
        assert_eq!(view.body["destination"]["kind"], "s3");
        assert_eq!(view.body["destination"]["secret_access_key_set"], true);
        assert_eq!(view.body["encryption"]["kind"], "recipients");
        assert_eq!(view.body["encryption"]["recipients"], json!([public]));
        assert_eq!(view.body["runs"], json!([]));
        assert!(view.body["next_run_at"].as_str().is_some_and(|s| s.ends_with("T03:00:00Z")), "{}", view.text);

        // Nothing before the schedule's time; then one run per day passed.
        let day = 24 * 3600 * 1000;
        let now = shardlyn_panel::db::now_ms();
        let runs = |v: &Value| v["runs"].as_array().map_or(0, Vec::len);
        for n in 1..=3 {
            app.state.clock.set_ms(now + n * day);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let view = app.get("/v1/system/backup-config", t).await.expect(200);
                if runs(&view.body) == usize::try_from(n).expect("small") {
                    let run = &view.body["runs"][0];
                    assert_eq!(run["status"], "succeeded", "{}", view.text);
                    assert_eq!(run["trigger"], "schedule");
                    assert!(run["bytes"].as_i64().is_some_and(|b| b > 100), "{}", view.text);
                    assert!(run["location"].as_str().is_some_and(|l| l.starts_with("s3://panel-backups/shardlyn-panel/")), "{}", view.text);
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "run {n} never came: {}", view.text);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // keep = 2: the oldest archive is gone from the bucket.
        let listing = reqwest::get(format!("{}/{bucket}?list-type=2", moto.url))
            .await
            .expect("list")
            .text()
            .await
            .expect("body");
        let keys: Vec<&str> = listing
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .collect();
        assert_eq!(keys.len(), 2, "{listing}");
        // The newest opens with the real age and the operator's identity.
        let newest = keys.iter().max().expect("a key");
        let archive = work.path().join("newest.age");
        // Signed as the panel's key (objects are private).
        let path = format!("/{bucket}/{newest}");
        let host = moto.url.trim_start_matches("http://").to_string();
        let signed = shardlyn_panel::sigv4::sign(
            shardlyn_panel::sigv4::Request {
                method: "GET",
                host: &host,
                path: &path,
                body: b"",
                service: "s3",
                region: "us-east-1",
            },
            ("AKIDPANEL", "s3-secret-never-shown"),
            chrono::Utc::now(),
        );
        let got = reqwest::Client::new()
            .get(format!("{}{path}", moto.url))
            .header("authorization", signed.authorization)
            .header("x-amz-date", signed.amz_date)
            .header("x-amz-content-sha256", signed.payload_sha256)
            .send()
            .await
            .expect("get");
        assert!(got.status().is_success(), "GET {newest}: {}", got.status());
        let body = got.bytes().await.expect("bytes");
        assert!(body.len() > 100, "{newest} holds {} bytes: {listing}", body.len());
        std::fs::write(&archive, &body).expect("write");
        let plain = work.path().join("newest.tar.gz");
        let out = age(&["age", "-d", "-i", key_file.to_str().expect("utf8"), "-o", plain.to_str().expect("utf8"), archive.to_str().expect("utf8")]);
        assert!(out.status.success(), "{}", said(&out));
        let out = std::process::Command::new("tar")
            .args(["-tzf", plain.to_str().expect("utf8")])
            .output()
            .expect("tar");
        let listed = String::from_utf8_lossy(&out.stdout).to_string();
        let db_file = match engine {
            Engine::Sqlite => "database.sqlite",
            Engine::Postgres => "database.pgdump",
        };
        for name in ["manifest.json", db_file, "keys/jwt.key", "keys/master.key"] {
            assert!(listed.lines().any(|l| l == name), "{name} in {listed}");
        }
        app.stop().await;

        // And restores with --identity into an empty directory.
        let target = tempfile::tempdir().expect("tempdir");
        let data = target.path().join("data");
        let url = match engine {
            Engine::Sqlite => format!("sqlite://{}?mode=rwc", data.join("shardlyn.db").display()),
            Engine::Postgres => shardlyn_tests::fresh_database(engine, target.path()).await,
        };
        let config = shardlyn_tests::test_config(&data, url);
        let toml = write_config(&config, &work.path().join("restore.toml"));
        let out = shardlyn(
            &["restore", "-c", toml.to_str().expect("utf8"), archive.to_str().expect("utf8"), "--passphrase-file", key_file.to_str().expect("utf8")],
            &[],
        );
        assert!(said(&out).contains("encrypted to age public keys"), "{}", said(&out));
        let out = shardlyn(
            &["restore", "-c", toml.to_str().expect("utf8"), archive.to_str().expect("utf8"), "--identity", key_file.to_str().expect("utf8")],
            &[],
        );
        assert!(out.status.success(), "{}", said(&out));
        let restored = start_with_config(engine, target, config).await;
        restored
            .login(&admin.email, shardlyn_tests::PASSWORD)
            .await;
        restored.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_needs_a_key_and_a_schedule_needs_one_too() {
    let work = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_with(Engine::Sqlite, |_| {}).await;
    let config = app.state.config.clone();
    let toml = write_config(&config, &work.path().join("c.toml"));
    let out = shardlyn(
        &[
            "backup",
            "-c",
            toml.to_str().expect("utf8"),
            "--out",
            work.path().join("x.age").to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        said(&out).contains("set system_backup.passphrase or system_backup.recipients"),
        "{}",
        said(&out)
    );
    assert!(!work.path().join("x.age").exists());
    app.stop().await;
    let mut scheduled = Config {
        data_dir: work.path().join("data"),
        ..Config::default()
    };
    scheduled.system_backup.schedule = "0 3 * * *".into();
    let toml = write_config(&scheduled, &work.path().join("s.toml"));
    let out = shardlyn(&["migrate", "-c", toml.to_str().expect("utf8")], &[]);
    assert!(
        said(&out).contains("system_backup.schedule needs"),
        "{}",
        said(&out)
    );
}
