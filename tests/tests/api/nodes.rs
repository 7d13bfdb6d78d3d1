//! Nodes end to end: a registration token, a real agent (the library, in-process)
//! registering and dialing the tunnel, heartbeats, inventory through the tunnel,
//! reconnection after a panel restart, TLS pinning, and tenancy.

use std::time::Duration;

use serde_json::json;
use shardlyn_agent::config::AgentConfig;
use shardlyn_tests::agent::wait_node;
use shardlyn_tests::lb::LoadBalancer;
use shardlyn_tests::{TestApp, both_engines, spawn_app};

/// A running agent; dropping the sender stops it.
struct Agent {
    config: AgentConfig,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Agent {
    fn start(config: AgentConfig) -> Self {
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let run_config = config.clone();
        let task = tokio::spawn(async move {
            shardlyn_agent::tunnel::run(
                run_config,
                std::env::temp_dir().join(format!("shardlyn-agent-{}", uuid::Uuid::new_v4())),
                async {
                    let _ = rx.await;
                },
            )
            .await;
        });
        Self { config, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("agent task");
    }
}

async fn registration_token(app: &TestApp, access: &str, name: Option<&str>) -> String {
    let r = app
        .post(
            "/v1/nodes/register-token",
            Some(access),
            json!({"name": name}),
        )
        .await
        .expect(201);
    let token = r.body["token"].as_str().expect("token").to_string();
    let command = r.body["command"].as_str().expect("command");
    assert!(
        command.starts_with(&format!(
            "shardlyn-agent register --panel {} --token {token}",
            app.base
        )),
        "{command}"
    );
    assert!(
        command.contains("&& shardlyn-agent run --data-dir"),
        "{command}"
    );
    token
}

async fn register(app: &TestApp, token: &str, dir: &std::path::Path) -> AgentConfig {
    shardlyn_agent::register::register(&app.base, token, None, dir)
        .await
        .expect("agent registers")
}

both_engines! {
    async fn agent_registers_connects_and_serves_inventory(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let token = registration_token(&app, &admin.access, Some("node-a")).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = register(&app, &token, dir.path()).await;
        // The saved configuration is private and holds no registration token.
        use std::os::unix::fs::PermissionsExt;
        let file = dir.path().join("agent.toml");
        assert_eq!(std::fs::metadata(&file).expect("agent.toml").permissions().mode() & 0o777, 0o600);
        assert!(!std::fs::read_to_string(&file).expect("read").contains(&token));
        // The registration token is single use.
        let again = shardlyn_agent::register::register(&app.base, &token, None, tempfile::tempdir().expect("d").path()).await;
        assert!(again.expect_err("reuse refused").to_string().contains("401"));

        let node = app.get(&format!("/v1/nodes/{}", config.node_id), Some(&admin.access)).await.expect(200);
        assert_eq!(node.body["name"], "node-a");
        assert_eq!(node.body["status"], "offline");

        let agent = Agent::start(config.clone());
        let online = wait_node(&app, &admin.access, &config.node_id, "online").await;
        assert_eq!(online["agent_version"], shardlyn_agent::VERSION);
        assert!(online["last_seen_at"].is_string());

        let system = app
            .get(&format!("/v1/nodes/{}/inventory/system", config.node_id), Some(&admin.access))
            .await
            .expect(200);
        assert!(system.body["cpu_count"].as_u64().is_some_and(|n| n >= 1), "{}", system.text);
        assert!(system.body["memory_total_bytes"].as_u64().is_some_and(|n| n > 0));
        for part in ["network", "disks", "users", "processes"] {
            let r = app
                .get(&format!("/v1/nodes/{}/inventory/{part}", config.node_id), Some(&admin.access))
                .await
                .expect(200);
            assert!(r.body.as_array().is_some_and(|a| !a.is_empty()), "{part}: {}", r.text);
        }
        let all = app.get(&format!("/v1/nodes/{}/inventory", config.node_id), Some(&admin.access)).await.expect(200);
        assert!(all.body["processes"].as_array().is_some_and(|p| p.iter().any(|p| p["pid"] == std::process::id())));

        // Each heartbeat stored a metrics sample.
        let history = app
            .get(&format!("/v1/nodes/{}/metrics/history?range=1h", config.node_id), Some(&admin.access))
            .await
            .expect(200);
        let points = history.body["points"].as_array().expect("points");
        assert!(!points.is_empty(), "{}", history.text);
        assert!(points[0]["memory_total_bytes"].as_i64().is_some_and(|m| m > 0), "{}", history.text);
        assert!(points[0]["cpu_percent"].as_f64().is_some_and(|c| (0.0..=100.0).contains(&c)));
        for range in ["24h", "7d"] {
            let r = app
                .get(&format!("/v1/nodes/{}/metrics/history?range={range}", config.node_id), Some(&admin.access))
                .await
                .expect(200);
            assert_eq!(r.body["points"].as_array().map(Vec::len), Some(1), "{range}: {}", r.text);
        }
        app.get(&format!("/v1/nodes/{}/metrics/history?range=1y", config.node_id), Some(&admin.access))
            .await
            .expect_error(400, "VALIDATION_ERROR");

        let agents = app.get("/v1/tunnel/agents", Some(&admin.access)).await.expect(200);
        assert_eq!(agents.body[0]["node_id"], config.node_id.as_str());
        let stats = app.get("/v1/tunnel/stats", Some(&admin.access)).await.expect(200);
        assert_eq!(stats.body["connected_agents"], 1);

        // Listing, rename, cordon.
        let list = app.get("/v1/nodes", Some(&admin.access)).await.expect(200);
        assert_eq!(list.body.as_array().map(Vec::len), Some(1));
        app.put(&format!("/v1/nodes/{}", config.node_id), Some(&admin.access), json!({"name": "renamed"})).await.expect(200);
        let c = app.post(&format!("/v1/nodes/{}/cordon", config.node_id), Some(&admin.access), json!({})).await.expect(200);
        assert_eq!(c.body["cordoned"], true);
        let u = app.post(&format!("/v1/nodes/{}/uncordon", config.node_id), Some(&admin.access), json!({})).await.expect(200);
        assert_eq!(u.body["cordoned"], false);

        // Stopping the agent takes the node offline; its inventory is then unavailable.
        agent.stop().await;
        wait_node(&app, &admin.access, &config.node_id, "offline").await;
        app.get(&format!("/v1/nodes/{}/inventory/system", config.node_id), Some(&admin.access))
            .await
            .expect_error(409, "NODE_OFFLINE");
    }

    async fn an_offline_nodes_agent_routes_answer_409_node_offline(engine) {
        // A node whose agent never connected: every route that asks its agent answers
        // 409 NODE_OFFLINE (a client-visible state, like an instance's power actions),
        // never a 5xx.
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let id = app.register_node(&admin.access, None, "offline-node").await;
        for part in ["", "/system", "/network", "/disks", "/users", "/processes", "/containers"] {
            app.get(&format!("/v1/nodes/{id}/inventory{part}"), Some(&admin.access))
                .await
                .expect_error(409, "NODE_OFFLINE");
        }
        app.get(&format!("/v1/nodes/{id}/containers/abc123/logs"), Some(&admin.access))
            .await
            .expect_error(409, "NODE_OFFLINE");
        for action in ["start", "stop", "restart", "kill"] {
            app.post(&format!("/v1/nodes/{id}/containers/abc123/{action}"), Some(&admin.access), json!({}))
                .await
                .expect_error(409, "NODE_OFFLINE");
        }
        app.post(&format!("/v1/nodes/{id}/processes/4242/kill"), Some(&admin.access), json!({}))
            .await
            .expect_error(409, "NODE_OFFLINE");
        // The document says so.
        let doc = app.get("/v1/openapi.json", None).await.expect(200);
        let inventory = &doc.body["paths"]["/v1/nodes/{id}/inventory"]["get"]["responses"];
        assert!(inventory["409"].is_object() && inventory["503"].is_object(), "{inventory}");
    }

    async fn other_organizations_cannot_see_or_touch_nodes(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("nodeowner@example.com").await;
        let stranger = app.register("stranger@example.com").await;
        let viewer = app.register("nodeviewer@example.com").await;
        let org = app.create_org(&owner.access, "Hosting").await;
        app.add_member(&org, &viewer.user_id, "viewer").await;
        let r = app
            .post("/v1/nodes/register-token", Some(&owner.access), json!({"organization_id": org}))
            .await
            .expect(201);
        let token = r.body["token"].as_str().expect("token").to_string();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = register(&app, &token, dir.path()).await;
        let id = &config.node_id;
        for (method, path) in [
            ("GET", format!("/v1/nodes/{id}")),
            ("PUT", format!("/v1/nodes/{id}")),
            ("DELETE", format!("/v1/nodes/{id}")),
            ("POST", format!("/v1/nodes/{id}/cordon")),
            ("POST", format!("/v1/nodes/{id}/uncordon")),
            ("GET", format!("/v1/nodes/{id}/inventory")),
            ("GET", format!("/v1/nodes/{id}/inventory/system")),
            ("GET", format!("/v1/nodes/{id}/metrics/history")),
        ] {
            let body = (method != "GET" && method != "DELETE").then(|| json!({"name": "x"}));
            let r = app.call(method.parse().expect("method"), &path, Some(&stranger.access), body.as_ref()).await;
            assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
        }
        app.get(&format!("/v1/nodes?organization_id={org}"), Some(&stranger.access)).await.expect_error(404, "NOT_FOUND");
        app.post("/v1/nodes/register-token", Some(&stranger.access), json!({"organization_id": org}))
            .await
            .expect_error(404, "NOT_FOUND");
        // A viewer reads but cannot change or mint tokens.
        app.get(&format!("/v1/nodes/{id}"), Some(&viewer.access)).await.expect(200);
        app.post(&format!("/v1/nodes/{id}/cordon"), Some(&viewer.access), json!({})).await.expect_error(403, "FORBIDDEN");
        app.post("/v1/nodes/register-token", Some(&viewer.access), json!({"organization_id": org}))
            .await
            .expect_error(403, "FORBIDDEN");
        // The owner deletes; the agent token stops working.
        app.delete(&format!("/v1/nodes/{id}"), Some(&owner.access)).await.expect(204);
        let err = shardlyn_agent::tunnel::connect_and_serve(&config).await.expect_err("refused");
        assert!(format!("{err:#}").contains("401"), "{err:#}");
    }

    async fn registration_and_tunnel_refuse_bad_credentials(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        app.post("/v1/agent/register", None, json!({"token": "shardlyn_reg_forged"}))
            .await
            .expect_error(401, "UNAUTHORIZED");
        let token = registration_token(&app, &admin.access, None).await;
        sqlx::query("UPDATE node_registration_tokens SET expires_at = $1")
            .bind(chrono::Utc::now().timestamp_millis() - 1)
            .execute(&app.state.db.pool)
            .await
            .expect("expire");
        app.post("/v1/agent/register", None, json!({"token": token})).await.expect_error(401, "UNAUTHORIZED");
        let token = registration_token(&app, &admin.access, None).await;
        app.post("/v1/agent/register", None, json!({"token": token, "protocol": 999}))
            .await
            .expect_error(400, "BAD_REQUEST");
        // A forged agent token cannot open a tunnel.
        let forged = AgentConfig {
            panel_url: app.base.clone(),
            node_id: "x".into(),
            agent_token: "shardlyn_agent_0123456789abcdef".into(),
            ca_pem: None,
        };
        let err = shardlyn_agent::tunnel::connect_and_serve(&forged).await.expect_err("refused");
        assert!(format!("{err:#}").contains("401"), "{err:#}");
        // A plain GET without the upgrade is refused with the envelope.
        let dir = tempfile::tempdir().expect("tempdir");
        let config = register(&app, &token, dir.path()).await;
        let r = app
            .client
            .get(format!("{}/v1/agent/tunnel", app.base))
            .header("x-agent-token", &config.agent_token)
            .header("x-agent-protocol", "1")
            .send()
            .await
            .expect("response");
        assert_eq!(r.status(), 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reconnects_after_a_panel_restart() {
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let token = registration_token(&app, &admin.access, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = register(&app, &token, dir.path()).await;
    let agent = Agent::start(config.clone());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    // Restart the panel on the same port and data: the agent comes back by itself.
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
    // With no panel to reconnect to, the stopped panel has already marked the node
    // disconnected rather than leaving it "online" for the heartbeat window.
    {
        use sqlx::Connection;
        let mut db = sqlx::AnyConnection::connect(&panel_config.database_url)
            .await
            .expect("db");
        let connected: i64 = sqlx::query_scalar("SELECT connected FROM nodes WHERE id = $1")
            .bind(&config.node_id)
            .fetch_one(&mut db)
            .await
            .expect("node row");
        assert_eq!(
            connected, 0,
            "graceful stop leaves the node marked connected"
        );
    }
    let again =
        shardlyn_tests::start_with_config(shardlyn_tests::Engine::Sqlite, data, panel_config).await;
    let login = again
        .login("admin@example.com", shardlyn_tests::PASSWORD)
        .await;
    // Backoff starts at about a second: the inventory answers once the tunnel is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = again
            .get(
                &format!("/v1/nodes/{}/inventory/system", agent.config.node_id),
                Some(&login.access),
            )
            .await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.body["code"], "NODE_OFFLINE", "{}", r.text);
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.stop().await;
}

both_engines! {
    /// `shardlyn-agent register` through a balancer (HAProxy, the real one) while its only
    /// panel is down: HAProxy answers 503 and the agent tries again until the panel is
    /// back, then registers with the same single-use token, which none of the 503s
    /// reached. A refusal from the panel itself (the used token's 401) comes at once.
    async fn register_tries_again_while_the_balancer_has_no_panel_up(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let token = registration_token(&app, &admin.access, Some("late")).await;
        let mut panel_config = app.state.config.clone();
        let port: u16 = app.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        panel_config.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        let data = app.stop_keep_dir().await;
        let lb = LoadBalancer::start(&[&format!("http://127.0.0.1:{port}")]).await;

        let dir = tempfile::tempdir().expect("tempdir");
        let delays = [Duration::from_millis(100); 300];
        let (base, token_ref, path) = (lb.base.clone(), token.clone(), dir.path().to_owned());
        let registering = tokio::spawn(async move {
            shardlyn_agent::register::register_retrying(&base, &token_ref, None, &path, &delays).await
        });
        // Two attempts answered 503 by the balancer: the agent is trying again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while lb.frontend_counter("hrsp_5xx").await < 2 {
            assert!(!registering.is_finished(), "register gave up or got through with no panel up");
            assert!(tokio::time::Instant::now() < deadline, "no second attempt");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!registering.is_finished(), "register stopped trying");

        let again = shardlyn_tests::start_with_config(engine, data, panel_config).await;
        let config = registering.await.expect("task").expect("registered once the panel is up");
        let login = again.login("admin@example.com", shardlyn_tests::PASSWORD).await;
        let node = again.get(&format!("/v1/nodes/{}", config.node_id), Some(&login.access)).await.expect(200);
        assert_eq!(node.body["name"], "late");
        assert_eq!(config.panel_url, lb.base);

        // The panel refuses the used token: one request, no retry.
        let before = lb.frontend_counter("req_tot").await;
        let refused = shardlyn_agent::register::register_retrying(
            &lb.base, &token, None, tempfile::tempdir().expect("d").path(), &delays,
        )
        .await
        .expect_err("a used token is refused");
        assert!(refused.to_string().contains("401"), "{refused:#}");
        assert_eq!(lb.frontend_counter("req_tot").await, before + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pins_the_panel_ca_over_wss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = shardlyn_tests::fresh_database(shardlyn_tests::Engine::Sqlite, dir.path()).await;
    let mut config = shardlyn_tests::test_config(dir.path(), url);
    config.listen = "0.0.0.0:0".parse().expect("addr");
    let app = shardlyn_tests::start_with_config(shardlyn_tests::Engine::Sqlite, dir, config).await;
    let admin = app.bootstrap_admin().await;
    let fingerprint = app.get("/v1/ca", None).await.expect(200).body["sha256"]
        .as_str()
        .expect("fp")
        .to_string();
    let r = app
        .post("/v1/nodes/register-token", Some(&admin.access), json!({}))
        .await
        .expect(201);
    assert!(
        r.body["command"]
            .as_str()
            .expect("command")
            .contains(&format!("--ca-fingerprint {fingerprint}"))
    );
    let token = r.body["token"].as_str().expect("token").to_string();
    let panel = app.base.replace("127.0.0.1", "localhost");
    let agent_dir = tempfile::tempdir().expect("tempdir");
    // A wrong fingerprint refuses before the token is sent.
    let wrong = "00:".repeat(31) + "00";
    let err = shardlyn_agent::register::register(&panel, &token, Some(&wrong), agent_dir.path())
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("refusing to register"), "{err}");
    let config =
        shardlyn_agent::register::register(&panel, &token, Some(&fingerprint), agent_dir.path())
            .await
            .expect("registers with the pinned CA");
    assert!(config.ca_pem.is_some());
    let agent = Agent::start(config.clone());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    app.get(
        &format!("/v1/nodes/{}/inventory/system", config.node_id),
        Some(&admin.access),
    )
    .await
    .expect(200);
    agent.stop().await;
}

/// Docker state of a container, as `docker inspect` says.
fn docker_state(name: &str) -> String {
    shardlyn_tests::docker::docker(&["inspect", "-f", "{{.State.Status}}", name])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_containers_are_listed_and_controlled_through_the_tunnel() {
    use shardlyn_tests::docker::{TEST_IMAGE, docker, ensure_test_image};
    ensure_test_image();
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let token = registration_token(&app, &admin.access, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = register(&app, &token, dir.path()).await;
    let agent = Agent::start(config.clone());
    wait_node(&app, &admin.access, &config.node_id, "online").await;

    let name = format!("shardlyn-test-{}", uuid::Uuid::new_v4().simple());
    let instance = format!("inst-{}", uuid::Uuid::new_v4().simple());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &format!("io.shardlyn.instance={instance}"),
        TEST_IMAGE,
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ]);
    let node = &config.node_id;
    let base = format!("/v1/nodes/{node}/containers/{name}");

    let list = app
        .get(
            &format!("/v1/nodes/{node}/inventory/containers"),
            Some(&admin.access),
        )
        .await
        .expect(200);
    let found = list
        .body
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["names"][0] == name.as_str())
        .cloned();
    let found = found.unwrap_or_else(|| panic!("{name} not listed: {}", list.text));
    assert_eq!(found["instance_id"], instance.as_str());
    assert_eq!(found["state"], "running");

    // The container ticks every 0.2 s: poll until it has printed two lines.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let logs = loop {
        let logs = app
            .get(&format!("{base}/logs?tail=2"), Some(&admin.access))
            .await
            .expect(200);
        if logs.body["lines"].as_array().is_some_and(|l| l.len() >= 2) {
            break logs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", logs.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lines = logs.body["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2, "{}", logs.text);
    assert!(
        lines
            .iter()
            .all(|l| l.as_str().is_some_and(|l| l.starts_with("tick "))),
        "{}",
        logs.text
    );

    app.post(
        &format!("{base}/stop?timeout=1"),
        Some(&admin.access),
        json!({}),
    )
    .await
    .expect(204);
    assert_eq!(docker_state(&name), "exited");
    app.post(&format!("{base}/start"), Some(&admin.access), json!({}))
        .await
        .expect(204);
    assert_eq!(docker_state(&name), "running");
    app.post(
        &format!("{base}/restart?timeout=1"),
        Some(&admin.access),
        json!({}),
    )
    .await
    .expect(204);
    assert_eq!(docker_state(&name), "running");
    app.post(
        &format!("{base}/kill?signal=SIGKILL"),
        Some(&admin.access),
        json!({}),
    )
    .await
    .expect(204);
    assert_eq!(docker_state(&name), "exited");
    // Starting a running container is a no-op, as in Docker.
    app.post(&format!("{base}/start"), Some(&admin.access), json!({}))
        .await
        .expect(204);
    app.post(&format!("{base}/start"), Some(&admin.access), json!({}))
        .await
        .expect(204);
    assert_eq!(docker_state(&name), "running");

    // Unknown and malformed ids, bad signals.
    app.post(
        &format!("/v1/nodes/{node}/containers/no-such-container/stop"),
        Some(&admin.access),
        json!({}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    app.get(
        &format!("/v1/nodes/{node}/containers/..%2Fetc/logs"),
        Some(&admin.access),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    app.post(
        &format!("{base}/kill?signal=SIG%20KILL"),
        Some(&admin.access),
        json!({}),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    // A viewer of another organization sees nothing; a member without nodes.containers is refused.
    let stranger = app.register("containers-stranger@example.com").await;
    app.post(&format!("{base}/stop"), Some(&stranger.access), json!({}))
        .await
        .expect_error(404, "NOT_FOUND");

    docker(&["rm", "-f", &name]);
    agent.stop().await;
}
