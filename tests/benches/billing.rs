//! What plan limits add to server create (issue 19): the same `POST /v1/instances`
//! against a panel with billing off (the baseline, measured in the same run) and one with
//! billing on, where every create takes the organization's lock and checks the plan's
//! caps (set high enough never to refuse) in its transaction.
//!
//! `cargo bench -p shardlyn-tests --bench billing` prints, per engine (SQLite; also
//! PostgreSQL with `SHARDLYN_BENCH_BILLING_ENGINE=postgres` or `=both`):
//! - sequential creates: p50 and p99 of each side, the added p50 in ms (goal ≤ 1 ms) and
//!   the ratio on/off;
//! - 20 concurrent creates (waves of 20 requests at once): the same figures, plus the
//!   creates per second of each side.
//!
//! No agent runs: the node is registered and marked online in the database, as the API
//! tests do, so a create is the panel's own work. `SHARDLYN_BENCH_BILLING_CREATES`
//! (default 300) sequential creates and `SHARDLYN_BENCH_BILLING_WAVES` (default 15) waves
//! per side tune it.

use std::time::Instant;

use serde_json::json;
use shardlyn_panel::config::Secret;
use shardlyn_tests::bench::{env_or, percentile};
use shardlyn_tests::{Engine, TestApp, spawn_app_with};

const GIB: i64 = 1024 * 1024 * 1024;
/// Concurrent creates per wave.
const CONCURRENCY: u16 = 20;

/// A panel, a user's organization in it with the busybox workload and an online node,
/// and the next free port.
struct Side {
    app: TestApp,
    access: String,
    workload: String,
    node: String,
    port: u16,
}

impl Side {
    async fn start(engine: Engine, billing: bool) -> Self {
        let app = spawn_app_with(engine, |c| {
            if billing {
                c.stripe.secret_key = Secret("sk_test_bench_limits".into());
            }
        })
        .await;
        // Caps no create reaches: every check runs and passes.
        sqlx::query(
            "UPDATE plans SET max_servers = 1000000, max_memory_mb = 1000000000, \
             max_cpu_percent = 1000000000, max_disk_mb = 1000000000, max_nodes = 1000 \
             WHERE id = 'plan-free'",
        )
        .execute(&app.state.db.pool)
        .await
        .expect("caps");
        let user = app.register("bench@example.com").await;
        let t = Some(user.access.as_str());
        let org = app.create_org(&user.access, "Bench").await;
        let workload = app
            .post(
                "/v1/workloads/from-template",
                t,
                json!({"template": "busybox-test", "organization_id": org}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .expect("workload")
            .to_owned();
        let node = app.register_node(&user.access, Some(&org), "bench").await;
        app.mark_node_online(&node, 1024 * GIB, 100_000 * GIB).await;
        Self {
            app,
            access: user.access,
            workload,
            node,
            port: 20_000,
        }
    }

    fn next_port(&mut self) -> u16 {
        self.port += 1;
        self.port
    }

    /// One create on `port`; its latency in ms.
    async fn create(&self, port: u16) -> f64 {
        let began = Instant::now();
        self.app
            .post(
                "/v1/instances",
                Some(&self.access),
                json!({"name": format!("b{port}"), "workload_id": self.workload,
                       "node_id": self.node, "ports": [port], "limits": {"memory_mb": 64}}),
            )
            .await
            .expect(201);
        began.elapsed().as_secs_f64() * 1000.0
    }

    /// A wave of [`CONCURRENCY`] creates at once; their latencies.
    async fn wave(&mut self) -> Vec<f64> {
        let ports: Vec<u16> = (0..CONCURRENCY).map(|_| self.next_port()).collect();
        futures_util::future::join_all(ports.into_iter().map(|p| self.create(p))).await
    }
}

/// p50 and p99 of `v` (sorted here).
fn quantiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (percentile(v, 0.5), percentile(v, 0.99))
}

fn report(what: &str, off: &mut [f64], on: &mut [f64]) {
    let (off50, off99) = quantiles(off);
    let (on50, on99) = quantiles(on);
    println!(
        "{what}: billing off p50 {off50:.2} ms p99 {off99:.2} ms; billing on p50 {on50:.2} ms \
         p99 {on99:.2} ms; added p50 {:+.2} ms (goal ≤ 1 ms), p99 {:+.2} ms; ratio on/off p50 {:.2}, p99 {:.2}",
        on50 - off50,
        on99 - off99,
        on50 / off50,
        on99 / off99
    );
}

async fn bench(engine: Engine) {
    let creates = env_or("SHARDLYN_BENCH_BILLING_CREATES", 300);
    let waves = env_or("SHARDLYN_BENCH_BILLING_WAVES", 15);
    let mut off = Side::start(engine, false).await;
    let mut on = Side::start(engine, true).await;
    // Warm both (connections, caches, the first pages of the tables).
    for _ in 0..20 {
        let p = off.next_port();
        off.create(p).await;
        let p = on.next_port();
        on.create(p).await;
    }

    // Sequential, alternating sides so drift of the machine hits both alike.
    let (mut seq_off, mut seq_on) = (Vec::new(), Vec::new());
    for _ in 0..creates {
        let p = off.next_port();
        seq_off.push(off.create(p).await);
        let p = on.next_port();
        seq_on.push(on.create(p).await);
    }
    report(
        &format!("{engine:?} sequential creates ({creates} per side)"),
        &mut seq_off,
        &mut seq_on,
    );

    // 20 at once.
    let (mut par_off, mut par_on) = (Vec::new(), Vec::new());
    let (mut wall_off, mut wall_on) = (0.0, 0.0);
    for _ in 0..waves {
        let began = Instant::now();
        par_off.extend(off.wave().await);
        wall_off += began.elapsed().as_secs_f64();
        let began = Instant::now();
        par_on.extend(on.wave().await);
        wall_on += began.elapsed().as_secs_f64();
    }
    report(
        &format!("{engine:?} {CONCURRENCY} concurrent creates ({waves} waves per side)"),
        &mut par_off,
        &mut par_on,
    );
    let made_in_waves = waves * u64::from(CONCURRENCY);
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let total = made_in_waves as f64;
    println!(
        "{engine:?} {CONCURRENCY} concurrent: billing off {:.0} creates/s, billing on {:.0} creates/s, ratio {:.2}",
        total / wall_off,
        total / wall_on,
        (total / wall_on) / (total / wall_off)
    );
    let made: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM instances")
        .fetch_one(&on.app.state.db.pool)
        .await
        .expect("count");
    assert_eq!(
        u64::try_from(made).expect("count"),
        20 + creates + made_in_waves,
        "every create with billing on was made"
    );
    off.app.stop().await;
    on.app.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let engines: &[Engine] = match std::env::var("SHARDLYN_BENCH_BILLING_ENGINE").as_deref() {
        Ok("postgres") => &[Engine::Postgres],
        Ok("both") => &[Engine::Sqlite, Engine::Postgres],
        _ => &[Engine::Sqlite],
    };
    for engine in engines {
        bench(*engine).await;
    }
}
