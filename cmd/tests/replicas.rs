//! Replicas as real processes: three `shardlyn serve` on one PostgreSQL database and the
//! test Redis behind HAProxy, three agents dialling through the balancer, a game server
//! running on each. A console opened through any replica for a server whose agent another
//! replica holds sends and receives; a file written and a backup made through one
//! replica that does not hold the agent are read back whole through another. Then a
//! replica holding agents is killed with
//! `kill -9`. Its agents are back through the balancer within 10 s, no server stops, and
//! an event-stream client that was on the killed replica resumes through the balancer
//! with `Last-Event-ID` and gets every event it missed, none twice.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Replica, call, wait_until};

use serde_json::json;
use shardlyn_tests::agent::{LocalAgent, free_port};
use shardlyn_tests::console::Console;
use shardlyn_tests::lb::LoadBalancer;
use shardlyn_tests::sse::SseStream;
use shardlyn_tests::{Engine, PASSWORD, fresh_database, redis_url};

const WAIT: Duration = Duration::from_secs(30);

/// Which replica (by index into `bases`) holds each node's tunnel, from each replica's
/// own entry (`this`) in the replica list; waits until all `nodes` are held.
async fn holders(
    client: &reqwest::Client,
    bases: &[String],
    token: &str,
    nodes: usize,
) -> std::collections::HashMap<String, usize> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut held = std::collections::HashMap::new();
        for (n, base) in bases.iter().enumerate() {
            let (_, list) = call(
                client,
                reqwest::Method::GET,
                base,
                "/v1/admin/replicas",
                Some(token),
                None,
            )
            .await;
            let me = list["data"]
                .as_array()
                .and_then(|d| d.iter().find(|x| x["this"] == true).cloned());
            for agent in me
                .as_ref()
                .and_then(|m| m["agents"].as_array())
                .into_iter()
                .flatten()
            {
                if let Some(node) = agent["node_id"].as_str() {
                    held.insert(node.to_owned(), n);
                }
            }
        }
        if held.len() == nodes {
            return held;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agents held: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_with_kill_9_loses_no_agent_server_or_event() {
    shardlyn_tests::docker::ensure_test_image();
    let db_dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        (
            "SHARDLYN_DATABASE_URL",
            fresh_database(Engine::Postgres, db_dir.path()).await,
        ),
        ("SHARDLYN_REDIS_URL", redis_url()),
        (
            "SHARDLYN_JWT_SECRET",
            "replicas-share-this-jwt-secret-0123456789".into(),
        ),
        ("SHARDLYN_MASTER_KEY", "22".repeat(32)),
    ];
    let mut replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&env)).collect();
    let client = reqwest::Client::new();
    for r in &replicas {
        let deadline = tokio::time::Instant::now() + WAIT;
        while call(
            &client,
            reqwest::Method::GET,
            &r.base,
            "/health/live",
            None,
            None,
        )
        .await
        .0 != 200
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never started",
                r.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let lb = LoadBalancer::start(&bases.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let post = reqwest::Method::POST;
    let (status, boot) = call(
        &client,
        post.clone(),
        &lb.base,
        "/v1/auth/bootstrap",
        None,
        Some(json!({"email": "admin@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{boot}");
    let token = boot["access_token"].as_str().expect("token").to_owned();
    let t = Some(token.as_str());

    // Three agents dial through the balancer.
    let mut agents = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let (status, reg) = call(
            &client,
            post.clone(),
            &lb.base,
            "/v1/nodes/register-token",
            t,
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 201, "{reg}");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = shardlyn_agent::register::register(
            &lb.base,
            reg["token"].as_str().expect("token"),
            None,
            dir.path(),
        )
        .await
        .expect("agent registers");
        nodes.push(config.node_id.clone());
        agents.push((LocalAgent::start(config, dir.path()), dir));
    }
    for node in &nodes {
        wait_until(
            &client,
            &lb.base,
            &format!("/v1/nodes/{node}"),
            &token,
            WAIT,
            |n| n["status"] == "online",
        )
        .await;
    }
    let held = holders(&client, &bases, &token, 3).await;

    // A game server on each.
    let (status, w) = call(
        &client,
        post.clone(),
        &lb.base,
        "/v1/workloads/from-template",
        t,
        Some(json!({"template": "busybox-test"})),
    )
    .await;
    assert_eq!(status, 201, "{w}");
    let mut instances = Vec::new();
    for node in &nodes {
        let (status, created) = call(&client, post.clone(), &lb.base, "/v1/instances", t, Some(json!({
            "name": "survivor", "workload_id": w["id"], "node_id": node, "ports": [free_port()],
            "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500},
        }))).await;
        assert_eq!(status, 201, "{created}");
        instances.push(created["id"].as_str().expect("id").to_owned());
    }
    for id in &instances {
        wait_until(
            &client,
            &lb.base,
            &format!("/v1/instances/{id}"),
            &token,
            WAIT,
            |i| i["state"] == "offline",
        )
        .await;
    }

    // The replica to kill holds the first node; an event stream on it, a reference on
    // another.
    let doomed_at = held[&nodes[0]];
    let survivor_base = bases[(doomed_at + 1) % 3].clone();
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let mut doomed = SseStream::open(
        &client,
        &format!("{}/v1/events", bases[doomed_at]),
        &headers,
    )
    .await
    .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
    let mut reference = SseStream::open(&client, &format!("{survivor_base}/v1/events"), &headers)
        .await
        .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
    // The servers start; the first state event tells where the doomed stream was.
    for id in &instances {
        let (status, _) = call(
            &client,
            post.clone(),
            &lb.base,
            &format!("/v1/instances/{id}/start"),
            t,
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 202);
    }
    let last_seen = doomed
        .expect("instance_state", WAIT)
        .await
        .id
        .expect("event id");
    let mut seen = vec![reference.expect("instance_state", WAIT).await];
    assert_eq!(
        seen[0].id.as_deref(),
        Some(last_seen.as_str()),
        "one id on every replica"
    );
    for id in &instances {
        wait_until(
            &client,
            &lb.base,
            &format!("/v1/instances/{id}"),
            &token,
            WAIT,
            |i| i["state"] == "running",
        )
        .await;
    }

    // A console through a replica that does not hold the server's agent, for each
    // server: typed commands reach it and its output comes back.
    for (n, (node, id)) in nodes.iter().zip(&instances).enumerate() {
        let through = &bases[(held[node] + 1 + n % 2) % 3];
        let (status, ticket) = call(
            &client,
            post.clone(),
            through,
            &format!("/v1/instances/{id}/console/tickets"),
            t,
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 201, "{ticket}");
        let url = format!(
            "{}/v1/instances/{id}/console?ticket={}",
            through,
            ticket["ticket"].as_str().expect("ticket")
        );
        let mut console = Console::connect(&url, None)
            .await
            .unwrap_or_else(|r| panic!("console: {}", r.status));
        console
            .wait_for(WAIT, "auth success", |e| e.event == "auth success")
            .await;
        let line = format!("through another replica {n}");
        console.send("send command", &[&line]).await;
        let echo = format!("echo: {line}");
        console
            .wait_for(WAIT, "the echo", |e| {
                e.event == "console output" && e.arg().contains(&echo)
            })
            .await;
        console.close().await;
    }

    // Files and backups of the first server through the two replicas that do not hold
    // its agent: written through one, read back whole through the other; a backup
    // started through one ends (the agent's report reaches the holder, which records
    // it), and its archive, downloaded through the other, is the recorded one.
    let others: Vec<&String> = (0..3)
        .filter(|i| *i != held[&nodes[0]])
        .map(|i| &bases[i])
        .collect();
    let first = &instances[0];
    let content: String = (0..4096)
        .map(|i| format!("line {i} of the hop\n"))
        .collect();
    let written = client
        .put(format!(
            "{}/v1/instances/{first}/files/content?path=/hop.txt",
            others[0]
        ))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(content.clone())
        .send()
        .await
        .expect("write");
    assert_eq!(written.status(), 200);
    let read = client
        .get(format!(
            "{}/v1/instances/{first}/files/download?path=/hop.txt",
            others[1]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(read.status(), 200);
    assert_eq!(
        read.bytes().await.expect("body"),
        content.as_bytes(),
        "the file, whole"
    );
    let (status, backup) = call(
        &client,
        post.clone(),
        others[0],
        &format!("/v1/instances/{first}/backups"),
        t,
        Some(json!({"name": "through the hop"})),
    )
    .await;
    assert_eq!(status, 202, "{backup}");
    let bid = backup["id"].as_str().expect("backup id").to_owned();
    let listed = wait_until(
        &client,
        others[1],
        &format!("/v1/instances/{first}/backups"),
        &token,
        WAIT,
        |l| l["data"][0]["id"] == bid.as_str() && l["data"][0]["status"] != "running",
    )
    .await;
    assert_eq!(listed["data"][0]["status"], "completed", "{listed}");
    let archive = client
        .get(format!(
            "{}/v1/instances/{first}/backups/{bid}/download",
            others[1]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("backup download");
    assert_eq!(archive.status(), 200);
    let bytes = archive.bytes().await.expect("archive");
    assert_eq!(
        json!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))),
        listed["data"][0]["sha256"],
        "the archive through the hop is the recorded one"
    );

    // kill -9.
    let killed_at = tokio::time::Instant::now();
    replicas.remove(doomed_at).kill();
    let live: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    // Its agents reconnect through the balancer, to the others, within 10 s.
    let deadline = killed_at + Duration::from_secs(10);
    loop {
        let mut held = 0;
        for base in &live {
            let (_, list) = call(
                &client,
                reqwest::Method::GET,
                base,
                "/v1/admin/replicas",
                t,
                None,
            )
            .await;
            held += list["data"]
                .as_array()
                .and_then(|d| d.iter().find(|x| x["this"] == true).cloned())
                .and_then(|me| me["agents"].as_array().map(Vec::len))
                .unwrap_or(0);
        }
        if held == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{held} of 3 agents back after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No server stopped.
    for id in &instances {
        let i = wait_until(
            &client,
            &lb.base,
            &format!("/v1/instances/{id}"),
            &token,
            WAIT,
            |_| true,
        )
        .await;
        assert_eq!(i["state"], "running", "{i}");
        // Found by its label: container names carry the agent.
        let label = format!("label=io.shardlyn.instance={id}");
        let running = Command::new("docker")
            .args(["ps", "-q", "--filter", &label, "--filter", "status=running"])
            .output()
            .expect("docker ps");
        assert!(
            !String::from_utf8_lossy(&running.stdout).trim().is_empty(),
            "{id} runs"
        );
    }

    // More events while the doomed stream's client is away: the first server stops.
    let (status, _) = call(
        &client,
        post.clone(),
        &lb.base,
        &format!("/v1/instances/{first}/stop"),
        t,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 202);
    wait_until(
        &client,
        &lb.base,
        &format!("/v1/instances/{first}"),
        &token,
        WAIT,
        |i| i["state"] == "offline",
    )
    .await;
    // The reference stream saw everything since; the doomed stream's client resumes
    // through the balancer from its last id and must get exactly those events.
    loop {
        let e = reference
            .next(Duration::from_secs(5))
            .await
            .expect("reference stream")
            .expect("open");
        let done = e.event == "instance_state"
            && e.data["instance_id"] == first.as_str()
            && e.data["state"] == "offline";
        seen.push(e);
        if done {
            break;
        }
    }
    let expected: Vec<String> = seen.iter().skip(1).filter_map(|e| e.id.clone()).collect();
    assert!(
        !expected.is_empty(),
        "events happened while the client was away"
    );
    let resume = [
        ("authorization", auth.as_str()),
        ("last-event-id", last_seen.as_str()),
    ];
    let mut resumed = SseStream::open(&client, &format!("{}/v1/events", lb.base), &resume)
        .await
        .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let e = resumed
            .next(WAIT)
            .await
            .expect("resumed stream")
            .expect("open");
        if let Some(id) = e.id {
            got.push(id);
        }
    }
    assert_eq!(
        got, expected,
        "the resumed stream misses no event and repeats none"
    );

    for id in &instances {
        let _ = call(
            &client,
            reqwest::Method::DELETE,
            &lb.base,
            &format!("/v1/instances/{id}?force=true"),
            t,
            None,
        )
        .await;
    }
    for (agent, _dir) in agents {
        agent.stop().await;
    }
}
