//! Applies an egg's `config.files` to the server files before each start.

use std::collections::BTreeMap;
use std::path::Path;

use shardlyn_proto::instance::ConfigFileSpec;

/// What `{{...}}` placeholders in `find` values resolve to.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    /// The instance's environment (`{{server.build.env.X}}`, `{{env.X}}`).
    pub env: BTreeMap<String, String>,
    /// `{{server.build.default.ip}}`.
    pub default_ip: String,
    /// `{{server.build.default.port}}`.
    pub default_port: u16,
    /// `{{server.build.memory}}` in MiB.
    pub memory_mb: i64,
    /// `{{config.X}}`: the agent's own settings, e.g. `docker.interface`.
    pub config: BTreeMap<String, String>,
}

/// Applies every file in order; a file that cannot be parsed or written is skipped and
/// reported (Wings logs and goes on). Returns one message per skipped file.
#[must_use]
pub fn apply(root: &Path, files: &[ConfigFileSpec], placeholders: &Placeholders) -> Vec<String> {
    let _ = (root, placeholders);
    files
        .iter()
        .map(|f| format!("{}: config file parsers not available yet", f.path))
        .collect()
}
