//! A Pterodactyl server's files copied from the old Wings' SFTP (the asyncssh fake,
//! `tests/support/wings_sftp.py`) into a new instance on a local agent, through the
//! whole stack: SFTP → panel (hashing) → tunnel → agent → volume.
//!
//! `cargo bench -p shardlyn-tests --bench pterodactyl_files` builds a tree of mixed
//! sizes (`SHARDLYN_BENCH_PTDL_MIB`, default 200: big region-like files, medium ones,
//! many small configs) and prints, in the same run against the same SFTP server:
//! - the baseline: OpenSSH's `sftp -r` (through `sshpass`) of the tree into a local
//!   directory (best of two runs);
//! - the import's copy (`pterodactyl::files::copy`), its throughput, and the ratio of
//!   the two throughputs (issue 20's goal: ≥ 0.8);
//! - a second pass of the copy (nothing changed: every file skipped).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_panel::pterodactyl::files::{self, WingsSftp};
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::bench::env_or;
use shardlyn_tests::wings::{self as fake, FakeWings, Options};
use shardlyn_tests::{Engine, spawn_app};

const IDENT: &str = "be4c4b3e";
const PASSWORD: &str = "bench-password";
const MIB: u64 = 1024 * 1024;

/// About `mib` MiB, shaped like a game server: 40 % in 32 MiB files (region files),
/// 30 % in 8 MiB, 15 % in 1 MiB (plugins), 10 % in 64 KiB and 5 % in 4 KiB files
/// (configs); an hour old.
fn fill(root: &Path, mib: u64) {
    let mut seed = 1;
    for (dir, size, percent) in [
        ("world/region", 32 * MIB, 40),
        ("world/data", 8 * MIB, 30),
        ("plugins/jars", MIB, 15),
        ("plugins/data", 64 * 1024, 10),
        ("config", 4 * 1024, 5),
    ] {
        let n = (mib * MIB * percent / 100 / size).max(1);
        for i in 0..n {
            seed += 1;
            let bytes = fake::noise(usize::try_from(size).expect("size"), seed);
            fake::put(root, &format!("{dir}/f{i}.bin"), &bytes, 0o644);
        }
    }
    fake::age(root, Duration::from_secs(3600));
}

fn sftp_r(wings: &FakeWings, into: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).expect("mkdir");
    let began = Instant::now();
    let status = Command::new("sshpass")
        .args(["-p", PASSWORD, "sftp", "-q", "-r"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "LogLevel=ERROR",
        ])
        .args(["-P", &wings.sftp_port.to_string()])
        .arg(format!("admin.{IDENT}@127.0.0.1:/"))
        .arg(into)
        .status()
        .expect("run sshpass + sftp (installed by scripts/dev-services)");
    assert!(status.success(), "sftp -r failed");
    began.elapsed()
}

#[expect(clippy::cast_precision_loss, reason = "a size shown in MiB")]
fn mib_of(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn mib_per_s(bytes: u64, took: Duration) -> f64 {
    mib_of(bytes) / took.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let mib = env_or("SHARDLYN_BENCH_PTDL_MIB", 200);
    let wings = FakeWings::start(PASSWORD, Options::default()).await;
    let source = wings.server_dir(IDENT);
    fill(&source, mib);
    let bytes: u64 = walk_bytes(&source);

    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let token = admin.access.as_str();
    let (config, dir) = register_node(&app, token).await;
    let _agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, token, &config.node_id, "online").await;
    let workload = busybox_workload(&app, token).await;
    let created = app
        .post(
            "/v1/instances",
            Some(token),
            json!({"name": "bench", "workload_id": workload, "node_id": config.node_id,
                "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 20,
                    "disk_mb": mib * 4 + 1024, "pids": 64, "io_weight": 500}}),
        )
        .await
        .expect(201)
        .body;
    let id = created["id"].as_str().expect("id").to_owned();
    wait_instance(&app, token, &id, "offline", Duration::from_secs(120)).await;
    let instance = shardlyn_panel::instances::store::find(&app.state.db.pool, &id)
        .await
        .expect("read")
        .expect("instance");

    let local = tempfile::tempdir().expect("tempdir");
    let first = sftp_r(&wings, &local.path().join("a"));
    let second = sftp_r(&wings, &local.path().join("b"));
    let baseline = first.min(second);
    let base_rate = mib_per_s(bytes, baseline);
    println!(
        "tree: {:.1} MiB; sftp -r: {:.2} s, {base_rate:.1} MiB/s (best of 2)",
        mib_of(bytes),
        baseline.as_secs_f64()
    );

    let from = WingsSftp {
        host: "127.0.0.1".into(),
        port: wings.sftp_port,
        username: format!("admin.{IDENT}"),
        password: PASSWORD.into(),
        known_host: None,
    };
    let outbound = &app.state.config.outbound;
    let began = Instant::now();
    let report = files::copy(&app.state, outbound, &from, &instance, &|_| {})
        .await
        .expect("the copy");
    let took = began.elapsed();
    assert_eq!(report.bytes, bytes, "{report:?}");
    let rate = mib_per_s(bytes, took);
    println!(
        "import copy: {:.2} s, {rate:.1} MiB/s ({} files, checksums compared)",
        took.as_secs_f64(),
        report.files
    );
    println!(
        "ratio (import / sftp -r throughput): {:.2} (goal >= 0.8)",
        rate / base_rate
    );

    let began = Instant::now();
    let again = files::copy(&app.state, outbound, &from, &instance, &|_| {})
        .await
        .expect("the second pass");
    println!(
        "second pass, nothing changed: {:.2} s, {} files skipped, {} bytes sent",
        began.elapsed().as_secs_f64(),
        again.skipped_same,
        again.bytes
    );
    // With the ledger gone, every file is on the new node at its size but unknown: each
    // is read from SFTP and hashed, nothing sent (the SFTP side of the copy alone).
    sqlx::query("DELETE FROM pterodactyl_files WHERE instance_id = $1")
        .bind(&id)
        .execute(&app.state.db.pool)
        .await
        .expect("forget the ledger");
    let began = Instant::now();
    let read = files::copy(&app.state, outbound, &from, &instance, &|_| {})
        .await
        .expect("the reading pass");
    let took = began.elapsed();
    println!(
        "ledger forgotten, every file read from SFTP and hashed, none sent: {:.2} s, {:.1} MiB/s ({} bytes sent)",
        took.as_secs_f64(),
        mib_per_s(bytes, took),
        read.bytes
    );
    let _ = std::fs::remove_dir_all(dir.path().join("volumes").join(&id));
}

fn walk_bytes(root: &Path) -> u64 {
    fake::tree(root)
        .keys()
        .map(|rel| {
            let meta = std::fs::symlink_metadata(root.join(rel)).expect("meta");
            if meta.is_file() { meta.len() } else { 0 }
        })
        .sum()
}
