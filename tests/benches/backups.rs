//! Backup throughput: the agent's archive pipeline (tar → multithreaded zstd → SHA-256 →
//! file, `shardlyn_agent::backups::archive`, exactly what a local backup runs) on a
//! mixed tree, against `tar -I 'zstd -1 -T0'` on the same tree in the same run.
//!
//! `cargo bench -p shardlyn-tests --bench backups` prints both times and the ratio
//! (tar's time / ours: above 1.0 is faster than tar). Goal ≥ 1.0.
//!
//! The tree (default 1 GiB, `BENCH_BACKUP_MB` to change): 40% incompressible files
//! (already-compressed assets), 40% compressible region-like binary files, 20% small text
//! files (configs, plugin data). Each side runs `BENCH_ROUNDS` times (default 2),
//! alternating; the best time of each counts.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use shardlyn_agent::backups::archive::{HashWriter, estimate, write_archive};
use shardlyn_agent::backups::progress::{EVERY, Reporter};
use shardlyn_proto::backup::BackupOperation;
use shardlyn_tests::bench::env_or;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn make_tree(root: &Path, total_mb: u64) -> std::io::Result<u64> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mb = 1024 * 1024;
    let mut written = 0u64;
    // 40% incompressible, in 8 MiB files.
    std::fs::create_dir_all(root.join("assets"))?;
    let n = (total_mb * 4 / 10).div_ceil(8);
    let mut buf = vec![0u8; 8 * mb as usize];
    for i in 0..n {
        rng.fill(&mut buf);
        std::fs::write(root.join(format!("assets/pack-{i}.bin")), &buf)?;
        written += buf.len() as u64;
    }
    // 40% compressible: region-like files of 4 MiB, runs of few distinct values.
    std::fs::create_dir_all(root.join("world/region"))?;
    let n = (total_mb * 4 / 10).div_ceil(4);
    let mut buf = vec![0u8; 4 * mb as usize];
    for i in 0..n {
        let mut pos = 0;
        while pos < buf.len() {
            let r = rng.next();
            let run = 1 + (r % 64) as usize;
            let value = (r >> 8) as u8 % 12;
            let end = (pos + run).min(buf.len());
            buf[pos..end].fill(value);
            pos = end;
        }
        std::fs::write(root.join(format!("world/region/r.{i}.mca")), &buf)?;
        written += buf.len() as u64;
    }
    // 20% small text files of 8 KiB in directories of 500.
    let words = [
        "spawn", "player", "true", "false", "level", "motd", "100", "world", "enabled",
    ];
    let n = total_mb * mb / 5 / 8192;
    for i in 0..n {
        let dir = root.join(format!("plugins/p{}", i / 500));
        if i % 500 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        let mut text = Vec::with_capacity(8192);
        while text.len() < 8192 {
            let w = words[(rng.next() % words.len() as u64) as usize];
            let _ = writeln!(text, "{w}-{}: {w}", rng.next() % 1000);
        }
        text.truncate(8192);
        written += text.len() as u64;
        std::fs::write(dir.join(format!("config-{i}.yml")), text)?;
    }
    Ok(written)
}

fn run_tar(root: &Path, out: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new("tar")
        .args(["-I", "zstd -1 -T0", "-cf"])
        .arg(out)
        .arg("-C")
        .arg(root)
        .arg(".")
        .status();
    let elapsed = started.elapsed();
    assert!(
        status.is_ok_and(|s| s.success()),
        "tar -I 'zstd -1 -T0' failed"
    );
    elapsed
}

fn run_ours(root: &Path, out: &Path) -> (Duration, u64) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let started = Instant::now();
    // As the agent does: the size estimate first, then the archive with its progress
    // counted and reported.
    let (tx, _rx) = tokio::sync::broadcast::channel(256);
    let reporter = Reporter::new(tx, "bench", "bench", BackupOperation::Backup, EVERY);
    reporter.start(estimate(root, "").expect("estimate"));
    let file = std::fs::File::create(out).expect("archive file");
    let w = HashWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let (w, _sha, size) = write_archive(root, "", threads, w, &reporter)
        .expect("archive")
        .finish();
    w.into_inner().expect("flush").sync_all().expect("sync");
    (started.elapsed(), size)
}

fn main() {
    let total_mb = env_or("BENCH_BACKUP_MB", 1024);
    let rounds = env_or("BENCH_ROUNDS", 2).max(1);
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("tree");
    let t = Instant::now();
    let bytes = make_tree(&root, total_mb).expect("tree");
    println!(
        "backups: tree of {:.0} MiB built in {:.1}s",
        bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let tar_out = dir.path().join("tar.tar.zst");
    let our_out = dir.path().join("ours.tar.zst");
    let mut best_tar = Duration::MAX;
    let mut best_ours = Duration::MAX;
    let mut our_size = 0;
    for _ in 0..rounds {
        best_tar = best_tar.min(run_tar(&root, &tar_out));
        let _ = std::fs::remove_file(&tar_out);
        let (d, size) = run_ours(&root, &our_out);
        best_ours = best_ours.min(d);
        our_size = size;
        let _ = std::fs::remove_file(&our_out);
    }
    let mbps = |d: Duration| bytes as f64 / 1048576.0 / d.as_secs_f64();
    println!(
        "backups: tar -I 'zstd -1 -T0': {:.2}s ({:.0} MiB/s); shardlyn: {:.2}s ({:.0} MiB/s), archive {:.0} MiB",
        best_tar.as_secs_f64(),
        mbps(best_tar),
        best_ours.as_secs_f64(),
        mbps(best_ours),
        our_size as f64 / 1048576.0
    );
    println!(
        "backups: ratio (tar time / shardlyn time) = {:.2} (goal >= 1.0)",
        best_tar.as_secs_f64() / best_ours.as_secs_f64()
    );
}
