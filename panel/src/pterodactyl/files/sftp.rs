//! The old Wings' SFTP, read only: connects through the outbound guard, checks (or
//! learns) its host key, logs in with the root admin's `<user>.<server identifier>`
//! login, and lists a server's tree without following a link. Transport only: what to
//! copy is decided in [`super`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::PublicKeyOrCertificate;
use russh_sftp::client::SftpSession;
use shardlyn_net::outbound::Outbound;

use super::{CopyError, SkippedLink, WingsSftp};

/// Longest the TCP connect, the SSH handshake and the login may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads of one file in flight (each up to 256 KiB, the server permitting): the read
/// ahead that keeps a file's bytes coming while the previous ones travel.
pub const READS_IN_FLIGHT: usize = 16;

/// What one entry of the old server's tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// One file or directory of the old server (links are reported apart).
#[derive(Debug, Clone)]
pub struct Entry {
    /// `/`-separated, relative to the server's root, no leading `/`.
    pub path: String,
    pub kind: Kind,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Permission bits (`0o777` at most).
    pub mode: u32,
}

/// The tree of the old server.
#[derive(Debug, Default)]
pub struct Tree {
    /// Parents before their children.
    pub entries: Vec<Entry>,
    pub links: Vec<SkippedLink>,
}

/// The client side of the SSH connection: accepts the key it was told to expect, or
/// any key when told none (first use), and remembers the key it saw.
struct Client {
    known: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
}

/// `type base64` of an OpenSSH public key line (its comment left out).
pub fn key_id(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let Ok(line) = key.to_openssh() else {
            return Ok(false);
        };
        let line = key_id(&line);
        let trusted = self.known.as_deref().is_none_or(|k| key_id(k) == line);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(line);
        }
        Ok(trusted)
    }
}

/// An open SFTP session on the old server, with the host key it presented.
pub struct Session {
    pub sftp: SftpSession,
    pub host_key: String,
    _ssh: russh::client::Handle<Client>,
}

/// Connects to `from` through `outbound` (the import's guard) and logs in.
///
/// # Errors
/// [`CopyError::Unreachable`] (refused by the guard, no answer, not SSH),
/// [`CopyError::HostKeyChanged`], [`CopyError::LoginRefused`].
pub async fn connect(outbound: &Outbound, from: &WingsSftp) -> Result<Session, CopyError> {
    let seen = Arc::new(Mutex::new(None));
    let attempt = tokio::time::timeout(CONNECT_TIMEOUT, open(outbound, from, seen.clone()));
    match attempt.await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => {
            let seen = seen.lock().ok().and_then(|s| s.clone());
            match (&from.known_host, seen) {
                (Some(known), Some(seen)) if key_id(known) != seen => {
                    Err(CopyError::HostKeyChanged {
                        expected: key_id(known),
                        seen,
                    })
                }
                _ => Err(e),
            }
        }
        Err(_) => Err(CopyError::Unreachable(format!(
            "{}:{} did not complete an SSH login within {} s",
            from.host,
            from.port,
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

async fn open(
    outbound: &Outbound,
    from: &WingsSftp,
    seen: Arc<Mutex<Option<String>>>,
) -> Result<Session, CopyError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        CopyError::Unreachable(format!("{}:{}: {e}", from.host, from.port))
    };
    let addrs = outbound
        .resolve(&from.host, from.port)
        .await
        .map_err(|e| CopyError::Unreachable(e.to_string()))?;
    let stream = tokio::net::TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| unreachable(&e))?;
    let _ = stream.set_nodelay(true);
    let config = russh::client::Config {
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65536,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        ..russh::client::Config::default()
    };
    let client = Client {
        known: from.known_host.clone(),
        seen: seen.clone(),
    };
    let mut ssh = russh::client::connect_stream(Arc::new(config), stream, client)
        .await
        .map_err(|e| unreachable(&e))?;
    let auth = ssh
        .authenticate_password(from.username.clone(), from.password.clone())
        .await
        .map_err(|e| unreachable(&e))?;
    if !auth.success() {
        return Err(CopyError::LoginRefused(from.username.clone()));
    }
    let channel = ssh
        .channel_open_session()
        .await
        .map_err(|e| unreachable(&e))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| unreachable(&e))?;
    let config = russh_sftp::client::Config {
        max_concurrent_reads: READS_IN_FLIGHT,
        ..russh_sftp::client::Config::default()
    };
    let sftp = SftpSession::new_with_config(channel.into_stream(), config)
        .await
        .map_err(|e| unreachable(&e))?;
    let host_key = seen.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
    Ok(Session {
        sftp,
        host_key,
        _ssh: ssh,
    })
}

/// The file type bits of an SFTP `permissions` (POSIX `st_mode`), compared whole:
/// testing single bits mistakes a link for a regular file.
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// The user path of a relative one.
pub fn remote(path: &str) -> String {
    format!("/{path}")
}

/// Whether link `target`, found in directory `dir` (relative), stays inside the root.
pub fn stays_inside(dir: &str, target: &str) -> bool {
    if target.starts_with('/') || target.is_empty() {
        return false;
    }
    let mut depth: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            other => depth.push(other),
        }
    }
    true
}

/// Lists the whole tree, breadth first, links read but never followed; sockets, FIFOs
/// and devices are left out.
///
/// # Errors
/// [`CopyError::SourceLost`] when the connection drops or a listing fails.
pub async fn walk(sftp: &SftpSession) -> Result<Tree, CopyError> {
    let mut tree = Tree::default();
    let mut queue = VecDeque::from([String::new()]);
    while let Some(dir) = queue.pop_front() {
        let listing = sftp
            .read_dir(remote(&dir))
            .await
            .map_err(|e| CopyError::SourceLost(format!("listing /{dir}: {e}")))?;
        let mut names: Vec<_> = listing.collect();
        names.sort_by_key(russh_sftp::client::fs::DirEntry::file_name);
        for item in names {
            let name = item.file_name();
            if name == "." || name == ".." || name.contains('/') {
                continue;
            }
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            let meta = item.metadata();
            let bits = meta.permissions.unwrap_or(0);
            let mode = bits & 0o777;
            let mtime = i64::from(meta.mtime.unwrap_or(0));
            if bits & S_IFMT == S_IFLNK {
                let target = sftp.read_link(remote(&path)).await.unwrap_or_default();
                let escapes = !stays_inside(&dir, &target);
                tree.links.push(SkippedLink {
                    path,
                    target,
                    escapes,
                });
            } else if bits & S_IFMT == S_IFDIR {
                tree.entries.push(Entry {
                    path: path.clone(),
                    kind: Kind::Dir,
                    size: 0,
                    mtime,
                    mode,
                });
                queue.push_back(path);
            } else if bits & S_IFMT == S_IFREG {
                tree.entries.push(Entry {
                    path,
                    kind: Kind::File,
                    size: meta.len(),
                    mtime,
                    mode,
                });
            }
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_that_climb_out_or_are_absolute_escape() {
        assert!(stays_inside("", "server.properties"));
        assert!(stays_inside("a/b", "../c"));
        assert!(stays_inside("a", "./b/../c"));
        assert!(!stays_inside("", "../etc/passwd"));
        assert!(!stays_inside("a", "../../x"));
        assert!(!stays_inside("a", "/etc/passwd"));
        assert!(!stays_inside("a", ""));
    }

    #[test]
    fn a_key_is_its_type_and_body() {
        assert_eq!(
            key_id("ssh-ed25519 AAAAC3Nz host@example"),
            "ssh-ed25519 AAAAC3Nz"
        );
    }
}
