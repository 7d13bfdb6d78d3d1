//! "Booting" a machine from cloud-init user data, as the tests' fake cloud does instead of
//! starting a VM: the install one-liner of the document's `runcmd` really runs (`curl
//! ... | sh -s -- ...` against the panel under test), with `--root DIR --foreground`
//! appended so the agent installs under a temporary root and runs as a child process.
//!
//! This is a fake of cloud-init, not cloud-init: it reads only the `runcmd` entry that
//! runs `install-agent.sh` from a document shaped like `shardlyn_panel::bootstrap::
//! cloudinit::user_data` writes it (a block list of double-quoted or plain scalars;
//! `cloud-init schema` checks the real format in `tests/api/bootstrap.rs`).

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The `runcmd` entry of `user_data` that runs the install script, unquoted.
///
/// # Panics
/// When the document is not `#cloud-config` or has no such entry.
#[must_use]
pub fn install_command(user_data: &str) -> String {
    assert!(
        user_data.starts_with("#cloud-config\n"),
        "not a cloud-config document:\n{user_data}"
    );
    let mut in_runcmd = false;
    for line in user_data.lines() {
        if line.starts_with("runcmd:") {
            in_runcmd = true;
            continue;
        }
        if in_runcmd && !line.starts_with(' ') && !line.starts_with('-') && !line.is_empty() {
            in_runcmd = false;
        }
        let Some(item) = line.trim_start().strip_prefix("- ").filter(|_| in_runcmd) else {
            continue;
        };
        let command = if item.starts_with('"') {
            // A YAML double-quoted scalar in JSON's syntax, as the panel writes them.
            serde_json::from_str::<String>(item).expect("a double-quoted runcmd entry")
        } else {
            item.to_string()
        };
        if command.contains("install-agent.sh") {
            return command;
        }
    }
    panic!("no runcmd entry runs install-agent.sh:\n{user_data}");
}

/// Runs the install one-liner of `user_data` with `--root root --foreground` appended:
/// the returned child ends up as `shardlyn-agent run` on `root/var/lib/shardlyn-agent`.
/// It leads its own process group (the pipeline forks): stop it with [`halt`].
///
/// # Panics
/// When the document has no install command or `sh` cannot start.
#[must_use]
pub fn boot(user_data: &str, root: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).expect("the root's tmp");
    let command = format!(
        "{} --root '{}' --foreground",
        install_command(user_data),
        root.display().to_string().replace('\'', "'\\''")
    );
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("TMPDIR", &tmp)
        .env("RUST_LOG", "warn")
        .env(
            "SHARDLYN_OUTBOUND__ALLOW",
            serde_json::to_string(crate::LOOPBACK_ALLOW).expect("json"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("sh starts")
}

/// Kills everything [`boot`] started (its process group) and reaps the child.
pub fn halt(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A booted machine that is halted when dropped (a failing test leaves no agent behind).
pub struct Machine(pub Child);

impl Machine {
    /// [`boot`], halted on drop.
    #[must_use]
    pub fn boot(user_data: &str, root: &Path) -> Self {
        Self(boot(user_data, root))
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        halt(&mut self.0);
    }
}
