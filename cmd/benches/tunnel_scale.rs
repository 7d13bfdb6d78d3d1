//! Tunnel scale: N simulated idle agents against one real panel process.
//!
//! `cargo bench -p shardlyn-panel --bench tunnel_scale` starts the `shardlyn` binary
//! (`shardlyn serve`, SQLite in a temporary data dir) as a child process, then connects
//! simulated agents in steps (`SHARDLYN_BENCH_AGENTS`, default `1000,10000`). Every
//! simulated agent runs the agent's own tunnel code: it dials `/v1/agent/tunnel` with its
//! token and the protocol/version headers, wraps the WebSocket in `WsIo` and serves an
//! axum router over hyper's HTTP/2 server, configured as `shardlyn_agent::tunnel` does,
//! answering the panel's heartbeat (`GET /v1/metrics`) with a sample of the real agent's
//! shape.
//!
//! Figures, all measured in the same run:
//! - panel RSS (VmRSS) with 0 agents: the baseline;
//! - per step: the time to connect all agents, the panel RSS and the RSS per agent,
//!   `(RSS_N - RSS_0) / N` (goal: at most 64 KiB), plus the marginal cost between steps;
//! - heartbeat round trip p50/p99 over one full heartbeat round once all agents are
//!   connected, read from the panel's `shardlyn_tunnel_heartbeat_seconds` histogram;
//! - console streaming through one tunnel (agent -> panel, in this process, 100-byte lines
//!   one HTTP/2 DATA frame each) with tungstenite's default WebSocket buffers (baseline)
//!   and with the panel's (`shardlyn_agent::tunnel::io::config()`): need >= 100,000
//!   lines/s.
//!
//! A step holds when every agent connected, every agent answered a heartbeat during the
//! round, none was dropped, and p99 < 1 s. Goal: 10,000 agents.
//!
//! `SHARDLYN_BENCH_REPLICAS=3` runs that many `shardlyn serve` replicas instead, on a
//! fresh PostgreSQL database and the test Redis (`scripts/dev-services`), sharing their
//! keys; agents dial them in turn. The RSS figures are then the sum over the replicas,
//! and Redis's `used_memory` per agent (the tunnel registry) is printed too.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use shardlyn_agent::tunnel::io::WsIo;
use shardlyn_agent::tunnel::{PROTOCOL_HEADER, TOKEN_HEADER, VERSION_HEADER};
use shardlyn_panel::auth::crypto::random_hex;
use shardlyn_panel::config::Config;
use shardlyn_panel::db::{Db, new_id, now_ms};
use shardlyn_panel::nodes::store::{self as nodes, AGENT_TOKEN_PREFIX};
use shardlyn_panel::tunnel::HEARTBEAT;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Agents dialing at once (keeps the listen backlog and SYN queue comfortable).
const BATCH: usize = 200;
/// Goal for the panel's memory per connected idle agent.
const GOAL_KIB_PER_AGENT: f64 = 64.0;
/// A step fails when the heartbeat p99 reaches this.
const P99_LIMIT_SECS: f64 = 1.0;
/// Longest wait for the panel to send the first heartbeat to every agent of a step.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
const HISTOGRAM: &str = "shardlyn_tunnel_heartbeat_seconds_bucket{le=\"";

/// One simulated agent: how many heartbeats it answered.
#[derive(Default)]
struct Sim {
    heartbeats: AtomicU64,
}

/// `GET /v1/metrics` as `agent/src/api/metrics.rs` answers it (same keys, plausible values).
#[expect(clippy::cast_precision_loss, reason = "a small counter")]
async fn metrics(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let n = sim.heartbeats.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "cpu_percent": 3.5 + (n % 17) as f64 * 1.25,
        "memory_used_bytes": 3_221_225_472u64 + (n % 64) * 4_194_304,
        "memory_total_bytes": 17_179_869_184u64,
        "disk_used_bytes": 48_318_382_080u64 + n * 65_536,
        "disk_total_bytes": 214_748_364_800u64,
        "net_rx_bytes": 9_876_543_210u64 + n * 1_048_576,
        "net_tx_bytes": 1_234_567_890u64 + n * 524_288,
    }))
}

/// Dials the tunnel once and serves it in the background, as the agent does.
async fn connect(
    addr: SocketAddr,
    token: String,
    sim: Arc<Sim>,
    closed: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut request = format!("ws://{addr}/v1/agent/tunnel").into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(TOKEN_HEADER, HeaderValue::from_str(&token)?);
    headers.insert(
        PROTOCOL_HEADER,
        HeaderValue::from(shardlyn_proto::PROTOCOL_VERSION),
    );
    headers.insert(
        VERSION_HEADER,
        HeaderValue::from_static(shardlyn_agent::VERSION),
    );
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
    let router = Router::new()
        .route("/v1/metrics", get(metrics))
        .with_state(sim);
    tokio::spawn(async move {
        // The same server the agent runs in `shardlyn_agent::tunnel::serve`.
        let io = TokioIo::new(WsIo::new(ws));
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(15)))
            .keep_alive_timeout(Duration::from_secs(20))
            .serve_connection(io, TowerToHyperService::new(router))
            .await;
        closed.fetch_add(1, Ordering::Relaxed);
    });
    Ok(())
}

/// The simulated agents of this run.
#[derive(Default)]
struct Fleet {
    agents: Vec<Arc<Sim>>,
    failed: usize,
    first_error: Option<String>,
    closed: Arc<AtomicU64>,
}

impl Fleet {
    /// Connects one agent per token, `BATCH` at a time, to each of `addrs` in turn.
    async fn connect(&mut self, addrs: &[SocketAddr], tokens: &[String]) {
        for chunk in tokens.chunks(BATCH) {
            let mut dialing = tokio::task::JoinSet::new();
            for token in chunk {
                let addr = addrs[self.agents.len() % addrs.len()];
                let sim = Arc::new(Sim::default());
                self.agents.push(sim.clone());
                dialing.spawn(connect(addr, token.clone(), sim, self.closed.clone()));
            }
            while let Some(result) = dialing.join_next().await {
                let error = match result {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(e) => e.to_string(),
                };
                self.failed += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    fn heartbeats(&self) -> Vec<u64> {
        self.agents
            .iter()
            .map(|a| a.heartbeats.load(Ordering::Relaxed))
            .collect()
    }

    fn answered_once(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| a.heartbeats.load(Ordering::Relaxed) > 0)
            .count()
    }
}

/// The panel child process; killed when dropped.
struct Panel {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Panel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Panel {
    /// `shardlyn serve` on `dir` with `env` set, with as many file descriptors as the shell
    /// may give it.
    fn start(dir: &Path, env: &[(&str, String)]) -> Panel {
        let log = std::fs::File::create(dir.join("panel.log")).expect("panel log");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                "ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || \
                 ulimit -n \"$(ulimit -Hn)\"; \
                 exec \"$0\" serve --data-dir \"$1\" --listen 127.0.0.1:0",
            )
            .arg(env!("CARGO_BIN_EXE_shardlyn"))
            .arg(dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the panel");
        let stdout = child.stdout.take().expect("panel stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the bound URL, then keeps draining so the panel never writes to a closed pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the panel did not start; see {}", dir.display()));
        let addr = url.parse().expect("panel address");
        Panel { child, addr }
    }

    /// The panel's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        rss_kib(&format!("/proc/{}/status", self.child.id()))
    }

    /// The cumulative heartbeat histogram: `(upper bound in s, count)` per bucket.
    async fn heartbeat_histogram(&self) -> Vec<(f64, u64)> {
        let text = get_text(self.addr, "/metrics").await;
        text.lines()
            .filter_map(|line| line.strip_prefix(HISTOGRAM))
            .filter_map(|rest| {
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.split_whitespace().next()?.parse().ok()?))
            })
            .collect()
    }
}

fn rss_kib(status: &str) -> u64 {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn get_text(addr: SocketAddr, path: &str) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", "bench")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    assert_eq!(res.status(), 200, "{path} answered {}", res.status());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// The `q` quantile of a cumulative histogram, interpolated inside its bucket as
/// Prometheus' `histogram_quantile` does.
#[expect(clippy::cast_precision_loss, reason = "sample counts are small")]
fn quantile(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for &(le, count) in buckets {
        if count as f64 >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = (count - below) as f64;
            let frac = if inside > 0.0 {
                (rank - below as f64) / inside
            } else {
                0.0
            };
            return Some(lower + (le - lower) * frac);
        }
        (lower, below) = (le, count);
    }
    None
}

/// A console-like body: `LINES` lines of `LINE.len()` bytes, one HTTP/2 data frame each.
struct Lines(u64);

const LINE: &[u8] =
    b"[12:34:56 INFO]: Preparing spawn area: 42% -- a console line of exactly one hundred bytes, padded..\n";
const LINES: u64 = 1_000_000;

impl hyper::body::Body for Lines {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(LINE)))))
    }
}

/// Lines per second streamed agent -> panel through one tunnel on loopback (in this
/// process), with `config` as the panel's WebSocket configuration: the agent is the
/// WebSocket client and HTTP/2 server, the panel the WebSocket server and HTTP/2 client,
/// as in production. An error when the stream breaks (see h2's flood protection: a panel
/// that falls behind on many small DATA frames answers GOAWAY `too_many_data_frames`).
async fn stream_lines(config: Option<WebSocketConfig>) -> Result<f64, String> {
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let agent = tokio::spawn(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("dial");
        tcp.set_nodelay(true).expect("nodelay");
        let ws = WebSocketStream::from_raw_socket(tcp, Role::Client, None).await;
        let service = hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(hyper::Response::new(Lines(LINES)))
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(WsIo::new(ws)), service)
            .await;
    });
    let (tcp, _) = listener.accept().await.expect("accept");
    tcp.set_nodelay(true).expect("nodelay");
    let ws = WebSocketStream::from_raw_socket(tcp, Role::Server, config).await;
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(WsIo::new(ws)))
        .await
        .expect("HTTP/2 handshake");
    let driver = tokio::spawn(connection);
    let started = Instant::now();
    let request = hyper::Request::get("/console")
        .body(Empty::new())
        .expect("request");
    let mut body = sender
        .send_request(request)
        .await
        .expect("response")
        .into_body();
    let mut bytes = 0u64;
    let mut broken = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => bytes += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(e) => {
                broken = Some(format!("stream broke after {bytes} bytes: {e:?}"));
                break;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    driver.abort();
    agent.abort();
    if let Some(e) = broken {
        return Err(e);
    }
    assert_eq!(bytes, LINES * LINE.len() as u64, "whole body streamed");
    #[expect(clippy::cast_precision_loss, reason = "a line count")]
    let rate = LINES as f64 / secs;
    Ok(rate)
}

/// Pre-creates `n` nodes, one agent token each, in the database at `url`.
async fn seed(url: &str, n: usize) -> Vec<String> {
    let db = Db::connect(url, 1).await.expect("database");
    db.migrate().await.expect("migrations");
    let org = new_id();
    let mut tx = db.pool.begin().await.expect("transaction");
    sqlx::query(
        "INSERT INTO organizations (id, name, slug, personal, created_at, updated_at) \
         VALUES ($1, 'Bench', 'bench', 0, $2, $2)",
    )
    .bind(&org)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .expect("organization");
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let token = format!("{AGENT_TOKEN_PREFIX}{}", random_hex(32));
        let name = format!("bench-{i}");
        nodes::insert(&mut *tx, &new_id(), &org, &name, &name, &token)
            .await
            .expect("node");
        tokens.push(token);
    }
    tx.commit().await.expect("commit");
    db.pool.close().await;
    tokens
}

/// The replicas to run (`SHARDLYN_BENCH_REPLICAS`, default 1).
fn replica_count() -> usize {
    std::env::var("SHARDLYN_BENCH_REPLICAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Redis's `used_memory`, in bytes.
fn redis_used_memory(url: &str) -> u64 {
    let out = Command::new("redis-cli")
        .args(["-u", url, "info", "memory"])
        .output()
        .expect("redis-cli (scripts/dev-services installs redis)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Adds up cumulative histograms with the same buckets.
fn sum_histograms(all: Vec<Vec<(f64, u64)>>) -> Vec<(f64, u64)> {
    let mut total: Vec<(f64, u64)> = Vec::new();
    for h in all {
        if total.is_empty() {
            total = h;
        } else {
            for (t, (_, c)) in total.iter_mut().zip(h) {
                t.1 += c;
            }
        }
    }
    total
}

fn agent_counts() -> Vec<usize> {
    let spec = std::env::var("SHARDLYN_BENCH_AGENTS").unwrap_or_else(|_| "1000,10000".into());
    let mut counts: Vec<usize> = spec
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .filter(|&n| n > 0)
        .collect();
    counts.sort_unstable();
    counts.dedup();
    assert!(!counts.is_empty(), "SHARDLYN_BENCH_AGENTS: {spec:?}");
    counts
}

fn mib(kib: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "memory sizes")]
    let m = kib as f64 / 1024.0;
    format!("{m:.1} MiB")
}

#[expect(clippy::cast_precision_loss, reason = "memory sizes and agent counts")]
fn per_agent(kib: u64, base: u64, n: usize) -> f64 {
    (kib as f64 - base as f64) / n as f64
}

fn ms(secs: Option<f64>) -> String {
    secs.map_or_else(|| "n/a".into(), |s| format!("{:.2} ms", s * 1000.0))
}

/// Measurements of one step.
struct Step {
    n: usize,
    held: bool,
}

#[expect(
    clippy::too_many_lines,
    reason = "one linear script, easier to follow in one piece"
)]
async fn run() {
    let counts = agent_counts();
    let max = counts.last().copied().unwrap_or(0);
    let replicas = replica_count();
    let dir = tempfile::tempdir().expect("tempdir");
    let seeded = Instant::now();
    let (url, env, redis) = if replicas == 1 {
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        (config.effective_database_url(), Vec::new(), None)
    } else {
        let url =
            shardlyn_tests::fresh_database(shardlyn_tests::Engine::Postgres, dir.path()).await;
        let redis = shardlyn_tests::redis_url();
        let env = vec![
            ("SHARDLYN_DATABASE_URL", url.clone()),
            ("SHARDLYN_REDIS_URL", redis.clone()),
            ("SHARDLYN_JWT_SECRET", random_hex(32)),
            ("SHARDLYN_MASTER_KEY", random_hex(32)),
            // Every simulated agent dials from 127.0.0.1, and with Redis the replicas
            // share the per-address WebSocket budget (30 a minute), which a real fleet
            // spread over many addresses does not exhaust.
            ("SHARDLYN_RATE_LIMIT__ENABLED", "false".into()),
        ];
        (url, env, Some(redis))
    };
    let tokens = seed(&url, max).await;
    let seeded = seeded.elapsed();
    let panels: Vec<Panel> = (0..replicas)
        .map(|i| {
            let own = dir.path().join(format!("replica-{i}"));
            std::fs::create_dir_all(&own).expect("replica dir");
            // One replica keeps the SQLite file of `dir` (seeded above).
            Panel::start(if replicas == 1 { dir.path() } else { &own }, &env)
        })
        .collect();
    let addrs: Vec<SocketAddr> = panels.iter().map(|p| p.addr).collect();
    for &addr in &addrs {
        get_text(addr, "/health").await;
        get_text(addr, "/metrics").await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_all = || panels.iter().map(Panel::rss_kib).sum::<u64>();
    let base = rss_all();
    let redis_base = redis.as_deref().map(redis_used_memory);
    let own_base = rss_kib("/proc/self/status");
    let engine = if replicas == 1 {
        "one `shardlyn serve` on SQLite".to_owned()
    } else {
        format!("{replicas} `shardlyn serve` replicas on PostgreSQL and Redis")
    };
    println!(
        "bench: tunnel scale, {engine} ({max} nodes seeded in {:.1} s), \
         {} cores, heartbeat every {} s, agents dial {BATCH} at a time",
        seeded.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        HEARTBEAT.as_secs(),
    );
    println!(
        "{:<44} {:>10}  (baseline)",
        "panel RSS, 0 agents",
        mib(base)
    );
    let stock = stream_lines(None).await;
    let tuned = stream_lines(Some(shardlyn_agent::tunnel::io::config())).await;
    match &stock {
        Ok(rate) => println!(
            "{:<44} {:>10.0} lines/s  (baseline: tungstenite's default buffers)",
            "console stream agent -> panel, one tunnel", rate
        ),
        Err(e) => println!("console stream, default buffers: FAILED: {e}"),
    }
    match (&tuned, &stock) {
        (Ok(rate), Ok(base)) => println!(
            "{:<44} {:>10.0} lines/s  ratio {:.2}  (the panel's buffers; need >= 100000)",
            "console stream agent -> panel, as configured",
            rate,
            rate / base
        ),
        (Ok(rate), Err(_)) => println!(
            "{:<44} {:>10.0} lines/s  (the panel's buffers; need >= 100000)",
            "console stream agent -> panel, as configured", rate
        ),
        (Err(e), _) => println!("console stream, the panel's buffers: FAILED: {e}"),
    }

    let mut fleet = Fleet::default();
    let mut steps: Vec<Step> = Vec::new();
    let mut previous: Option<(usize, u64)> = None;
    for &n in &counts {
        let from = fleet.agents.len();
        let started = Instant::now();
        fleet.connect(&addrs, &tokens[from..n]).await;
        let connect = started.elapsed();
        // Connected in the panel's eyes: it sent the first heartbeat.
        let settle = Instant::now();
        while fleet.answered_once() < n - fleet.failed && settle.elapsed() < SETTLE_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let registered = started.elapsed();
        tokio::time::sleep(Duration::from_secs(1)).await;
        // One full heartbeat round.
        let mut before = Vec::new();
        for panel in &panels {
            before.push(panel.heartbeat_histogram().await);
        }
        let before = sum_histograms(before);
        let counts_before = fleet.heartbeats();
        tokio::time::sleep(HEARTBEAT + Duration::from_millis(1500)).await;
        let mut after = Vec::new();
        for panel in &panels {
            after.push(panel.heartbeat_histogram().await);
        }
        let after = sum_histograms(after);
        let counts_after = fleet.heartbeats();
        let rss = rss_all();
        let own = rss_kib("/proc/self/status");
        let round: Vec<(f64, u64)> = after
            .iter()
            .zip(&before)
            .map(|(&(le, a), &(_, b))| (le, a.saturating_sub(b)))
            .collect();
        let samples = round.last().map_or(0, |b| b.1);
        let answered = counts_after
            .iter()
            .zip(&counts_before)
            .filter(|(a, b)| a > b)
            .count();
        let closed = fleet.closed.load(Ordering::Relaxed);
        let (p50, p99) = (quantile(&round, 0.50), quantile(&round, 0.99));
        let held = fleet.failed == 0
            && answered == n
            && closed == 0
            && p99.is_some_and(|p| p < P99_LIMIT_SECS);
        let kib = per_agent(rss, base, n);

        println!("--- {n} agents ---");
        println!(
            "{:<44} {:>10.2} s  ({:.0} agents/s; all registered after {:.2} s)",
            format!("connect {} agents", n - from),
            connect.as_secs_f64(),
            f64::from(u32::try_from(n - from).unwrap_or(u32::MAX)) / connect.as_secs_f64(),
            registered.as_secs_f64(),
        );
        println!(
            "{:<44} {:>10}  ratio {:.2} to baseline",
            if replicas == 1 {
                "panel RSS"
            } else {
                "panel RSS, all replicas"
            },
            mib(rss),
            f64::from(u32::try_from(rss).unwrap_or(u32::MAX))
                / f64::from(u32::try_from(base.max(1)).unwrap_or(u32::MAX)),
        );
        println!(
            "{:<44} {:>10.1} KiB  (goal <= {GOAL_KIB_PER_AGENT:.0} KiB: {})",
            "panel RSS per agent, (RSS_N - RSS_0) / N",
            kib,
            if kib <= GOAL_KIB_PER_AGENT {
                "met"
            } else {
                "MISSED"
            },
        );
        if let (Some(url), Some(base)) = (redis.as_deref(), redis_base) {
            let used = redis_used_memory(url);
            #[expect(clippy::cast_precision_loss, reason = "memory sizes")]
            let per = (used as f64 - base as f64) / n as f64;
            println!(
                "{:<44} {:>10.0} B  (used_memory {} -> {} B)",
                "Redis memory per agent", per, base, used
            );
        }
        if let Some((m, m_rss)) = previous {
            println!(
                "{:<44} {:>10.1} KiB",
                format!("panel RSS per agent, marginal {m} -> {n}"),
                per_agent(rss, m_rss, n - m),
            );
        }
        println!(
            "{:<44} {:>10}  p99 {} over {samples} heartbeats (limit {:.0} ms)",
            "heartbeat round trip p50",
            ms(p50),
            ms(p99),
            P99_LIMIT_SECS * 1000.0,
        );
        println!(
            "{:<44} {:>10}  (failed to connect {}, dropped {closed}{})",
            "agents answering a heartbeat in one round",
            format!("{answered}/{n}"),
            fleet.failed,
            fleet
                .first_error
                .as_deref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default(),
        );
        println!(
            "{:<44} {:>10.1} KiB  (the agents' side of the tunnel, for reference)",
            "bench process RSS per simulated agent",
            per_agent(own, own_base, n),
        );
        println!(
            "{:<44} {:>10}",
            "step held",
            if held { "yes" } else { "NO" }
        );
        steps.push(Step { n, held });
        previous = Some((n, rss));
        if !held {
            break;
        }
    }
    let largest = steps.iter().filter(|s| s.held).map(|s| s.n).max();
    println!("---");
    println!(
        "{:<44} {:>10}  (goal: 10000; limit: all connected, all heartbeating, p99 < {:.0} ms)",
        "largest N that held",
        largest.map_or_else(|| "none".into(), |n| n.to_string()),
        P99_LIMIT_SECS * 1000.0,
    );
    drop(panels);
}

fn main() {
    // Every simulated agent holds a socket: raise the soft limit to the hard one.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).expect("RLIMIT_NOFILE");
    let max = agent_counts().last().copied().unwrap_or(0);
    assert!(
        u64::try_from(max).unwrap_or(u64::MAX) + 256 <= nofile,
        "{max} agents need more file descriptors than the limit of {nofile}"
    );
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}
