//! The agent's saved registration: panel URL, node id, agent token and the pinned CA,
//! kept in `<data_dir>/agent.toml` with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// What `register` saves and `run` reads.
#[derive(Clone, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Base URL of the panel, e.g. `https://panel.example.com:8443`.
    pub panel_url: String,
    pub node_id: String,
    /// `shardlyn_agent_...`; never logged.
    pub agent_token: String,
    /// PEM of the panel's self-signed CA, when pinned at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("panel_url", &self.panel_url)
            .field("node_id", &self.node_id)
            .field("agent_token", &"***")
            .field("pinned_ca", &self.ca_pem.is_some())
            .finish()
    }
}

/// Where the configuration lives in a data dir.
#[must_use]
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent.toml")
}

impl AgentConfig {
    /// Reads the configuration written by `register`.
    ///
    /// # Errors
    /// A missing or malformed file.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let file = path(data_dir);
        let text = std::fs::read_to_string(&file).with_context(|| {
            format!(
                "reading {} (run `shardlyn-agent register` first)",
                file.display()
            )
        })?;
        toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))
    }

    /// Writes the configuration (replacing an older one) readable by its owner only.
    ///
    /// # Errors
    /// An unwritable data dir.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let file = path(data_dir);
        let tmp = file.with_extension("toml.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options.open(&tmp)?;
        out.write_all(toml::to_string(self)?.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&tmp, &file)?;
        Ok(())
    }
}

/// Node-level settings of the instance manager, read from `<data_dir>/settings.toml`
/// when present (every key optional), then `SHARDLYN_AGENT_*` environment variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `uid:gid` the game servers run as (Wings' `pterodactyl` user is 988).
    pub container_user: String,
    /// How long a missing image may take to pull before the start or install fails.
    pub pull_timeout_secs: u64,
    /// `TZ` given to every container.
    pub timezone: String,
    /// The console log of an instance is rotated past this size.
    pub console_log_max_bytes: u64,
    /// Address the SFTP server listens on.
    pub sftp_bind: String,
    /// Port of the SFTP server (0: any free port).
    pub sftp_port: u16,
    /// SFTP connections open at once, over all clients.
    pub sftp_max_connections: usize,
    /// SFTP connections open at once from one client address.
    pub sftp_max_connections_per_ip: usize,
    /// Seconds between two sweeps of expired resumable uploads' partial data.
    pub upload_sweep_secs: u64,
    /// MiB the servers' files of this node may take in all (0: no budget). A server
    /// moving here that would pass it is refused with the reason, its source untouched.
    pub volumes_budget_mb: u64,
    /// Where this node's sshd trust from the panel's SSH certificate authority is
    /// installed (`ca.pub`, `revoked.krl`, `principals/<login>`; point `sshd_config`'s
    /// `TrustedUserCAKeys`, `RevokedKeys` and `AuthorizedPrincipalsFile` there). Empty:
    /// not installed.
    pub ssh_trust_dir: String,
    /// The logins certificates may open on this node (`root` only when added here).
    pub ssh_logins: Vec<String>,
    /// What user-supplied URLs (git remotes, S3 endpoints, file pulls) may reach besides
    /// the public internet: `[outbound] allow = ["10.0.0.5", "192.168.1.0/24",
    /// "minio.lan"]`, or `SHARDLYN_OUTBOUND__ALLOW` as a JSON list.
    pub outbound: shardlyn_net::outbound::Outbound,
    /// Port of this node's own sshd, reached on `127.0.0.1` for SSH shells
    /// (`POST /v1/shell`, kind `ssh`).
    pub ssh_port: u16,
    /// Where this node's sshd host keys are: every `*.pub` here is a key an SSH shell
    /// accepts from `127.0.0.1:<ssh_port>`; any other refuses the session.
    pub ssh_host_keys_dir: String,
    /// The login shell of terminal shells (kind `terminal`): `/bin/bash` when it exists,
    /// else `/bin/sh`.
    pub terminal_shell: String,
    /// Shells (SSH and terminal) open at once on this node; more are refused (409).
    pub shell_max_sessions: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            container_user: "988:988".into(),
            pull_timeout_secs: 60,
            timezone: std::env::var("TZ")
                .ok()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "UTC".into()),
            console_log_max_bytes: 16 * 1024 * 1024,
            sftp_bind: "0.0.0.0".into(),
            sftp_port: 2022,
            sftp_max_connections: 256,
            sftp_max_connections_per_ip: 16,
            upload_sweep_secs: 60,
            volumes_budget_mb: 0,
            ssh_trust_dir: String::new(),
            ssh_logins: vec!["shardlyn".into()],
            outbound: shardlyn_net::outbound::Outbound::default(),
            ssh_port: 22,
            ssh_host_keys_dir: "/etc/ssh".into(),
            terminal_shell: if Path::new("/bin/bash").exists() {
                "/bin/bash".into()
            } else {
                "/bin/sh".into()
            },
            shell_max_sessions: 32,
        }
    }
}

impl Settings {
    /// Defaults < `<data_dir>/settings.toml` < `SHARDLYN_AGENT_CONTAINER_USER`,
    /// `SHARDLYN_AGENT_PULL_TIMEOUT_SECS`, `SHARDLYN_AGENT_SFTP_BIND`,
    /// `SHARDLYN_AGENT_SFTP_PORT`, `SHARDLYN_AGENT_SSH_PORT`, `SHARDLYN_OUTBOUND__ALLOW` (a JSON list, replacing
    /// the file's `[outbound] allow`).
    ///
    /// # Errors
    /// A settings file that exists but does not parse; an unusable allow list.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let file = data_dir.join("settings.toml");
        let mut settings = match std::fs::read_to_string(&file) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?
            }
            Err(_) => Self::default(),
        };
        if let Ok(user) = std::env::var("SHARDLYN_AGENT_CONTAINER_USER") {
            settings.container_user = user;
        }
        if let Some(secs) = std::env::var("SHARDLYN_AGENT_PULL_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            settings.pull_timeout_secs = secs;
        }
        if let Ok(bind) = std::env::var("SHARDLYN_AGENT_SFTP_BIND") {
            settings.sftp_bind = bind;
        }
        if let Some(port) = std::env::var("SHARDLYN_AGENT_SFTP_PORT")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            settings.sftp_port = port;
        }
        if let Some(port) = std::env::var("SHARDLYN_AGENT_SSH_PORT")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            settings.ssh_port = port;
        }
        if let Ok(list) = std::env::var("SHARDLYN_OUTBOUND__ALLOW") {
            settings.outbound = outbound_from_env(&list)?;
        }
        Ok(settings)
    }

    /// The numeric `(uid, gid)` of `container_user`, when it is numeric.
    #[must_use]
    pub fn container_ids(&self) -> Option<(u32, u32)> {
        let (u, g) = self
            .container_user
            .split_once(':')
            .unwrap_or((&self.container_user, &self.container_user));
        Some((u.parse().ok()?, g.parse().ok()?))
    }
}

/// Parses `SHARDLYN_OUTBOUND__ALLOW`: a JSON list of IPs, CIDR ranges and host names.
fn outbound_from_env(list: &str) -> anyhow::Result<shardlyn_net::outbound::Outbound> {
    let allow: Vec<String> = serde_json::from_str(list).context(
        "SHARDLYN_OUTBOUND__ALLOW must be a JSON list, e.g. [\"10.0.0.5\", \"minio.lan\"]",
    )?;
    Ok(shardlyn_net::outbound::Outbound::new(allow)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_comes_from_the_file_or_the_environment() {
        let s: Settings =
            toml::from_str("[outbound]\nallow = [\"10.0.0.5\", \"minio.lan\"]\n").expect("parses");
        assert_eq!(s.outbound.allow_list(), ["10.0.0.5", "minio.lan"]);
        assert!(toml::from_str::<Settings>("[outbound]\nallow = [\"10.0.0.0/99\"]\n").is_err());
        let env = outbound_from_env(r#"["192.168.1.0/24", "::1"]"#).expect("json list");
        assert_eq!(env.allow_list(), ["192.168.1.0/24", "::1"]);
        assert!(outbound_from_env("10.0.0.5").is_err(), "not a JSON list");
        assert!(outbound_from_env(r#"["not a host"]"#).is_err());
    }
}
