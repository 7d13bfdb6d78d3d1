//! Game servers end to end on real Docker: a node with a real agent, the busybox test
//! egg, install, start, the console WebSocket (ticket and token auth), commands and their
//! echo, stats, logs, stop; crash handling; an agent killed with `kill -9`; a panel
//! restart; a cut tunnel.

use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_tests::agent::{
    AgentProcess, LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::console::Console;
use shardlyn_tests::{Engine, Session, TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(30);

async fn create_instance(app: &TestApp, access: &str, node: &str, workload: &str) -> Value {
    app.post(
        "/v1/instances",
        Some(access),
        json!({
            "name": "e2e",
            "workload_id": workload,
            "node_id": node,
            "ports": [free_port()],
            "variables": {"GREETING": "hi from e2e"},
            "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500},
        }),
    )
    .await
    .expect(201)
    .body
}

/// A platform admin's server on a local agent, installed and offline.
struct Offline {
    admin: Session,
    agent: LocalAgent,
    _dir: tempfile::TempDir,
    config: shardlyn_agent::config::AgentConfig,
    workload: String,
    instance: Value,
    id: String,
}

async fn offline_server(app: &TestApp) -> Offline {
    let admin = app.bootstrap_admin().await;
    let (config, dir) = register_node(app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(app, &admin.access).await;
    let instance = create_instance(app, &admin.access, &config.node_id, &workload).await;
    let id = instance["id"].as_str().expect("id").to_string();
    wait_instance(app, &admin.access, &id, "offline", WAIT).await;
    Offline {
        admin,
        agent,
        _dir: dir,
        config,
        workload,
        instance,
        id,
    }
}

async fn ticket(app: &TestApp, access: &str, id: &str) -> String {
    let r = app
        .post(
            &format!("/v1/instances/{id}/console/tickets"),
            Some(access),
            json!({}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["expires_in"], 30);
    r.body["ticket"].as_str().expect("ticket").to_string()
}

async fn console(app: &TestApp, access: &str, id: &str) -> Console {
    let t = ticket(app, access, id).await;
    let mut c = Console::connect(
        &format!("{}/v1/instances/{id}/console?ticket={t}", app.base),
        None,
    )
    .await
    .expect("console opens");
    c.wait_for(WAIT, "auth success", |e| e.event == "auth success")
        .await;
    c
}

fn line_is(text: &'static str) -> impl Fn(&shardlyn_tests::console::Received) -> bool {
    move |e| e.event == "console output" && e.arg().contains(text)
}

both_engines! {
    async fn a_server_installs_starts_talks_and_stops(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let (config, dir) = register_node(&app, &admin.access).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(&app, &admin.access, &config.node_id, "online").await;
        let workload = busybox_workload(&app, &admin.access).await;
        let instance = create_instance(&app, &admin.access, &config.node_id, &workload).await;
        let id = instance["id"].as_str().expect("id").to_string();
        assert_eq!(instance["node_id"], config.node_id.as_str());
        // The install script ran in its own container with the files at /mnt/server.
        wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
        let installed = std::fs::read_to_string(dir.path().join("volumes").join(&id).join("INSTALLED"))
            .expect("the install script wrote into the server files");
        assert!(installed.contains("installed by the busybox test egg"));
        app.get(&format!("/v1/instances/{id}/install-logs"), t).await.expect(200);

        let mut c = console(&app, &admin.access, &id).await;
        app.post(&format!("/v1/instances/{id}/start"), t, json!({})).await.expect(202);
        // "ready" marks the server running (the greeting, which expands the variable, is
        // checked in the replay below).
        c.wait_for(WAIT, "running", |e| e.event == "status" && e.arg() == "running").await;
        wait_instance(&app, &admin.access, &id, "running", WAIT).await;
        app.post(&format!("/v1/instances/{id}/reinstall"), t, json!({})).await.expect(409);
        c.send("send command", &["hello there"]).await;
        c.wait_for(WAIT, "command echo", line_is("echo: hello there")).await;
        // A command sent the moment a socket opens (before `auth success`) is echoed on
        // that socket: the panel holds it until the node's output stream is open.
        for i in 0..8 {
            let tk = ticket(&app, &admin.access, &id).await;
            let mut fresh = Console::connect(&format!("{}/v1/instances/{id}/console?ticket={tk}", app.base), None)
                .await
                .expect("console opens");
            let said = format!("early {i}");
            fresh.send("send command", &[&said]).await;
            let echo = format!("echo: {said}");
            fresh.wait_for(WAIT, "echo of an early command", move |e| e.event == "console output" && e.arg().contains(&echo)).await;
            fresh.close().await;
        }
        c.send("send stats", &[]).await;
        let stats = c.wait_for(WAIT, "stats", |e| e.event == "stats").await;
        let stats: Value = serde_json::from_str(stats.arg()).expect("stats are a JSON string");
        assert_eq!(stats["state"], "running");
        assert!(stats["memory_limit_bytes"].as_u64().unwrap_or(0) > 0, "{stats}");
        // History replay and REST views of the same console.
        c.send("send logs", &[]).await;
        c.wait_for(WAIT, "replayed line", line_is("hi from e2e")).await;
        let r = app.get(&format!("/v1/instances/{id}/stats"), t).await.expect(200);
        assert_eq!(r.body["state"], "running");
        assert!(r.body["memory_bytes"].as_u64().unwrap_or(0) > 0, "{}", r.text);
        let r = app.get(&format!("/v1/instances/{id}/logs/history?lines=50"), t).await.expect(200);
        let lines: Vec<&str> = r.body["lines"].as_array().expect("lines").iter().filter_map(Value::as_str).collect();
        assert!(lines.iter().any(|l| l.contains("echo: hello there")), "{lines:?}");
        let r = app.get(&format!("/v1/instances/{id}/logs/download"), t).await.expect(200);
        assert!(r.text.contains("echo: hello there"), "{}", r.text);
        app.get(&format!("/v1/instances/{id}/logs/history?lines=0"), t).await.expect_error(400, "VALIDATION_ERROR");
        // Stop: the egg's stop command goes to stdin and the script exits.
        c.send("set state", &["stop"]).await;
        c.wait_for(WAIT, "stopping line", line_is("stopping")).await;
        c.wait_for(WAIT, "offline", |e| e.event == "status" && e.arg() == "offline").await;
        let body = wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
        assert_eq!(body["desired_state"], "stopped");
        c.close().await;
        // Reinstall runs the install script again over the files.
        let marker = dir.path().join("volumes").join(&id).join("INSTALLED");
        std::fs::remove_file(&marker).expect("remove marker");
        app.post(&format!("/v1/instances/{id}/reinstall"), t, json!({})).await.expect(202);
        wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !marker.exists() {
            assert!(tokio::time::Instant::now() < deadline, "the install script did not run again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Admins may clear the console log.
        app.delete(&format!("/v1/instances/{id}/logs/clear"), t).await.expect(204);
        let r = app.get(&format!("/v1/instances/{id}/logs/history"), t).await.expect(200);
        assert!(r.body["lines"].as_array().expect("lines").iter().all(|l| !l.as_str().unwrap_or("").contains("hello there")), "{}", r.text);

        // The node goes away: power actions say so instead of hanging.
        agent.stop().await;
        wait_node(&app, &admin.access, &config.node_id, "offline").await;
        app.post(&format!("/v1/instances/{id}/start"), t, json!({})).await.expect_error(409, "NODE_OFFLINE");
        app.get(&format!("/v1/instances/{id}/stats"), t).await.expect_error(409, "NODE_OFFLINE");
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(&app, &admin.access, &config.node_id, "online").await;
        app.delete(&format!("/v1/instances/{id}"), t).await.expect(204);
        assert!(!dir.path().join("volumes").join(&id).exists(), "server files removed with the instance");
        agent.stop().await;
    }

    /// A revocation ends the consoles it concerns and no other: an API token deleted
    /// ends the socket opened with it, a session signed out ends the socket its ticket
    /// bought; a console of another session stays.
    async fn a_revocation_ends_the_consoles_it_concerns(engine) {
        let app = spawn_app(engine).await;
        let Offline { admin, agent, _dir, id, .. } = offline_server(&app).await;
        let url = format!("{}/v1/instances/{id}/console", app.base);

        let api = app.api_token(&admin.access, "console", None).await;
        let mut by_token = Console::connect(&url, Some(&api)).await.expect("API token accepted");
        by_token.wait_for(WAIT, "auth success", |e| e.event == "auth success").await;
        let mut by_ticket = console(&app, &admin.access, &id).await;
        let other = app.login("admin@example.com", shardlyn_tests::PASSWORD).await;
        let mut other_session = console(&app, &other.access, &id).await;

        // Still answering (asked for stats, not a new auth, which would change what the
        // socket is checked against).
        async fn answers(c: &mut Console) {
            c.send("send stats", &[]).await;
            c.wait_for(WAIT, "stats", |e| e.event == "stats").await;
        }
        async fn ended(mut c: Console) {
            c.wait_for(WAIT, "the end of access", |e| e.event == "jwt error" && e.arg().contains("ended")).await;
            assert!(c.next(WAIT).await.is_none(), "the socket closed");
        }

        let tokens = app.get("/v1/api-tokens", Some(&admin.access)).await.expect(200);
        let token_id = tokens.body[0]["id"].as_str().expect("token id").to_owned();
        app.delete(&format!("/v1/api-tokens/{token_id}"), Some(&admin.access)).await.expect(204);
        ended(by_token).await;
        answers(&mut by_ticket).await;

        app.post("/v1/auth/logout", Some(&admin.access), json!({})).await.expect(204);
        ended(by_ticket).await;
        answers(&mut other_session).await;
        other_session.close().await;
        agent.stop().await;
    }

    async fn console_sockets_check_tickets_tokens_and_permissions(engine) {
        let app = spawn_app(engine).await;
        let Offline { admin, agent, _dir, config, instance, id, workload } = offline_server(&app).await;
        let url = format!("{}/v1/instances/{id}/console", app.base);

        // A ticket works once.
        let tk = ticket(&app, &admin.access, &id).await;
        let c = Console::connect(&format!("{url}?ticket={tk}"), None).await.expect("first use");
        c.close().await;
        let refused = Console::connect(&format!("{url}?ticket={tk}"), None).await.err().expect("reused ticket refused");
        assert_eq!(refused.status, 401, "{}", refused.body);
        let refused = Console::connect(&format!("{url}?ticket=shardlyn_ct_0000"), None).await.err().expect("bad ticket");
        assert_eq!(refused.status, 401);
        // A ticket is for one instance only.
        let other = create_instance(&app, &admin.access, &config.node_id, &workload).await;
        let other_id = other["id"].as_str().expect("id");
        let tk = ticket(&app, &admin.access, other_id).await;
        let refused = Console::connect(&format!("{url}?ticket={tk}"), None).await.err().expect("wrong instance");
        assert_eq!(refused.status, 401);
        // Plain HTTP without credentials: 401.
        app.get(&format!("/v1/instances/{id}/console"), None).await.expect_error(401, "UNAUTHORIZED");

        // Token in the first message; a bad one gets "jwt error".
        let mut c = Console::connect(&url, None).await.expect("opens");
        c.send("auth", &["not-a-token"]).await;
        c.wait_for(WAIT, "jwt error", |e| e.event == "jwt error").await;
        let mut c = Console::connect(&url, None).await.expect("opens");
        c.send("auth", &[&admin.access]).await;
        c.wait_for(WAIT, "auth success", |e| e.event == "auth success").await;
        c.close().await;
        // An API token in the header works too.
        let api = app.api_token(&admin.access, "console", None).await;
        let c = Console::connect(&url, Some(&api)).await.expect("API token accepted");
        c.close().await;

        // A viewer sees the console but may neither type nor press power buttons; a
        // stranger cannot tell the instance exists.
        let viewer = app.register("viewer@example.com").await;
        let org = instance["organization_id"].as_str().expect("org");
        app.add_member(org, &viewer.user_id, "viewer").await;
        let mut c = console(&app, &viewer.access, &id).await;
        c.send("send command", &["hi"]).await;
        c.wait_for(WAIT, "refusal", |e| e.event == "daemon error" && e.arg().contains("permission")).await;
        c.send("set state", &["start"]).await;
        c.wait_for(WAIT, "refusal", |e| e.event == "daemon error" && e.arg().contains("permission")).await;
        c.close().await;
        app.post(&format!("/v1/instances/{id}/start"), Some(&viewer.access), json!({})).await.expect_error(403, "FORBIDDEN");
        let stranger = app.register("stranger@example.com").await;
        app.post(&format!("/v1/instances/{id}/console/tickets"), Some(&stranger.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
        let refused = Console::connect(&url, Some(&stranger.access)).await.err().expect("stranger refused");
        assert_eq!(refused.status, 404);
        // Commands on a stopped server are refused by the agent, over the socket.
        let mut c = console(&app, &admin.access, &id).await;
        c.send("send command", &["hello"]).await;
        c.wait_for(WAIT, "not running", |e| e.event == "daemon error").await;
        c.close().await;
        app.delete(&format!("/v1/instances/{other_id}"), Some(&admin.access)).await.expect(204);

        // Processes on the node: a stray one is killed through the tunnel; pid 1 is not.
        let t = Some(admin.access.as_str());
        let mut stray = std::process::Command::new("sleep").arg("300").spawn().expect("sleep");
        let node = &config.node_id;
        let r = app.post(&format!("/v1/nodes/{node}/processes/{}/kill", stray.id()), t, json!({"signal": "SIGKILL"}))
            .await
            .expect(200);
        assert_eq!(r.body["signal"], "SIGKILL");
        let status = tokio::task::spawn_blocking(move || stray.wait()).await.expect("join").expect("wait");
        assert!(!status.success(), "the process was killed");
        app.post(&format!("/v1/nodes/{node}/processes/1/kill"), t, json!({})).await.expect(409);
        app.post(&format!("/v1/nodes/{node}/processes/abc/kill"), t, json!({})).await.expect_error(400, "VALIDATION_ERROR");
        app.post(&format!("/v1/nodes/{node}/processes/123/kill"), t, json!({"signal": "SIGNOPE"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post(&format!("/v1/nodes/{node}/processes/123/kill"), Some(&viewer.access), json!({})).await.expect_error(403, "FORBIDDEN");
        app.post(&format!("/v1/nodes/{node}/processes/123/kill"), Some(&stranger.access), json!({})).await.expect_error(404, "NOT_FOUND");
        // At most 30 sockets per instance.
        let mut open = Vec::new();
        for _ in 0..30 {
            let mut c = Console::connect(&url, Some(&admin.access)).await.expect("under the cap");
            c.wait_for(WAIT, "auth success", |e| e.event == "auth success").await;
            open.push(c);
        }
        let refused = Console::connect(&url, Some(&admin.access)).await.err().expect("over the cap");
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert!(refused.body.contains("TOO_MANY_SOCKETS"), "{}", refused.body);
        for c in open {
            c.close().await;
        }
        // Closed sockets give their places back.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match Console::connect(&url, Some(&admin.access)).await {
                Ok(c) => {
                    c.close().await;
                    break;
                }
                Err(r) => {
                    assert_eq!(r.status, 429, "{}", r.body);
                    assert!(r.body.contains("TOO_MANY_SOCKETS"), "{}", r.body);
                    assert!(tokio::time::Instant::now() < deadline, "places never freed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        agent.stop().await;
    }
}

/// Docker-heavy scenarios run on SQLite only: the database plays no part in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_restarts_once_then_a_second_crash_within_a_minute_stays_down() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let instance = create_instance(&app, &admin.access, &config.node_id, &workload).await;
    let id = instance["id"].as_str().expect("id").to_string();
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    let mut c = console(&app, &admin.access, &id).await;
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &admin.access, &id, "running", WAIT).await;
    c.send("send command", &["crash"]).await;
    c.wait_for(WAIT, "crash notice", |e| {
        e.event == "daemon message" && e.arg().to_lowercase().contains("crash")
    })
    .await;
    c.wait_for(WAIT, "running again", |e| {
        e.event == "status" && e.arg() == "running"
    })
    .await;
    c.send("send command", &["crash"]).await;
    c.wait_for(WAIT, "offline", |e| {
        e.event == "status" && e.arg() == "offline"
    })
    .await;
    // The panel learns it should stay down, and it does.
    let body = wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut body = body;
    while body["desired_state"] != "stopped" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        body = app
            .get(&format!("/v1/instances/{id}"), t)
            .await
            .expect(200)
            .body;
    }
    assert_eq!(body["desired_state"], "stopped", "{body}");
    assert_eq!(body["state"], "offline", "{body}");
    // A bounded look (2 s, every 200 ms) sees no restart.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = app.get(&format!("/v1/instances/{id}"), t).await.expect(200);
        assert_eq!(
            r.body["state"], "offline",
            "a crashed server restarted: {}",
            r.text
        );
        assert!(!docker_running(&id), "the container runs again");
    }
    c.close().await;
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    agent.stop().await;
}

/// Whether a container of server `id` runs (found by its label: names carry the agent).
fn docker_running(id: &str) -> bool {
    let label = format!("label={}={id}", shardlyn_proto::instance::INSTANCE_LABEL);
    std::process::Command::new("docker")
        .args(["ps", "-q", "--filter", &label, "--filter", "status=running"])
        .output()
        .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_leaves_servers_running_and_readopts_them() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = AgentProcess::spawn(dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let instance = create_instance(&app, &admin.access, &config.node_id, &workload).await;
    let id = instance["id"].as_str().expect("id").to_string();
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &admin.access, &id, "running", WAIT).await;

    agent.kill9();
    // The server must outlive its agent: a bounded look (1 s, every 100 ms).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < deadline {
        assert!(docker_running(&id), "the server must outlive its agent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let agent = AgentProcess::spawn(dir.path());
    // The new agent reconnects, re-adopts the container and the panel shows it running;
    // the console still reaches the same process.
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let mut c = console(&app, &admin.access, &id).await;
    c.send("send command", &["still here"]).await;
    c.wait_for(
        WAIT,
        "echo from the adopted server",
        line_is("echo: still here"),
    )
    .await;
    let r = app
        .get(&format!("/v1/instances/{id}/stats"), t)
        .await
        .expect(200);
    assert_eq!(r.body["state"], "running", "{}", r.text);
    wait_instance(&app, &admin.access, &id, "running", WAIT).await;
    c.close().await;
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_restart_and_a_cut_tunnel_stop_nothing() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let instance = create_instance(&app, &admin.access, &config.node_id, &workload).await;
    let id = instance["id"].as_str().expect("id").to_string();
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &admin.access, &id, "running", WAIT).await;

    // Cut the tunnel from the panel side: the node drops offline, then comes back.
    app.state.tunnels.disconnect(&config.node_id);
    wait_node(&app, &admin.access, &config.node_id, "offline").await;
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    assert!(docker_running(&id));

    // Restart the panel on the same address: the agent is back within 10 s.
    let mut panel_config = app.state.config.clone();
    let port: u16 = app
        .base
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    panel_config.listen = format!("127.0.0.1:{port}").parse().expect("addr");
    let data = app.stop_keep_dir().await;
    assert!(docker_running(&id), "a stopped panel stops no server");
    let started = tokio::time::Instant::now();
    let app = shardlyn_tests::start_with_config(Engine::Sqlite, data, panel_config).await;
    let login = app
        .login("admin@example.com", shardlyn_tests::PASSWORD)
        .await;
    wait_node(&app, &login.access, &config.node_id, "online").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "reconnected after {:?}",
        started.elapsed()
    );
    assert!(docker_running(&id));
    let mut c = console(&app, &login.access, &id).await;
    c.send("send command", &["after restart"]).await;
    c.wait_for(WAIT, "echo", line_is("echo: after restart"))
        .await;
    wait_instance(&app, &login.access, &id, "running", WAIT).await;
    c.close().await;
    // The heartbeat after the reconnect sampled the running server.
    let t = Some(login.access.as_str());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = app
            .get(&format!("/v1/instances/{id}/metrics/history?range=1h"), t)
            .await
            .expect(200);
        if let Some(point) = r.body["points"].as_array().and_then(|p| p.first()) {
            assert!(
                point["memory_bytes"].as_i64().unwrap_or(0) > 0,
                "{}",
                r.text
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no instance metrics: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.get(&format!("/v1/instances/{id}/metrics/history?range=2y"), t)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    // Drain: the node is cordoned; with no other node the server has nowhere to go and
    // stays running, named with the reason; asked to, the drain stops it instead.
    let r = app
        .post(&format!("/v1/nodes/{}/drain", config.node_id), t, json!({}))
        .await
        .expect(202);
    assert_eq!(r.body["cordoned"], true, "{}", r.text);
    assert_eq!(r.body["migrations"], json!([]), "{}", r.text);
    assert_eq!(
        r.body["unplaced"][0]["instance_id"],
        id.as_str(),
        "{}",
        r.text
    );
    assert!(
        r.body["unplaced"][0]["reason"]
            .as_str()
            .is_some_and(|why| why.contains("no other online node")),
        "{}",
        r.text
    );
    app.post(
        &format!("/v1/nodes/{}/drain", config.node_id),
        t,
        json!({"stop_instead": ["not-a-server"]}),
    )
    .await
    .expect_error(422, "VALIDATION_ERROR");
    let r = app
        .post(
            &format!("/v1/nodes/{}/drain", config.node_id),
            t,
            json!({"stop_instead": [id]}),
        )
        .await
        .expect(202);
    assert_eq!(r.body["stopped"][0]["id"], id.as_str(), "{}", r.text);
    assert_eq!(r.body["failed"], json!([]), "{}", r.text);
    let body = wait_instance(&app, &login.access, &id, "offline", WAIT).await;
    assert_eq!(body["desired_state"], "stopped");
    let node = app
        .get(&format!("/v1/nodes/{}", config.node_id), t)
        .await
        .expect(200);
    assert_eq!(node.body["cordoned"], true);
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_console_client_loses_old_lines_without_slowing_anyone_else() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let instance = create_instance(&app, &admin.access, &config.node_id, &workload).await;
    let id = instance["id"].as_str().expect("id").to_string();
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    let mut fast = console(&app, &admin.access, &id).await;
    let mut slow = console(&app, &admin.access, &id).await;
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    fast.wait_for(WAIT, "running", |e| {
        e.event == "status" && e.arg() == "running"
    })
    .await;
    const LINES: u64 = 300_000;
    fast.send("send command", &[&format!("flood {LINES}")])
        .await;
    // The fast client reads as it comes, in order, to the last line, while the slow one
    // reads nothing. (Whether the fast one loses nothing depends on build speed: a debug
    // panel is slower than `seq`; the release benchmark asserts no loss.)
    let mut last = 0;
    while last < LINES {
        let e = fast
            .next(WAIT)
            .await
            .expect("the fast client keeps receiving");
        if e.event == "console output"
            && let Ok(n) = e.arg().parse::<u64>()
        {
            assert!(n > last, "lines arrive in order: {n} after {last}");
            last = n;
        }
    }
    // The slow client is told it lost lines, and still gets the newest ones.
    let note = slow
        .wait_for(WAIT, "drop notice", |e| {
            e.event == "daemon message" && e.arg().contains("dropped")
        })
        .await;
    assert!(
        note.arg()
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            > 0,
        "{note:?}"
    );
    slow.wait_for(WAIT, "the last line", |e| {
        e.event == "console output" && e.arg() == LINES.to_string()
    })
    .await;
    fast.close().await;
    slow.close().await;
    app.post(&format!("/v1/instances/{id}/kill"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    agent.stop().await;
}
