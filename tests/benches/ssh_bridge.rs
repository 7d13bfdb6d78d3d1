//! The WebSocket SSH bridge (`GET /v1/nodes/{id}/ssh`: browser → panel → tunnel → agent
//! → the node's sshd) against a direct `ssh` to the same sshd, in the same run, both on a
//! PTY (`ssh -tt`), on loopback:
//!
//! - throughput of a bulk copy: `cat` of `BENCH_MIB` (default 256) MiB of text;
//! - keystroke echo latency: `BENCH_KEYS` (default 300) single keystrokes, each waiting
//!   for its echo, p50 and p99; also through the terminal (the agent's own PTY).
//!
//! `cargo bench -p shardlyn-tests --bench ssh_bridge`

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_tests::bench::{env_or, percentile};
use shardlyn_tests::shell::{Ended, Shell, SshNode};
use shardlyn_tests::sshd::{CLIENT_OPTIONS, user_key};
use shardlyn_tests::{Engine, spawn_app_with};

const WAIT: Duration = Duration::from_secs(600);

/// Writes `mib` MiB of printable lines to `path`.
fn text_file(path: &Path, mib: u64) {
    let mut line = [b'x'; 100];
    line[99] = b'\n';
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("file"));
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..(mib * 1024 * 1024 / 100) {
        for b in &mut line[..99] {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = b'!' + u8::try_from(seed % 94).unwrap_or(0);
        }
        file.write_all(&line).expect("write");
    }
    file.flush().expect("flush");
}

fn ssh_args(key: &Path, port: u16) -> Vec<String> {
    CLIENT_OPTIONS
        .iter()
        .chain(&["-o", "LogLevel=ERROR", "-tt"])
        .map(ToString::to_string)
        .chain([
            "-o".into(),
            format!("CertificateFile={}-cert.pub", key.display()),
            "-i".into(),
            key.display().to_string(),
            "-p".into(),
            port.to_string(),
            "root@127.0.0.1".into(),
        ])
        .collect()
}

/// MiB/s of `ssh -tt cat file`.
fn direct_copy(key: &Path, port: u16, file: &Path) -> (f64, u64) {
    let start = Instant::now();
    let mut child = Command::new("ssh")
        .args(ssh_args(key, port))
        .arg(format!("cat {}", file.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssh");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    assert!(child.wait().expect("wait").success());
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let rate = got as f64 / 1_048_576.0 / start.elapsed().as_secs_f64();
    (rate, got)
}

/// MiB/s of the same through the bridge.
async fn bridged_copy(n: &SshNode, file: &Path) -> (f64, u64) {
    let url = ticket(n, "ssh").await;
    let start = Instant::now();
    let command = format!("cat {}", file.display()).replace(' ', "%20");
    let mut shell = Shell::connect(&format!("{url}&login=root&command={command}"), None)
        .await
        .expect("open");
    let mut got = 0u64;
    while let Some(bytes) = shell.next_output(WAIT).await {
        got += bytes.len() as u64;
    }
    let end = shell.control.last().cloned().unwrap_or_default();
    assert_eq!(end["type"], "exit", "{end}");
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let rate = got as f64 / 1_048_576.0 / start.elapsed().as_secs_f64();
    (rate, got)
}

async fn ticket(n: &SshNode, kind: &str) -> String {
    let t = n
        .app
        .post(
            &format!("/v1/nodes/{}/{kind}/tickets", n.node),
            Some(&n.token),
            json!({}),
        )
        .await
        .expect(201)
        .body;
    format!("{}{}", n.app.base, t["url"].as_str().expect("url"))
}

/// Echo latencies (ms) of `keys` keystrokes typed into a direct `ssh -tt` shell.
fn direct_echo(key: &Path, port: u16, keys: u64) -> Vec<f64> {
    let mut child = Command::new("ssh")
        .args(ssh_args(key, port))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssh");
    let mut input = child.stdin.take().expect("stdin");
    let mut out = child.stdout.take().expect("stdout");
    // A prompt-free shell: `cat` echoes through the PTY's line discipline.
    input.write_all(b"exec cat\n").expect("write");
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("exec cat") {
        let n = out.read(&mut buf).expect("read");
        assert!(n > 0, "ssh ended");
        seen.extend_from_slice(&buf[..n]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut took = Vec::new();
    for i in 0..keys {
        let key = b'a' + u8::try_from(i % 26).unwrap_or(0);
        let start = Instant::now();
        input.write_all(&[key]).expect("key");
        loop {
            let n = out.read(&mut buf).expect("read");
            assert!(n > 0, "ssh ended");
            if buf[..n].contains(&key) {
                break;
            }
        }
        took.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = child.kill();
    let _ = child.wait();
    took
}

/// Echo latencies (ms) through a shell socket.
async fn bridged_echo(url: &str, keys: u64) -> Vec<f64> {
    let mut shell = Shell::connect(url, None).await.expect("open");
    shell.input(b"exec cat\n").await;
    shell
        .wait_output("exec cat", WAIT)
        .await
        .expect("the shell runs");
    // Let the prompt's leftovers arrive before measuring.
    while shell
        .next_output(Duration::from_millis(300))
        .await
        .is_some()
    {}
    let mut took = Vec::new();
    for i in 0..keys {
        let key = b'a' + u8::try_from(i % 26).unwrap_or(0);
        let start = Instant::now();
        shell.input(&[key]).await;
        loop {
            let bytes = shell.next_output(WAIT).await.expect("echo");
            if bytes.contains(&key) {
                break;
            }
        }
        took.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    shell.input(&[3]).await;
    assert!(matches!(
        shell.wait_end(Duration::from_secs(10)).await,
        Ended::Exit(_) | Ended::Closed
    ));
    took
}

fn quantiles(mut took: Vec<f64>) -> (f64, f64) {
    took.sort_by(f64::total_cmp);
    (percentile(&took, 0.5), percentile(&took, 0.99))
}

#[tokio::main]
async fn main() {
    let mib = env_or("BENCH_MIB", 256);
    let keys = env_or("BENCH_KEYS", 300);
    let app = spawn_app_with(Engine::Sqlite, |c| c.rate_limit.enabled = false).await;
    let n = SshNode::on(app).await;
    let file = n.dir.path().join("bulk.txt");
    text_file(&file, mib);

    // A certificate for the direct ssh, from the same CA, for the same login.
    let (key, public) = user_key(n.dir.path(), "bench");
    let signed = n
        .app
        .post(
            "/v1/ssh/certificate",
            Some(&n.token),
            json!({"public_key": public, "principals": ["root"], "node_id": n.node}),
        )
        .await
        .expect(200)
        .body;
    std::fs::write(
        format!("{}-cert.pub", key.display()),
        signed["certificate"].as_str().expect("certificate"),
    )
    .expect("cert");

    let port = n.sshd.port;
    let (direct, direct_bytes) = {
        let (key, file) = (key.clone(), file.clone());
        tokio::task::spawn_blocking(move || direct_copy(&key, port, &file))
            .await
            .expect("direct")
    };
    let (bridged, bridged_bytes) = bridged_copy(&n, &file).await;
    println!(
        "ssh_bridge: cat {mib} MiB: direct ssh {direct:.0} MiB/s ({direct_bytes} bytes), bridge {bridged:.0} MiB/s ({bridged_bytes} bytes)"
    );
    println!(
        "ssh_bridge: throughput ratio {:.2} (bridge over direct ssh; goal >= 0.5)",
        bridged / direct
    );

    let (d50, d99) = {
        let key = key.clone();
        quantiles(
            tokio::task::spawn_blocking(move || direct_echo(&key, port, keys))
                .await
                .expect("direct echo"),
        )
    };
    let ssh_url = format!("{}&login=root", ticket(&n, "ssh").await);
    let (b50, b99) = quantiles(bridged_echo(&ssh_url, keys).await);
    let (t50, t99) = quantiles(bridged_echo(&ticket(&n, "terminal").await, keys).await);
    println!("ssh_bridge: keystroke echo, {keys} keys: direct ssh p50 {d50:.2} ms p99 {d99:.2} ms");
    println!("ssh_bridge: keystroke echo through the SSH bridge: p50 {b50:.2} ms p99 {b99:.2} ms");
    println!("ssh_bridge: keystroke echo through the terminal: p50 {t50:.2} ms p99 {t99:.2} ms");
    println!(
        "ssh_bridge: echo ratio p50 {:.2}, p99 {:.2} (bridge over direct ssh)",
        b50 / d50,
        b99 / d99
    );
}
