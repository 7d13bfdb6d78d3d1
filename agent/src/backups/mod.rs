//! Instance backups on this node: create (tar + multithreaded zstd, SHA-256, streamed to
//! the node's disk or to S3), restore (checksum verified before any file is touched),
//! download and delete.
//!
//! Every backup has a record `DATA_DIR/backups/{instance}/{backup}.json`, written
//! `running` before any work starts; local archives are written to
//! `{backup}.tar.zst.part` and renamed when complete. At start-up a record still
//! `running` belongs to a backup that an agent kill or a reboot interrupted: it is
//! marked `failed` (and its partial file removed), and the panel learns it when it next
//! asks. S3 credentials come with each request and are never written here; S3
//! endpoints go through the node's outbound guard ([`shardlyn_net::outbound`]).

pub mod archive;
pub mod progress;
pub mod restore;
pub mod s3;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardlyn_proto::backup::{
    BACKUP_COMPLETED, BACKUP_RESTORE_COMPLETED, BackupInfo, BackupOperation, BackupProgress,
    BackupStatus, CreateBackup, RestoreBackup, Target,
};
use shardlyn_proto::instance::{Event, InstanceState, PowerAction};

use shardlyn_net::outbound::Outbound;
use tokio::sync::broadcast;

use self::progress::{Counted, Reporter};

use crate::instances::{InstanceError, Manager, lock, now_ms, valid_id};

/// How long a restore waits for the server to stop.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// Backups of this node; one per agent process, cheap to clone.
#[derive(Clone)]
pub struct Backups(Arc<Inner>);

struct Inner {
    dir: PathBuf,
    manager: Manager,
    /// Instances with a backup or restore under way (one at a time each).
    busy: Mutex<HashSet<String>>,
    /// Progress reports, heard by the panel's event stream (`crate::api::events`).
    progress: broadcast::Sender<BackupProgress>,
}

fn internal(e: impl std::fmt::Display) -> InstanceError {
    InstanceError::Internal(e.to_string())
}

fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
}

/// Releases an instance's busy mark when dropped.
struct BusyGuard {
    inner: Arc<Inner>,
    instance: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        lock(&self.inner.busy).remove(&self.instance);
    }
}

impl Backups {
    /// Backups under the manager's data dir; marks backups left `running` by a previous
    /// process as failed.
    #[must_use]
    pub fn new(manager: &Manager) -> Self {
        let data_dir = manager
            .0
            .paths
            .volumes
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = data_dir.join("backups");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(error = %e, "creating the backups dir");
        }
        let backups = Self(Arc::new(Inner {
            dir,
            manager: manager.clone(),
            busy: Mutex::default(),
            progress: broadcast::channel(256).0,
        }));
        backups.fail_interrupted();
        backups
    }

    fn fail_interrupted(&self) {
        let Ok(instances) = std::fs::read_dir(&self.0.dir) else {
            return;
        };
        for inst in instances.flatten() {
            let Ok(files) = std::fs::read_dir(inst.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "part") {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let Some(mut info) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<BackupInfo>(&b).ok())
                else {
                    continue;
                };
                if info.status == BackupStatus::Running {
                    tracing::warn!(backup.id = %info.id, "backup interrupted by an agent stop");
                    info.status = BackupStatus::Failed;
                    info.error =
                        Some("interrupted: the agent stopped before the backup finished".into());
                    info.completed_at = Some(now_ms());
                    if let Err(e) = self.save(&info) {
                        tracing::warn!(error = %e, "recording an interrupted backup");
                    }
                }
            }
        }
    }

    fn paths(&self, instance: &str, backup: &str) -> Result<(PathBuf, PathBuf), InstanceError> {
        if !valid_id(instance) || !valid_id(backup) {
            return Err(InstanceError::NotFound);
        }
        let dir = self.0.dir.join(instance);
        Ok((
            dir.join(format!("{backup}.json")),
            dir.join(format!("{backup}.tar.zst")),
        ))
    }

    fn save(&self, info: &BackupInfo) -> Result<(), InstanceError> {
        let (meta, _) = self.paths(&info.instance, &info.id)?;
        if let Some(dir) = meta.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = meta.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(info).map_err(internal)?)?;
        std::fs::rename(&tmp, &meta)?;
        Ok(())
    }

    /// The record of one backup.
    ///
    /// # Errors
    /// `NotFound` for an unknown backup.
    pub fn info(&self, instance: &str, backup: &str) -> Result<BackupInfo, InstanceError> {
        let (meta, _) = self.paths(instance, backup)?;
        let bytes = std::fs::read(&meta).map_err(|_| InstanceError::NotFound)?;
        serde_json::from_slice(&bytes).map_err(internal)
    }

    /// Every backup record of an instance, oldest first.
    #[must_use]
    pub fn list(&self, instance: &str) -> Vec<BackupInfo> {
        let mut out: Vec<BackupInfo> = std::fs::read_dir(self.0.dir.join(instance))
            .map(|d| {
                d.flatten()
                    .filter(|f| f.path().extension().is_some_and(|e| e == "json"))
                    .filter_map(|f| std::fs::read(f.path()).ok())
                    .filter_map(|b| serde_json::from_slice(&b).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|b: &BackupInfo| b.started_at);
        out
    }

    fn claim(&self, instance: &str) -> Result<BusyGuard, InstanceError> {
        if !lock(&self.0.busy).insert(instance.to_string()) {
            return Err(InstanceError::Conflict(
                "a backup or restore of this server is already under way".into(),
            ));
        }
        Ok(BusyGuard {
            inner: self.0.clone(),
            instance: instance.to_string(),
        })
    }

    /// Progress reports of every backup and restore from now on.
    #[must_use]
    pub fn progress(&self) -> broadcast::Receiver<BackupProgress> {
        self.0.progress.subscribe()
    }

    fn reporter(&self, instance: &str, backup: &str, operation: BackupOperation) -> Reporter {
        Reporter::new(
            self.0.progress.clone(),
            instance,
            backup,
            operation,
            progress::EVERY,
        )
    }

    fn emit(&self, instance: &str, event: &str, args: &[&str]) {
        if let Ok(inst) = self.0.manager.get(instance) {
            inst.console.emit(&Event::new(event, args));
        }
    }

    /// Starts a backup; answers at once with the `running` record.
    ///
    /// # Errors
    /// `NotFound` for an unknown instance, `Conflict` while another backup or restore
    /// of it runs or when the id is taken.
    pub fn create(&self, instance: &str, req: CreateBackup) -> Result<BackupInfo, InstanceError> {
        self.0.manager.get(instance)?;
        let (meta, archive) = self.paths(instance, &req.id)?;
        if meta.exists() {
            return Err(InstanceError::Conflict("backup id already used".into()));
        }
        let guard = self.claim(instance)?;
        let info = BackupInfo {
            id: req.id.clone(),
            instance: instance.to_string(),
            status: BackupStatus::Running,
            size_bytes: 0,
            sha256: String::new(),
            error: None,
            started_at: now_ms(),
            completed_at: None,
        };
        self.save(&info)?;
        let this = self.clone();
        let volume = self.0.manager.0.paths.volume(instance);
        let record = info.clone();
        let outbound = self.0.manager.0.settings.outbound.clone();
        let reporter = Arc::new(self.reporter(instance, &req.id, BackupOperation::Backup));
        tokio::spawn(async move {
            let _guard = guard;
            let result = run_backup(volume, archive, req, &outbound, reporter.clone()).await;
            let mut done = record;
            done.completed_at = Some(now_ms());
            match result {
                Ok((sha256, size)) => {
                    done.status = BackupStatus::Completed;
                    done.sha256 = sha256;
                    done.size_bytes = size;
                }
                Err(e) => {
                    tracing::warn!(backup.id = %done.id, error = %e, "backup failed");
                    done.status = BackupStatus::Failed;
                    done.error = Some(e);
                }
            }
            if let Err(e) = this.save(&done) {
                tracing::warn!(backup.id = %done.id, error = %e, "recording a backup");
            }
            reporter.finish(done.status, Some(done.clone()), done.error.clone());
            let ok = if done.status == BackupStatus::Completed {
                "true"
            } else {
                "false"
            };
            this.emit(&done.instance, BACKUP_COMPLETED, &[&done.id, ok]);
        });
        Ok(info)
    }

    /// The path of a completed local archive.
    ///
    /// # Errors
    /// `NotFound` when there is none.
    pub fn archive_path(&self, instance: &str, backup: &str) -> Result<PathBuf, InstanceError> {
        let (_, archive) = self.paths(instance, backup)?;
        if archive.is_file() {
            Ok(archive)
        } else {
            Err(InstanceError::NotFound)
        }
    }

    /// Deletes a backup's local archive and record (not a running one).
    ///
    /// # Errors
    /// `Conflict` while it runs.
    pub fn delete(&self, instance: &str, backup: &str) -> Result<(), InstanceError> {
        let (meta, archive) = self.paths(instance, backup)?;
        if let Ok(info) = self.info(instance, backup)
            && info.status == BackupStatus::Running
        {
            return Err(InstanceError::Conflict(
                "the backup is still running".into(),
            ));
        }
        for p in [archive, meta] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Restores a backup: stops the server, verifies the archive's SHA-256 (nothing is
    /// touched on a mismatch), then extracts in the background (emptying the directory
    /// first when asked) and sends `backup restore completed`.
    ///
    /// # Errors
    /// `NotFound`, `Conflict` when busy, when the server does not stop, or on a
    /// checksum mismatch.
    pub async fn restore(
        &self,
        instance: &str,
        backup: &str,
        req: RestoreBackup,
    ) -> Result<(), InstanceError> {
        let inst = self.0.manager.get(instance)?;
        let (_, archive) = self.paths(instance, backup)?;
        let guard = self.claim(instance)?;
        if !matches!(
            inst.state(),
            InstanceState::Offline | InstanceState::InstallFailed
        ) {
            if let Err(e) = self.0.manager.power(instance, PowerAction::Stop).await {
                tracing::debug!(error = %e, "stop before restore");
            }
            let mut rx = inst.state.subscribe();
            let stopped = tokio::time::timeout(
                STOP_WAIT,
                rx.wait_for(|s| matches!(s, InstanceState::Offline | InstanceState::InstallFailed)),
            )
            .await;
            if !matches!(stopped, Ok(Ok(_))) {
                return Err(InstanceError::Conflict(
                    "the server did not stop for the restore".into(),
                ));
            }
        }
        let outbound = self.0.manager.0.settings.outbound.clone();
        let (sha, _) = read_with(&req.target, &outbound, &archive, |r, _| {
            archive::hash_reader(r)
        })
        .await?;
        if !sha.eq_ignore_ascii_case(req.sha256.trim()) {
            return Err(InstanceError::Conflict(format!(
                "checksum mismatch: the archive's SHA-256 is {sha}, the backup recorded {}; \
                 nothing was restored",
                req.sha256
            )));
        }
        Manager::message(&inst, "Restoring server files from a backup");
        let this = self.clone();
        let volume = self.0.manager.0.paths.volume(instance);
        let reporter = Arc::new(self.reporter(instance, backup, BackupOperation::Restore));
        let backup = backup.to_string();
        tokio::spawn(async move {
            let _guard = guard;
            let truncate = req.truncate;
            let root = volume.clone();
            let counter = reporter.clone();
            let result = read_with(&req.target, &outbound, &archive, move |r, size| {
                counter.start(size);
                let r = Counted {
                    inner: r,
                    reporter: &counter,
                };
                std::fs::create_dir_all(&root)?;
                // Every write goes through the sandbox's handle on the volume.
                let sandbox = crate::files::Sandbox::open(&root, &[], 0)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                if truncate {
                    restore::truncate(sandbox.root())?;
                }
                restore::extract(r, sandbox.root())
            })
            .await;
            match &result {
                Ok(_) => reporter.finish(BackupStatus::Completed, None, None),
                Err(e) => reporter.finish(BackupStatus::Failed, None, Some(e.to_string())),
            }
            match result {
                Ok(skipped) => {
                    if skipped > 0 {
                        tracing::warn!(backup.id = %backup, skipped, "unsafe entries skipped");
                    }
                    if let Ok(inst) = this.0.manager.get(&inst.id) {
                        if skipped > 0 {
                            Manager::message(
                                &inst,
                                &format!(
                                    "{skipped} archive entries were not restored: links, device \
                                     files, or paths leading out of the server directory"
                                ),
                            );
                        }
                        Manager::message(&inst, "Completed server restoration from a backup");
                    }
                    this.emit(&inst.id, BACKUP_RESTORE_COMPLETED, &[&backup]);
                }
                Err(e) => {
                    if let Ok(inst) = this.0.manager.get(&inst.id) {
                        Manager::daemon_error(&inst, &format!("Restoring the backup failed: {e}"));
                    }
                }
            }
        });
        Ok(())
    }
}

/// Runs `f` on a blocking thread over a reader of the archive (local file or S3) and
/// its size in bytes.
pub(crate) async fn read_with<T: Send + 'static>(
    target: &Target,
    outbound: &Outbound,
    archive: &Path,
    f: impl FnOnce(Box<dyn std::io::Read + Send>, u64) -> std::io::Result<T> + Send + 'static,
) -> Result<T, InstanceError> {
    let (reader, size): (Box<dyn std::io::Read + Send>, u64) = match target {
        Target::Local => {
            let file = std::fs::File::open(archive).map_err(|_| {
                InstanceError::Conflict("the backup archive is missing on the node".into())
            })?;
            let size = file.metadata().map_or(0, |m| m.len());
            (
                Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
                size,
            )
        }
        Target::S3(t) => {
            let (reader, size) = s3::reader(t, outbound)
                .await
                .map_err(InstanceError::Conflict)?;
            (Box::new(reader), size)
        }
    };
    tokio::task::spawn_blocking(move || f(reader, size))
        .await
        .map_err(internal)?
        .map_err(internal)
}

/// Writes the archive to its target; the SHA-256 and size of the archive.
async fn run_backup(
    volume: PathBuf,
    archive: PathBuf,
    req: CreateBackup,
    outbound: &Outbound,
    reporter: Arc<Reporter>,
) -> Result<(String, u64), String> {
    let ignored = req.ignored;
    match req.target {
        Target::Local => tokio::task::spawn_blocking(move || {
            let part = archive.with_extension("zst.part");
            let result = (|| {
                reporter.start(archive::estimate(&volume, &ignored)?);
                let file = std::fs::File::create(&part)?;
                let out =
                    archive::HashWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
                let (out, sha, size) =
                    archive::write_archive(&volume, &ignored, threads(), out, &reporter)?.finish();
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&part, &archive)?;
                Ok::<_, std::io::Error>((sha, size))
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&part);
            }
            result.map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?,
        Target::S3(t) => {
            let chunk =
                usize::try_from(t.part_size.clamp(s3::MIN_PART, 64 << 20)).unwrap_or(8 << 20);
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            let writer = tokio::task::spawn_blocking(move || {
                reporter.start(archive::estimate(&volume, &ignored)?);
                let out = archive::HashWriter::new(s3::ChannelWriter::new(tx, chunk));
                let (mut out, sha, size) =
                    archive::write_archive(&volume, &ignored, threads(), out, &reporter)?.finish();
                std::io::Write::flush(&mut out)?;
                Ok((sha, size))
            });
            s3::upload(&t, outbound, rx, writer).await
        }
    }
}
