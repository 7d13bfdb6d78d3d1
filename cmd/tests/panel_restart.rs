//! A panel killed with `kill -9` in the middle of moving a server, as a real process
//! (`shardlyn serve` on SQLite, no Redis: the only replica) with two agents. Started
//! again on the same database, it takes the move over at once and resumes the copy
//! from what the target had finished: the move completes with every file the same and
//! fewer bytes sent than the server holds.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Replica, call, wait_until};
use serde_json::json;
use sha2::{Digest, Sha256};
use shardlyn_tests::agent::{LocalAgent, free_port};
use shardlyn_tests::{Engine, PASSWORD, fresh_database};

const WAIT: Duration = Duration::from_secs(60);
const CHUNKS: u64 = 24;
const CHUNK: usize = 8 << 20;

/// Incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Relative path → SHA-256 of every file under `root`.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("world"))
        .expect("world")
        .flatten()
    {
        let bytes = std::fs::read(entry.path()).expect("read");
        out.insert(
            entry.file_name().to_string_lossy().into_owned(),
            hex::encode(Sha256::digest(&bytes)),
        );
    }
    out
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while call(
        client,
        reqwest::Method::GET,
        base,
        "/health/live",
        None,
        None,
    )
    .await
    .0 != 200
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A panel process on SQLite with its first admin: what a restart needs again.
struct Started {
    env: Vec<(&'static str, String)>,
    port: u16,
    panel: Replica,
    base: String,
    client: reqwest::Client,
    token: String,
    _db_dir: tempfile::TempDir,
}

/// Starts `shardlyn serve` on `data` and bootstraps its admin.
async fn start_panel(data: &Path) -> Started {
    let db_dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        (
            "SHARDLYN_DATABASE_URL",
            fresh_database(Engine::Sqlite, db_dir.path()).await,
        ),
        (
            "SHARDLYN_JWT_SECRET",
            "a-restarted-panel-keeps-this-secret-0123".into(),
        ),
        ("SHARDLYN_MASTER_KEY", "33".repeat(32)),
    ];
    let port = free_port();
    let panel = Replica::start_at(&env, data, port);
    let base = panel.base.clone();
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;
    let (status, boot) = call(
        &client,
        reqwest::Method::POST,
        &base,
        "/v1/auth/bootstrap",
        None,
        Some(json!({"email": "admin@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{boot}");
    let token = boot["access_token"].as_str().expect("token").to_owned();
    Started {
        env,
        port,
        panel,
        base,
        client,
        token,
        _db_dir: db_dir,
    }
}

/// Registers a node and runs its agent in this process until online: the agent, its
/// directory and the node id.
async fn start_agent(p: &Started) -> (LocalAgent, tempfile::TempDir, String) {
    let (status, reg) = call(
        &p.client,
        reqwest::Method::POST,
        &p.base,
        "/v1/nodes/register-token",
        Some(&p.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = shardlyn_agent::register::register(
        &p.base,
        reg["token"].as_str().expect("token"),
        None,
        dir.path(),
    )
    .await
    .expect("agent registers");
    let node = config.node_id.clone();
    let agent = LocalAgent::start(config, dir.path());
    wait_until(
        &p.client,
        &p.base,
        &format!("/v1/nodes/{node}"),
        &p.token,
        WAIT,
        |n| n["status"] == "online",
    )
    .await;
    (agent, dir, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_killed_mid_copy_resumes_the_move_when_it_starts_again() {
    shardlyn_tests::docker::ensure_test_image();
    let data = tempfile::tempdir().expect("tempdir");
    let started = start_panel(data.path()).await;
    let mut agents = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let (agent, dir, node) = start_agent(&started).await;
        agents.push((agent, dir));
        nodes.push(node);
    }
    let Started {
        env,
        port,
        panel,
        base,
        client,
        token,
        _db_dir,
    } = started;
    let t = Some(token.as_str());
    let post = reqwest::Method::POST;
    let (status, w) = call(
        &client,
        post.clone(),
        &base,
        "/v1/workloads/from-template",
        t,
        Some(json!({"template": "busybox-test"})),
    )
    .await;
    assert_eq!(status, 201, "{w}");
    let (status, created) = call(&client, post.clone(), &base, "/v1/instances", t, Some(json!({
        "name": "mover", "workload_id": w["id"], "node_id": nodes[0], "ports": [free_port()],
        "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 2048, "pids": 64, "io_weight": 500},
    }))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    wait_until(
        &client,
        &base,
        &format!("/v1/instances/{id}"),
        &token,
        WAIT,
        |i| i["state"] == "offline",
    )
    .await;
    let volume_a = agents[0].1.path().join("volumes").join(&id);
    std::fs::create_dir_all(volume_a.join("world")).expect("mkdir");
    for i in 0..CHUNKS {
        std::fs::write(
            volume_a.join(format!("world/chunk-{i}.bin")),
            noise(CHUNK, i + 1),
        )
        .expect("write");
    }
    let before = tree(&volume_a);

    // The move starts; once the target has finished a quarter, the panel dies.
    let (status, m) = call(
        &client,
        post.clone(),
        &base,
        &format!("/v1/instances/{id}/migrate"),
        t,
        Some(json!({"target_node_id": nodes[1]})),
    )
    .await;
    assert_eq!(status, 202, "{m}");
    let mid = m["id"].as_str().expect("id").to_owned();
    let staged = agents[1]
        .1
        .path()
        .join("transfers")
        .join(&id)
        .join("files/world");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let finished = std::fs::read_dir(&staged)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.metadata().is_ok_and(|m| m.len() == CHUNK as u64))
                    .count()
            })
            .unwrap_or(0);
        if finished >= 6 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the copy never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panel.kill();

    // Started again: it takes the move over and resumes it.
    let panel = Replica::start_at(&env, data.path(), port);
    wait_healthy(&client, &base).await;
    let m = wait_until(
        &client,
        &base,
        &format!("/v1/migrations/{mid}"),
        &token,
        WAIT,
        |m| {
            !["queued", "copying", "final_sync", "switching"]
                .contains(&m["state"].as_str().unwrap_or(""))
        },
    )
    .await;
    assert_eq!(m["state"], "completed", "{m}");
    assert!(m["resumes"].as_i64().unwrap_or(0) >= 1, "{m}");
    let sent = m["bytes_copied"].as_u64().unwrap_or(u64::MAX);
    assert!(
        sent < (CHUNKS - 5) * CHUNK as u64,
        "what the target had finished was not sent again: {sent} bytes, {m}"
    );
    let now = wait_until(
        &client,
        &base,
        &format!("/v1/instances/{id}"),
        &token,
        WAIT,
        |i| i["state"] == "offline",
    )
    .await;
    assert_eq!(now["node_id"], nodes[1].as_str(), "{now}");
    assert_eq!(
        tree(&agents[1].1.path().join("volumes").join(&id)),
        before,
        "every file arrived whole"
    );
    let (status, _) = call(
        &client,
        reqwest::Method::DELETE,
        &base,
        &format!("/v1/instances/{id}?force=true"),
        t,
        None,
    )
    .await;
    assert_eq!(status, 204);
    for (agent, _dir) in agents {
        agent.stop().await;
    }
    drop(panel);
}

/// The cast of a recording, as text.
async fn cast(client: &reqwest::Client, base: &str, token: &str, url: &str) -> String {
    let r = client
        .get(format!("{base}{url}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("cast");
    assert_eq!(r.status(), 200);
    r.text().await.expect("text")
}

/// A panel killed with `kill -9` in the middle of a terminal session: the recording
/// holds what the session wrote up to its last second, and once the panel is back it
/// reads `cut`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_killed_mid_session_keeps_the_recording_up_to_its_last_second() {
    let data = tempfile::tempdir().expect("tempdir");
    let started = start_panel(data.path()).await;
    let (_agent, _agent_dir, node) = start_agent(&started).await;
    let Started {
        env,
        port,
        panel,
        base,
        client,
        token,
        _db_dir,
    } = started;
    let t = Some(token.as_str());
    let post = reqwest::Method::POST;
    let (status, ticket) = call(
        &client,
        post.clone(),
        &base,
        &format!("/v1/nodes/{node}/terminal/tickets"),
        t,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{ticket}");
    let url = format!("{base}{}", ticket["url"].as_str().expect("url"));
    let mut shell = shardlyn_tests::shell::Shell::connect(&url, None)
        .await
        .expect("open");
    shell.input(b"echo before-$((40+2))\n").await;
    shell.wait_output("before-42", WAIT).await.expect("output");
    // The recorder writes at least every second: wait until it has.
    let recordings = format!("/v1/nodes/{node}/recordings");
    let list = wait_until(&client, &base, &recordings, &token, WAIT, |l| {
        l["data"][0]["recorded_bytes"].as_i64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(list["data"][0]["state"], "live");
    let cast_url = list["data"][0]["cast_url"]
        .as_str()
        .expect("cast url")
        .to_owned();
    // Bytes recorded may be the prompt alone: the line echoed lands by the next write.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = cast(&client, &base, &token, &cast_url).await;
        if text.contains("before-42") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recording never held the output: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    panel.kill();
    assert!(
        matches!(
            shell.wait_end(WAIT).await,
            shardlyn_tests::shell::Ended::Closed
        ),
        "the socket ends with the panel"
    );
    let _panel = Replica::start_at(&env, data.path(), port);
    wait_healthy(&client, &base).await;
    let list = wait_until(&client, &base, &recordings, &token, WAIT, |_| true).await;
    assert_eq!(list["data"][0]["state"], "cut", "{list}");
    let text = cast(&client, &base, &token, &cast_url).await;
    assert!(text.contains("before-42"), "{text}");
    let header: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("header")).expect("json");
    assert_eq!(header["version"], 2);
}
