//! Throughput of authenticated reads against `/health`, measured in the same run.
//!
//! `cargo bench -p shardlyn-panel --bench api` prints requests/s for `GET /health`
//! (baseline), `GET /v1/users/me` with an API token and with a JWT, and
//! `GET /v1/instances?per_page=100` over 100 instances, each as a ratio of the baseline.
//! Goals: `users/me` at least 0.8, the instance list at least 0.3 (its pages come from
//! the read cache between changes, see `readcache`). `BENCH_SECS`
//! (default 5) and `BENCH_CONNECTIONS` (default 32) tune the load; the panel runs on
//! SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use shardlyn_panel::config::Config;
use shardlyn_panel::mailer::MemoryMailer;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn load(
    addr: std::net::SocketAddr,
    path: &'static str,
    token: Option<String>,
    secs: u64,
    conns: u64,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let done = done.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let mut req = Request::get(path).header("host", "bench");
                if let Some(t) = &token {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                let res = sender
                    .send_request(req.body(Empty::<Bytes>::new()).expect("request"))
                    .await
                    .expect("response");
                assert_eq!(res.status(), 200, "{path} answered {}", res.status());
                res.into_body().collect().await.expect("body");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await.expect("load task");
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^52"
    )]
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    rate
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let secs = env_or("BENCH_SECS", 5);
        let conns = env_or("BENCH_CONNECTIONS", 32);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.rate_limit.enabled = false;
        let running = shardlyn_panel::server::launch(config, Arc::new(MemoryMailer::default()))
            .await
            .expect("panel starts");
        let state = running.state.clone();
        let user = shardlyn_panel::auth::create_first_admin(
            &state,
            "bench@example.com",
            "bench-password-123",
            None,
        )
        .await
        .expect("admin");
        let pair = shardlyn_panel::auth::sessions::start(&state, &user.id, &Default::default())
            .await
            .expect("session");
        let client = mint_api_token(running.addr, &pair.access_token).await;
        seed_instances(&state, running.addr, &pair.access_token, &user.id, 100).await;
        let page = get_body(running.addr, &pair.access_token, INSTANCES).await;
        let listed: serde_json::Value = serde_json::from_slice(&page).expect("json");
        assert_eq!(
            listed["data"].as_array().map(Vec::len),
            Some(100),
            "the measured page holds the 100 instances"
        );

        // Warm up every path once.
        for (path, token) in [
            ("/health", None),
            ("/v1/users/me", Some(client.clone())),
            ("/v1/users/me", Some(pair.access_token.clone())),
            (INSTANCES, Some(pair.access_token.clone())),
        ] {
            load(running.addr, path, token, 1, 4).await;
        }
        let health = load(running.addr, "/health", None, secs, conns).await;
        let api = load(running.addr, "/v1/users/me", Some(client), secs, conns).await;
        let jwt = load(
            running.addr,
            "/v1/users/me",
            Some(pair.access_token.clone()),
            secs,
            conns,
        )
        .await;
        let list = load(
            running.addr,
            INSTANCES,
            Some(pair.access_token.clone()),
            secs,
            conns,
        )
        .await;
        // The same page rendered from the database on every request.
        state.reads.set_enabled(false);
        let uncached = load(
            running.addr,
            INSTANCES,
            Some(pair.access_token.clone()),
            secs,
            conns,
        )
        .await;
        println!(
            "bench: {conns} connections, {secs} s each, SQLite, {} cores",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
        );
        println!(
            "{:<34} {:>10.0} req/s  ratio 1.00 (baseline)",
            "GET /health", health
        );
        println!(
            "{:<34} {:>10.0} req/s  ratio {:.2} (goal >= 0.80)",
            "GET /v1/users/me (API token)",
            api,
            api / health
        );
        println!(
            "{:<34} {:>10.0} req/s  ratio {:.2} (goal >= 0.80)",
            "GET /v1/users/me (JWT)",
            jwt,
            jwt / health
        );
        println!(
            "{:<34} {:>10.0} req/s  ratio {:.2} (goal >= 0.30)",
            "GET /v1/instances (100, JWT)",
            list,
            list / health
        );
        println!(
            "{:<34} {:>10.0} req/s  ratio {:.2} (for comparison)",
            "  the same, read cache off",
            uncached,
            uncached / health
        );
        println!("  (an instance page is {} bytes of JSON)", page.len());
        running.stop().await.expect("stop");
    });
}

const INSTANCES: &str = "/v1/instances?per_page=100";

/// Sends `body` as JSON to `path` with `access` and returns the answer, which must
/// have status `want`.
async fn post_json(
    addr: std::net::SocketAddr,
    access: &str,
    path: &str,
    body: serde_json::Value,
    want: u16,
) -> serde_json::Value {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::post(path)
        .header("host", "bench")
        .header("authorization", format!("Bearer {access}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

/// The body of `GET path` with `access`, which must answer 200.
async fn get_body(addr: std::net::SocketAddr, access: &str, path: &str) -> Bytes {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "bench")
        .header("authorization", format!("Bearer {access}"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    assert_eq!(res.status(), 200, "{path}");
    res.into_body().collect().await.expect("body").to_bytes()
}

/// Mints an API token through the real endpoint (`POST /v1/api-tokens`).
async fn mint_api_token(addr: std::net::SocketAddr, access: &str) -> String {
    let v = post_json(
        addr,
        access,
        "/v1/api-tokens",
        serde_json::json!({"name": "bench"}),
        201,
    )
    .await;
    v["token"].as_str().expect("token").to_string()
}

/// `count` instances in the admin's organization, on one node row (no agent runs in a
/// throughput bench) and a workload made from the bundled `busybox-test` template
/// through the API.
async fn seed_instances(
    state: &shardlyn_panel::state::AppState,
    addr: std::net::SocketAddr,
    access: &str,
    user_id: &str,
    count: usize,
) {
    use shardlyn_panel::instances::store;
    use shardlyn_proto::instance::{DesiredState, InstanceState, Limits};
    let pool = &state.db.pool;
    let org_id: String = sqlx::query_scalar("SELECT org_id FROM org_members WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
        .expect("the admin's organization");
    let workload = post_json(
        addr,
        access,
        "/v1/workloads/from-template",
        serde_json::json!({"template": "busybox-test", "organization_id": org_id}),
        201,
    )
    .await;
    let workload_id = workload["id"].as_str().expect("workload id");
    let node_id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO nodes (id, org_id, name, token_prefix, token_hash, created_at, updated_at) \
         VALUES ($1, $2, 'bench', 'bench', $1, 0, 0)",
    )
    .bind(&node_id)
    .bind(&org_id)
    .execute(pool)
    .await
    .expect("node row");
    let limits = Limits {
        memory_mb: 512,
        swap_mb: 0,
        cpu_percent: 100,
        disk_mb: 1024,
        pids: 0,
        io_weight: 500,
    };
    let variables = std::collections::BTreeMap::new();
    for n in 0..count {
        let id = uuid::Uuid::now_v7().to_string();
        let name = format!("bench-{n}");
        store::insert(
            pool,
            &store::NewInstance {
                id: &id,
                org_id: &org_id,
                node_id: &node_id,
                workload_id,
                name: &name,
                description: "",
                image: "shardlyn-test/busybox:latest",
                variables: &variables,
                limits: &limits,
                state: InstanceState::Offline,
                desired_state: DesiredState::Stopped,
                created_by: user_id,
            },
        )
        .await
        .expect("instance row");
    }
}
