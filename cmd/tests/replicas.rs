//! Replicas as real processes: two `shardlyn serve` on one PostgreSQL database and the
//! test Redis, behind HAProxy, an agent dialling through the balancer, a game server
//! running, and the replica holding the agent's tunnel killed with `kill -9`. The agent
//! is back through the balancer within 10 s (about 2–2.5 s here), the server never
//! stops, and an event-stream client that was on the killed replica resumes through the
//! balancer with `Last-Event-ID` and gets every event it missed, none twice.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_tests::agent::{LocalAgent, free_port};
use shardlyn_tests::lb::LoadBalancer;
use shardlyn_tests::sse::SseStream;
use shardlyn_tests::{Engine, PASSWORD, fresh_database, redis_url};

const WAIT: Duration = Duration::from_secs(30);

/// A `shardlyn serve` child; killed (SIGKILL) when dropped.
struct Replica {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn start(env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardlyn"));
        for (key, _) in std::env::vars() {
            if key.starts_with("SHARDLYN_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("SHARDLYN_LOG_LEVEL", "warn")
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("shardlyn serve");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// `kill -9`.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// `method path` on `base` with `token`; the status and the JSON body.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Polls until `done` holds for `GET path` on `base` (200 answers only), within `limit`.
async fn wait_until(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (status, body) =
            call(client, reqwest::Method::GET, base, path, Some(token), None).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} on {base} never got there within {limit:?}: {status} {body}"
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
    let mut replicas = vec![Replica::start(&env), Replica::start(&env)];
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
    let lb = LoadBalancer::start(&[&replicas[0].base, &replicas[1].base]).await;
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

    // An agent dials through the balancer.
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
    let agent_dir = tempfile::tempdir().expect("tempdir");
    let config = shardlyn_agent::register::register(
        &lb.base,
        reg["token"].as_str().expect("token"),
        None,
        agent_dir.path(),
    )
    .await
    .expect("agent registers");
    let node = config.node_id.clone();
    let agent = LocalAgent::start(config, agent_dir.path());
    let node_path = format!("/v1/nodes/{node}");
    wait_until(&client, &lb.base, &node_path, &token, WAIT, |n| {
        n["status"] == "online"
    })
    .await;

    // A game server on it.
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
    let (status, created) = call(&client, post.clone(), &lb.base, "/v1/instances", t, Some(json!({
        "name": "survivor", "workload_id": w["id"], "node_id": node, "ports": [free_port()],
        "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500},
    }))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let instance_path = format!("/v1/instances/{id}");
    wait_until(&client, &lb.base, &instance_path, &token, WAIT, |i| {
        i["state"] == "offline"
    })
    .await;

    // Which process holds the tunnel: each names itself `this` in the replica list.
    let mut holder = None;
    for (n, r) in replicas.iter().enumerate() {
        let list = wait_until(&client, &r.base, "/v1/admin/replicas", &token, WAIT, |l| {
            l["data"].as_array().is_some_and(|d| d.len() == 2)
        })
        .await;
        let me = list["data"]
            .as_array()
            .expect("data")
            .iter()
            .find(|x| x["this"] == true)
            .cloned()
            .expect("this");
        if me["agents"].as_array().is_some_and(|a| !a.is_empty()) {
            holder = Some(n);
        }
    }
    let holder = holder.expect("one replica holds the agent");
    let survivor = 1 - holder;
    let survivor_base = replicas[survivor].base.clone();

    // An event stream on the replica about to die, and a reference stream on the other.
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let mut doomed = SseStream::open(
        &client,
        &format!("{}/v1/events", replicas[holder].base),
        &headers,
    )
    .await
    .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
    let mut reference = SseStream::open(&client, &format!("{survivor_base}/v1/events"), &headers)
        .await
        .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
    // The server starts; its first state event tells where the doomed stream was.
    let (status, _) = call(
        &client,
        post.clone(),
        &lb.base,
        &format!("{instance_path}/start"),
        t,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 202);
    wait_until(&client, &lb.base, &instance_path, &token, WAIT, |i| {
        i["state"] == "running"
    })
    .await;
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

    // kill -9.
    let killed_at = tokio::time::Instant::now();
    replicas.remove(holder).kill();
    // The agent reconnects through the balancer, to the survivor, within 10 s.
    wait_until(
        &client,
        &survivor_base,
        "/v1/admin/replicas",
        &token,
        Duration::from_secs(10),
        |l| {
            l["data"].as_array().is_some_and(|d| {
                d.iter().any(|r| {
                    r["this"] == true && r["agents"].as_array().is_some_and(|a| a.len() == 1)
                })
            })
        },
    )
    .await;
    let reconnected = killed_at.elapsed();
    assert!(
        reconnected <= Duration::from_secs(10),
        "reconnected after {reconnected:?}"
    );
    // The server never stopped.
    let i = wait_until(&client, &lb.base, &instance_path, &token, WAIT, |_| true).await;
    assert_eq!(i["state"], "running", "{i}");
    let inspect = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.State.Running}}",
            &format!("shardlyn-{id}"),
        ])
        .output()
        .expect("docker inspect");
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "true");

    // More events while the doomed stream's client is away: a stop.
    let (status, _) = call(
        &client,
        post.clone(),
        &lb.base,
        &format!("{instance_path}/stop"),
        t,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 202);
    wait_until(&client, &lb.base, &instance_path, &token, WAIT, |i| {
        i["state"] == "offline"
    })
    .await;
    // The reference stream saw everything since; the doomed stream's client resumes
    // through the balancer from its last id and must get exactly those events.
    loop {
        let e = reference
            .next(Duration::from_secs(2))
            .await
            .expect("reference stream");
        let Some(e) = e else { break };
        let done = e.event == "instance_state" && e.data["state"] == "offline";
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

    let _ = call(
        &client,
        reqwest::Method::DELETE,
        &lb.base,
        &format!("{instance_path}?force=true"),
        t,
        None,
    )
    .await;
    agent.stop().await;
}
