//! Moving a server between two nodes (two agents on this machine, a real panel, real
//! Docker), through the whole stack: source agent → tunnel → panel → tunnel → target
//! agent.
//!
//! `cargo bench -p shardlyn-tests --bench migrations` prints:
//! - throughput of a move of a stopped server of mixed files (`BENCH_MIGRATE_MB`, default
//!   1024), against `tar -I 'zstd -1 -T0' -c | tar -I zstd -x` between the same two
//!   directories in the same run, as a ratio (goal ≥ 0.5);
//! - downtime of a running server's move (the `final_sync` event, when it stops, to its
//!   `running` state on the target) when `BENCH_CHANGED_MB` (default 10, then 4× and
//!   12× that) changed after the first copy (goal < 5 s at 10 MiB): region files the
//!   target has already staged are rewritten on the source, so the final pass must send
//!   exactly them again.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::bench::env_or;
use shardlyn_tests::sse::SseStream;
use shardlyn_tests::{Engine, TestApp, spawn_app};

const WAIT: Duration = Duration::from_secs(600);

/// `len` incompressible bytes into `path`.
fn fill_noise(path: &Path, len: usize, seed: u64) {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(path, bytes).expect("write");
}

/// Bytes half compressible (text-like), half not (region files), like a game world.
fn fill(root: &Path, mb: u64, seed: u64) {
    std::fs::create_dir_all(root.join("world/region")).expect("mkdir");
    std::fs::create_dir_all(root.join("plugins/config")).expect("mkdir");
    let mut x = seed | 1;
    let mut noise = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let mut written = 0u64;
    let mut i = 0;
    while written < mb << 20 {
        let region = noise(4 << 20);
        std::fs::write(root.join(format!("world/region/r.{i}.mca")), &region).expect("write");
        let text: String = (0..40_000)
            .map(|n| format!("key.{i}.{n}=value {n}\n"))
            .collect();
        std::fs::write(root.join(format!("plugins/config/c{i}.yml")), &text).expect("write");
        for s in 0..16 {
            std::fs::write(
                root.join(format!("plugins/config/s{i}-{s}.json")),
                format!("{{\"n\": {s}}}"),
            )
            .expect("write");
        }
        written += (region.len() + text.len()) as u64;
        i += 1;
    }
}

fn tar_pipe(src: &Path, dst: &Path) -> Duration {
    std::fs::create_dir_all(dst).expect("mkdir");
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -I 'zstd -1 -T0' -cf - -C '{}' . | tar -I zstd -xf - -C '{}'",
            src.display(),
            dst.display()
        ))
        .status()
        .expect("tar");
    assert!(status.success(), "tar | tar failed");
    started.elapsed()
}

async fn instance(app: &TestApp, token: &str, node: &str, workload: &str, name: &str) -> String {
    let created = app
        .post(
            "/v1/instances",
            Some(token),
            json!({"name": name, "workload_id": workload, "node_id": node, "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 8192, "pids": 64, "io_weight": 500}}),
        )
        .await
        .expect(201)
        .body;
    let id = created["id"].as_str().expect("id").to_owned();
    wait_instance(app, token, &id, "offline", WAIT).await;
    id
}

async fn until_ended(app: &TestApp, token: &str, id: &str) -> Value {
    loop {
        let m = app
            .get(&format!("/v1/migrations/{id}"), Some(token))
            .await
            .expect(200)
            .body;
        if ["completed", "failed", "cancelled"].contains(&m["state"].as_str().unwrap_or("")) {
            assert_eq!(m["state"], "completed", "{m}");
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mb = env_or("BENCH_MIGRATE_MB", 1024);
    let changed = env_or("BENCH_CHANGED_MB", 10);
    shardlyn_tests::docker::ensure_test_image();
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = admin.access.clone();
    let (config_a, dir_a) = register_node(&app, &t).await;
    let (config_b, dir_b) = register_node(&app, &t).await;
    let agent_a = LocalAgent::start(config_a.clone(), dir_a.path());
    let agent_b = LocalAgent::start(config_b.clone(), dir_b.path());
    wait_node(&app, &t, &config_a.node_id, "online").await;
    wait_node(&app, &t, &config_b.node_id, "online").await;
    let workload = busybox_workload(&app, &t).await;

    // Throughput: a stopped server against tar | tar.
    let id = instance(&app, &t, &config_a.node_id, &workload, "big").await;
    let volume = dir_a.path().join("volumes").join(&id);
    fill(&volume, mb, 1);
    let scratch = tempfile::tempdir().expect("tmp");
    let base = tar_pipe(&volume, &scratch.path().join("copy"));
    let started = Instant::now();
    let r = app
        .post(
            &format!("/v1/instances/{id}/migrate"),
            Some(&t),
            json!({"target_node_id": config_b.node_id}),
        )
        .await
        .expect(202);
    let m = until_ended(&app, &t, r.body["id"].as_str().expect("id")).await;
    let ours = started.elapsed();
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let rate = |d: Duration| (mb as f64) / d.as_secs_f64();
    println!(
        "migrations: {mb} MiB: tar | tar {:.2}s ({:.0} MiB/s); move {:.2}s ({:.0} MiB/s, {} MiB through the tunnels)",
        base.as_secs_f64(),
        rate(base),
        ours.as_secs_f64(),
        rate(ours),
        m["bytes_copied"].as_i64().unwrap_or(0) >> 20
    );
    println!(
        "migrations: throughput ratio (tar time / move time) = {:.2} (goal >= 0.5)",
        base.as_secs_f64() / ours.as_secs_f64()
    );
    app.delete(&format!("/v1/instances/{id}?force=true"), Some(&t))
        .await
        .expect(204);

    // Downtime of a running server, with some data changed after the first copy took it.
    for changed_mb in [changed, changed * 4, changed * 12] {
        let id = instance(&app, &t, &config_a.node_id, &workload, "live").await;
        let volume = dir_a.path().join("volumes").join(&id);
        fill(&volume, mb / 2, 2);
        app.post(&format!("/v1/instances/{id}/start"), Some(&t), json!({}))
            .await
            .expect(202);
        wait_instance(&app, &t, &id, "running", WAIT).await;
        let auth = format!("Bearer {t}");
        let mut events = SseStream::open(
            &app.client,
            &format!("{}/v1/events", app.base),
            &[("authorization", auth.as_str())],
        )
        .await
        .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
        let r = app
            .post(
                &format!("/v1/instances/{id}/migrate"),
                Some(&t),
                json!({"target_node_id": config_b.node_id}),
            )
            .await
            .expect(202);
        let mid = r.body["id"].as_str().expect("id").to_owned();
        // Region files (4 MiB) the target has whole are rewritten on the source: the
        // final pass sends them again.
        let files = usize::try_from(changed_mb.div_ceil(4)).unwrap_or(1);
        let staged = dir_b
            .path()
            .join("transfers")
            .join(&id)
            .join("files/world/region");
        let deadline = Instant::now() + WAIT;
        let names = loop {
            let whole: Vec<std::ffi::OsString> = std::fs::read_dir(&staged)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.metadata().is_ok_and(|m| m.len() == 4 << 20))
                        .map(|e| e.file_name())
                        .take(files)
                        .collect()
                })
                .unwrap_or_default();
            if whole.len() == files {
                break whole;
            }
            assert!(Instant::now() < deadline, "the first copy never got there");
            std::thread::sleep(Duration::from_millis(2));
        };
        for (n, name) in names.iter().enumerate() {
            let region = volume.join("world/region").join(name);
            let len = std::fs::metadata(&region).map_or(4 << 20, |m| m.len());
            let fresh = tempfile::NamedTempFile::new_in(dir_a.path()).expect("tmp");
            fill_noise(
                fresh.path(),
                usize::try_from(len).unwrap_or(4 << 20),
                99 + n as u64,
            );
            fresh.persist(&region).expect("rewrite");
        }
        let state = app
            .get(&format!("/v1/migrations/{mid}"), Some(&t))
            .await
            .expect(200)
            .body["state"]
            .clone();
        if state != "copying" {
            println!(
                "migrations: note: the changes were written during {state}, not the first copy"
            );
        }
        let (mut stopped, mut running) = (None, None);
        while running.is_none() {
            let e = events.next(WAIT).await.expect("event").expect("open");
            match e.event.as_str() {
                "migration"
                    if e.data["migration_id"] == mid.as_str()
                        && e.data["state"] == "final_sync" =>
                {
                    stopped = Some(Instant::now());
                }
                "instance_state"
                    if e.data["instance_id"] == id.as_str()
                        && e.data["node_id"] == config_b.node_id.as_str()
                        && e.data["state"] == "running" =>
                {
                    running = Some(Instant::now());
                }
                _ => {}
            }
        }
        until_ended(&app, &t, &mid).await;
        // When the events arrived here: their own `at` is in whole seconds.
        let downtime = running
            .expect("running on the target")
            .duration_since(stopped.expect("a final_sync event"))
            .as_millis();
        println!(
            "migrations: downtime with {} MiB changed after the first copy: {downtime} ms (goal < 5000 ms at {changed} MiB)",
            files * 4
        );
        app.delete(&format!("/v1/instances/{id}?force=true"), Some(&t))
            .await
            .expect(204);
    }
    agent_a.stop().await;
    agent_b.stop().await;
}
