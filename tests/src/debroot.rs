//! A Debian root for the install test: built with `mmdebstrap` once per package list and
//! cached under `~/.cache/shardlyn/debian-roots/<key>`, copied per test, and entered with
//! `systemd-nspawn --register=no --keep-unit` (to run a command, or booted with `-b`)
//! and `nsenter` (a command inside the booted root). Nothing of the test machine
//! changes: the root is a directory, the container shares only the host's network (so
//! the panel inside answers on the host's loopback) and the binds it is given.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

/// The suite of the root.
pub const SUITE: &str = "bookworm";

/// Packages beyond `minbase` (essential + apt): systemd to boot, `passwd` for `useradd`;
/// `curl`, `jq`, `openssl`, `sqlite3` and `iproute2` (`ss`) are what the operator guide's
/// commands use (`tests/tests/api/operator_docs.rs` runs them in this root).
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "passwd",
    "curl",
    "ca-certificates",
    "jq",
    "openssl",
    "sqlite3",
    "iproute2",
];

/// The cached root of [`SUITE`] and [`PACKAGES`], built when missing (about two minutes
/// on a fresh machine; a lock file makes concurrent tests wait for one build).
///
/// # Panics
/// When `mmdebstrap` is missing or fails.
#[must_use]
pub fn cached_root() -> PathBuf {
    let spec = format!("{SUITE} minbase {}", PACKAGES.join(","));
    let key = hex::encode(&sha2::Sha256::digest(spec.as_bytes())[..8]);
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let dir = home.join(".cache/shardlyn/debian-roots");
    std::fs::create_dir_all(&dir).expect("root cache directory");
    let root = dir.join(&key);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{key}.lock")))
        .expect("root lock file");
    lock.lock().expect("locking the root cache");
    if !root.join("usr/bin/systemctl").exists() {
        let building = dir.join(format!("{key}.building"));
        let _ = std::fs::remove_dir_all(&building);
        let started = Instant::now();
        let out = Command::new("mmdebstrap")
            .args(["--variant=minbase", "--mode=root", "--quiet"])
            .arg(format!("--include={}", PACKAGES.join(",")))
            .arg(SUITE)
            .arg(&building)
            .stdin(Stdio::null())
            .output()
            .expect("mmdebstrap runs (scripts/dev-services installs it)");
        assert!(
            out.status.success(),
            "mmdebstrap failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&root);
        std::fs::rename(&building, &root).expect("moving the built root in place");
        eprintln!(
            "built the Debian root {} in {:.0?}",
            root.display(),
            started.elapsed()
        );
    }
    root
}

/// A copy of the cached root in `dir` (`dir/root`), for one test to change.
///
/// # Panics
/// When the copy fails.
#[must_use]
pub fn fresh_root(dir: &Path) -> PathBuf {
    let cached = cached_root();
    let root = dir.join("root");
    let out = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(&cached)
        .arg(&root)
        .output()
        .expect("cp runs");
    assert!(
        out.status.success(),
        "copying the root: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

/// `systemd-nspawn` on `root` with `binds` (`host:container`, read-only) and the
/// arguments every use shares.
fn nspawn(root: &Path, binds: &[(PathBuf, &str)]) -> Command {
    let mut cmd = Command::new("systemd-nspawn");
    cmd.args(["--register=no", "--keep-unit", "--quiet", "-D"])
        .arg(root);
    for (host, inside) in binds {
        cmd.arg(format!("--bind-ro={}:{inside}", host.display()));
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `args` in `root` (not booted) to completion.
///
/// # Panics
/// When `systemd-nspawn` cannot start.
#[must_use]
pub fn run(root: &Path, binds: &[(PathBuf, &str)], args: &[&str]) -> Output {
    nspawn(root, binds)
        .arg("--")
        .args(args)
        .output()
        .expect("systemd-nspawn runs (scripts/dev-services installs systemd-container)")
}

/// The root booted with systemd as PID 1; halted (SIGTERM to `systemd-nspawn`) on drop.
pub struct Booted {
    nspawn: Child,
    leader: u32,
    /// The console (systemd's boot messages), for failure messages.
    pub console: PathBuf,
}

impl Booted {
    /// Boots `root`, its console going to `console`; returns once its PID 1 exists.
    ///
    /// # Panics
    /// When it does not start within 60 s.
    #[must_use]
    pub fn boot(root: &Path, binds: &[(PathBuf, &str)], console: &Path) -> Self {
        Self::boot_with(root, binds, console, &[])
    }

    /// [`Booted::boot`] in a network namespace of its own (`--private-network`: only a
    /// loopback interface), so what runs inside may bind any port.
    ///
    /// # Panics
    /// As [`Booted::boot`].
    #[must_use]
    pub fn boot_isolated(root: &Path, binds: &[(PathBuf, &str)], console: &Path) -> Self {
        Self::boot_with(root, binds, console, &["--private-network"])
    }

    fn boot_with(root: &Path, binds: &[(PathBuf, &str)], console: &Path, extra: &[&str]) -> Self {
        let log = std::fs::File::create(console).expect("console file");
        let nspawn = nspawn(root, binds)
            .args(extra)
            .arg("--boot")
            .stdout(log.try_clone().expect("console file"))
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn runs");
        let mut booted = Self {
            leader: 0,
            nspawn,
            console: console.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(pid) = booted.find_leader() {
                booted.leader = pid;
                return booted;
            }
            if let Ok(Some(status)) = booted.nspawn.try_wait() {
                panic!(
                    "systemd-nspawn -b exited ({status}):\n{}",
                    booted.console_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the container's PID 1 never appeared:\n{}",
                booted.console_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The container's PID 1 as the host sees it: the child of `systemd-nspawn` that
    /// runs systemd.
    fn find_leader(&self) -> Option<u32> {
        let id = self.nspawn.id();
        let tasks = std::fs::read_dir(format!("/proc/{id}/task")).ok()?;
        for task in tasks.filter_map(Result::ok) {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for pid in children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
            {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    return Some(pid);
                }
            }
        }
        None
    }

    /// What the console printed so far.
    #[must_use]
    pub fn console_text(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Whether `systemd-nspawn` still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.nspawn.try_wait(), Ok(None))
    }

    /// Runs `args` inside the booted root (all its namespaces, a clean environment).
    ///
    /// # Panics
    /// When `nsenter` cannot start.
    #[must_use]
    pub fn exec(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.leader.to_string())
            .args(["-a", "--"])
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("nsenter runs")
    }

    /// The `/proc/<pid>/status` of `unit`'s main process (user, capabilities,
    /// no_new_privs), read inside the root.
    ///
    /// # Panics
    /// When the unit has no main process.
    #[must_use]
    pub fn main_status(&self, unit: &str) -> String {
        let out = self.exec(
            &[],
            &["systemctl", "show", "-p", "MainPID", "--value", unit],
        );
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(pid != "0" && !pid.is_empty(), "{unit} has no main process");
        let out = self.exec(&[], &["cat", &format!("/proc/{pid}/status")]);
        assert!(out.status.success(), "reading {unit}'s status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Halts the container: SIGTERM to `systemd-nspawn` (systemd shuts down), SIGKILL
    /// after 60 s.
    pub fn halt(&mut self) {
        if !self.running() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.nspawn.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The binaries the tests built (`shardlyn`, `shardlyn-agent`) and the checkout's
/// `packaging/`, bound read-only at the three paths given inside the root.
///
/// # Panics
/// When the panel binary has not been built.
#[must_use]
pub fn shardlyn_binds(
    panel_at: &'static str,
    agent_at: &'static str,
    packaging_at: &'static str,
) -> Vec<(PathBuf, &'static str)> {
    let agent = crate::agent::agent_binary();
    let panel = agent.with_file_name("shardlyn");
    assert!(
        panel.is_file(),
        "{} is missing: cargo nextest run --workspace builds it",
        panel.display()
    );
    vec![
        (panel, panel_at),
        (agent, agent_at),
        (crate::crate_path("../packaging"), packaging_at),
    ]
}
