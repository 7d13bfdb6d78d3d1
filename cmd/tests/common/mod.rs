//! What the binary's tests share: starting `shardlyn` with a clean environment, plain
//! HTTP/1.1 calls over a socket, and `shardlyn up` started and stopped; `shardlyn
//! serve` processes (replicas) and JSON calls to them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `shardlyn` binary with no `SHARDLYN_*` variable of the caller's environment.
pub fn shardlyn() -> Command {
    clean(std::path::Path::new(env!("CARGO_BIN_EXE_shardlyn")))
}

/// `bin` (this tree's or another release's) with no `SHARDLYN_*` variable of the
/// caller's environment.
pub fn clean(bin: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin);
    for (key, _) in std::env::vars() {
        if key.starts_with("SHARDLYN_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A raw `GET` over a fresh connection: the whole answer, head and body.
pub fn http_get(addr: &str, path: &str) -> String {
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

/// A JSON call: the status and the parsed body (`null` when it is not JSON).
pub fn http_json(
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

pub struct Up {
    pub child: std::process::Child,
    pub lines: Vec<String>,
    pub addr: String,
}

/// `shardlyn up --data-dir DATA` on a free port, once it has printed its five lines.
pub fn start_up(data: &str) -> Up {
    start_up_in(None, &["--data-dir", data], &[])
}

/// `shardlyn up ARGS --listen 127.0.0.1:0` with `envs`, run in `cwd` when given.
pub fn start_up_in(cwd: Option<&std::path::Path>, args: &[&str], envs: &[(&str, String)]) -> Up {
    let mut cmd = shardlyn();
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.arg("up")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("SHARDLYN_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().expect("spawn");
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    let lines: Vec<String> = reader.lines().take(5).map(|l| l.expect("line")).collect();
    let addr = lines
        .first()
        .and_then(|l| l.strip_prefix("Shardlyn is up at http://"))
        .unwrap_or_else(|| panic!("unexpected first lines {lines:?}"))
        .to_string();
    Up { child, lines, addr }
}

/// The first admin's password from `shardlyn up`'s second line.
pub fn admin_password(up: &Up) -> String {
    up.lines[1]
        .strip_prefix("First admin: admin@shardlyn.local / ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no credentials in {:?}", up.lines))
        .to_string()
}

/// An access token of the first admin.
pub fn login(up: &Up, password: &str) -> String {
    let (status, login) = http_json(
        &up.addr,
        "POST",
        "/v1/auth/login",
        None,
        &format!(r#"{{"email":"admin@shardlyn.local","password":"{password}"}}"#),
    );
    assert_eq!(status, 200, "{login}");
    login["access_token"].as_str().expect("token").to_string()
}

/// Polls `GET path` until `done` holds for its JSON answer (at most `limit`).
pub fn wait_for(
    up: &Up,
    token: &str,
    path: &str,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = http_json(&up.addr, "GET", path, Some(token), "");
        assert_eq!(status, 200, "{path}: {body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn stop(mut up: Up) {
    terminate(&mut up.child, "shardlyn up");
}

/// SIGTERM to `child`, then waits (15 s at most) for a clean exit.
fn terminate(child: &mut std::process::Child, what: &str) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `shardlyn serve` child; killed (SIGKILL) when dropped.
pub struct Replica {
    child: std::process::Child,
    pub base: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    /// On a free port, with a data directory of its own.
    pub fn start(env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut replica = Self::start_at(env, dir.path(), shardlyn_tests::agent::free_port());
        replica._dir = Some(dir);
        replica
    }

    /// On `port` with `data` as its data directory (a restart reuses both).
    pub fn start_at(env: &[(&str, String)], data: &std::path::Path, port: u16) -> Self {
        Self::start_with(
            std::path::Path::new(env!("CARGO_BIN_EXE_shardlyn")),
            env,
            data,
            port,
        )
    }

    /// [`Replica::start_at`] with the `shardlyn` binary `bin` (another release's).
    pub fn start_with(
        bin: &std::path::Path,
        env: &[(&str, String)],
        data: &std::path::Path,
        port: u16,
    ) -> Self {
        let child = clean(bin)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("SHARDLYN_LOG_LEVEL", "warn")
            .arg("serve")
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("shardlyn serve");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: None,
        }
    }

    /// SIGTERM, then waits (15 s at most) for a clean exit.
    pub fn stop(mut self) {
        let what = format!("shardlyn serve at {}", self.base);
        terminate(&mut self.child, &what);
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// `method path` on `base` with `token`; the status and the JSON body.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(serde_json::Value::Null))
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// Polls until `done` holds for `GET path` on `base` (200 answers only), within `limit`.
pub async fn wait_until(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    limit: std::time::Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (status, body) =
            call(client, reqwest::Method::GET, base, path, Some(token), None).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} on {base} never got there within {limit:?}: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
