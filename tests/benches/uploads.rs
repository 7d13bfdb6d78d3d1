//! tus upload throughput through the whole stack: client → panel (HTTP/1.1) → tunnel
//! (HTTP/2 over a WebSocket) → agent → partial file → placed in the instance directory.
//!
//! `cargo bench -p shardlyn-tests --bench uploads` uploads `BENCH_UPLOAD_MIB` (default
//! 1024) MiB in `BENCH_CHUNK_MIB` (default 32) MiB PATCHes, then writes the same bytes
//! in the same chunks to a file on the same disk (synced at the end, as the agent syncs
//! each chunk), and prints both rates and their ratio. Goal ≥ 0.5.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::bench::env_or;
use shardlyn_tests::{Engine, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

#[expect(clippy::cast_precision_loss, reason = "a rate for display")]
fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let total_mib = env_or("BENCH_UPLOAD_MIB", 1024);
    let chunk_mib = env_or("BENCH_CHUNK_MIB", 32).clamp(1, total_mib.max(1));
    let chunk_len = usize::try_from(chunk_mib << 20).expect("chunk size");
    let chunks = total_mib.div_ceil(chunk_mib);
    let total = chunks * (chunk_mib << 20);
    // 'static, so every PATCH sends it without a copy.
    let chunk: &'static [u8] = Box::leak(
        (0..chunk_len)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );

    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let instance = app
        .post(
            "/v1/instances",
            Some(&admin.access),
            json!({
                "name": "bench",
                "workload_id": workload,
                "node_id": config.node_id,
                "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 0, "pids": 64, "io_weight": 500},
            }),
        )
        .await
        .expect(201)
        .body;
    let id = instance["id"].as_str().expect("id").to_string();
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    let client = reqwest::Client::new();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    // Through the panel and the tunnel.
    let started = Instant::now();
    let r = client
        .post(format!("{}/v1/instances/{id}/files/tus", app.base))
        .bearer_auth(&admin.access)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", total.to_string())
        .header("upload-metadata", format!("filename {}", b64("bench.bin")))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let url = format!(
        "{}{}",
        app.base,
        r.headers()["location"].to_str().expect("location")
    );
    let mut offset = 0u64;
    for _ in 0..chunks {
        let r = client
            .patch(&url)
            .bearer_auth(&admin.access)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(chunk)
            .send()
            .await
            .expect("patch");
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
        offset += chunk_len as u64;
    }
    let tus = started.elapsed();
    let placed = dir.path().join("volumes").join(&id).join("bench.bin");
    assert_eq!(
        std::fs::metadata(&placed).map(|m| m.len()).ok(),
        Some(total),
        "file placed"
    );
    std::fs::remove_file(&placed).ok();

    // A raw write of the same bytes to the same disk.
    let raw_path = dir.path().join("raw.bin");
    let started = Instant::now();
    let mut f = std::fs::File::create(&raw_path).expect("raw file");
    for _ in 0..chunks {
        f.write_all(chunk).expect("raw write");
    }
    f.sync_all().expect("sync");
    let raw = started.elapsed();
    drop(f);
    std::fs::remove_file(&raw_path).ok();

    let (tus_rate, raw_rate) = (mib_per_s(total, tus), mib_per_s(total, raw));
    println!("tus upload: {} MiB in {chunk_mib} MiB chunks", total >> 20);
    println!(
        "  through panel + tunnel: {:>8.1} MiB/s ({:.2} s)",
        tus_rate,
        tus.as_secs_f64()
    );
    println!(
        "  raw write, same disk:   {:>8.1} MiB/s ({:.2} s)",
        raw_rate,
        raw.as_secs_f64()
    );
    println!(
        "  ratio: {:.2} (goal >= 0.5)",
        tus_rate / raw_rate.max(f64::MIN_POSITIVE)
    );
    agent.stop().await;
    app.stop().await;
}
