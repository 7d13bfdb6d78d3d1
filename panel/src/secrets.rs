//! Keys the panel keeps outside the database: the JWT signing secret and the master key
//! sealing stored secrets. Given in the config, or generated into the data dir (0600).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::auth::crypto::random_hex;
use crate::config::Config;

/// Writes `bytes` to a new file readable by its owner only.
///
/// # Errors
/// The file exists or cannot be written.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// The configured key, else the one in `dir/file`; with `generate`, a missing file is
/// created with a new key, otherwise it is an error.
fn load_key(dir: &Path, file: &str, configured: &str, generate: bool) -> anyhow::Result<String> {
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    let path = dir.join(file);
    anyhow::ensure!(
        generate || path.exists(),
        "{} does not exist: is data_dir the panel's data directory?",
        path.display()
    );
    if path.exists() {
        let value = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let value = value.trim().to_string();
        anyhow::ensure!(!value.is_empty(), "{} is empty", path.display());
        return Ok(value);
    }
    let value = random_hex(32);
    write_private(&path, value.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a new key");
    Ok(value)
}

/// The JWT secret and master key, generated on first start when not configured.
pub struct Keys {
    pub jwt_secret: String,
    pub master_key: [u8; 32],
}

/// Loads (or creates) the panel's keys.
///
/// # Errors
/// An unwritable data dir or a master key that is not 64 hex characters.
pub fn load(config: &Config) -> anyhow::Result<Keys> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    keys(config, true)
}

/// The panel's keys as they are, generating none (backups read them).
///
/// # Errors
/// A key neither configured nor in the data dir, or a malformed one.
pub fn load_existing(config: &Config) -> anyhow::Result<Keys> {
    keys(config, false)
}

fn keys(config: &Config, generate: bool) -> anyhow::Result<Keys> {
    let jwt_secret = load_key(
        &config.data_dir,
        "jwt.key",
        config.jwt_secret.expose(),
        generate,
    )?;
    anyhow::ensure!(
        jwt_secret.len() >= 32,
        "jwt_secret must be at least 32 characters"
    );
    let master_hex = load_key(
        &config.data_dir,
        "master.key",
        config.master_key.expose(),
        generate,
    )?;
    let master: [u8; 32] = hex::decode(&master_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("master_key must be 64 hex characters (32 bytes)")?;
    Ok(Keys {
        jwt_secret,
        master_key: master,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let first = load(&config).expect("keys");
        let again = load(&config).expect("keys");
        assert_eq!(first.jwt_secret, again.jwt_secret);
        assert_eq!(first.master_key, again.master_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in ["jwt.key", "master.key"] {
                let mode = std::fs::metadata(dir.path().join(f))
                    .expect("meta")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
    }
}
