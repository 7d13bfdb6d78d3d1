//! Importing 500 servers' records from a Pterodactyl database (no files).
//!
//! `cargo bench -p shardlyn-tests --bench pterodactyl_import` starts a private MariaDB
//! loaded with Pterodactyl's tables (`shardlyn_tests::mariadb`, values encrypted by
//! Laravel's own encrypter) holding the sample and `SHARDLYN_BENCH_PTERO_SERVERS` more
//! servers (default 500; one owner per five, two allocations each, a subuser on every
//! tenth, a schedule on every fifth), and a panel (SQLite;
//! `SHARDLYN_BENCH_PTERO_ENGINE=postgres` for PostgreSQL) with one platform node, and
//! prints:
//! - the baseline: the same number of servers made one by one with `POST /v1/instances`
//!   in the same run (what making them by hand through the API costs);
//! - the import: its wall time, the time per server and its ratio to the baseline's;
//! - the queries it sent the source (MariaDB's `Com_select`), and what it made.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shardlyn_tests::bench::env_or;
use shardlyn_tests::mariadb::PteroDb;
use shardlyn_tests::{Engine, spawn_app_with};

const GIB: i64 = 1024 * 1024 * 1024;

fn selects(status: &str) -> u64 {
    status
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("Com_select")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = usize::try_from(env_or("SHARDLYN_BENCH_PTERO_SERVERS", 500)).expect("servers");
    let engine = match std::env::var("SHARDLYN_BENCH_PTERO_ENGINE").as_deref() {
        Ok("postgres") => Engine::Postgres,
        _ => Engine::Sqlite,
    };
    let app = spawn_app_with(engine, |c| {
        c.instances.port_range_start = 20_000;
        c.instances.port_range_end = 60_000;
    })
    .await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let node = app.register_node(&admin.access, None, "platform-1").await;
    app.mark_node_online(&node, 100_000 * GIB, 1_000_000 * GIB)
        .await;
    app.put(
        &format!("/v1/admin/nodes/{node}/platform"),
        t,
        json!({"platform": true}),
    )
    .await
    .expect(200);

    // Baseline: n servers made one by one through the API, on the same node.
    let workload = app
        .post(
            "/v1/workloads/from-template",
            t,
            json!({"template": "minecraft-paper"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("workload")
        .to_owned();
    let began = Instant::now();
    for i in 0..n {
        app.post(
            "/v1/instances",
            t,
            json!({"name": format!("hand-{i}"), "workload_id": workload, "node_id": node,
                   "port_count": 2, "limits": {"memory_mb": 2048, "disk_mb": 10240, "cpu_percent": 200}}),
        )
        .await
        .expect(201);
    }
    let baseline = began.elapsed();

    let db = PteroDb::start().await;
    db.load_many(n).await;
    let before = selects(&db.root_sql("SHOW GLOBAL STATUS LIKE 'Com_select'").await);
    let mut body = db.body();
    body["dry_run"] = json!(false);
    let began = Instant::now();
    let r = app
        .post("/v1/pterodactyl/import", t, body)
        .await
        .expect(202);
    let id = r.body["id"].as_str().expect("import id").to_owned();
    let done: Value = loop {
        let r = app
            .get(&format!("/v1/pterodactyl/imports/{id}"), t)
            .await
            .expect(200);
        if matches!(r.body["status"].as_str(), Some("succeeded" | "failed")) {
            break r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = began.elapsed();
    // The status queries count once each.
    let after = selects(&db.root_sql("SHOW GLOBAL STATUS LIKE 'Com_select'").await);
    let queries = after - before - 1;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let count = |kind: &str, status: &str| {
        done["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["kind"] == kind && i["status"] == status)
            .count()
    };
    let servers = count("server", "imported");
    let per_base = baseline.as_secs_f64() * 1000.0 / n as f64;
    let per_import = took.as_secs_f64() * 1000.0 / servers.max(1) as f64;
    println!("pterodactyl import of {n} servers' records ({engine:?}, debug or release as built):");
    println!(
        "  baseline: {n} POST /v1/instances one by one: {:.0} ms, {per_base:.2} ms a server",
        baseline.as_secs_f64() * 1000.0
    );
    println!(
        "  import:   {:.0} ms for {servers} servers, {} users, {} grants, {} schedules: {per_import:.2} ms a server ({:.2}x the baseline's)",
        took.as_secs_f64() * 1000.0,
        count("user", "imported"),
        count("subuser", "imported"),
        count("schedule", "imported"),
        per_import / per_base
    );
    println!("  queries to the source database: {queries} SELECTs");
}
