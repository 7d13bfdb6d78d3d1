//! A rolling upgrade with both releases' binaries (issue 21): the previous release's
//! `shardlyn` and `shardlyn-agent`, built from the commit in
//! `tests/fixtures/baseline/release` by `scripts/baseline-build`, against this tree's.
//!
//! On PostgreSQL the old release serves the baseline fixture; this release's `migrate
//! --check` reports the expand migrations (exit 10) and `migrate` applies them while the
//! old replica serves; then a new replica starts beside it. Sessions, organizations and
//! admins written through either are read and used through the other. An old agent,
//! registered and connected through the balancer before the upgrade, keeps its tunnel on
//! the old replica; a server on it is created through the old replica, started through
//! the new one and stopped through the old one. The old replica stops; the agent moves
//! to the new one, which starts and deletes the server.
//!
//! On SQLite (one replica) the upgrade is in place: the old release serves, stops, the
//! new one migrates and serves the old release's rows and its agent.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Replica, call, wait_until};
use serde_json::json;
use shardlyn_tests::agent::free_port;
use shardlyn_tests::lb::LoadBalancer;
use shardlyn_tests::{Engine, PASSWORD, fresh_database, redis_url};

const WAIT: Duration = Duration::from_secs(60);
/// The baseline fixture's data, its admin's API token and personal organization.
const FIXTURE: &str = include_str!("../../tests/fixtures/baseline/data.sql");
const TOKEN: &str = "shardlyn_api_f1c5e00000000000000000000000000000000000000000000000000000000b45";
const INSTANCE: &str = "0190b000-0000-7000-8000-000000000051";
const ORG: &str = "0190b000-0000-7000-8000-000000000011";

/// The previous release's binaries: `scripts/baseline-build`'s directory (it builds them
/// the first time; `scripts/test` runs it before the suite).
fn baseline() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/baseline-build");
    let out = Command::new(&script)
        .output()
        .expect("scripts/baseline-build");
    assert!(
        out.status.success(),
        "scripts/baseline-build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// `bin ARGS` with `env` and no `SHARDLYN_*` of the caller's: the exit code, and what
/// it wrote to stdout then stderr.
fn run(bin: &Path, env: &[(&str, String)], args: &[&str]) -> (Option<i32>, String) {
    let out = common::clean(bin)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("SHARDLYN_LOG_LEVEL", "warn")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code(), format!("{stdout}{stderr}"))
}

/// A `shardlyn-agent run` child of the old release; killed when dropped (its servers
/// are deleted through the panel before).
struct OldAgent(std::process::Child);

impl Drop for OldAgent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn healthy(client: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while call(client, reqwest::Method::GET, base, "/health", None, None)
        .await
        .0
        != 200
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login(client: &reqwest::Client, base: &str, email: &str) -> String {
    let (status, body) = call(
        client,
        reqwest::Method::POST,
        base,
        "/v1/auth/login",
        None,
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "login at {base}: {body}");
    body["access_token"].as_str().expect("token").to_owned()
}

/// `POST path/action` through `through`, then waits until `watch` reports `state`.
async fn power(
    client: &reqwest::Client,
    path: &str,
    action: &str,
    through: &str,
    watch: &str,
    state: &str,
) {
    let url = format!("{path}/{action}");
    expect(
        client,
        reqwest::Method::POST,
        through,
        &url,
        Some(json!({})),
        202,
    )
    .await;
    wait_until(client, watch, path, TOKEN, WAIT, |i| i["state"] == state).await;
}

/// `method path` on `base` with the fixture admin's token, expecting `status`.
async fn expect(
    client: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: Option<serde_json::Value>,
    status: u16,
) -> serde_json::Value {
    let (got, answer) = call(client, method.clone(), base, path, Some(TOKEN), body).await;
    assert_eq!(got, status, "{method} {path} at {base}: {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    rolling_upgrade(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    rolling_upgrade(Engine::Sqlite).await;
}

#[allow(clippy::too_many_lines)]
async fn rolling_upgrade(engine: Engine) {
    use reqwest::Method;
    shardlyn_tests::docker::ensure_test_image();
    let old_bins = baseline();
    let old = old_bins.join("shardlyn");
    let new = PathBuf::from(env!("CARGO_BIN_EXE_shardlyn"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = vec![
        (
            "SHARDLYN_DATABASE_URL",
            fresh_database(engine, dir.path()).await,
        ),
        (
            "SHARDLYN_JWT_SECRET",
            "both-releases-share-this-jwt-secret-0123".into(),
        ),
        ("SHARDLYN_MASTER_KEY", "33".repeat(32)),
    ];
    if engine == Engine::Postgres {
        env.push(("SHARDLYN_REDIS_URL", redis_url()));
    }
    let utf8 = |p: &Path| p.to_str().expect("utf8 path").to_owned();
    let (data_old, data_new) = (dir.path().join("old"), dir.path().join("new"));
    let (old_data, new_data) = (utf8(&data_old), utf8(&data_new));

    // The old release makes its schema (the baseline); the fixture is its data, and
    // its CLI adds an admin.
    let (code, out) = run(&old, &env, &["migrate", "--data-dir", &old_data]);
    assert_eq!(code, Some(0), "old migrate: {out}");
    let check = || run(&new, &env, &["migrate", "--check", "--data-dir", &new_data]);
    let (code, out) = check();
    assert_eq!(code, Some(10), "expand migrations pending: {out}");
    assert!(
        out.lines()
            .any(|l| l.contains("0041 system backups") && l.contains("expand")),
        "{out}"
    );
    let db = shardlyn_panel::db::Db::connect(&env[0].1, 1)
        .await
        .expect("connect");
    sqlx::raw_sql(FIXTURE)
        .execute(&db.pool)
        .await
        .expect("load the fixture");
    db.pool.close().await;
    // Either release's CLI adds an admin (or refuses: the exit code and what it said).
    let admin_create = |bin: &Path, email: &str| {
        let args = ["admin", "create", "--data-dir", &old_data, "--email", email];
        run(bin, &env, &[&args[..], &["--password", PASSWORD]].concat())
    };
    let created =
        |(code, out): (Option<i32>, String)| assert_eq!(code, Some(0), "admin create: {out}");
    created(admin_create(&old, "old-cli@example.com"));

    // Both replicas' addresses behind one balancer from the start; the new one is down
    // until it starts.
    let (port_old, port_new) = (free_port(), free_port());
    let (a, b) = (
        format!("http://127.0.0.1:{port_old}"),
        format!("http://127.0.0.1:{port_new}"),
    );
    let lb = LoadBalancer::start(&[a.as_str(), b.as_str()]).await;
    let client = reqwest::Client::new();
    let replica_old = Replica::start_with(&old, &env, &data_old, port_old);
    healthy(&client, &a).await;
    // The balancer's first checks found nothing listening: the agent below goes
    // through it, so wait until a later check counts the old replica up.
    lb.wait_up(0).await;
    let me = expect(&client, Method::GET, &a, "/v1/users/me", None, 200).await;
    assert_eq!(me["email"], "admin@fixture.example", "{me}");
    // This is the old release: it has no panel backup.
    expect(
        &client,
        Method::GET,
        &a,
        "/v1/system/backup-config",
        None,
        404,
    )
    .await;

    // An old agent registers and dials through the balancer (only the old replica is up).
    let reg = expect(
        &client,
        Method::POST,
        &a,
        "/v1/nodes/register-token",
        Some(json!({"organization_id": ORG})),
        201,
    )
    .await;
    let agent_dir = utf8(&dir.path().join("agent"));
    let agent_bin = old_bins.join("shardlyn-agent");
    let agent_env = vec![
        ("SHARDLYN_AGENT_SFTP_BIND", "127.0.0.1".to_owned()),
        ("SHARDLYN_AGENT_SFTP_PORT", "0".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let token = reg["token"].as_str().expect("token");
    let (code, out) = run(
        &agent_bin,
        &agent_env,
        &[
            "register",
            "--panel",
            &lb.base,
            "--token",
            token,
            "--data-dir",
            &agent_dir,
        ],
    );
    assert_eq!(code, Some(0), "old agent register: {out}");
    let _agent = OldAgent(
        Command::new(&agent_bin)
            .envs(agent_env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["run", "--data-dir", &agent_dir])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("old shardlyn-agent run"),
    );
    let config =
        std::fs::read_to_string(Path::new(&agent_dir).join("agent.toml")).unwrap_or_default();
    let node = config
        .lines()
        .find_map(|l| l.strip_prefix("node_id = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("node_id in the agent's agent.toml: {config}"));
    let node_path = format!("/v1/nodes/{node}");
    wait_until(&client, &a, &node_path, TOKEN, WAIT, |n| {
        n["status"] == "online"
    })
    .await;

    let replica_old = if engine == Engine::Postgres {
        // This release expands the schema while the old replica serves, then starts
        // beside it.
        let (code, out) = run(&new, &env, &["migrate", "--data-dir", &new_data]);
        assert_eq!(code, Some(0), "new migrate: {out}");
        let instance = format!("/v1/instances/{INSTANCE}");
        expect(&client, Method::GET, &a, &instance, None, 200).await;
        Some(replica_old)
    } else {
        // SQLite is one replica: the old one stops, then this release migrates.
        replica_old.stop();
        let (code, out) = run(&new, &env, &["migrate", "--data-dir", &new_data]);
        assert_eq!(code, Some(0), "new migrate: {out}");
        None
    };
    let (code, out) = check();
    assert_eq!(code, Some(0), "up to date: {out}");
    let replica_new = Replica::start_with(&new, &env, &data_new, port_new);
    healthy(&client, &b).await;
    // As an operator would: the old replica leaves (below) only once the balancer
    // counts the new one up, so the agent has somewhere to come back to.
    lb.wait_up(1).await;
    expect(
        &client,
        Method::GET,
        &b,
        "/v1/system/backup-config",
        None,
        200,
    )
    .await;
    let me = expect(&client, Method::GET, &b, "/v1/users/me", None, 200).await;
    assert_eq!(me["email"], "admin@fixture.example", "{me}");
    let fixture = expect(
        &client,
        Method::GET,
        &b,
        &format!("/v1/instances/{INSTANCE}"),
        None,
        200,
    )
    .await;
    assert_eq!(fixture["name"], "fixture-server", "{fixture}");
    // The replicas serving: the old one first while it does (PostgreSQL).
    let replicas = if replica_old.is_some() {
        vec![a.clone(), b.clone()]
    } else {
        vec![b.clone()]
    };
    // The old CLI's admin, written before the expand, signs in to the new release; one
    // the new CLI writes signs in to the first replica (the old one on PostgreSQL). The
    // old CLI itself now refuses: the baseline release predates the rule that lets an
    // old binary run on a schema a newer one expanded (upgrade.md: restart such a
    // replica with the new binary).
    login(&client, &b, "old-cli@example.com").await;
    created(admin_create(&new, "new-cli@example.com"));
    login(&client, &replicas[0], "new-cli@example.com").await;
    let (code, out) = admin_create(&old, "x@example.com");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("migration 41 was previously applied but is missing"),
        "{out}"
    );

    // Both serve together: what one writes the other reads and takes.
    for (n, writer) in replicas.iter().enumerate() {
        let reader = &replicas[(n + 1) % replicas.len()];
        let session = login(&client, writer, "old-cli@example.com").await;
        let (status, me) = call(
            &client,
            Method::GET,
            reader,
            "/v1/users/me",
            Some(&session),
            None,
        )
        .await;
        assert_eq!(status, 200, "a session of {writer} at {reader}: {me}");
        let org = expect(
            &client,
            Method::POST,
            writer,
            "/v1/organizations",
            Some(json!({"name": format!("written by replica {n}")})),
            201,
        )
        .await;
        let id = org["id"].as_str().expect("id");
        let read = expect(
            &client,
            Method::GET,
            reader,
            &format!("/v1/organizations/{id}"),
            None,
            200,
        )
        .await;
        assert_eq!(read["name"], format!("written by replica {n}"), "{read}");
    }

    // A server on the old agent: created through the first replica, started through
    // the last, stopped through the first (each forwards to whichever holds the tunnel).
    let (first, last) = (&replicas[0], &replicas[replicas.len() - 1]);
    let workload = expect(
        &client,
        Method::POST,
        first,
        "/v1/workloads/from-template",
        Some(json!({"template": "busybox-test", "organization_id": ORG})),
        201,
    )
    .await;
    let created = expect(&client, Method::POST, first, "/v1/instances", Some(json!({
        "name": "upgraded", "workload_id": workload["id"], "node_id": node,
        "ports": [free_port()],
        "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500},
    })), 201).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/instances/{id}");
    wait_until(&client, last, &path, TOKEN, WAIT, |i| {
        i["state"] == "offline"
    })
    .await;
    power(&client, &path, "start", last, first, "running").await;
    power(&client, &path, "stop", first, last, "offline").await;

    // The old replica leaves; the old agent comes back through the balancer to the new
    // one, which starts its server.
    if let Some(replica) = replica_old {
        replica.stop();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = expect(&client, Method::GET, &b, "/v1/admin/replicas", None, 200).await;
        let this = list["data"]
            .as_array()
            .and_then(|d| d.iter().find(|r| r["this"] == true));
        let agents = this.and_then(|r| r["agents"].as_array());
        if agents.is_some_and(|a| a.iter().any(|x| x["node_id"] == node.as_str())) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new replica never held the old agent: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    power(&client, &path, "start", &b, &b, "running").await;
    expect(&client, Method::DELETE, &b, &path, None, 204).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while call(&client, Method::GET, &b, &path, Some(TOKEN), None)
        .await
        .0
        != 404
    {
        assert!(tokio::time::Instant::now() < deadline, "{path} never went");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(replica_new);
}
