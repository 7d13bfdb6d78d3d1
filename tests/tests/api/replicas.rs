//! Several panel processes: a SQLite file serves one process (a second is refused while
//! the first runs, and starts once it stopped), `redis_url`, which is for replicas, is
//! refused with SQLite, and replicas on PostgreSQL and Redis reach every agent whichever
//! of them holds its tunnel.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shardlyn_panel::mailer::MemoryMailer;
use shardlyn_panel::server;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_listening,
    wait_node,
};
use shardlyn_tests::console::Console;
use shardlyn_tests::lb::LoadBalancer;
use shardlyn_tests::sse::SseStream;
use shardlyn_tests::{Engine, fresh_database, redis_url, replicas, spawn_app, test_config};

fn refusal(result: anyhow::Result<server::Running>) -> String {
    match result {
        Ok(_) => panic!("the panel started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_with_redis_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(Engine::Sqlite, dir.path()).await;
    let mut config = test_config(dir.path(), url);
    config.redis_url = redis_url();
    let why = refusal(server::launch(config, Arc::new(MemoryMailer::default())).await);
    assert!(
        why.contains("redis_url is set but the database is SQLite"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_panel_on_one_sqlite_file_waits_for_the_first_to_stop() {
    let first = spawn_app(Engine::Sqlite).await;
    let other_dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(other_dir.path(), first.state.config.database_url.clone());
    let why = refusal(server::launch(config.clone(), Arc::new(MemoryMailer::default())).await);
    assert!(
        why.contains("another panel process already serves"),
        "{why}"
    );
    // The first still serves, untouched.
    first.get("/health/ready", None).await.expect(200);
    first.stop().await;
    let second = server::launch(config, Arc::new(MemoryMailer::default()))
        .await
        .expect("the file is free once the first stopped");
    second.stop().await.expect("stops");
}

const WAIT: Duration = Duration::from_secs(30);

/// An agent connected to replica A, driven entirely through replica B: the spec push, the
/// install, power, a console (both ways), file writes and reads, stats, all relayed over
/// the replica hop; what B writes, A reads. The hop refuses callers without its token,
/// and once the agent is gone B answers `NODE_OFFLINE` like A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_reaches_an_agent_held_by_another() {
    let apps = replicas(2, |_| {}).await;
    let (a, b) = (&apps[0], &apps[1]);
    let admin = a.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let (config, dir) = register_node(a, &admin.access).await;
    let node = config.node_id.clone();
    let agent = LocalAgent::start(config, dir.path());
    wait_node(b, &admin.access, &node, "online").await;
    assert!(a.state.tunnels.get(&node).is_some(), "the agent dialled A");
    assert!(
        b.state.tunnels.get(&node).is_none(),
        "B holds no tunnel of its own"
    );

    let workload = busybox_workload(b, &admin.access).await;
    let created = b
        .post(
            "/v1/instances",
            t,
            json!({
                "name": "relayed",
                "workload_id": workload,
                "node_id": node,
                "ports": [free_port()],
                "variables": {"GREETING": "hi through b"},
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500},
            }),
        )
        .await
        .expect(201);
    let id = created.body["id"].as_str().expect("id").to_owned();
    wait_instance(b, &admin.access, &id, "offline", WAIT).await;

    // A console on B, for a server whose agent is on A.
    let ticket = b
        .post(&format!("/v1/instances/{id}/console/tickets"), t, json!({}))
        .await
        .expect(201);
    let ticket = ticket.body["ticket"].as_str().expect("ticket").to_owned();
    let mut console = Console::connect(
        &format!("{}/v1/instances/{id}/console?ticket={ticket}", b.base),
        None,
    )
    .await
    .expect("console opens on B");
    console
        .wait_for(WAIT, "auth success", |e| e.event == "auth success")
        .await;
    b.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    console
        .wait_for(WAIT, "running", |e| {
            e.event == "status" && e.arg() == "running"
        })
        .await;
    console.send("send command", &["through b"]).await;
    console
        .wait_for(WAIT, "echo", |e| {
            e.event == "console output" && e.arg().contains("echo: through b")
        })
        .await;
    let stats = b
        .get(&format!("/v1/instances/{id}/stats"), t)
        .await
        .expect(200);
    assert_eq!(stats.body["state"], "running");

    // Files: written through B, read through A and B.
    let files = format!("/v1/instances/{id}/files");
    b.raw(
        reqwest::Method::PUT,
        &format!("{files}/content?path=/relayed.txt"),
        t,
        "text/plain",
        b"written on b\n".to_vec(),
    )
    .await
    .expect(200);
    let on_a = a
        .get(&format!("{files}/content?path=/relayed.txt"), t)
        .await
        .expect(200);
    assert!(on_a.text.contains("written on b"), "{}", on_a.text);
    let on_b = b
        .get(&format!("{files}/content?path=/relayed.txt"), t)
        .await
        .expect(200);
    assert_eq!(on_a.text, on_b.text);
    // An agent error comes back as itself, as it does on A.
    let missing = format!("{files}/content?path=/missing.txt");
    let from_b = b.get(&missing, t).await.expect_error(404, "FILE_NOT_FOUND");
    let from_a = a.get(&missing, t).await.expect_error(404, "FILE_NOT_FOUND");
    assert_eq!(from_a.body, from_b.body);

    b.post(&format!("/v1/instances/{id}/stop"), t, json!({}))
        .await
        .expect(202);
    console
        .wait_for(WAIT, "offline", |e| {
            e.event == "status" && e.arg() == "offline"
        })
        .await;

    // The hop itself: only a replica (which knows the token) gets through.
    let hop = b
        .state
        .tunnels
        .registry()
        .and_then(|r| r.me().map(str::to_owned))
        .expect("B's replica listener");
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let url = format!("{hop}/internal/agent/{node}/v1/metrics");
    for token in [None, Some("not-the-token")] {
        let mut req = client.get(&url);
        if let Some(token) = token {
            req = req.header("x-shardlyn-replica", token);
        }
        let r = req.send().await.expect("the hop answers");
        assert_eq!(r.status(), 401, "{token:?}");
    }

    // The agent leaves: its record goes with it, and B answers as A does.
    agent.stop().await;
    wait_node(b, &admin.access, &node, "offline").await;
    b.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect_error(409, "NODE_OFFLINE");
}

/// Two replicas behind HAProxy (round robin): the agent dials the load balancer and lands
/// on one replica; every call through the balancer works, half of them served by the
/// replica without the tunnel (which opened a hop to the other); the event stream works
/// through it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_a_load_balancer_act_as_one_panel() {
    let mut apps = replicas(2, |_| {}).await;
    let lb = LoadBalancer::start(&[&apps[0].base, &apps[1].base]).await;
    // Every call of `front` goes through the balancer.
    apps[1].base = lb.base.clone();
    let front = &apps[1];
    let admin = front.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let (config, dir) = register_node(front, &admin.access).await;
    let node = config.node_id.clone();
    let agent = LocalAgent::start(config, dir.path());
    wait_node(front, &admin.access, &node, "online").await;
    let holders: Vec<bool> = apps
        .iter()
        .map(|a| a.state.tunnels.get(&node).is_some())
        .collect();
    assert_eq!(
        holders.iter().filter(|h| **h).count(),
        1,
        "one replica holds the tunnel: {holders:?}"
    );
    for _ in 0..6 {
        front
            .get(&format!("/v1/nodes/{node}/inventory/processes"), t)
            .await
            .expect(200);
    }
    let other = holders
        .iter()
        .position(|h| !*h)
        .expect("a replica without it");
    let hops = apps[other].state.tunnels.registry().map(|r| r.peers());
    assert_eq!(
        hops,
        Some(1),
        "the replica without the tunnel relayed to the other"
    );

    // An event stream through the balancer hears the node leave.
    let auth = format!("Bearer {}", admin.access);
    let mut events = SseStream::open(
        &front.client,
        &format!("{}/v1/events", lb.base),
        &[("authorization", auth.as_str())],
    )
    .await
    .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
    agent.stop().await;
    loop {
        let e = events.expect("node_status", WAIT).await;
        if e.data["node_id"] == node.as_str() && e.data["online"] == false {
            break;
        }
    }
}

/// Both replicas restarted one after the other, each draining 1.5 s, under a steady load
/// through HAProxy: every request is answered 200 (a refused or drained one is retried
/// on the other replica by the balancer); none fails, and the restarted replicas serve
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_the_load_balancer_fails_no_request() {
    let apps = replicas(2, |c| c.cluster.drain_ms = 1500).await;
    let lb = LoadBalancer::start(&[&apps[0].base, &apps[1].base]).await;
    let user = apps[0].register("rolling@example.com").await;
    let client = reqwest::Client::new();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (stop, sent, client) = (stop.clone(), sent.clone(), client.clone());
        let url = format!("{}/v1/users/me", lb.base);
        let token = user.access.clone();
        tokio::spawn(async move {
            let mut answers: Vec<(u16, Option<String>)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let r = client.get(&url).bearer_auth(&token).send().await;
                answers.push(match r {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                    ),
                    Err(_) => (0, None),
                });
                sent.fetch_add(1, std::sync::atomic::Ordering::Release);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            answers
        })
    };
    let mut running = apps;
    for n in 0..2 {
        // Restart replica n on the same address, as an upgrade would.
        let old = running.remove(n);
        let mut config = old.state.config.clone();
        config.listen = old.state.bound.get().copied().expect("bound");
        let dir = old.stop_keep_dir().await;
        let again = shardlyn_tests::start_with_config(Engine::Postgres, dir, config).await;
        again.get("/health/live", None).await.expect(200);
        running.insert(n, again);
        // As an operator would: the next replica drains once the balancer counts this
        // one up again (until then it has nowhere to retry a drained request).
        lb.wait_all_up().await;
    }
    // The load goes on for 300 more requests (the balancer's checks find the restarted
    // replicas meanwhile).
    let after = sent.load(std::sync::atomic::Ordering::Acquire) + 300;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sent.load(std::sync::atomic::Ordering::Acquire) < after {
        assert!(tokio::time::Instant::now() < deadline, "the load stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let answers = load.await.expect("load");
    let failed: Vec<&(u16, Option<String>)> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        answers.len() > 100,
        "a steady load: {} requests",
        answers.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        answers.len()
    );
    for app in &running {
        app.get("/v1/users/me", Some(&user.access))
            .await
            .expect(200);
    }
}

/// With Redis the caller cache stays on, on every replica; a session ended on one replica
/// is refused by the others within a second, although they had it cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_replica_ends_the_session_on_the_others() {
    let apps = replicas(2, |_| {}).await;
    let (a, b) = (&apps[0], &apps[1]);
    let user = a.register("cache@example.com").await;
    b.get("/v1/users/me", Some(&user.access)).await.expect(200);
    let key = shardlyn_panel::auth::crypto::sha256_hex(&user.access);
    assert!(
        b.state.auth_cache.get(&key).is_some(),
        "B cached the caller (the cache is on with Redis)"
    );
    a.post("/v1/auth/logout", Some(&user.access), json!({}))
        .await
        .expect(204);
    let ended = tokio::time::Instant::now();
    loop {
        let r = b.get("/v1/users/me", Some(&user.access)).await;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            ended.elapsed() < Duration::from_secs(1),
            "B still serves the ended session after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The read cache (memberships, instance pages) stays on with Redis: a change one replica
/// announces over the bus ends the others' entries. The organization is changed here with
/// plain SQL, which announces nothing (as a write in another process would look to this
/// one), so B keeps answering from its cache until the announcement arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_announced_by_one_replica_ends_the_others_cached_reads() {
    let apps = replicas(2, |_| {}).await;
    let (a, b) = (&apps[0], &apps[1]);
    let user = a.register("reads@example.com").await;
    let t = Some(user.access.as_str());
    b.get("/v1/instances", t).await.expect(200);
    let org = b.get("/v1/organizations", t).await.expect(200).body[0]["id"]
        .as_str()
        .expect("org")
        .to_owned();
    assert!(
        b.state.reads.membership(&org, &user.user_id).is_some(),
        "B cached the membership (the cache is on with Redis)"
    );
    // Members without MFA may no longer list this organization's instances.
    sqlx::query("UPDATE organizations SET require_mfa = 1 WHERE id = $1")
        .bind(&org)
        .execute(&b.state.db.pool)
        .await
        .expect("require mfa");
    b.get("/v1/instances", t).await.expect(200);
    a.state
        .events
        .publish(shardlyn_panel::events::Event::now(
            "",
            shardlyn_panel::events::EventData::ReadsInvalidated {
                origin: "a-replica-in-another-process".into(),
            },
        ))
        .await;
    let announced = tokio::time::Instant::now();
    loop {
        let r = b.get("/v1/instances", t).await;
        if r.status == 403 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            announced.elapsed() < Duration::from_secs(2),
            "B still answers from its cache 2 s after the announcement"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The admin's replica list, from any replica: every live replica with the agents it
/// holds and which one runs the cluster's jobs; a stopped replica leaves the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_lists_the_replicas_and_the_agents_each_holds() {
    let apps = replicas(2, |c| c.jobs.poll_interval_ms = 20).await;
    let mut apps = apps.into_iter();
    let (a, b) = (apps.next().expect("a"), apps.next().expect("b"));
    let admin = a.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let (config, dir) = register_node(&a, &admin.access).await;
    let node = config.node_id.clone();
    let agent = LocalAgent::start(config, dir.path());
    let name = wait_node(&b, &admin.access, &node, "online").await["name"].clone();
    let (a_id, b_id) = (a.state.replica_id.clone(), b.state.replica_id.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = b.get("/v1/admin/replicas", t).await.expect(200).body;
        let rows = list["data"].as_array().expect("data");
        if rows.len() == 2 && rows.iter().any(|r| r["runs_jobs"] == true) {
            break list;
        }
        assert!(tokio::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rows = list["data"].as_array().expect("data");
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {list}"))
    };
    assert_eq!(
        row(&a_id)["agents"],
        json!([{"node_id": node, "name": name}])
    );
    assert_eq!(row(&b_id)["agents"], json!([]));
    assert_eq!(row(&b_id)["this"], true, "B answered");
    assert_eq!(row(&a_id)["this"], false);
    assert!(
        row(&a_id)["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:"))
    );
    assert_eq!(
        rows.iter().filter(|r| r["runs_jobs"] == true).count(),
        1,
        "one job holder: {list}"
    );

    agent.stop().await;
    a.stop().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = b.get("/v1/admin/replicas", t).await.expect(200).body;
        let ids: Vec<&str> = list["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        // B alone, and it took the jobs over.
        if ids == [b_id.as_str()] && list["data"][0]["runs_jobs"] == true {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Redis server of the test's own, on `port`, that the test can kill and restart.
fn redis_on(port: u16) -> std::process::Child {
    std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/dev-services installs it)")
}

/// Redis goes away under load and comes back: every request is still answered (rate
/// limits fail open, the caller cache turns off), `/health/live` stays green while
/// `/health/detailed` says degraded, and without a restart the panel finds Redis again:
/// healthy, events flowing, the caller cache back on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_degrades_the_panel_and_it_recovers_by_itself() {
    let port = free_port();
    let mut redis = redis_on(port);
    wait_listening(port, "redis").await;
    let apps = replicas(1, |c| c.redis_url = format!("redis://127.0.0.1:{port}")).await;
    let app = &apps[0];
    let user = app.register("outage@example.com").await;
    let t = Some(user.access.as_str());
    app.get("/health/detailed", None).await.expect(200);

    redis.kill().expect("kill redis");
    redis.wait().expect("redis gone");
    // Under a steady load, nothing fails.
    for n in 0..60 {
        let r = app.get("/v1/users/me", t).await;
        assert_eq!(r.status, 200, "request {n} with Redis down: {}", r.text);
    }
    app.get("/v1/instances", t).await.expect(200);
    app.get("/health/live", None).await.expect(200);
    let d = app.get("/health/detailed", None).await.expect(503);
    assert_eq!(d.body["status"], "degraded");
    assert_eq!(d.body["checks"]["redis"]["status"], "down");
    // With the bus deaf to the other replicas, the caller cache is off.
    let key = shardlyn_panel::auth::crypto::sha256_hex(&user.access);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        app.get("/v1/users/me", t).await.expect(200);
        if app.state.auth_cache.get(&key).is_none() {
            assert!(
                app.state.reads.stamp().is_none(),
                "the read cache is off too"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the caller cache stayed on without Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut redis = redis_on(port);
    wait_listening(port, "redis").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = app.get("/health/detailed", None).await;
        if d.status == 200 {
            assert_eq!(d.body["checks"]["redis"]["status"], "up");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never healthy again: {}",
            d.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Events flow again, and the cache is back on.
    let auth = format!("Bearer {}", user.access);
    let org = app.get("/v1/organizations", t).await.expect(200).body[0]["id"]
        .as_str()
        .expect("org")
        .to_owned();
    let mut stream = SseStream::open(
        &app.client,
        &format!("{}/v1/events", app.base),
        &[("authorization", auth.as_str())],
    )
    .await
    .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        app.state
            .events
            .publish(shardlyn_panel::events::Event::now(
                org.clone(),
                shardlyn_panel::events::EventData::NodeStatus {
                    node_id: "after-outage".into(),
                    online: true,
                },
            ))
            .await;
        if let Ok(Some(e)) = stream.next(Duration::from_millis(500)).await {
            assert_eq!(e.data["node_id"], "after-outage");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events never flowed again"
        );
    }
    app.get("/v1/users/me", t).await.expect(200);
    assert!(
        app.state.auth_cache.get(&key).is_some(),
        "the caller cache is on again"
    );
    assert!(app.state.reads.stamp().is_some(), "and the read cache");
    redis.kill().ok();
    redis.wait().ok();
}
