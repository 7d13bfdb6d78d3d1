//! Listing a huge directory: one page of a 100,000-entry directory through the whole
//! stack (client → panel → tunnel → agent → `readdir` → back), against a raw `readdir`
//! of the same directory (names and types, as `ls -f` reads it) in the same run.
//!
//! `cargo bench -p shardlyn-tests --bench files` prints p50/p99 of both, for the first
//! page sorted by name, a later page, and the first page sorted by size (which must
//! `stat` every entry). Goal: p99 < 200 ms.
//!
//! `BENCH_ENTRIES` (default 100000) and `BENCH_ROUNDS` (default 50) tune it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::bench::env_or;
use shardlyn_tests::{Engine, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short list"
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// p50 and p99 of `samples` (ms).
fn summary(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// `entries` small files named like a busy plugin or world directory.
fn populate(dir: &Path, entries: u64) {
    std::fs::create_dir_all(dir).expect("dir");
    for i in 0..entries {
        std::fs::write(dir.join(format!("r.{}.{}.mca", i % 317, i)), b"x").expect("file");
    }
}

/// The baseline: one `readdir` of `dir`, names and types, as `ls -f` does.
fn raw_readdir(dir: &Path) -> f64 {
    let began = Instant::now();
    let mut n = 0usize;
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let _ = entry.file_type().expect("type");
        n += 1;
    }
    assert!(n > 0);
    began.elapsed().as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let entries = env_or("BENCH_ENTRIES", 100_000);
    let rounds = env_or("BENCH_ROUNDS", 50);
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
            json!({"name": "bench-files", "workload_id": workload, "node_id": config.node_id,
                   "ports": [free_port()],
                   "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 0, "disk_mb": 4096, "pids": 64, "io_weight": 500}}),
        )
        .await
        .expect(201);
    let id = r.body["id"].as_str().expect("id").to_string();
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;

    let big = dir.path().join("volumes").join(&id).join("region");
    let made = Instant::now();
    populate(&big, entries);
    println!(
        "files: {entries} entries written in {:.1} s",
        made.elapsed().as_secs_f64()
    );

    let raw: Vec<f64> = (0..rounds).map(|_| raw_readdir(&big)).collect();
    let (raw50, raw99) = summary(raw);
    println!("baseline raw readdir of {entries} entries: p50 {raw50:.1} ms, p99 {raw99:.1} ms");

    let last_page = entries / 100;
    for (label, query) in [
        ("first page by name", "page=1&per_page=100".to_owned()),
        (
            "a late page by name",
            format!("page={last_page}&per_page=100"),
        ),
        (
            "first page by size, descending",
            "page=1&per_page=100&sort=size&desc=true".to_owned(),
        ),
    ] {
        let url = format!("/v1/instances/{id}/files?path=/region&{query}");
        let mut times = Vec::new();
        for _ in 0..rounds {
            let began = Instant::now();
            let r = app.get(&url, t).await.expect(200);
            times.push(began.elapsed().as_secs_f64() * 1000.0);
            let listed = r.body["entries"].as_array().map_or(0, Vec::len);
            assert_eq!(listed, 100, "{label}: a full page");
        }
        let (p50, p99) = summary(times);
        println!(
            "files list ({label}) of {entries} entries: p50 {p50:.1} ms, p99 {p99:.1} ms (goal p99 < 200 ms), ratio p50 to raw readdir {:.2}",
            p50 / raw50
        );
    }

    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    agent.stop().await;
    app.stop().await;
}
