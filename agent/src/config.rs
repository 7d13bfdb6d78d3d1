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
