//! The `git` CLI side of a sync: a shallow fetch of one branch into the staging repository
//! and a hard reset of its work tree, under a time limit, with no prompts, no hooks, only
//! remote transports, and no credentials on disk or on a command line. The URL is passed
//! per fetch and never stored as a remote.

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use shardlyn_proto::git::SyncRequest;
use tokio::process::Command;

use super::GitError;
use super::pin::Pinned;

/// Longest one `git` command may run.
pub const TIMEOUT: Duration = Duration::from_secs(600);
/// Most bytes of `git`'s stderr kept in an error message.
const STDERR_TAIL: usize = 1000;

/// What was fetched.
#[derive(Debug)]
pub struct Head {
    pub commit: String,
    pub message: String,
    /// Regular files of the commit (paths relative to the work tree); symlinks and
    /// submodules are left out.
    pub files: Vec<String>,
}

/// Fetches `req.branch` of `req.url` into `dir/repo` and checks it out.
///
/// # Errors
/// [`GitError::Git`], [`GitError::Timeout`], [`GitError::Missing`], [`GitError::Io`].
pub async fn fetch(
    root: &Path,
    dir: &Path,
    req: &SyncRequest,
    pinned: &Pinned,
) -> Result<Head, GitError> {
    let repo = dir.join("repo");
    let key = match &req.deploy_key {
        Some(k) => Some(TempKey::write(dir, k)?),
        None => None,
    };
    let env = Env {
        ssh: ssh_command(
            root,
            key.as_ref().map(|k| k.0.as_path()),
            pinned.ssh.as_ref(),
        ),
        config: pinned
            .config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        header: req.token.as_ref().map(|t| {
            let user = req.token_username.as_deref().unwrap_or("x-access-token");
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{t}"));
            format!("Authorization: Basic {basic}")
        }),
    };
    if !repo.join(".git").is_dir() {
        let _ = tokio::fs::remove_dir_all(&repo).await;
        git(&env, dir, "init", &["init", "--quiet", "repo"]).await?;
    }
    let refspec = format!("+refs/heads/{}:refs/remotes/deploy/head", req.branch);
    let fetched = git(
        &env,
        &repo,
        "fetch",
        &[
            "fetch",
            "--quiet",
            "--depth=1",
            "--no-tags",
            "--no-recurse-submodules",
            "--",
            &pinned.url,
            &refspec,
        ],
    )
    .await;
    drop(key);
    fetched?;
    git(
        &env,
        &repo,
        "checkout",
        &["reset", "--quiet", "--hard", "refs/remotes/deploy/head"],
    )
    .await?;
    let shown = git(
        &env,
        &repo,
        "log",
        &["log", "-1", "--format=%H%n%s", "HEAD"],
    )
    .await?;
    let mut lines = shown.lines();
    let commit = lines.next().unwrap_or_default().trim().to_owned();
    let message = lines.next().unwrap_or_default().to_owned();
    let listed = git(&env, &repo, "ls-files", &["ls-files", "--stage", "-z"]).await?;
    Ok(Head {
        commit,
        message,
        files: regular_files(&listed),
    })
}

/// The regular files of `git ls-files --stage -z` (`mode sha stage\tpath\0`...).
fn regular_files(listed: &str) -> Vec<String> {
    listed
        .split('\0')
        .filter_map(|entry| {
            let (meta, path) = entry.split_once('\t')?;
            let mode = meta.split(' ').next()?;
            (mode == "100644" || mode == "100755").then(|| path.to_owned())
        })
        .collect()
}

/// The environment of every `git` run of a sync.
struct Env {
    ssh: String,
    /// `-c key=value` settings pinning the checked remote ([`Pinned::config`]).
    config: Vec<String>,
    /// `http.extraHeader`, passed through `GIT_CONFIG_*` (the environment form of `-c`,
    /// which keeps the token out of the process list).
    header: Option<String>,
}

/// Runs `git args` in `cwd`; its stdout on success.
async fn git(env: &Env, cwd: &Path, step: &'static str, args: &[&str]) -> Result<String, GitError> {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "protocol.file.allow=never",
        "-c",
        "core.symlinks=true",
        "-c",
        "advice.detachedHead=false",
    ])
    .args(env.config.iter().flat_map(|c| ["-c", c.as_str()]))
    .args(args)
    .current_dir(cwd)
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_ASKPASS", "true")
    .env("SSH_ASKPASS", "true")
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env("GIT_CONFIG_GLOBAL", "/dev/null")
    .env("GIT_ALLOW_PROTOCOL", "http:https:ssh:git")
    .env("GIT_SSH_COMMAND", &env.ssh)
    .env("LC_ALL", "C")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    if let Some(h) = &env.header {
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", h);
    }
    let child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            GitError::Missing(e.to_string())
        } else {
            GitError::Io(format!("running git: {e}"))
        }
    })?;
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| GitError::Timeout(step))?
        .map_err(|e| GitError::Io(format!("running git: {e}")))?;
    if !out.status.success() {
        return Err(GitError::Git {
            step,
            detail: tail(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last [`STDERR_TAIL`] bytes of `text`, trimmed.
fn tail(text: &str) -> String {
    let text = text.trim();
    let mut start = text.len().saturating_sub(STDERR_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if text.is_empty() {
        "no detail".into()
    } else {
        text[start..].to_owned()
    }
}

/// `GIT_SSH_COMMAND`: batch mode, new host keys accepted once and pinned in
/// `DATA_DIR/git/known_hosts`, the deploy key if any, and the checked address to
/// connect to (the host key still checked under the host's name).
fn ssh_command(root: &Path, key: Option<&Path>, pinned: Option<&(String, IpAddr)>) -> String {
    let mut cmd = format!(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
        quote(&root.join("known_hosts").to_string_lossy())
    );
    if let Some((host, ip)) = pinned {
        cmd.push_str(&format!(
            " -o HostName={} -o HostKeyAlias={}",
            quote(&ip.to_string()),
            quote(host)
        ));
    }
    if let Some(k) = key {
        cmd.push_str(" -o IdentitiesOnly=yes -i ");
        cmd.push_str(&quote(&k.to_string_lossy()));
    }
    cmd
}

/// Single-quotes `s` for the shell git runs `GIT_SSH_COMMAND` with.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A deploy key in a 0600 file for the time of one fetch; removed when dropped.
struct TempKey(std::path::PathBuf);

impl TempKey {
    fn write(dir: &Path, key: &str) -> Result<Self, GitError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(format!("key-{:016x}", rand::random::<u64>()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| GitError::Io(format!("deploy key: {e}")))?;
        let guard = Self(path);
        let mut text = key.trim().to_owned();
        text.push('\n');
        f.write_all(text.as_bytes())
            .map_err(|e| GitError::Io(format!("deploy key: {e}")))?;
        Ok(guard)
    }
}

impl Drop for TempKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_regular_files() {
        let listed = "100644 aa 0\ta.txt\x00100755 bb 0\tbin/run.sh\x00120000 cc 0\tlink\x00160000 dd 0\tsub\x00";
        assert_eq!(regular_files(listed), vec!["a.txt", "bin/run.sh"]);
        assert!(regular_files("").is_empty());
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(quote("/a b/it's"), r"'/a b/it'\''s'");
        let cmd = ssh_command(
            Path::new("/data/git"),
            Some(Path::new("/data/git/i/key-1")),
            None,
        );
        assert!(cmd.contains("StrictHostKeyChecking=accept-new"));
        assert!(cmd.ends_with("-i '/data/git/i/key-1'"));
        let pinned = ("git.example".to_owned(), IpAddr::from([93, 184, 216, 34]));
        let cmd = ssh_command(Path::new("/data/git"), None, Some(&pinned));
        assert!(
            cmd.ends_with("-o HostName='93.184.216.34' -o HostKeyAlias='git.example'"),
            "{cmd}"
        );
    }

    #[test]
    fn keys_are_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = TempKey::write(dir.path(), "-----BEGIN-----\nx\n-----END-----").expect("key");
        let meta = std::fs::metadata(&key.0).expect("written");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let path = key.0.clone();
        drop(key);
        assert!(!path.exists());
    }
}
