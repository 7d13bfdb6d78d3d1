//! One backup of the panel: a gzip'd tar, encrypted with age to the operator's
//! passphrase or public keys, holding
//!
//! - `manifest.json`: the format, the panel's version, the engine, the newest applied
//!   migration and when it was made;
//! - `database.sqlite` or `database.pgdump` ([`super::dump`]);
//! - `keys/jwt.key` and `keys/master.key`: without the master key, no sealed secret in
//!   the database opens, so the archive must never be readable with the master key alone;
//! - `tls/ca.pem` and `tls/ca-key.pem` when the panel made its own CA (agents pin it).
//!
//! SSH session recordings and the SSH CA's keys live in the database and come with it.
//! `age -d -i key.txt FILE | tar -xz` opens an archive by hand.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::{Config, SystemBackupConfig};
use crate::db::{Backend, Db};

/// The archive format this binary writes and reads.
pub const FORMAT: u32 = 1;
/// The age work factor for passphrases (2^18: about a second; age's own default).
const SCRYPT_LOG_N: u8 = 18;
/// Largest work factor accepted when opening (a forged header must not cost hours).
const SCRYPT_MAX_LOG_N: u8 = 22;

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub shardlyn_version: String,
    /// `sqlite` or `postgres`.
    pub engine: String,
    /// The newest migration applied to the database when it was copied.
    pub schema_version: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The panel made its own TLS CA (`tls/` is in the archive).
    pub tls_ca: bool,
}

/// What [`make`] wrote.
#[derive(Debug, Clone)]
pub struct Made {
    pub path: PathBuf,
    pub bytes: u64,
    pub manifest: Manifest,
}

/// The keys an archive may be opened with.
pub enum Opener {
    Passphrase(SecretString),
    /// The contents of an age identity file (`AGE-SECRET-KEY-1...` lines).
    Identities(String),
}

fn keys_to(settings: &SystemBackupConfig) -> anyhow::Result<age::Encryptor> {
    let passphrase = settings.passphrase.expose();
    if !settings.recipients.is_empty() {
        anyhow::ensure!(
            passphrase.is_empty(),
            "system_backup: set passphrase or recipients, not both (age encrypts to one kind)"
        );
        let recipients = settings
            .recipients
            .iter()
            .map(|r| {
                r.trim()
                    .parse::<age::x25519::Recipient>()
                    .map_err(|e| anyhow::anyhow!("system_backup.recipients: {r:?}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return age::Encryptor::with_recipients(
            recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| anyhow::anyhow!("system_backup.recipients: {e}"));
    }
    anyhow::ensure!(
        !passphrase.is_empty(),
        "the panel's backups are encrypted to a key you hold: set system_backup.passphrase \
         or system_backup.recipients (age public keys) first"
    );
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
    recipient.set_work_factor(SCRYPT_LOG_N);
    age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The archive's file name for a backup made at `at_ms`.
#[must_use]
pub fn file_name(at_ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    format!(
        "shardlyn-panel-{}.tar.gz.age",
        at.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// Makes one archive of the panel at `out` (written beside it first, then renamed).
///
/// # Errors
/// No key to encrypt to, the database copy fails, or `out`'s directory is not writable.
pub async fn make(config: &Config, db: &Db, now_ms: i64, out: &Path) -> anyhow::Result<Made> {
    let settings = &config.system_backup;
    let encryptor = keys_to(settings)?;
    let keys = crate::secrets::load_existing(config)?;
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".shardlyn-backup-")
        .tempdir_in(dir)
        .with_context(|| format!("making a working directory in {}", dir.display()))?;
    let dump_path = work
        .path()
        .join(crate::system_backup::dump::file_name(db.backend));
    super::dump::dump(db, &config.effective_database_url(), settings, &dump_path).await?;
    let schema_version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&db.pool)
            .await
            .context("reading the applied migrations")?;
    let tls = config.data_dir.join("tls");
    let manifest = Manifest {
        format: FORMAT,
        shardlyn_version: env!("CARGO_PKG_VERSION").into(),
        engine: db.backend.name().into(),
        schema_version,
        created_at: now_ms,
        tls_ca: tls.join("ca.pem").is_file() && tls.join("ca-key.pem").is_file(),
    };
    let partial = work.path().join("archive.partial");
    let manifest_json = serde_json::to_vec_pretty(&manifest)?;
    let (jwt, master) = (keys.jwt_secret.clone(), hex::encode(keys.master_key));
    let (partial_w, dump_w, tls_w, with_tls) = (
        partial.clone(),
        dump_path.clone(),
        tls.clone(),
        manifest.tls_ca,
    );
    let backend = db.backend;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        // Encrypted, yet still nobody else's business: owner-only, like the keys.
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial_w)
                .with_context(|| format!("creating {}", partial_w.display()))?
        };
        let encrypted = encryptor.wrap_output(BufWriter::new(file))?;
        let gz = flate2::write::GzEncoder::new(encrypted, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        add_bytes(&mut tar, "manifest.json", &manifest_json, 0o644)?;
        tar.append_path_with_name(&dump_w, super::dump::file_name(backend))
            .context("adding the database")?;
        add_bytes(&mut tar, "keys/jwt.key", jwt.as_bytes(), 0o600)?;
        add_bytes(&mut tar, "keys/master.key", master.as_bytes(), 0o600)?;
        if with_tls {
            for name in ["ca.pem", "ca-key.pem"] {
                let bytes = std::fs::read(tls_w.join(name))
                    .with_context(|| format!("reading tls/{name}"))?;
                add_bytes(&mut tar, &format!("tls/{name}"), &bytes, 0o600)?;
            }
        }
        let gz = tar.into_inner()?;
        let encrypted = gz.finish()?;
        let mut file = encrypted.finish()?;
        file.flush()?;
        file.get_ref().sync_all()?;
        Ok(())
    })
    .await
    .context("the archive writer panicked")??;
    std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    let bytes = std::fs::metadata(out)?.len();
    Ok(Made {
        path: out.to_path_buf(),
        bytes,
        manifest,
    })
}

fn add_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
        .with_context(|| format!("adding {name}"))
}

/// The names an archive may hold; anything else is refused.
const ENTRIES: &[&str] = &[
    "manifest.json",
    "database.sqlite",
    "database.pgdump",
    "keys/jwt.key",
    "keys/master.key",
    "tls/ca.pem",
    "tls/ca-key.pem",
];

/// Brings a panel back from `archive` into `config`'s data directory, which must be empty
/// (or absent), and its database, which must be empty; returns the archive's manifest. Nothing is written there until
/// the archive has been opened and read whole.
///
/// # Errors
/// The wrong key, a damaged or foreign file, a data directory or database that is not
/// empty, an archive from another engine or a newer schema, a configured key that
/// differs from the archive's.
pub async fn restore(config: &Config, archive: &Path, opener: Opener) -> anyhow::Result<Manifest> {
    let url = config.effective_database_url();
    let backend = Backend::from_url(&url)?;
    ensure_empty_dir(&config.data_dir)?;
    if let Some(parent) = config.data_dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Unpacked beside the data directory, so nothing appears in it before the end.
    let staging = tempfile::Builder::new()
        .prefix(".shardlyn-restore-")
        .tempdir_in(config.data_dir.parent().unwrap_or(Path::new(".")))
        .context("making a working directory beside data_dir")?;
    let archive_r = archive.to_path_buf();
    let staging_r = staging.path().to_path_buf();
    tokio::task::spawn_blocking(move || unpack(&archive_r, &staging_r, opener))
        .await
        .context("the archive reader panicked")??;
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(staging.path().join("manifest.json"))
            .context("the archive has no manifest.json: not a Shardlyn panel backup")?,
    )
    .context("manifest.json")?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "archive format {} is not one this release reads ({FORMAT})",
        manifest.format
    );
    anyhow::ensure!(
        manifest.engine == backend.name(),
        "this archive holds a {} database and database_url names {}: restore into the same engine",
        manifest.engine,
        backend.name()
    );
    let newest = crate::db::migrator(backend)
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    anyhow::ensure!(
        manifest.schema_version <= newest,
        "this archive comes from a newer Shardlyn ({}, schema {}); this binary knows schema \
         {newest}: restore with that release or a newer one",
        manifest.shardlyn_version,
        manifest.schema_version
    );
    let dump = staging.path().join(super::dump::file_name(backend));
    anyhow::ensure!(dump.is_file(), "the archive has no database");
    let read_key = |name: &str| -> anyhow::Result<String> {
        Ok(
            std::fs::read_to_string(staging.path().join("keys").join(name))
                .with_context(|| format!("the archive has no keys/{name}"))?
                .trim()
                .to_string(),
        )
    };
    let (jwt, master) = (read_key("jwt.key")?, read_key("master.key")?);
    for (setting, configured, archived) in [
        ("jwt_secret", config.jwt_secret.expose(), &jwt),
        ("master_key", config.master_key.expose(), &master),
    ] {
        anyhow::ensure!(
            configured.is_empty() || configured == archived,
            "{setting} in the configuration differs from the backed-up panel's: remove it \
             (the archive's is restored into data_dir) or set it to the old value"
        );
    }
    ensure_empty_database(backend, &url).await?;
    super::dump::load(backend, &url, &config.system_backup, &dump).await?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    crate::secrets::write_private(&config.data_dir.join("jwt.key"), jwt.as_bytes())?;
    crate::secrets::write_private(&config.data_dir.join("master.key"), master.as_bytes())?;
    if manifest.tls_ca {
        let tls = config.data_dir.join("tls");
        std::fs::create_dir_all(&tls)?;
        crate::secrets::write_private(
            &tls.join("ca-key.pem"),
            &std::fs::read(staging.path().join("tls/ca-key.pem"))
                .context("the archive has no tls/ca-key.pem")?,
        )?;
        std::fs::copy(staging.path().join("tls/ca.pem"), tls.join("ca.pem"))
            .context("the archive has no tls/ca.pem")?;
    }
    let db = Db::connect(&url, 1).await?;
    db.migrate().await?;
    db.pool.close().await;
    Ok(manifest)
}

/// Decrypts, unzips and unpacks `archive` into `into`, accepting only [`ENTRIES`].
fn unpack(archive: &Path, into: &Path, opener: Opener) -> anyhow::Result<()> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file)).map_err(|e| {
        anyhow::anyhow!("{} is not an age-encrypted backup: {e}", archive.display())
    })?;
    let reader: Box<dyn Read> = match opener {
        Opener::Passphrase(passphrase) => {
            anyhow::ensure!(
                decryptor.is_scrypt(),
                "this archive was encrypted to age public keys: open it with --identity"
            );
            let mut identity = age::scrypt::Identity::new(passphrase);
            identity.set_max_work_factor(SCRYPT_MAX_LOG_N);
            Box::new(
                decryptor
                    .decrypt(std::iter::once(&identity as &dyn age::Identity))
                    .map_err(|e| anyhow::anyhow!("the passphrase does not open it: {e}"))?,
            )
        }
        Opener::Identities(text) => {
            anyhow::ensure!(
                !decryptor.is_scrypt(),
                "this archive was encrypted to a passphrase: open it with --passphrase-file"
            );
            let identities = age::IdentityFile::from_buffer(text.as_bytes())
                .context("reading the identity file")?
                .into_identities()
                .map_err(|e| anyhow::anyhow!("reading the identity file: {e}"))?;
            Box::new(
                decryptor
                    .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
                    .map_err(|e| anyhow::anyhow!("none of these identities opens it: {e}"))?,
            )
        }
    };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    for entry in tar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive (damaged?)")?;
        let name = entry.path()?.to_string_lossy().into_owned();
        anyhow::ensure!(
            ENTRIES.contains(&name.as_str()) && entry.header().entry_type().is_file(),
            "the archive holds {name:?}, which no Shardlyn backup does"
        );
        let path = into.join(&name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = File::create(&path)?;
        std::io::copy(&mut entry, &mut out).context("reading the archive (damaged?)")?;
    }
    Ok(())
}

fn ensure_empty_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", dir.display())),
        Ok(mut entries) => {
            anyhow::ensure!(
                entries.next().is_none(),
                "data_dir {} is not empty: restore brings a panel back into an empty data \
                 directory (move the old one aside first)",
                dir.display()
            );
            Ok(())
        }
    }
}

async fn ensure_empty_database(backend: Backend, url: &str) -> anyhow::Result<()> {
    match backend {
        Backend::Sqlite => {
            let path = crate::db::sqlite_path(url)
                .context("restoring needs a SQLite file, not an in-memory database")?;
            anyhow::ensure!(
                !path.exists(),
                "the database {} exists already: restore into an empty one",
                path.display()
            );
        }
        Backend::Postgres => {
            let db = Db::connect(url, 1).await?;
            let tables: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema()",
            )
            .fetch_one(&db.pool)
            .await?;
            db.pool.close().await;
            anyhow::ensure!(
                tables == 0,
                "the database has {tables} tables already: restore into an empty database \
                 (createdb a new one)"
            );
        }
    }
    Ok(())
}
