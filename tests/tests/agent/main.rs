//! The agent's instance API against real Docker: the agent router served on
//! `127.0.0.1:0` with a temporary data dir and the local busybox test image, driven over
//! HTTP like the panel does through the tunnel.

mod api;
mod console;
mod crash;
mod lifecycle;
mod shell;
mod trust;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shardlyn_agent::api::AgentState;
use shardlyn_agent::config::Settings;
use shardlyn_agent::instances::Manager;
use shardlyn_proto::instance::Event;
use shardlyn_tests::docker::{TEST_IMAGE, ensure_test_image};

/// An agent API on a loopback port over a data dir.
pub struct TestAgent {
    pub base: String,
    pub client: reqwest::Client,
    pub manager: Manager,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Settings for tests: pulls give up fast.
fn settings() -> Settings {
    Settings {
        pull_timeout_secs: 5,
        ..Settings::default()
    }
}

/// Starts an agent (re-adopting what `data_dir` holds).
pub async fn spawn_agent(data_dir: &Path) -> TestAgent {
    shardlyn_tests::init_logs();
    ensure_test_image();
    let manager = Manager::new(data_dir, settings()).expect("manager");
    manager.adopt().await.expect("adopt");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = AgentState::new("test-node".into(), manager.clone());
    let server = tokio::spawn(async move {
        let _ = shardlyn_agent::api::serve_tcp(listener, state).await;
    });
    TestAgent {
        base,
        client: reqwest::Client::new(),
        manager,
        server,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Resp {
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert!(self.body["error"].as_str().is_some_and(|e| !e.is_empty()));
        self
    }
}

impl TestAgent {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("agent reachable");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        Resp {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    pub async fn power(&self, id: &str, action: &str) -> Resp {
        self.post(
            &format!("/v1/instances/{id}/power"),
            json!({"action": action}),
        )
        .await
    }

    pub async fn command(&self, id: &str, command: &str) -> Resp {
        self.post(
            &format!("/v1/instances/{id}/command"),
            json!({"command": command}),
        )
        .await
    }

    /// Polls the instance until `state`, panicking after `secs`.
    pub async fn wait_state(&self, id: &str, state: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.get(&format!("/v1/instances/{id}")).await;
            if r.body["state"] == state {
                return r.body;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never became {state}: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens an NDJSON stream.
    pub async fn stream(&self, path: &str) -> Ndjson {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("stream");
        assert_eq!(resp.status().as_u16(), 200);
        Ndjson {
            resp,
            buf: Vec::new(),
        }
    }
}

/// Reads an NDJSON response line by line.
pub struct Ndjson {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Ndjson {
    /// The next JSON line, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("json line"));
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.extend_from_slice(&c),
                _ => return None,
            }
        }
    }

    /// Reads events until one matches, returning everything read (the match last).
    pub async fn until(&mut self, secs: u64, mut pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(v) = self.next(left).await else {
                panic!("no matching event within {secs} s; saw {seen:?}");
            };
            let e: Event = serde_json::from_value(v).expect("event");
            let hit = pred(&e);
            seen.push(e);
            if hit {
                return seen;
            }
        }
    }
}

/// Whether `e` is `name` with first argument `arg`.
pub fn is(e: &Event, name: &str, arg: &str) -> bool {
    e.event == name && e.args.first().and_then(Value::as_str) == Some(arg)
}

/// Removes the test's containers (those labelled with its server's id) even when it
/// fails.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let label = format!(
            "label={}={}",
            shardlyn_proto::instance::INSTANCE_LABEL,
            self.0
        );
        let Ok(listed) = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
        else {
            return;
        };
        for container in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", container])
                .output();
        }
    }
}

/// A fresh instance id.
pub fn new_id() -> String {
    format!("t-{}", uuid::Uuid::new_v4().simple())
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The bundled busybox egg.
fn egg() -> Value {
    let path = shardlyn_tests::crate_path("../eggs/busybox-test.json");
    serde_json::from_slice(&std::fs::read(path).expect("egg")).expect("egg json")
}

/// A spec of the busybox test egg, as the panel would push it.
pub fn busybox_spec(id: &str) -> Value {
    let egg = egg();
    let install = &egg["scripts"]["installation"];
    json!({
        "id": id,
        "name": "test server",
        "image": TEST_IMAGE,
        "startup": egg["startup"],
        "environment": {"GREETING": "hello from the test"},
        "limits": {"memory_mb": 256, "swap_mb": 0, "cpu_percent": 100, "disk_mb": 1024, "pids": 64, "io_weight": 500},
        "allocations": [{"ip": "127.0.0.1", "port": free_port(), "primary": true}],
        "install": {"image": install["container"], "entrypoint": install["entrypoint"], "script": install["script"]},
        "config_files": [],
        "done": ["ready"],
        "stop": {"type": "command", "value": "stop"},
        "stop_grace_secs": 10,
        "desired": "stopped",
        "crash_restart": true,
    })
}
