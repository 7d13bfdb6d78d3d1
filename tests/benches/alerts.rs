//! Alerts: what evaluating rules costs at fleet scale, how fast a firing alert reaches a
//! webhook, and what each (rule, target) pair keeps. A real panel on SQLite
//! (`spawn_app(Engine::Sqlite)`, its jobs running), samples fed through the heartbeat's
//! own entry points (`nodes::metrics::record`, then `alerts::evaluate::on_sample`), a
//! webhook receiver on loopback.
//!
//! Targets are nodes: only a node's sample carries all five metrics of the issue
//! (`cpu_usage`, `memory_usage`, `disk_usage`, `network_rx`, `network_tx`; a server's
//! sample has no network rates, see `rules.rs`), and a node's evaluation is the same
//! code per (rule, target) pair as a server's (`observe` → `step`). The `nodes` rows are
//! inserted straight into the database in one transaction.
//!
//! `cargo bench -p shardlyn-tests --bench alerts` prints:
//! - evaluation cost: `SHARDLYN_BENCH_ALERT_TARGETS` (default 10,000) targets × 5 rules
//!   (`target_id` null, one per metric), one round = one sample per target = one 10 s
//!   heartbeat interval, fed `SHARDLYN_BENCH_ALERT_CONCURRENCY` (default 8) at a time.
//!   The figure is process CPU time (user + system of every thread, SQLite's worker
//!   threads included, from `/proc/self/stat`) per round, as a share of one core
//!   (CPU seconds / 10 s), for three rounds with rules: all values below their
//!   thresholds (the steady state), all above (every pair opens a pending alert), and all
//!   still above (every open alert updated). The baseline, in the same run, is the same
//!   round through `on_sample` with no rule at all; the ratio is what the rules add.
//!   The clock is pinned and moved 10 s per round, so nothing fires (durations 300 s).
//!   Then the `alerts` job's `tick` with every pair pending: CPU per tick, as a share of
//!   a core at one tick per `jobs.poll_interval_ms`.
//! - latency from a threshold crossing to the webhook receiver: `SHARDLYN_BENCH_ALERTS`
//!   (default 200) alerts, each on its own node, a rule with a 10 s duration notifying a
//!   generic webhook integration on loopback (allowed by the test configuration's
//!   `[outbound] allow`). Each node is above the threshold from its first sample; with
//!   the pinned clock moved to the end of its duration, the next sample fires it (or the
//!   `alerts` job's tick, whichever comes first) and the delivery job sends it. Measured
//!   from just before that sample to the receiver's handler holding the request, one
//!   alert every 50 ms; p50/p99 (goal p99 < 2 s), against the baseline of a plain POST
//!   from the bench to the same receiver.
//! - memory per active (rule, target) pair: evaluation keeps no state in memory between
//!   samples (every alert is a row of `alerts`, so any replica may evaluate), so this is
//!   the database's growth (SQLite `page_count × page_size`) and the process RSS
//!   (`VmRSS`) across the round that opens a pending alert on every pair, per pair.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use futures::StreamExt;
use serde_json::json;
use shardlyn_panel::alerts::evaluate;
use shardlyn_panel::nodes::metrics;
use shardlyn_proto::metrics::NodeSample;
use shardlyn_tests::bench::{env_or, percentile};
use shardlyn_tests::{Engine, TestApp, spawn_app};

/// The heartbeat interval: one sample per target per round.
const INTERVAL_S: f64 = 10.0;
const GIB: u64 = 1024 * 1024 * 1024;

/// CPU seconds this process has used (every thread): user and system.
fn cpu_times() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are the 14th and 15th fields, the 12th and 13th after the name.
    let ticks = |i: usize| fields[i].parse::<u64>().expect("clock ticks");
    #[expect(clippy::cast_precision_loss, reason = "clock ticks")]
    let secs = |t: u64| t as f64 / clock_ticks();
    (secs(ticks(11)), secs(ticks(12)))
}

/// What ran since `before` (a [`cpu_times`]): CPU seconds (user + system) and the
/// system part.
fn cpu_since(before: (f64, f64)) -> Cpu {
    let (user, system) = cpu_times();
    Cpu {
        total: user - before.0 + system - before.1,
        system: system - before.1,
    }
}

/// CPU seconds spent, and the part of them in the kernel.
struct Cpu {
    total: f64,
    system: f64,
}

/// `sysconf(_SC_CLK_TCK)`, as `getconf` says (100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The SQLite database's size in bytes (pages in use, WAL included).
async fn db_bytes(app: &TestApp) -> i64 {
    let pool = &app.state.db.pool;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(pool)
        .await
        .expect("page_count");
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(pool)
        .await
        .expect("page_size");
    pages * size
}

/// The first organization of the bootstrap admin, and its access token.
async fn admin_org(app: &TestApp) -> (String, String) {
    let admin = app.bootstrap_admin().await;
    let orgs = app
        .get("/v1/organizations", Some(&admin.access))
        .await
        .expect(200);
    let org = orgs.body[0]["id"].as_str().expect("org id").to_owned();
    (org, admin.access)
}

/// Inserts `n` nodes `{prefix}{i:05}` of `org` in one transaction; their ids.
async fn insert_nodes(app: &TestApp, org: &str, prefix: &str, n: u64) -> Vec<String> {
    let now = shardlyn_panel::db::now_ms();
    let mut tx = app.state.db.pool.begin().await.expect("begin");
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}{i:05}");
        sqlx::query(
            "INSERT INTO nodes (id, org_id, name, token_prefix, token_hash, created_at, updated_at) \
             VALUES ($1, $2, $1, 'bench', $1, $3, $3)",
        )
        .bind(&id)
        .bind(org)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("insert node");
        ids.push(id);
    }
    tx.commit().await.expect("commit");
    ids
}

/// A node sample: CPU, memory and disk at `percent`, network counters at `net`.
fn sample(percent: u64, net: u64) -> NodeSample {
    #[expect(clippy::cast_precision_loss, reason = "a small percentage")]
    let cpu = percent as f64;
    NodeSample {
        cpu_percent: cpu,
        memory_used_bytes: percent * GIB,
        memory_total_bytes: 100 * GIB,
        disk_used_bytes: percent * GIB,
        disk_total_bytes: 100 * GIB,
        net_rx_bytes: net,
        net_tx_bytes: net,
        instances: Vec::new(),
    }
}

/// What one round cost: CPU and wall seconds.
struct Round {
    cpu: Cpu,
    wall: f64,
}

impl Round {
    /// The share of one core while samples arrive every [`INTERVAL_S`].
    fn share(&self) -> f64 {
        self.cpu.total / INTERVAL_S
    }

    fn line(&self, base: Option<&Round>) -> String {
        let ratio = base.map_or_else(String::new, |b| {
            format!(
                "; ratio to baseline {:.2}",
                self.cpu.total / b.cpu.total.max(0.01)
            )
        });
        format!(
            "{:.2} CPU s per round ({:.2} s of it system) = {:.1}% of a core (wall {:.2} s){ratio}",
            self.cpu.total,
            self.cpu.system,
            self.share() * 100.0,
            self.wall
        )
    }
}

/// Records one heartbeat sample per node, as the heartbeat does before evaluating it
/// (untimed: the heartbeat's own storage, not evaluation).
async fn record(app: &TestApp, nodes: &[String], s: &NodeSample, concurrency: usize) {
    let pool = &app.state.db.pool;
    futures::stream::iter(nodes)
        .for_each_concurrent(concurrency, |id| async move {
            metrics::record(pool, id, s).await.expect("record sample");
        })
        .await;
}

/// [`record`], then [`evaluate_all`].
async fn round(app: &TestApp, nodes: &[String], s: &NodeSample, concurrency: usize) -> Round {
    record(app, nodes, s, concurrency).await;
    evaluate_all(app, nodes, s, concurrency).await
}

/// Evaluates one recorded sample per node, `concurrency` at a time, timed.
async fn evaluate_all(
    app: &TestApp,
    nodes: &[String],
    s: &NodeSample,
    concurrency: usize,
) -> Round {
    let (cpu, wall) = (cpu_times(), Instant::now());
    futures::stream::iter(nodes)
        .for_each_concurrent(concurrency, |id| async move {
            evaluate::on_sample(&app.state, id, s).await;
        })
        .await;
    Round {
        cpu: cpu_since(cpu),
        wall: wall.elapsed().as_secs_f64(),
    }
}

async fn alert_count(app: &TestApp, state: &str) -> i64 {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM alerts WHERE state = $1")
        .bind(state)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count alerts")
}

/// Figures 1 and 3: evaluation cost per round and storage per pair.
async fn evaluation(targets: u64, concurrency: usize) {
    let app = spawn_app(Engine::Sqlite).await;
    let (org, token) = admin_org(&app).await;
    let nodes = insert_nodes(&app, &org, "bench-node-", targets).await;
    // A sample every 10 s on the pinned clock.
    let clock = app.state.clock.clone();
    clock.set_ms(shardlyn_panel::db::now_ms());
    let next = || clock.advance(Duration::from_secs(10));

    // Warm-up (a previous sample for the network rates, caches), then the baseline.
    let mut net = 1_000_000;
    round(&app, &nodes, &sample(20, net), concurrency).await;
    next();
    let base = round(&app, &nodes, &sample(20, net), concurrency).await;

    let rules = [
        ("cpu_usage", 90.0),
        ("memory_usage", 90.0),
        ("disk_usage", 90.0),
        ("network_rx", 1.0e8),
        ("network_tx", 1.0e8),
    ];
    for (metric, threshold) in rules {
        app.post(
            "/v1/alerts/rules",
            Some(&token),
            json!({"organization_id": org, "name": format!("High {metric}"), "target_type": "node",
                "target_id": null, "metric": metric, "operator": "gt", "threshold": threshold,
                "duration_seconds": 300, "resolve_after_seconds": 60, "severity": "warn",
                "notify_in_app": true, "notify_email": false, "cooldown_seconds": 0}),
        )
        .await
        .expect(201);
    }
    let pairs = targets * rules.len() as u64;

    next();
    let quiet = round(&app, &nodes, &sample(20, net), concurrency).await;
    assert_eq!(alert_count(&app, "pending").await, 0, "nothing is above");

    // Every pair crosses its threshold: one pending alert each.
    next();
    net += 1_000_000_000_000;
    let hot = sample(95, net);
    record(&app, &nodes, &hot, concurrency).await;
    let (db_before, rss_before) = (db_bytes(&app).await, rss_bytes());
    let opening = evaluate_all(&app, &nodes, &hot, concurrency).await;
    let (db_after, rss_after) = (db_bytes(&app).await, rss_bytes());
    let pending = alert_count(&app, "pending").await;
    assert_eq!(
        u64::try_from(pending).expect("count"),
        pairs,
        "every pair opened a pending alert"
    );

    next();
    net += 1_000_000_000_000;
    let held = round(&app, &nodes, &sample(95, net), concurrency).await;
    assert_eq!(
        alert_count(&app, "firing").await,
        0,
        "none past its duration"
    );

    // The `alerts` job's tick (every `jobs.poll_interval_ms` on every replica) with the
    // pending alerts all open: what it costs to find none due.
    let ticks = 5;
    let (cpu, wall) = (cpu_times(), Instant::now());
    for _ in 0..ticks {
        evaluate::tick(&app.state).await.expect("tick");
    }
    let tick = Round {
        cpu: cpu_since(cpu),
        wall: wall.elapsed().as_secs_f64(),
    };
    let poll_ms = app.state.config.jobs.poll_interval_ms;

    println!(
        "evaluation ({targets} targets × {} rules = {pairs} pairs, one sample per target per {INTERVAL_S} s, \
         {concurrency} at a time; process CPU from /proc/self/stat):",
        rules.len()
    );
    println!("  baseline, no rules:        {}", base.line(None));
    for (name, r) in [
        ("all below (steady state)", &quiet),
        ("all cross (open pending)", &opening),
        ("all still above (update)", &held),
    ] {
        println!("  {name}:  {}", r.line(Some(&base)));
    }
    let per_tick = tick.cpu.total / f64::from(ticks);
    #[expect(clippy::cast_precision_loss, reason = "milliseconds")]
    let poll = poll_ms as f64;
    println!(
        "  alerts job tick with {pending} pending (none due): {:.1} ms CPU, {:.1} ms wall per tick; \
         every {poll_ms} ms = {:.1}% of a core",
        per_tick * 1000.0,
        tick.wall * 1000.0 / f64::from(ticks),
        per_tick * 1000.0 / poll * 100.0
    );
    #[expect(clippy::cast_precision_loss, reason = "byte counts")]
    let (db_per, rss_per) = (
        (db_after - db_before) as f64 / pairs as f64,
        (rss_after.saturating_sub(rss_before)) as f64 / pairs as f64,
    );
    println!(
        "memory per active pair: no in-memory state (alerts are rows); database +{:.1} MiB for \
         {pairs} pending alerts = {db_per:.0} bytes per pair; process RSS +{:.1} MiB = {rss_per:.0} bytes per pair",
        bytes_mib(db_after - db_before),
        bytes_mib(i64::try_from(rss_after.saturating_sub(rss_before)).unwrap_or(i64::MAX)),
    );
    app.stop().await;
}

#[expect(clippy::cast_precision_loss, reason = "a size to print")]
fn bytes_mib(n: i64) -> f64 {
    n as f64 / 1024.0 / 1024.0
}

/// Requests the receiver got: body and arrival.
type Got = Arc<Mutex<Vec<(String, Instant)>>>;

async fn receive(State(got): State<Got>, body: Bytes) -> &'static str {
    let at = Instant::now();
    got.lock()
        .expect("lock")
        .push((String::from_utf8_lossy(&body).into_owned(), at));
    "ok"
}

/// A webhook receiver on loopback: its URL and what it got.
async fn receiver() -> (String, Got) {
    let got = Got::default();
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://127.0.0.1:{}/hook", addr.port()), got)
}

/// Arrival of the first request whose body names `key`.
fn arrival(got: &Got, key: &str) -> Option<Instant> {
    got.lock()
        .expect("lock")
        .iter()
        .find(|(body, _)| body.contains(key))
        .map(|(_, at)| *at)
}

/// Waits until every key has arrived; the arrivals in order.
async fn arrivals(got: &Got, keys: &[String], within: Duration) -> Vec<Instant> {
    let deadline = Instant::now() + within;
    loop {
        let found: Vec<Option<Instant>> = keys.iter().map(|k| arrival(got, k)).collect();
        if found.iter().all(Option::is_some) {
            return found.into_iter().flatten().collect();
        }
        let missing = found.iter().filter(|f| f.is_none()).count();
        assert!(
            Instant::now() < deadline,
            "{missing} of {} messages missing after {within:?}",
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ms_sorted(starts: &[Instant], ends: &[Instant]) -> Vec<f64> {
    let mut ms: Vec<f64> = starts
        .iter()
        .zip(ends)
        .map(|(s, e)| e.saturating_duration_since(*s).as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// Figure 2: threshold crossing → webhook receiver.
async fn latency(alerts: u64) {
    let app = spawn_app(Engine::Sqlite).await;
    let (org, token) = admin_org(&app).await;
    let (url, got) = receiver().await;

    // Baseline: a plain POST from here to the same receiver.
    let client = reqwest::Client::new();
    let mut starts = Vec::new();
    let mut keys = Vec::new();
    for i in 0..alerts {
        let key = format!("plain-{i:05}");
        starts.push(Instant::now());
        client
            .post(&url)
            .json(&json!({"text": key}))
            .send()
            .await
            .expect("plain POST");
        keys.push(key);
    }
    let plain = ms_sorted(
        &starts,
        &arrivals(&got, &keys, Duration::from_secs(30)).await,
    );

    let hook = app
        .post(
            "/v1/integrations",
            Some(&token),
            json!({"name": "bench hook", "type": "webhook", "organization_id": org,
                "config": {"url": url}}),
        )
        .await
        .expect(201);
    let hook = hook.body["id"].as_str().expect("integration id").to_owned();
    app.post(
        "/v1/alerts/rules",
        Some(&token),
        json!({"organization_id": org, "name": "Hot CPU", "target_type": "node", "target_id": null,
            "metric": "cpu_usage", "operator": "gt", "threshold": 90, "duration_seconds": 10,
            "resolve_after_seconds": 60, "severity": "critical", "notify_in_app": true,
            "notify_email": false, "cooldown_seconds": 0, "integration_ids": [hook]}),
    )
    .await
    .expect(201);
    let nodes = insert_nodes(&app, &org, "lat-node-", alerts).await;
    let hot = NodeSample {
        cpu_percent: 95.0,
        ..NodeSample::default()
    };

    // Each node crosses the threshold 10 ms (pinned time) after the one before, so each
    // one's duration ends on its own, in order.
    let clock = app.state.clock.clone();
    let start = shardlyn_panel::db::now_ms();
    let offset = |i: usize| start + i64::try_from(i).expect("index") * 10;
    for (i, node) in nodes.iter().enumerate() {
        clock.set_ms(offset(i));
        evaluate::on_sample(&app.state, node, &hot).await;
    }
    let mut fired = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    for (i, node) in nodes.iter().enumerate() {
        pace.tick().await;
        fired.push(Instant::now());
        clock.set_ms(offset(i) + 10_000);
        evaluate::on_sample(&app.state, node, &hot).await;
    }
    let delivered = arrivals(&got, &nodes, Duration::from_secs(120)).await;
    let alerted = ms_sorted(&fired, &delivered);
    let (p50, p99) = (percentile(&plain, 0.5), percentile(&plain, 0.99));
    let (a50, a99) = (percentile(&alerted, 0.5), percentile(&alerted, 0.99));
    let jobs_poll = app.state.config.jobs.poll_interval_ms;
    println!(
        "threshold crossing → webhook receiver ({alerts} alerts, one per 50 ms, jobs poll {jobs_poll} ms): \
         p50 {a50:.1} ms, p99 {a99:.1} ms, max {:.1} ms (goal p99 < 2000 ms); \
         baseline plain POST p50 {p50:.2} ms, p99 {p99:.2} ms; ratio p99 {:.0}",
        alerted.last().copied().unwrap_or(0.0),
        a99 / p99.max(0.001)
    );
    app.stop().await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let targets = env_or("SHARDLYN_BENCH_ALERT_TARGETS", 10_000);
    let concurrency = usize::try_from(env_or("SHARDLYN_BENCH_ALERT_CONCURRENCY", 8)).unwrap_or(8);
    let alerts = env_or("SHARDLYN_BENCH_ALERTS", 200);
    let began = Instant::now();
    evaluation(targets, concurrency.max(1)).await;
    latency(alerts).await;
    println!("(whole bench {:.0} s)", began.elapsed().as_secs_f64());
}
