//! Replicas: what the hop between replicas costs, and how fast events fan out. Two real
//! panel replicas on PostgreSQL and Redis (`scripts/dev-services`), a real agent on the
//! first, real Docker, the busybox test egg.
//!
//! `cargo bench -p shardlyn-tests --bench replicas` prints:
//! - forwarded request latency: `GET /v1/instances/{id}/files` (a JSON call to the agent)
//!   through replica B, which forwards it over the replica hop to A, which holds the
//!   tunnel, against the same request served by A in the same run: p50 and p99 of each
//!   and the added latency (goal ≤ 1 ms added at p50).
//! - console lines/s through the hop (a console on B) against a direct console on A, for
//!   the same paced producer: ratio (goal ≥ 0.8), lost lines (must be 0).
//! - SSE fan-out: `BENCH_SUBSCRIBERS` (default 1000) `GET /v1/events` streams, half on
//!   each replica, and `BENCH_EVENTS` (default 20) events published on A: the delay from
//!   publication to each subscriber's receipt, p50 and p99 (goal p99 < 100 ms).
//!
//! `BENCH_REQUESTS` (default 1000) and `BENCH_LINES` (default 200000) tune the rest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_panel::events::{Event, EventData};
use shardlyn_tests::TestApp;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::bench::{console_url, env_or, flood, percentile};
use shardlyn_tests::console::Console;
use shardlyn_tests::sse::SseStream;

const WAIT: Duration = Duration::from_secs(60);

/// Milliseconds of `n` sequential `GET path` answered 200 by `app`, ascending.
async fn latencies(app: &TestApp, token: &str, path: &str, n: u64) -> Vec<f64> {
    let mut ms = Vec::new();
    for _ in 0..n {
        let began = Instant::now();
        app.get(path, Some(token)).await.expect(200);
        ms.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    ms
}

/// A console on `app` for `id`, past its `auth success`.
async fn console(app: &TestApp, token: &str, id: &str) -> Console {
    let mut c = Console::connect(&console_url(app, token, id).await, None)
        .await
        .expect("console");
    c.wait_for(WAIT, "auth", |e| e.event == "auth success")
        .await;
    c
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let requests = env_or("BENCH_REQUESTS", 1_000);
    let lines = env_or("BENCH_LINES", 200_000);
    let subscribers = env_or("BENCH_SUBSCRIBERS", 1_000);
    let events = env_or("BENCH_EVENTS", 20);
    // Each subscriber holds a socket on both ends, in this one process.
    let _ = rlimit::increase_nofile_limit(65_536);
    shardlyn_tests::docker::ensure_test_image();

    let apps = shardlyn_tests::replicas(2, |c| c.rate_limit.enabled = false).await;
    let (a, b) = (&apps[0], &apps[1]);
    let admin = a.bootstrap_admin().await;
    let token = admin.access.clone();
    let (config, dir) = register_node(a, &token).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(b, &token, &config.node_id, "online").await;
    assert!(
        a.state.tunnels.get(&config.node_id).is_some(),
        "the agent dialled A"
    );
    let workload = busybox_workload(a, &token).await;
    let r = a
        .post(
            "/v1/instances",
            Some(&token),
            json!({"name": "bench", "workload_id": workload, "node_id": config.node_id,
                   "ports": [free_port()],
                   "limits": {"memory_mb": 256, "swap_mb": 0, "cpu_percent": 0, "disk_mb": 1024, "pids": 256, "io_weight": 500}}),
        )
        .await
        .expect(201);
    let id = r.body["id"].as_str().expect("id").to_string();
    wait_instance(a, &token, &id, "offline", WAIT).await;

    // Forwarded request latency, warm on both sides first.
    let path = format!("/v1/instances/{id}/files?path=/");
    latencies(a, &token, &path, 50).await;
    latencies(b, &token, &path, 50).await;
    let local = latencies(a, &token, &path, requests).await;
    let forwarded = latencies(b, &token, &path, requests).await;
    let (l50, l99) = (percentile(&local, 0.5), percentile(&local, 0.99));
    let (f50, f99) = (percentile(&forwarded, 0.5), percentile(&forwarded, 0.99));
    println!(
        "forwarded request ({requests} × GET files): local p50 {l50:.2} ms p99 {l99:.2} ms; \
         through the hop p50 {f50:.2} ms p99 {f99:.2} ms; added p50 {:.2} ms (goal ≤ 1 ms), p99 {:.2} ms",
        f50 - l50,
        f99 - l99
    );

    // Console lines through the hop against a direct console, same paced producer.
    let mut direct = console(a, &token, &id).await;
    a.post(
        &format!("/v1/instances/{id}/start"),
        Some(&token),
        json!({}),
    )
    .await
    .expect(202);
    direct
        .wait_for(WAIT, "running", |e| {
            e.event == "status" && e.arg() == "running"
        })
        .await;
    let chunk = 2_500;
    let paced = lines / chunk * chunk;
    let command = format!("paced {paced} {chunk} 10000");
    let near = flood(&mut direct, &command, paced).await;
    direct.close().await;
    let mut hopped = console(b, &token, &id).await;
    let far = flood(&mut hopped, &command, paced).await;
    hopped.close().await;
    println!(
        "console ({paced} paced lines): direct on A {:.0} lines/s (lost {}), through B's hop {:.0} lines/s (lost {}); ratio {:.2} (goal ≥ 0.8)",
        near.rate(paced),
        near.lost,
        far.rate(paced),
        far.lost,
        far.rate(paced) / near.rate(paced)
    );
    a.post(&format!("/v1/instances/{id}/kill"), Some(&token), json!({}))
        .await
        .expect(202);
    wait_instance(a, &token, &id, "offline", WAIT).await;

    // SSE fan-out: every subscriber records when each event reached it.
    let org = a
        .get("/v1/organizations", Some(&token))
        .await
        .expect(200)
        .body[0]["id"]
        .as_str()
        .expect("org")
        .to_owned();
    let auth = format!("Bearer {token}");
    let sent: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let mut streams = Vec::new();
    for n in 0..subscribers {
        let app = if n % 2 == 0 { a } else { b };
        let stream = SseStream::open(
            &app.client,
            &format!("{}/v1/events", app.base),
            &[("authorization", auth.as_str())],
        )
        .await
        .unwrap_or_else(|(s, body)| panic!("subscriber {n}: {s} {body}"));
        streams.push(stream);
    }
    let mut readers = Vec::new();
    for mut stream in streams {
        let sent = sent.clone();
        readers.push(tokio::spawn(async move {
            let mut delays = Vec::new();
            while delays.len() < usize::try_from(events).unwrap_or(usize::MAX) {
                let e = stream.expect("node_status", WAIT).await;
                // The real node's own status events are not the bench's.
                let Some(seq) = e.data["node_id"]
                    .as_str()
                    .and_then(|s| s.strip_prefix("fanout-"))
                    .and_then(|s| s.parse::<usize>().ok())
                else {
                    continue;
                };
                let at = sent.lock().expect("sent")[seq];
                delays.push(at.elapsed().as_secs_f64() * 1000.0);
            }
            delays
        }));
    }
    for seq in 0..events {
        sent.lock().expect("sent").push(Instant::now());
        a.state
            .events
            .publish(Event::now(
                org.clone(),
                EventData::NodeStatus {
                    node_id: format!("fanout-{seq}"),
                    online: true,
                },
            ))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut delays = Vec::new();
    for r in readers {
        delays.extend(r.await.expect("subscriber"));
    }
    delays.sort_by(f64::total_cmp);
    println!(
        "SSE fan-out: {subscribers} subscribers (half per replica) × {events} events: delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 < 100 ms)",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(0.0)
    );

    a.delete(&format!("/v1/instances/{id}"), Some(&token))
        .await
        .expect(204);
    agent.stop().await;
}
