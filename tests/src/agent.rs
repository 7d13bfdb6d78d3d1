//! Nodes for end-to-end tests: registration through the API, and agents run either
//! in-process (the library) or as the real `shardlyn-agent` binary (to `kill -9` it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_agent::config::AgentConfig;

use crate::TestApp;

/// Mints a registration token (`body` as for `POST /v1/nodes/register-token`) and
/// registers an agent with it into `dir`.
///
/// # Panics
/// When the API refuses.
pub async fn register_agent(app: &TestApp, access: &str, body: Value, dir: &Path) -> AgentConfig {
    let r = app
        .post("/v1/nodes/register-token", Some(access), body)
        .await
        .expect(201);
    let token = r.body["token"].as_str().expect("token");
    shardlyn_agent::register::register(&app.base, token, None, dir)
        .await
        .expect("agent registers")
}

/// Registers an agent into a fresh data dir, in the caller's personal organization.
///
/// # Panics
/// When the API refuses.
pub async fn register_node(app: &TestApp, access: &str) -> (AgentConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = register_agent(app, access, json!({}), dir.path()).await;
    (config, dir)
}

/// Polls a node until its status is `want`.
///
/// # Panics
/// After 20 s.
pub async fn wait_node(app: &TestApp, access: &str, node_id: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = app
            .get(&format!("/v1/nodes/{node_id}"), Some(access))
            .await
            .expect(200);
        if r.body["status"] == want {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node never became {want}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls an instance until its `state` is `want`.
///
/// # Panics
/// After `wait`, printing the last answer.
pub async fn wait_instance(
    app: &TestApp,
    access: &str,
    id: &str,
    want: &str,
    wait: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let r = app
            .get(&format!("/v1/instances/{id}"), Some(access))
            .await
            .expect(200);
        if r.body["state"] == want {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "instance never became {want}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until something listens on 127.0.0.1:`port` (`what`, for the message).
///
/// # Panics
/// When nothing listens within 10 s.
pub async fn wait_listening(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never listened on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP port free on this machine right now.
///
/// # Panics
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The `busybox-test` workload in the caller's personal organization.
///
/// # Panics
/// When the API refuses.
pub async fn busybox_workload(app: &TestApp, access: &str) -> String {
    crate::docker::ensure_test_image();
    let r = app
        .post(
            "/v1/workloads/from-template",
            Some(access),
            json!({"template": "busybox-test"}),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("id").to_string()
}

/// The `shardlyn-agent` binary next to the test executable (cargo builds every
/// workspace binary for `nextest run --workspace`); built on demand otherwise.
///
/// # Panics
/// When it cannot be found or built.
#[must_use]
pub fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .to_path_buf();
    let binary = profile_dir.join("shardlyn-agent");
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "shardlyn-agent",
                "--bin",
                "shardlyn-agent",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building shardlyn-agent failed");
    }
    binary
}

/// The real agent binary running on a data dir.
pub struct AgentProcess {
    child: Child,
}

impl AgentProcess {
    /// Starts `shardlyn-agent run --data-dir dir`.
    ///
    /// # Panics
    /// When it cannot be spawned.
    #[must_use]
    pub fn spawn(dir: &Path) -> Self {
        let child = Command::new(agent_binary())
            .args(["run", "--data-dir"])
            .arg(dir)
            .env("RUST_LOG", "warn")
            .env(
                "SHARDLYN_OUTBOUND__ALLOW",
                serde_json::to_string(crate::LOOPBACK_ALLOW).expect("json"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("agent starts");
        Self { child }
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent library running in this process until stopped.
pub struct LocalAgent {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalAgent {
    /// Runs the agent of `config` on `dir` (its instance specs, server files and logs),
    /// allowed to reach the loopback fakes ([`crate::LOOPBACK_ALLOW`]).
    #[must_use]
    pub fn start(config: AgentConfig, dir: &Path) -> Self {
        Self::start_allowing(config, dir, crate::loopback_allow())
    }

    /// [`LocalAgent::start`] with exactly `allow` added to the agent's `[outbound]
    /// allow` list (empty: only what its `settings.toml` allows).
    #[must_use]
    pub fn start_allowing(config: AgentConfig, dir: &Path, allow: Vec<String>) -> Self {
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let dir = dir.to_path_buf();
        let task = tokio::spawn(async move {
            shardlyn_agent::tunnel::run_allowing(config, dir, &allow, async {
                let _ = rx.await;
            })
            .await;
        });
        Self { stop, task }
    }

    /// Stops the agent (its servers keep running).
    ///
    /// # Panics
    /// When the agent task panicked.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("agent task");
    }
}
