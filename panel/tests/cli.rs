//! The `shardlyn` binary: config example, migrate, admin create, serve with graceful
//! shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn shardlyn() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardlyn"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SHARDLYN_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn config_example_prints_every_section() {
    let out = shardlyn()
        .args(["config", "example"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    for needle in [
        "listen = \"127.0.0.1:8080\"",
        "[tls]",
        "mode = \"auto\"",
        "[auth]",
        "[rate_limit]",
        "# ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn migrate_and_admin_create_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf8 path");
    let out = shardlyn()
        .args(["migrate", "--data-dir", data])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("shardlyn.db").exists());
    let create = |email: &str, password: &str| {
        shardlyn()
            .args([
                "admin",
                "create",
                "--data-dir",
                data,
                "--email",
                email,
                "--password",
                password,
            ])
            .output()
            .expect("runs")
    };
    let first = create("root@example.com", "a-long-password");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("created platform admin root@example.com")
    );
    let dup = create("root@example.com", "a-long-password");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let short = create("other@example.com", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least"));
    // Generated keys are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("jwt.key"))
        .expect("jwt.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = shardlyn()
        .args(["migrate", "--config", "/nonexistent/shardlyn.toml"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn serve_prints_its_url_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = shardlyn()
        .args([
            "serve",
            "--data-dir",
            dir.path().to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("SHARDLYN_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf8");
    let url = first
        .strip_prefix("Shardlyn panel listening on ")
        .expect("url line")
        .to_string();
    let addr = url
        .strip_prefix("http://")
        .expect("http on loopback")
        .to_string();
    let rest: Vec<String> = lines.by_ref().take(3).map(|l| l.expect("line")).collect();
    assert!(
        rest.iter().any(|l| l.contains("shardlyn admin create")),
        "{rest:?}"
    );
    let health = http_get(&addr, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "panel did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_json(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).expect("read");
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(json).unwrap_or_default())
}

struct Up {
    child: std::process::Child,
    lines: Vec<String>,
    addr: String,
}

fn start_up(data: &str) -> Up {
    let mut child = shardlyn()
        .args(["up", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .env("SHARDLYN_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    let lines: Vec<String> = reader.lines().take(5).map(|l| l.expect("line")).collect();
    let addr = lines[0]
        .strip_prefix("Shardlyn is up at http://")
        .unwrap_or_else(|| panic!("unexpected first line {lines:?}"))
        .to_string();
    Up { child, lines, addr }
}

fn stop(mut up: Up) {
    let status = Command::new("kill")
        .args(["-TERM", &up.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = up.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "shardlyn up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn up_runs_the_panel_with_a_local_node_and_reuses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf8");
    let first = start_up(data);
    let creds = first.lines[1].clone();
    let password = creds
        .strip_prefix("First admin: admin@shardlyn.local / ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no credentials in {:?}", first.lines))
        .to_string();
    let node_id = first.lines[2]
        .strip_prefix("Local node: ")
        .expect("node line")
        .to_string();
    let (status, login) = http_json(
        &first.addr,
        "POST",
        "/v1/auth/login",
        None,
        &format!(r#"{{"email":"admin@shardlyn.local","password":"{password}"}}"#),
    );
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().expect("token").to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, node) = http_json(
            &first.addr,
            "GET",
            &format!("/v1/nodes/{node_id}"),
            Some(&token),
            "",
        );
        assert_eq!(status, 200, "{node}");
        if node["status"] == "online" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "local node never came online: {node}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, system) = http_json(
        &first.addr,
        "GET",
        &format!("/v1/nodes/{node_id}/inventory/system"),
        Some(&token),
        "",
    );
    assert_eq!(status, 200, "{system}");
    stop(first);

    // A second start keeps the admin and the node.
    let second = start_up(data);
    assert_eq!(second.lines[1], "Log in with your admin account.");
    assert_eq!(second.lines[2], format!("Local node: {node_id}"));
    stop(second);
}
