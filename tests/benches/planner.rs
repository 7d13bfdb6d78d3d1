//! The planner: what scoring a fleet costs, and how good its placement is.
//!
//! `cargo bench -p shardlyn-tests --bench planner` prints:
//! - the scoring function (`planner::fit::best`) over `SHARDLYN_BENCH_PLANNER_NODES`
//!   (default 1,000) random nodes, `SHARDLYN_BENCH_PLANNER_ROUNDS` (default 2,000) calls:
//!   p50/p99, against the baseline of one plain pass over the same nodes (free memory
//!   of each, the least work any scoring does) in the same run;
//! - the HTTP route `POST /v1/planner/suggest-fit` on a real panel (SQLite, the same
//!   number of nodes inserted straight into `nodes` and `node_metrics`, a tenth of them
//!   hosting an instance), 200 calls one after another: p50/p99, against the baseline of
//!   `GET /v1/planner/templates` (same authentication, no fleet read) in the same run;
//! - its choice against an exact solver: 200 random small fleets (3 to 6 nodes, some
//!   offline or cordoned, some already busy) given 4 to 10 identical copies (what
//!   `recommend`'s `count` asks), then 200 more given 4 to 10 workloads of different
//!   sizes (a harder case the planner has no route for), placed
//!   by `planner::fit::place_all` (first-fit-decreasing, each on its best fit) and by
//!   the MILP of `tests/support/planner_oracle.py` (PyPI `highspy`) minimising the same
//!   objective: 1000 per workload left unplaced + 1 per empty node opened. How often
//!   the heuristic reaches the optimum, and its worst gap.

use std::time::Instant;

use serde_json::{Value, json};
use shardlyn_panel::planner::fit::{self, Demand, NodeRoom};
use shardlyn_tests::bench::{env_or, percentile};
use shardlyn_tests::{Engine, TestApp, spawn_app};

const MIB: i64 = 1024 * 1024;

/// xorshift64*: reproducible fleets without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).expect("span");
        lo + i64::try_from(self.next() % span).expect("small")
    }

    fn chance(&mut self, percent: i64) -> bool {
        self.range(1, 100) <= percent
    }
}

fn random_node(rng: &mut Rng, i: usize) -> NodeRoom {
    let mem = [4096, 8192, 16_384, 32_768, 65_536][usize::try_from(rng.range(0, 4)).expect("i")];
    let disk = rng.range(40, 500) * 1024;
    let cpu = rng.range(2, 16) * 1000;
    NodeRoom {
        id: format!("n{i:05}"),
        name: format!("n{i:05}"),
        online: !rng.chance(5),
        cordoned: rng.chance(3),
        memory_total_mb: Some(mem),
        memory_used_mb: rng.range(0, mem * 3 / 4),
        disk_total_mb: Some(disk),
        disk_used_mb: rng.range(0, disk / 2),
        cpu_total_millis: Some(cpu),
        cpu_used_millis: rng.range(0, cpu / 2),
        ports_free: rng.range(0, 50),
        taken: Vec::new(),
        instances: rng.range(0, 8),
        platform: false,
    }
}

fn micros(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (percentile(samples, 0.5), percentile(samples, 0.99))
}

fn scoring(n: usize, rounds: u64) {
    let mut rng = Rng(0x5EED_0001);
    let rooms: Vec<NodeRoom> = (0..n).map(|i| random_node(&mut rng, i)).collect();
    let d = Demand {
        memory_mb: 4096,
        cpu_millis: 2000,
        disk_mb: 10 * 1024,
        ports: Vec::new(),
        port_count: 2,
    };
    let mut base = Vec::new();
    let mut score = Vec::new();
    let mut chosen = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let free: i64 = std::hint::black_box(&rooms)
            .iter()
            .map(|r| r.memory_total_mb.unwrap_or(0) - r.memory_used_mb)
            .max()
            .unwrap_or(0);
        std::hint::black_box(free);
        base.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        chosen = std::hint::black_box(fit::best(std::hint::black_box(&rooms), &d)).0;
        score.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (b50, b99) = micros(&mut base);
    let (s50, s99) = micros(&mut score);
    println!("scoring function over {n} nodes ({rounds} calls; chose {chosen:?}):");
    println!("  baseline, one pass (free memory):  p50 {b50:8.1} µs  p99 {b99:8.1} µs");
    println!(
        "  fit::best with every reason:       p50 {s50:8.1} µs  p99 {s99:8.1} µs  ({:.1}x the pass at p50)",
        s50 / b50.max(0.001)
    );
}

/// Inserts `n` online nodes with metrics into `org`, a tenth hosting an instance.
async fn fleet(app: &TestApp, owner: &str, org: &str, n: usize) {
    let wl = app
        .post(
            "/v1/workloads",
            Some(owner),
            json!({"organization_id": org, "name": "Bench", "images": ["busybox:1.36"], "startup": "sh"}),
        )
        .await
        .expect(201);
    let wl = wl.body["id"].as_str().expect("workload").to_string();
    let mut rng = Rng(0x5EED_0002);
    let pool = &app.state.db.pool;
    let now = shardlyn_panel::db::now_ms();
    // Seen a day ahead: online for the whole bench (the rule is "seen within 3 heartbeats").
    let seen = now + 86_400_000;
    let mut tx = pool.begin().await.expect("tx");
    for i in 0..n {
        let id = format!("bench-node-{i:05}");
        sqlx::query(
            "INSERT INTO nodes (id, org_id, name, token_prefix, token_hash, connected, last_seen_at, created_at, updated_at) \
             VALUES ($1, $2, $1, 'bench', $1, 1, $3, $4, $4)",
        )
        .bind(&id)
        .bind(org)
        .bind(seen)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("insert node");
        let mem_gib = [4_i64, 8, 16, 32, 64][usize::try_from(rng.range(0, 4)).expect("i")];
        sqlx::query(
            "INSERT INTO node_metrics (node_id, at, cpu_percent, memory_used_bytes, memory_total_bytes, \
             disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes) VALUES ($1, $2, 1.0, 0, $3, 0, $4, 0, 0)",
        )
        .bind(&id)
        .bind(now)
        .bind(mem_gib * 1024 * MIB)
        .bind(rng.range(40, 500) * 1024 * MIB)
        .execute(&mut *tx)
        .await
        .expect("insert metrics");
        if i % 10 == 0 {
            sqlx::query(
                "INSERT INTO instances (id, org_id, node_id, workload_id, name, image, memory_mb, swap_mb, \
                 cpu_percent, disk_mb, pids, io_weight, state, desired_state, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $1, 'busybox:1.36', $5, 0, 100, 2048, 0, 500, 'offline', 'stopped', $6, $6)",
            )
            .bind(format!("bench-instance-{i:05}"))
            .bind(org)
            .bind(&id)
            .bind(&wl)
            .bind(rng.range(1, 3) * 1024)
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("insert instance");
            sqlx::query(
                "INSERT INTO allocations (id, node_id, ip, port, instance_id, is_primary) VALUES ($1, $2, '0.0.0.0', 25565, $3, 1)",
            )
            .bind(format!("bench-alloc-{i:05}"))
            .bind(&id)
            .bind(format!("bench-instance-{i:05}"))
            .execute(&mut *tx)
            .await
            .expect("insert allocation");
        }
    }
    tx.commit().await.expect("commit");
}

async fn route(n: usize) {
    let app = spawn_app(Engine::Sqlite).await;
    let owner = app.register("bench-planner@example.com").await;
    let org = app.create_org(&owner.access, "Bench").await;
    fleet(&app, &owner.access, &org, n).await;
    let body = json!({"organization_id": org, "memory_mb": 4096, "cpu": 2, "disk_gb": 10, "port_count": 2});
    let t = Some(owner.access.as_str());
    // Warm both paths.
    for _ in 0..5 {
        app.post("/v1/planner/suggest-fit", t, body.clone())
            .await
            .expect(200);
        app.get("/v1/planner/templates", t).await.expect(200);
    }
    let mut base = Vec::new();
    let mut fit_ms = Vec::new();
    let mut reasons = 0;
    for _ in 0..200 {
        let s = Instant::now();
        app.get("/v1/planner/templates", t).await.expect(200);
        base.push(s.elapsed().as_secs_f64() * 1e3);
        let s = Instant::now();
        let r = app
            .post("/v1/planner/suggest-fit", t, body.clone())
            .await
            .expect(200);
        fit_ms.push(s.elapsed().as_secs_f64() * 1e3);
        reasons = r.body["reasons"].as_array().map_or(0, Vec::len);
    }
    let (b50, b99) = micros(&mut base);
    let (f50, f99) = micros(&mut fit_ms);
    println!(
        "POST /v1/planner/suggest-fit over {n} nodes (SQLite, 200 calls, {reasons} reasons each):"
    );
    println!("  baseline, GET /v1/planner/templates:  p50 {b50:7.2} ms  p99 {b99:7.2} ms");
    println!("  suggest-fit:                          p50 {f50:7.2} ms  p99 {f99:7.2} ms");
    app.stop().await;
}

/// The objective both sides minimise: 1000 per unplaced workload + 1 per empty node opened.
fn objective(rooms: &[NodeRoom], placed: &[Option<usize>]) -> (i64, i64, i64) {
    let unplaced = i64::try_from(placed.iter().filter(|p| p.is_none()).count()).expect("n");
    let mut opened: Vec<usize> = placed
        .iter()
        .flatten()
        .copied()
        .filter(|&n| rooms[n].instances == 0)
        .collect();
    opened.sort_unstable();
    opened.dedup();
    let opened = i64::try_from(opened.len()).expect("n");
    (unplaced * 1000 + opened, unplaced, opened)
}

fn small_fleet(rng: &mut Rng, identical: bool) -> (Vec<NodeRoom>, Vec<Demand>) {
    let nodes = usize::try_from(rng.range(3, 6)).expect("n");
    let rooms: Vec<NodeRoom> = (0..nodes)
        .map(|i| {
            let mem = rng.range(2, 16) * 1024;
            let cpu = rng.range(2, 8) * 1000;
            let busy = rng.chance(50);
            NodeRoom {
                id: format!("n{i}"),
                name: format!("n{i}"),
                online: !rng.chance(10),
                cordoned: rng.chance(10),
                memory_total_mb: Some(mem),
                memory_used_mb: if busy { rng.range(0, mem / 2) } else { 0 },
                disk_total_mb: Some(rng.range(20, 200) * 1024),
                disk_used_mb: 0,
                cpu_total_millis: Some(cpu),
                cpu_used_millis: if busy { rng.range(0, cpu / 2) } else { 0 },
                ports_free: rng.range(1, 6),
                taken: Vec::new(),
                instances: i64::from(busy),
                platform: false,
            }
        })
        .collect();
    let work = usize::try_from(rng.range(4, 10)).expect("n");
    let one = |rng: &mut Rng| Demand {
        memory_mb: rng.range(1, 12) * 512,
        cpu_millis: rng.range(1, 8) * 500,
        disk_mb: rng.range(1, 40) * 1024,
        ports: Vec::new(),
        port_count: rng.range(1, 2),
    };
    let demands = if identical {
        vec![one(rng); work]
    } else {
        (0..work).map(|_| one(rng)).collect()
    };
    (rooms, demands)
}

fn oracle(fleets: usize, identical: bool) {
    let mut rng = Rng(if identical { 0x5EED_0004 } else { 0x5EED_0003 });
    let cases: Vec<(Vec<NodeRoom>, Vec<Demand>)> = (0..fleets)
        .map(|_| small_fleet(&mut rng, identical))
        .collect();
    let input: Vec<Value> = cases
        .iter()
        .map(|(rooms, demands)| {
            json!({
                "nodes": rooms.iter().map(|r| json!({
                    "eligible": r.online && !r.cordoned,
                    "memory": r.memory_total_mb.unwrap_or(0) - r.memory_used_mb,
                    "disk": r.disk_total_mb.unwrap_or(0) - r.disk_used_mb,
                    "cpu": r.cpu_total_millis.unwrap_or(0) - r.cpu_used_millis,
                    "ports": r.ports_free,
                    "empty": r.instances == 0,
                })).collect::<Vec<_>>(),
                "workloads": demands.iter().map(|d| json!({
                    "memory": d.memory_mb, "disk": d.disk_mb, "cpu": d.cpu_millis, "ports": d.port_count,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let python = std::env::var("HOME").map_or_else(
        |_| "python3".to_owned(),
        |h| format!("{h}/.cache/shardlyn/venv/bin/python"),
    );
    let script = shardlyn_tests::crate_path("support/planner_oracle.py");
    let began = Instant::now();
    let mut child = std::process::Command::new(&python)
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{python} {}: {e} (scripts/dev-services installs highspy)",
                script.display()
            )
        });
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(serde_json::to_string(&input).expect("json").as_bytes())
            .expect("write fleets");
    }
    let out = child.wait_with_output().expect("oracle");
    assert!(out.status.success(), "planner_oracle.py failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("oracle output");
    let optimum: Vec<Value> = serde_json::from_str(last).expect("oracle JSON");
    let solver_s = began.elapsed().as_secs_f64();

    let began = Instant::now();
    let heuristic: Vec<(i64, i64, i64)> = cases
        .iter()
        .map(|(rooms, demands)| objective(rooms, &fit::place_all(rooms, demands)))
        .collect();
    let heuristic_s = began.elapsed().as_secs_f64();
    let mut matches = 0;
    let mut worst = (0, 0, 0, 0);
    let mut extra_unplaced = 0;
    let mut extra_opened = 0;
    for (i, ((h, hu, ho), o)) in heuristic.iter().zip(&optimum).enumerate() {
        let opt = o["objective"].as_i64().expect("objective");
        let opt_unplaced =
            i64::try_from(cases[i].1.len()).expect("n") - o["placed"].as_i64().expect("placed");
        assert!(
            *h >= opt,
            "fleet {i}: the heuristic ({h}) beat the optimum ({opt}): the oracle's model differs"
        );
        if *h == opt {
            matches += 1;
        } else {
            extra_unplaced += hu - opt_unplaced;
            extra_opened += ho - o["opened"].as_i64().expect("opened");
        }
        if h - opt > worst.0 {
            worst = (
                h - opt,
                i,
                hu - opt_unplaced,
                ho - o["opened"].as_i64().expect("opened"),
            );
        }
    }
    println!(
        "placement vs an exact MILP (HiGHS via highspy) on {fleets} random small fleets, {} (objective 1000 × unplaced + nodes opened):",
        if identical {
            "4-10 identical copies each (what recommend's `count` asks)"
        } else {
            "4-10 workloads of different sizes each"
        }
    );
    println!(
        "  heuristic at the optimum: {matches}/{fleets} ({:.1}%); worst gap {} (fleet {}: {} more unplaced, {} more opened)",
        f64::from(matches) * 100.0 / f64::from(u32::try_from(fleets).expect("n")),
        worst.0,
        worst.1,
        worst.2,
        worst.3
    );
    println!(
        "  over the misses: {extra_unplaced} workloads more left unplaced, {extra_opened} more nodes opened in total"
    );
    println!(
        "  time: heuristic {:.2} ms for all, solver {solver_s:.1} s (process included)",
        heuristic_s * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let began = Instant::now();
    let n = usize::try_from(env_or("SHARDLYN_BENCH_PLANNER_NODES", 1000)).expect("nodes");
    scoring(n, env_or("SHARDLYN_BENCH_PLANNER_ROUNDS", 2000));
    route(n).await;
    let fleets = usize::try_from(env_or("SHARDLYN_BENCH_PLANNER_FLEETS", 200)).expect("fleets");
    oracle(fleets, true);
    oracle(fleets, false);
    println!("(whole bench {:.0} s)", began.elapsed().as_secs_f64());
}
