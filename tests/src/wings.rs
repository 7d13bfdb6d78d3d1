//! A fake of Pterodactyl Wings for the import's file tests: `tests/support/wings_sftp.py`
//! (asyncssh) serving each server's directory over SFTP with Wings' password logins
//! (`<user>.<identifier>`), and the two routes of Wings' HTTP API the switch-over calls
//! (power, state). One per test, on loopback ports of its own. It refuses and records
//! every write, so a test can check that the old side was only read.
//! `scripts/dev-services` installs asyncssh into `~/.cache/shardlyn/venv`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The daemon token the fake's API accepts unless told another.
pub const TOKEN: &str = "wings-daemon-token";

/// How the fake behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The panel user the logins must name (any when `None`).
    pub user: Option<String>,
    /// Cut the first connection once it was served this many bytes of file data.
    pub drop_after: Option<u64>,
    /// Seconds a stopped server stays `stopping` before `offline`.
    pub stop_delay: Option<f64>,
}

#[derive(Deserialize)]
struct Ready {
    sftp_port: u16,
    http_port: u16,
    host_key: String,
}

/// A running fake; killed on drop.
pub struct FakeWings {
    pub sftp_port: u16,
    pub http_port: u16,
    /// Its SSH host key, `ssh-ed25519 AAAA...`.
    pub host_key: String,
    pub password: String,
    root: tempfile::TempDir,
    child: Child,
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SHARDLYN_TEST_SMTP_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/shardlyn/venv/bin/python")
}

impl FakeWings {
    /// Starts a fake whose logins take `password`.
    ///
    /// # Panics
    /// When it cannot start: run `scripts/dev-services`.
    pub async fn start(password: &str, options: Options) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(python());
        cmd.args(["-W", "ignore"])
            .arg(crate::crate_path("support/wings_sftp.py"))
            .arg("--root")
            .arg(root.path())
            .args(["--password", password, "--token", TOKEN])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(user) = &options.user {
            cmd.args(["--user", user]);
        }
        if let Some(n) = options.drop_after {
            cmd.args(["--drop-after", &n.to_string()]);
        }
        if let Some(s) = options.stop_delay {
            cmd.args(["--stop-delay", &s.to_string()]);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run the Wings fake ({e}): run scripts/dev-services (asyncssh)")
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the Wings fake starts within 30 s")
            .expect("read the Wings fake's output")
            .unwrap_or_else(|| panic!("the Wings fake exited early: is asyncssh installed?"));
        let ready: Ready = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("unexpected Wings fake output {line:?}: {e}"));
        Self {
            sftp_port: ready.sftp_port,
            http_port: ready.http_port,
            host_key: ready.host_key,
            password: password.to_owned(),
            root,
            child,
        }
    }

    /// The directory of server `identifier` (made when missing): what its SFTP serves.
    ///
    /// # Panics
    /// When it cannot be made.
    #[must_use]
    pub fn server_dir(&self, identifier: &str) -> PathBuf {
        let dir = self.root.path().join(identifier);
        std::fs::create_dir_all(&dir).expect("server dir");
        dir
    }

    /// What the fake saw: `writes` (refused writes), `power` (actions asked),
    /// `bytes_served`, `dropped`, `logins`.
    ///
    /// # Panics
    /// When the fake does not answer.
    pub async fn log(&self) -> Value {
        reqwest::get(format!("http://127.0.0.1:{}/_fake/log", self.http_port))
            .await
            .expect("the Wings fake answers")
            .json()
            .await
            .expect("its log is JSON")
    }

    /// Its base URL for Wings' API.
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Stops it now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Deterministic bytes (a linear congruential sequence from `seed`).
#[must_use]
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

/// Writes `bytes` to `root/rel` (parents made) with `mode`.
///
/// # Panics
/// On a file system error.
pub fn put(root: &Path, rel: &str, bytes: &[u8], mode: u32) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, bytes).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// One entry of [`tree`]: a file's SHA-256 and mode, a directory's mode, or a link's
/// target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File { sha256: String, mode: u32 },
    Dir { mode: u32 },
    Link(String),
}

/// Everything under `root` by relative path, links not followed.
///
/// # Panics
/// On a file system error.
#[must_use]
pub fn tree(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            let mode = meta.permissions().mode() & 0o777;
            if meta.file_type().is_symlink() {
                let to = std::fs::read_link(&path).expect("link");
                out.insert(rel, Node::Link(to.display().to_string()));
            } else if meta.is_dir() {
                out.insert(rel, Node::Dir { mode });
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                let sha256 = hex::encode(Sha256::digest(&bytes));
                out.insert(rel, Node::File { sha256, mode });
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Sets the mtime of every file under `root` to `ago` before now (links untouched).
///
/// # Panics
/// On a file system error.
pub fn age(root: &Path, ago: Duration) {
    let when = std::time::SystemTime::now() - ago;
    for (rel, node) in tree(root) {
        if let Node::File { .. } = node {
            let file = std::fs::File::options()
                .write(true)
                .open(root.join(rel))
                .expect("open");
            file.set_modified(when).expect("set mtime");
        }
    }
}
