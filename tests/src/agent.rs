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

/// A port free on this machine and held by this test until it ends ([`claim_ports`]).
///
/// # Panics
/// As [`claim_ports`].
#[must_use]
pub fn free_port() -> u16 {
    claim_ports(1)
}

/// First port of a block of `len` (at most [`PORT_BLOCK`]) that no other test process
/// holds: for servers' containers, whose host ports must stay theirs while they are
/// stopped. A port the OS hands out (`bind(0)`) is taken from the ephemeral range, where
/// another test may be given it, and start a container on it, while this test's server
/// is down (its restart then failed with Docker's "port is already allocated"). Blocks
/// lie below the ephemeral range (32768+) and are claimed with a lock file held until the
/// process exits (nextest runs each test in its own process).
///
/// # Panics
/// When every block is held, or `len` is above [`PORT_BLOCK`].
#[must_use]
pub fn claim_ports(len: u16) -> u16 {
    const FIRST: u16 = 20_000;
    const BLOCKS: u16 = 700;
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    assert!(
        (1..=PORT_BLOCK).contains(&len),
        "at most {PORT_BLOCK} ports"
    );
    let dir = std::env::temp_dir().join("shardlyn-test-ports");
    std::fs::create_dir_all(&dir).expect("port lock directory");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    let first_block = u16::try_from(seed % u32::from(BLOCKS)).expect("block");
    for i in 0..BLOCKS {
        let block = (first_block + i) % BLOCKS;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{block}.lock")))
            .expect("port lock file");
        if lock.try_lock().is_err() {
            continue;
        }
        let start = FIRST + block * PORT_BLOCK;
        // A port some other program holds (or a stale container) is no use either.
        let free = (start..start + len).all(|p| {
            std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
                && std::net::UdpSocket::bind(("0.0.0.0", p)).is_ok()
        });
        HELD.lock().expect("held ports").push(lock);
        if free {
            return start;
        }
    }
    panic!("every test port block is held");
}

/// Ports in a block of [`claim_ports`].
pub const PORT_BLOCK: u16 = 16;

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

/// Gives a test panel's servers a port block of their own ([`claim_ports`]) instead of
/// the default range from 25565, which panels of tests running at once would share on
/// the one Docker: `spawn_app_with(Engine::Sqlite, own_ports)`.
pub fn own_ports(config: &mut shardlyn_panel::config::Config) {
    let start = claim_ports(PORT_BLOCK);
    config.instances.port_range_start = start;
    config.instances.port_range_end = start + PORT_BLOCK - 1;
}
