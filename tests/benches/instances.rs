//! Console throughput and start overhead, through the whole stack: a real panel, a real
//! agent over the tunnel, real Docker, the busybox test egg.
//!
//! `cargo bench -p shardlyn-tests --bench instances` prints:
//! - console lines/s from a container's stdout to a WebSocket client (agent → tunnel →
//!   panel → socket), against the baseline of the same lines read straight from
//!   `docker run` (Docker's own attach), as a ratio. Goal ≥ 100,000 lines/s.
//! - command → echo round-trip latency p50/p99 (client → panel → tunnel → agent → stdin →
//!   server → stdout → back).
//! - start overhead: `POST /v1/instances/{id}/start` until the `running` status, minus a
//!   raw `docker start` of the same container in the same run. Goal ≤ 100 ms.
//!
//!   Two runs: a burst (`seq` as fast as the pipe takes it; a client slower than that
//!   loses the oldest lines of its queue, and is told) and a paced producer the client
//!   keeps up with, where lost must be 0.
//!
//! `BENCH_LINES` (default 500000), `BENCH_STARTS` (default 7), `BENCH_PACED_CHUNK`
//! (default 2500) and `BENCH_PACED_PAUSE_US` (default 10000) tune it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::bench::{console_url, env_or, flood, percentile};
use shardlyn_tests::console::Console;
use shardlyn_tests::docker::TEST_IMAGE;
use shardlyn_tests::{Engine, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

/// Lines/s of `seq 1 n` read straight from `docker run` (Docker's own attach).
fn docker_baseline(n: u64) -> f64 {
    let started = Instant::now();
    let out = Command::new("docker")
        .args(["run", "--rm", TEST_IMAGE, "seq", "1", &n.to_string()])
        .stdout(Stdio::piped())
        .output()
        .expect("docker run");
    let elapsed = started.elapsed().as_secs_f64();
    let lines = out.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(lines as u64, n, "docker lost lines");
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let rate = n as f64 / elapsed;
    rate
}

/// `POST path` on the Docker Engine API over its socket: the raw cost of an engine call,
/// without a CLI process in the way. Returns the status code.
async fn engine_post(path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::UnixStream::connect("/var/run/docker.sock")
        .await
        .expect("docker socket");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer).await.expect("read");
    let head = String::from_utf8_lossy(&answer);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let lines = env_or("BENCH_LINES", 500_000);
    let starts = env_or("BENCH_STARTS", 7);
    shardlyn_tests::docker::ensure_test_image();

    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let r = app
        .post(
            "/v1/instances",
            t,
            json!({"name": "bench", "workload_id": workload, "node_id": config.node_id,
                   "ports": [free_port()],
                   "limits": {"memory_mb": 256, "swap_mb": 0, "cpu_percent": 0, "disk_mb": 1024, "pids": 256, "io_weight": 500}}),
        )
        .await
        .expect(201);
    let id = r.body["id"].as_str().expect("id").to_string();
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;

    // Start overhead.
    let mut ours = Vec::new();
    for _ in 0..starts {
        let mut c = Console::connect(&console_url(&app, &admin.access, &id).await, None)
            .await
            .expect("console");
        c.wait_for(WAIT, "auth", |e| e.event == "auth success")
            .await;
        let began = Instant::now();
        app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
            .await
            .expect(202);
        c.wait_for(WAIT, "running", |e| {
            e.event == "status" && e.arg() == "running"
        })
        .await;
        ours.push(began.elapsed().as_secs_f64() * 1000.0);
        app.post(&format!("/v1/instances/{id}/kill"), t, json!({}))
            .await
            .expect(202);
        c.wait_for(WAIT, "offline", |e| {
            e.event == "status" && e.arg() == "offline"
        })
        .await;
        c.close().await;
    }
    let container = shardlyn_agent::instances::container_name_in(dir.path(), &id);
    let mut raw = Vec::new();
    for _ in 0..starts {
        let began = Instant::now();
        assert_eq!(
            engine_post(&format!("/containers/{container}/start")).await,
            204
        );
        raw.push(began.elapsed().as_secs_f64() * 1000.0);
        engine_post(&format!("/containers/{container}/kill")).await;
        // The agent sees an exit it did not ask for: let it settle before the next run.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ours.sort_by(f64::total_cmp);
    raw.sort_by(f64::total_cmp);
    let (ours_p50, raw_p50) = (percentile(&ours, 0.5), percentile(&raw, 0.5));
    println!(
        "start: panel start→running p50 {ours_p50:.1} ms, raw Engine API start p50 {raw_p50:.1} ms, overhead {:.1} ms (goal ≤ 100 ms), ratio {:.2}",
        ours_p50 - raw_p50,
        ours_p50 / raw_p50
    );
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;

    // Console throughput.
    let mut c = Console::connect(&console_url(&app, &admin.access, &id).await, None)
        .await
        .expect("console");
    c.wait_for(WAIT, "auth", |e| e.event == "auth success")
        .await;
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    c.wait_for(WAIT, "running", |e| {
        e.event == "status" && e.arg() == "running"
    })
    .await;
    // Command latency first, on a quiet console.
    let mut rtt = Vec::new();
    for i in 0..200 {
        let text = format!("ping-{i}");
        let began = Instant::now();
        c.send("send command", &[&text]).await;
        let want = format!("echo: {text}");
        c.wait_for(WAIT, "echo", |e| {
            e.event == "console output" && e.arg() == want
        })
        .await;
        rtt.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    rtt.sort_by(f64::total_cmp);
    println!(
        "console command→echo latency: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&rtt, 0.5),
        percentile(&rtt, 0.99)
    );
    let baseline = docker_baseline(lines);
    // A burst: `seq` writes as fast as the pipe takes it, faster than this client reads,
    // so the panel's per-socket queue sheds the oldest lines (and says so).
    let burst = flood(&mut c, &format!("flood {lines}"), lines).await;
    println!(
        "console burst: {lines} lines in {:.2} s = {:.0} lines/s (goal ≥ 100,000), lost {} (drop notices {}, from the agent {}); \
         baseline `docker run` attach {baseline:.0} lines/s, ratio {:.2}",
        burst.elapsed,
        burst.rate(lines),
        burst.lost,
        burst.notices,
        burst.agent_notices,
        burst.rate(lines) / baseline
    );
    // Paced: chunks of `chunk` lines with a pause between them, a producer this client
    // keeps up with. Every line must arrive.
    let chunk = env_or("BENCH_PACED_CHUNK", 2_500);
    let pause_us = env_or("BENCH_PACED_PAUSE_US", 10_000);
    let paced_lines = lines / chunk * chunk;
    let paced = flood(
        &mut c,
        &format!("paced {paced_lines} {chunk} {pause_us}"),
        paced_lines,
    )
    .await;
    println!(
        "console paced ({chunk} lines per {pause_us} µs pause): {paced_lines} lines in {:.2} s = {:.0} lines/s (goal ≥ 100,000 with no loss), lost {} (drop notices {}), ratio {:.2} to the burst baseline",
        paced.elapsed,
        paced.rate(paced_lines),
        paced.lost,
        paced.notices,
        paced.rate(paced_lines) / baseline
    );
    c.close().await;
    let _ = app
        .post(&format!("/v1/instances/{id}/kill"), t, json!({}))
        .await;
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    agent.stop().await;
    app.stop().await;
}
