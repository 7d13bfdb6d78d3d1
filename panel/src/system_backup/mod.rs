//! The panel's own backup (issue 21 §3): the database, the generated keys and the TLS CA
//! agents pin, encrypted with age to a key the operator holds ([`archive`]), to a
//! directory or an S3 bucket, on a schedule (once per cluster, by the replica holding
//! the job lease) or now with `shardlyn backup`; `shardlyn restore` brings a panel back
//! into an empty data directory. `GET /v1/system/backup-config` shows the settings,
//! secrets redacted, and the last runs.

pub mod archive;
pub mod dump;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::auth::extract::AdminUser;
use crate::config::{Config, SystemBackupConfig};
use crate::db::Db;
use crate::error::{AppJson, AppResult};
use crate::routes::{Access, Routes};
use crate::schedules::cron::When;
use crate::state::AppState;
use crate::types::Timestamp;

/// Runs listed by `GET /v1/system/backup-config`.
const RUNS_SHOWN: i64 = 20;

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("system").get(
        "/v1/system/backup-config",
        Access::Admin,
        "System backup configuration",
        config_view,
    )
}

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Cli,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Cli => "cli",
        }
    }
}

/// The schedule, read in UTC; `None` without one.
fn schedule(settings: &SystemBackupConfig) -> Option<When> {
    let expr = settings.schedule.trim();
    (!expr.is_empty())
        .then(|| When::parse(expr, "UTC").ok())
        .flatten()
}

/// Makes one backup now and records the run. With `out`, the archive goes there;
/// otherwise to the configured directory or bucket, where only the newest
/// `system_backup.keep` are kept.
///
/// # Errors
/// As [`archive::make`], or the upload, or the record of the run.
pub async fn run_once(
    config: &Config,
    db: &Db,
    replica_id: Option<&str>,
    trigger: Trigger,
    now_ms: i64,
    out: Option<&Path>,
) -> anyhow::Result<store::Run> {
    let result = make_and_place(config, db, now_ms, out).await;
    let mut run = store::Run {
        id: crate::db::new_id(),
        trigger: trigger.name().into(),
        status: "succeeded".into(),
        started_at: now_ms,
        finished_at: crate::db::now_ms().max(now_ms),
        bytes: None,
        location: None,
        error: None,
        replica_id: replica_id.map(str::to_owned),
    };
    match &result {
        Ok((location, bytes)) => {
            run.location = Some(location.clone());
            run.bytes = i64::try_from(*bytes).ok();
        }
        Err(e) => {
            run.status = "failed".into();
            run.error = Some(format!("{e:#}"));
        }
    }
    store::insert(&db.pool, &run)
        .await
        .context("recording the backup run")?;
    result.map(|_| run)
}

/// Makes the archive and puts it where it goes: `(location, bytes)`.
async fn make_and_place(
    config: &Config,
    db: &Db,
    now_ms: i64,
    out: Option<&Path>,
) -> anyhow::Result<(String, u64)> {
    let settings = &config.system_backup;
    let name = archive::file_name(now_ms);
    if let Some(out) = out {
        let made = archive::make(config, db, now_ms, out).await?;
        return Ok((made.path.display().to_string(), made.bytes));
    }
    if settings.s3_bucket.is_empty() {
        let dir = settings.dir_or_default(&config.data_dir);
        let made = archive::make(config, db, now_ms, &dir.join(&name)).await?;
        prune_dir(&dir, settings.keep)?;
        return Ok((made.path.display().to_string(), made.bytes));
    }
    // Made on the data directory's disk, uploaded, then removed.
    let work = tempfile::Builder::new()
        .prefix(".shardlyn-backup-upload-")
        .tempdir_in(&config.data_dir)
        .context("making a working directory in data_dir")?;
    let made = archive::make(config, db, now_ms, &work.path().join(&name)).await?;
    let bucket = bucket(settings)?;
    let key = ObjectPath::from(format!("{}{name}", settings.s3_prefix));
    let mut writer = object_store::buffered::BufWriter::new(bucket.clone(), key.clone());
    let mut file = tokio::fs::File::open(&made.path).await?;
    tokio::io::copy(&mut file, &mut writer)
        .await
        .with_context(|| format!("uploading to s3://{}/{key}", settings.s3_bucket))?;
    tokio::io::AsyncWriteExt::shutdown(&mut writer)
        .await
        .with_context(|| format!("uploading to s3://{}/{key}", settings.s3_bucket))?;
    prune_bucket(bucket.as_ref(), settings).await?;
    Ok((format!("s3://{}/{key}", settings.s3_bucket), made.bytes))
}

/// The archives in a listing, by name: `shardlyn-panel-<time>.tar.gz.age`.
fn is_archive(name: &str) -> bool {
    name.starts_with("shardlyn-panel-") && name.ends_with(".tar.gz.age")
}

/// Deletes all but the newest `keep` archives in `dir` (their names sort by time).
fn prune_dir(dir: &Path, keep: u32) -> anyhow::Result<()> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_archive)
        })
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep as usize);
    for old in names.into_iter().take(excess) {
        std::fs::remove_file(&old).with_context(|| format!("deleting {}", old.display()))?;
        tracing::info!(path = %old.display(), "old panel backup deleted");
    }
    Ok(())
}

fn bucket(settings: &SystemBackupConfig) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let region = if settings.s3_region.is_empty() {
        "us-east-1"
    } else {
        &settings.s3_region
    };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&settings.s3_bucket)
        .with_region(region)
        .with_access_key_id(&settings.s3_access_key_id)
        .with_secret_access_key(settings.s3_secret_access_key.expose());
    if !settings.s3_endpoint.is_empty() {
        builder = builder
            .with_endpoint(&settings.s3_endpoint)
            .with_allow_http(settings.s3_endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    Ok(Arc::new(
        builder.build().context("system_backup S3 settings")?,
    ))
}

async fn prune_bucket(
    bucket: &dyn ObjectStore,
    settings: &SystemBackupConfig,
) -> anyhow::Result<()> {
    use futures_util::TryStreamExt;
    let prefix = ObjectPath::from(settings.s3_prefix.trim_end_matches('/'));
    let mut keys: Vec<ObjectPath> = bucket
        .list(Some(&prefix))
        .map_ok(|m| m.location)
        .try_collect::<Vec<_>>()
        .await
        .context("listing the bucket's backups")?
        .into_iter()
        .filter(|p| p.filename().is_some_and(is_archive))
        .collect();
    keys.sort();
    let excess = keys.len().saturating_sub(settings.keep as usize);
    for old in keys.into_iter().take(excess) {
        bucket
            .delete(&old)
            .await
            .with_context(|| format!("deleting s3://{}/{old}", settings.s3_bucket))?;
        tracing::info!(key = %old, "old panel backup deleted");
    }
    Ok(())
}

/// Runs scheduled backups, on the replica holding the cluster's job lease: the first at
/// the schedule's next time after this job started (or after the last scheduled run),
/// so a panel that was down past a scheduled time backs up once when it is back.
pub async fn run_until_stopped(
    state: AppState,
    poll: Duration,
    mut lease: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(when) = schedule(&state.config.system_backup) else {
        return;
    };
    let started = state.clock.now_ms();
    while crate::jobs::lease::until_held(&mut lease, &mut stop).await {
        let now = state.clock.now_ms();
        match store::last_started(&state.db.pool, Trigger::Schedule.name()).await {
            Ok(last) => {
                let from = last.unwrap_or(started);
                if when.next_after(from).is_some_and(|due| due <= now) {
                    match run_once(
                        &state.config,
                        &state.db,
                        Some(&state.replica_id),
                        Trigger::Schedule,
                        now,
                        None,
                    )
                    .await
                    {
                        Ok(run) => tracing::info!(
                            location = run.location.as_deref().unwrap_or_default(),
                            bytes = run.bytes.unwrap_or_default(),
                            "panel backup made"
                        ),
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "panel backup failed"),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the panel's backup runs"),
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Where archives go.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "SystemBackupDestination")]
pub struct DestinationView {
    /// `directory` or `s3`.
    pub kind: String,
    /// The directory (kind `directory`).
    pub path: Option<String>,
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub prefix: Option<String>,
    pub access_key_id: Option<String>,
    /// A secret key is configured (never shown).
    pub secret_access_key_set: bool,
}

/// What archives are encrypted to.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "SystemBackupEncryption")]
pub struct EncryptionView {
    /// `passphrase`, `recipients`, or `none` (no backup can be made until one is set).
    pub kind: String,
    /// The age public keys (kind `recipients`).
    pub recipients: Vec<String>,
}

/// One finished run.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "SystemBackupRun")]
pub struct RunView {
    pub id: String,
    /// `schedule` or `cli`.
    pub trigger: String,
    /// `succeeded` or `failed`.
    pub status: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub bytes: Option<i64>,
    /// The archive's path or `s3://` URL.
    pub location: Option<String>,
    pub error: Option<String>,
}

/// `GET /v1/system/backup-config`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "SystemBackupConfig")]
pub struct ConfigView {
    /// The cron expression (UTC); `null`: only `shardlyn backup` makes backups.
    pub schedule: Option<String>,
    pub next_run_at: Option<Timestamp>,
    /// Archives kept at the destination.
    pub keep: u32,
    pub destination: DestinationView,
    pub encryption: EncryptionView,
    /// The newest runs first (at most 20).
    pub runs: Vec<RunView>,
}

/// The panel's backup settings (secrets redacted) and its last runs.
///
/// # Errors
/// Database failures.
pub async fn config_view(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<ConfigView>> {
    let settings = &state.config.system_backup;
    let runs = store::recent(&state.db.pool, RUNS_SHOWN).await?;
    let last_scheduled = store::last_started(&state.db.pool, Trigger::Schedule.name()).await?;
    let now = state.clock.now_ms();
    let next_run_at = schedule(settings)
        .and_then(|w| w.next_after(last_scheduled.unwrap_or(now).min(now)))
        .map(Timestamp);
    let s3 = !settings.s3_bucket.is_empty();
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let destination = DestinationView {
        kind: if s3 { "s3" } else { "directory" }.into(),
        path: (!s3).then(|| {
            settings
                .dir_or_default(&state.config.data_dir)
                .display()
                .to_string()
        }),
        bucket: s3.then(|| settings.s3_bucket.clone()),
        endpoint: some(&settings.s3_endpoint).filter(|_| s3),
        region: some(&settings.s3_region).filter(|_| s3),
        prefix: s3.then(|| settings.s3_prefix.clone()),
        access_key_id: some(&settings.s3_access_key_id).filter(|_| s3),
        secret_access_key_set: s3 && !settings.s3_secret_access_key.expose().is_empty(),
    };
    let encryption = EncryptionView {
        kind: if !settings.recipients.is_empty() {
            "recipients"
        } else if settings.passphrase.expose().is_empty() {
            "none"
        } else {
            "passphrase"
        }
        .into(),
        recipients: settings.recipients.clone(),
    };
    Ok(AppJson(ConfigView {
        schedule: some(settings.schedule.trim()),
        next_run_at,
        keep: settings.keep,
        destination,
        encryption,
        runs: runs
            .into_iter()
            .map(|r| RunView {
                id: r.id,
                trigger: r.trigger,
                status: r.status,
                started_at: Timestamp(r.started_at),
                finished_at: Timestamp(r.finished_at),
                bytes: r.bytes,
                location: r.location,
                error: r.error,
            })
            .collect(),
    }))
}
