//! The outbound guard end to end: git remotes and S3 endpoints on loopback, private,
//! link-local, metadata addresses (or names resolving to them) are refused with 422
//! `OUTBOUND_DENIED` and nothing is saved unless the operator's `[outbound] allow` list
//! allows them; allowed ones are checked again when used (a panel restarted without the
//! entry refuses them); the agent checks a remote at fetch time against its own list;
//! a git http remote redirecting elsewhere is not followed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_net::outbound::Outbound;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::{Engine, TestApp, both_engines, spawn_app, spawn_app_with, start_with_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(60);

fn allow(list: &[&str]) -> Outbound {
    Outbound::new(list.iter().map(ToString::to_string).collect()).expect("allow list")
}

/// An instance on a node that never connects (git settings need no agent).
async fn offline_instance(app: &TestApp, access: &str) -> String {
    let node = app.register_node(access, None, "never-connected").await;
    let workload = busybox_workload(app, access).await;
    let r = app
        .post(
            "/v1/instances",
            Some(access),
            json!({"name": "guarded", "workload_id": workload, "node_id": node}),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("id").to_string()
}

fn s3_body(endpoint: &str) -> Value {
    json!({
        "name": "s3", "kind": "s3", "endpoint": endpoint, "bucket": "shardlyn-backups",
        "access_key_id": "AKIDTEST", "secret_access_key": "not-a-real-secret",
    })
}

/// Refused remotes and endpoints: what each is, and the address the message names.
const REFUSED: &[(&str, &str)] = &[
    ("127.0.0.1", "127.0.0.1"),
    ("169.254.169.254", "169.254.169.254"),
    ("10.1.2.3", "10.1.2.3"),
    ("[::ffff:127.0.0.1]", "127.0.0.1"),
    ("[fd00:ec2::254]", "fd00:ec2::254"),
    ("localhost", "127.0.0.1"),
    ("metadata.google.internal", "metadata.google.internal"),
];

both_engines! {
    async fn refused_addresses_are_not_saved(engine) {
        let app = spawn_app_with(engine, |c| c.outbound = Outbound::default()).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let id = offline_instance(&app, a).await;
        let path = format!("/v1/instances/{id}/git");
        for (host, address) in REFUSED {
            for url in [
                format!("http://{host}:8080/o/r.git"),
                format!("git://{host}/r.git"),
                format!("ssh://git@{host}:2222/o/r.git"),
            ] {
                let r = app.put(&path, t, json!({"repository_url": url})).await.expect_error(422, "OUTBOUND_DENIED");
                let message = r.body["error"].as_str().unwrap_or_default();
                // localhost may resolve to ::1 first.
                assert!(message.contains(address) || (*host == "localhost" && message.contains("::1")), "{url}: {message}");
            }
            app.get(&path, t).await.expect_error(404, "GIT_NOT_CONFIGURED");

            let endpoint = format!("http://{host}:9000");
            let r = app.post("/v1/backup-config", t, s3_body(&endpoint)).await.expect_error(422, "OUTBOUND_DENIED");
            assert!(r.text.contains("refusing to connect"), "{}", r.text);
        }
        app.put(&path, t, json!({"repository_url": "git@localhost:o/r.git"})).await.expect_error(422, "OUTBOUND_DENIED");
        let list = app.get("/v1/backup-config/list", t).await.expect(200);
        assert_eq!(list.body["data"], json!([]), "nothing saved: {}", list.text);

        // A saved config cannot be pointed at a refused endpoint either. (A public name
        // that does not resolve from here is accepted: it is checked again when used.)
        let r = app.post("/v1/backup-config", t, s3_body("https://s3.example.invalid")).await.expect(201);
        let cid = r.body["id"].as_str().expect("id").to_string();
        app.put(&format!("/v1/backup-config/{cid}"), t, json!({"endpoint": "http://10.0.0.5:9000"})).await.expect_error(422, "OUTBOUND_DENIED");
        let r = app.get(&format!("/v1/backup-config/{cid}"), t).await.expect(200);
        assert_eq!(r.body["endpoint"], "https://s3.example.invalid", "unchanged");
        app.stop().await;
    }

    async fn allow_listed_addresses_are_accepted_then_checked_when_used(engine) {
        let list = ["10.1.2.0/24", "169.254.169.254", "localhost", "fd00:ec2::254"];
        let app = spawn_app_with(engine, |c| c.outbound = allow(&list)).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let id = offline_instance(&app, a).await;
        let path = format!("/v1/instances/{id}/git");
        for url in [
            "http://10.1.2.3:8080/o/r.git",
            "git://169.254.169.254/r.git",
            "ssh://git@[fd00:ec2::254]/o/r.git",
            "git@localhost:o/r.git",
        ] {
            let r = app.put(&path, t, json!({"repository_url": url})).await;
            assert!(r.status == 200 || r.status == 201, "{url}: {}", r.text);
            assert_eq!(app.get(&path, t).await.expect(200).body["repository_url"], url);
        }
        // Outside the entries: refused.
        for url in ["http://10.1.3.1/o/r", "git://169.254.169.253/r", "https://127.0.0.1/o/r"] {
            app.put(&path, t, json!({"repository_url": url})).await.expect_error(422, "OUTBOUND_DENIED");
        }
        let r = app.post("/v1/backup-config", t, s3_body("http://10.1.2.3:9000")).await.expect(201);
        let cid = r.body["id"].as_str().expect("id").to_string();

        // Without the entries, the saved endpoint is refused when used, before any request.
        let database_url = app.state.config.database_url.clone();
        let dir = app.stop_keep_dir().await;
        let mut config = shardlyn_tests::test_config(dir.path(), database_url);
        config.outbound = Outbound::default();
        let app = start_with_config(engine, dir, config).await;
        let admin = app.login(&admin.email, shardlyn_tests::PASSWORD).await;
        let t = Some(admin.access.as_str());
        let r = app.get(&format!("/v1/backup-config/s3-buckets?config_id={cid}"), t).await.expect_error(422, "OUTBOUND_DENIED");
        assert!(r.text.contains("10.1.2.3"), "{}", r.text);
        app.stop().await;
    }
}

/// An HTTP server on 127.0.0.1 that redirects every request to `target`; counts
/// connections to `target`'s own listener (on 127.0.0.2, which is not allow-listed).
struct Redirector {
    port: u16,
    reached: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Redirector {
    async fn start() -> Self {
        let target = tokio::net::TcpListener::bind("127.0.0.2:0")
            .await
            .expect("127.0.0.2 binds");
        let target_addr: SocketAddr = target.local_addr().expect("addr");
        let reached = Arc::new(AtomicUsize::new(0));
        let count = reached.clone();
        let sink = tokio::spawn(async move {
            while let Ok((mut s, _)) = target.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = s
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            }
        });
        let front = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let port = front.local_addr().expect("addr").port();
        let redirect = tokio::spawn(async move {
            while let Ok((mut s, _)) = front.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let answer = format!(
                        "HTTP/1.1 302 Found\r\nlocation: http://{target_addr}{path}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self {
            port,
            reached,
            tasks: vec![sink, redirect],
        }
    }
}

impl Drop for Redirector {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The finished sync (the newest), waiting for it to end.
async fn finished_sync(app: &TestApp, access: &str, id: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = app
            .get(&format!("/v1/instances/{id}/git/history"), Some(access))
            .await
            .expect(200);
        let rows = r.body["data"].as_array().cloned().unwrap_or_default();
        if rows.len() >= n && rows[0]["status"] != "running" {
            return rows[0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sync never finished: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SQLite only: the database plays no part in how git reaches a remote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_fetches_follow_no_redirect_and_the_agent_checks_its_own_list() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let (config, dir) = register_node(&app, a).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, a, &config.node_id, "online").await;
    let workload = busybox_workload(&app, a).await;
    let r = app
        .post(
            "/v1/instances",
            t,
            json!({
                "name": "redirected", "workload_id": workload, "node_id": config.node_id,
                "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500},
            }),
        )
        .await
        .expect(201);
    let id = r.body["id"].as_str().expect("id").to_string();
    wait_instance(&app, a, &id, "offline", WAIT).await;

    // 127.0.0.1 is allowed (panel and agent); it redirects to 127.0.0.2, which is not.
    let redirector = Redirector::start().await;
    let url = format!("http://127.0.0.1:{}/game.git", redirector.port);
    app.put(
        &format!("/v1/instances/{id}/git"),
        t,
        json!({"repository_url": url}),
    )
    .await
    .expect(201);
    app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({}))
        .await
        .expect(202);
    let sync = finished_sync(&app, a, &id, 1).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert!(
        sync["error"].as_str().is_some_and(|e| e.contains("302")),
        "git stopped at the redirect: {sync}"
    );
    assert_eq!(
        redirector.reached.load(Ordering::SeqCst),
        0,
        "the redirect was followed to 127.0.0.2: {sync}"
    );

    // An agent without the loopback entries refuses the remote the panel accepted.
    let before = app.state.tunnels.get(&config.node_id).expect("tunnel");
    agent.stop().await;
    let agent = LocalAgent::start_allowing(config.clone(), dir.path(), Vec::new());
    wait_node(&app, a, &config.node_id, "online").await;
    // The node row may still say online from the old tunnel: wait for the new one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app
        .state
        .tunnels
        .get(&config.node_id)
        .is_none_or(|now| std::sync::Arc::ptr_eq(&now, &before))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(before);
    let port = free_port();
    app.put(
        &format!("/v1/instances/{id}/git"),
        t,
        json!({"repository_url": format!("git://127.0.0.1:{port}/game")}),
    )
    .await
    .expect(200);
    app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({}))
        .await
        .expect(202);
    let sync = finished_sync(&app, a, &id, 2).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    let error = sync["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refusing to connect") && error.contains("127.0.0.1"),
        "{sync}"
    );
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    agent.stop().await;
}
