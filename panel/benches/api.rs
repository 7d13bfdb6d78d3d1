//! Throughput of authenticated reads against `/health`, measured in the same run.
//!
//! `cargo bench -p shardlyn-panel --bench api` prints requests/s for `GET /health`
//! (baseline), `GET /v1/users/me` with an API token and with a JWT, and each as a ratio
//! of the baseline. Goal: both ratios at least 0.5. `BENCH_SECS` (default 5) and
//! `BENCH_CONNECTIONS` (default 32) tune the load; the panel runs on SQLite.

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

        // Warm up every path once.
        for (path, token) in [
            ("/health", None),
            ("/v1/users/me", Some(client.clone())),
            ("/v1/users/me", Some(pair.access_token.clone())),
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
        println!(
            "bench: {conns} connections, {secs} s each, SQLite, {} cores",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
        );
        println!(
            "{:<34} {:>10.0} req/s  ratio 1.00 (baseline)",
            "GET /health", health
        );
        println!(
            "{:<34} {:>10.0} req/s  ratio {:.2} (goal >= 0.50)",
            "GET /v1/users/me (API token)",
            api,
            api / health
        );
        println!(
            "{:<34} {:>10.0} req/s  ratio {:.2} (goal >= 0.50)",
            "GET /v1/users/me (JWT)",
            jwt,
            jwt / health
        );
        running.stop().await.expect("stop");
    });
}

/// Mints an API token through the real endpoint (`POST /v1/api-tokens`).
async fn mint_api_token(addr: std::net::SocketAddr, access: &str) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::post("/v1/api-tokens")
        .header("host", "bench")
        .header("authorization", format!("Bearer {access}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from_static(
            br#"{"name":"bench"}"#,
        )))
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    assert_eq!(res.status(), 201);
    let body = res.into_body().collect().await.expect("body").to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    v["token"].as_str().expect("token").to_string()
}
