//! Debian's OpenSSH server started by a test on loopback as a node would run it: trusting
//! the CA's keys, with an `AuthorizedPrincipalsFile` per login naming
//! `node:<node id>:<login>`, and a KRL as `RevokedKeys`; and `ssh-keygen` for user keys.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::agent::free_port;

/// The OpenSSH client options of every test login: no configuration file, no prompts,
/// only the key given, any host key.
pub const CLIENT_OPTIONS: &[&str] = &[
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
];

/// `sshd` on loopback, stopped on drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn exec(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

impl Sshd {
    /// Trusts `ca_keys`, lets `node:<node>:root` in as root, refuses what `krl` revokes.
    pub async fn start(dir: &Path, node: &str, ca_keys: &str) -> Self {
        std::fs::write(dir.join("ca.pub"), ca_keys).expect("ca");
        std::fs::create_dir_all(dir.join("principals")).expect("mkdir");
        std::fs::write(dir.join("principals/root"), format!("node:{node}:root\n")).expect("p");
        // An empty KRL until the panel's arrives.
        let (ok, out) = exec(
            Command::new("ssh-keygen")
                .args(["-k", "-f"])
                .arg(dir.join("krl")),
        );
        assert!(ok, "{out}");
        Self::serve(
            dir,
            &dir.join("ca.pub"),
            &dir.join("principals"),
            &dir.join("krl"),
        )
        .await
    }

    /// With the files an agent installed in `trust` (`ssh_trust_dir`).
    pub async fn trusting(dir: &Path, trust: &Path) -> Self {
        Self::serve(
            dir,
            &trust.join("ca.pub"),
            &trust.join("principals"),
            &trust.join("revoked.krl"),
        )
        .await
    }

    pub async fn serve(dir: &Path, ca: &Path, principals: &Path, krl: &Path) -> Self {
        std::fs::create_dir_all("/run/sshd").expect("privsep dir");
        let (ok, out) = exec(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join("host")),
        );
        assert!(ok, "{out}");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host\nPidFile {dir}/sshd.pid\n\
             TrustedUserCAKeys {ca}\nAuthorizedPrincipalsFile {principals}/%u\n\
             RevokedKeys {krl}\nAuthorizedKeysFile none\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n\
             StrictModes no\nUsePAM no\nLogLevel VERBOSE\n",
            dir = dir.display(),
            ca = ca.display(),
            principals = principals.display(),
            krl = krl.display(),
        );
        std::fs::write(dir.join("sshd_config"), config).expect("config");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).expect("log"))
            .spawn()
            .expect("sshd (scripts/dev-services installs openssh-server)");
        crate::agent::wait_listening(port, "sshd").await;
        Self {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// Runs `echo in` as root with `key` and its certificate: whether it got in.
    pub fn login(&self, key: &Path) -> (bool, String) {
        let cert = PathBuf::from(format!("{}-cert.pub", key.display()));
        exec(
            Command::new("ssh")
                .args(CLIENT_OPTIONS)
                .arg("-o")
                .arg(format!("CertificateFile={}", cert.display()))
                .arg("-i")
                .arg(key)
                .args(["-p", &self.port.to_string(), "root@127.0.0.1", "echo in"]),
        )
    }

    /// Puts the panel's KRL in place (a node without an agent doing it).
    pub fn install_krl(&self, krl: &[u8]) {
        let tmp = self.dir.join("krl.new");
        std::fs::write(&tmp, krl).expect("krl");
        std::fs::rename(&tmp, self.dir.join("krl")).expect("krl");
    }
}

/// A new user key pair in `dir`: the private key's path and the public key's text.
pub fn user_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let (ok, out) = exec(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    assert!(ok, "{out}");
    let public = std::fs::read_to_string(format!("{}.pub", key.display())).expect("pub");
    (key, public)
}
