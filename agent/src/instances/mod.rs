//! Instances on this node: specs from the panel, their containers, install, power,
//! console and crash detection.
//!
//! One [`Manager`] lives for the whole agent process (it outlives tunnel connections):
//! specs persist in `DATA_DIR/instances/{id}.json`, server files in
//! `DATA_DIR/volumes/{id}`, console logs in `DATA_DIR/logs/{id}.log` and install logs in
//! `DATA_DIR/logs/{id}-install.log`. At start-up it re-adopts running containers by
//! label (`adopt`), so servers keep running across agent restarts.

pub mod config_files;
mod console;
mod container;
pub use container::{container_name_in, installer_name_in};
mod install;
mod lifecycle;
mod power;
mod stats;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use anyhow::Context as _;
use bollard::Docker;
use shardlyn_proto::instance::{
    DesiredState, Event, InstanceSpec, InstanceState, InstanceStats, InstanceStatus, StateEvent,
    events,
};
use tokio::io::AsyncWrite;
use tokio::sync::{broadcast, watch};

use crate::config::Settings;
pub use console::{Chunk, ConsoleSubscription};
use console::{Console, Matcher};

/// What an instance operation can fail with; the API maps each to a status code.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("instance not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    ImageUnavailable(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("container runtime unavailable: {0}")]
    Docker(String),
    #[error("{0}")]
    Internal(String),
}

impl InstanceError {
    /// The HTTP status and the stable code.
    #[must_use]
    pub fn status_code(&self) -> (http::StatusCode, &'static str) {
        use http::StatusCode as S;
        match self {
            Self::NotFound => (S::NOT_FOUND, "NOT_FOUND"),
            Self::Conflict(_) => (S::CONFLICT, "CONFLICT"),
            Self::ImageUnavailable(_) => (S::CONFLICT, "IMAGE_UNAVAILABLE"),
            Self::BadRequest(_) => (S::BAD_REQUEST, "BAD_REQUEST"),
            Self::Docker(_) => (S::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }
}

impl From<bollard::errors::Error> for InstanceError {
    fn from(e: bollard::errors::Error) -> Self {
        Self::Docker(e.to_string())
    }
}

impl From<std::io::Error> for InstanceError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Locks a std mutex, ignoring poisoning (the data stays usable: no invariant spans a
/// panic here).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether `id` is a valid instance id: `[A-Za-z0-9-]{1,64}`.
#[must_use]
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Where things live under the data dir.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub specs: PathBuf,
    pub volumes: PathBuf,
    pub logs: PathBuf,
    pub tmp: PathBuf,
}

impl Paths {
    fn new(data_dir: &Path) -> Self {
        Self {
            specs: data_dir.join("instances"),
            volumes: data_dir.join("volumes"),
            logs: data_dir.join("logs"),
            tmp: data_dir.join("tmp"),
        }
    }

    pub fn volume(&self, id: &str) -> PathBuf {
        self.volumes.join(id)
    }
}

/// Runtime bookkeeping of one instance.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    pub container_id: Option<String>,
    pub installed: bool,
    pub started_at: Option<i64>,
    pub crashed_at: Option<i64>,
    pub exit_code: Option<i64>,
    /// The last crash, for Wings' 60 s rule.
    pub last_crash: Option<Instant>,
    /// A crash loop stopped the server; reconcile does not start it until a power start.
    pub crash_stopped: bool,
    /// Bumped on every run (and on delete) so stale exit watchers do nothing.
    pub generation: u64,
    /// The current run's exit was asked for (stop, kill, restart).
    pub stop_requested: bool,
    /// Start again once the current run exits.
    pub restart_after_stop: bool,
    /// The output watcher of the current run.
    pub pump: Option<tokio::task::AbortHandle>,
}

type Stdin = Pin<Box<dyn AsyncWrite + Send>>;

/// One instance.
pub(crate) struct Instance {
    pub id: String,
    pub spec: Mutex<InstanceSpec>,
    pub run: Mutex<RunState>,
    pub state: watch::Sender<InstanceState>,
    /// The version of `state`, written under the watch's lock with the state itself.
    pub state_version: AtomicU64,
    pub console: Console,
    pub stdin: tokio::sync::Mutex<Option<Stdin>>,
    pub done: Mutex<Vec<Matcher>>,
    pub stats: stats::Cache,
}

impl Instance {
    pub fn spec(&self) -> InstanceSpec {
        lock(&self.spec).clone()
    }

    pub fn state(&self) -> InstanceState {
        *self.state.borrow()
    }

    /// The state and its version, read together.
    pub fn versioned_state(&self) -> (InstanceState, u64) {
        let state = self.state.borrow();
        (*state, self.state_version.load(Ordering::Acquire))
    }

    fn status(&self) -> InstanceStatus {
        let run = lock(&self.run);
        let (state, state_version) = self.versioned_state();
        InstanceStatus {
            id: self.id.clone(),
            state,
            state_version,
            container_id: run.container_id.clone(),
            installed: run.installed,
            started_at: run.started_at,
            crashed_at: run.crashed_at,
            exit_code: run.exit_code,
            desired: lock(&self.spec).desired,
        }
    }
}

/// A new state version: strictly increasing in this process, and starting from the
/// wall clock in microseconds, so versions also grow across agent restarts.
pub(crate) fn next_version() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => prev = seen,
        }
    }
}

pub(crate) struct Inner {
    pub docker: Option<Docker>,
    /// This agent's tag, in its containers' names and labels (`container::agent_tag`).
    pub tag: String,
    pub paths: Paths,
    pub settings: Settings,
    pub instances: Mutex<HashMap<String, Arc<Instance>>>,
    pub states: broadcast::Sender<StateEvent>,
    /// Whether the agent runs as root (it then chowns server files for the run user).
    pub is_root: bool,
    /// Starts asked for by exit watchers (crash restart, restart), run by one task so
    /// the watcher does not contain the start it triggers.
    pub starts: tokio::sync::mpsc::UnboundedSender<Arc<Instance>>,
}

/// The instance manager: one per agent process, cheap to clone.
#[derive(Clone)]
pub struct Manager(pub(crate) Arc<Inner>);

impl Manager {
    /// A manager over `data_dir`, talking to the local Docker socket. Does no container
    /// work yet: call [`Manager::adopt`] once at start-up.
    ///
    /// # Errors
    /// The data dir cannot be created.
    pub fn new(data_dir: &Path, settings: Settings) -> anyhow::Result<Self> {
        let docker = Docker::connect_with_local_defaults().ok();
        Self::with_docker(data_dir, settings, docker)
    }

    /// A manager with an explicit Docker client (`None`: every container call fails).
    ///
    /// # Errors
    /// The data dir cannot be created.
    pub fn with_docker(
        data_dir: &Path,
        settings: Settings,
        docker: Option<Docker>,
    ) -> anyhow::Result<Self> {
        // Volumes reach Docker as bind-mount sources, which must be absolute: a relative
        // data dir (`./data`) would be taken for a named volume and refused.
        let data_dir = std::path::absolute(data_dir)
            .with_context(|| format!("making {} absolute", data_dir.display()))?;
        let paths = Paths::new(&data_dir);
        for dir in [&paths.specs, &paths.volumes, &paths.logs, &paths.tmp] {
            std::fs::create_dir_all(dir)?;
        }
        let is_root = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        };
        let (states, _) = broadcast::channel(1024);
        let (starts, mut start_rx) = tokio::sync::mpsc::unbounded_channel::<Arc<Instance>>();
        let tag = container::agent_tag(&data_dir);
        let manager = Self(Arc::new(Inner {
            docker,
            tag,
            paths,
            settings,
            instances: Mutex::default(),
            states,
            is_root,
            starts,
        }));
        let weak = Arc::downgrade(&manager.0);
        tokio::spawn(async move {
            while let Some(inst) = start_rx.recv().await {
                let Some(inner) = weak.upgrade() else { break };
                if let Err(e) = Self(inner).start(&inst, false).await {
                    tracing::warn!(instance = %inst.id, error = %e, "restart");
                }
            }
        });
        Ok(manager)
    }

    pub(crate) fn docker(&self) -> Result<&Docker, InstanceError> {
        self.0
            .docker
            .as_ref()
            .ok_or_else(|| InstanceError::Docker("no Docker socket".into()))
    }

    pub(crate) fn get(&self, id: &str) -> Result<Arc<Instance>, InstanceError> {
        lock(&self.0.instances)
            .get(id)
            .cloned()
            .ok_or(InstanceError::NotFound)
    }

    fn all(&self) -> Vec<Arc<Instance>> {
        let mut list: Vec<_> = lock(&self.0.instances).values().cloned().collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    pub(crate) fn new_instance(&self, spec: InstanceSpec, installed: bool) -> Arc<Instance> {
        let id = spec.id.clone();
        let console = Console::new(
            &self.0.paths.logs,
            &id,
            self.0.settings.console_log_max_bytes,
        );
        Arc::new(Instance {
            id,
            spec: Mutex::new(spec),
            run: Mutex::new(RunState {
                installed,
                ..RunState::default()
            }),
            state: watch::channel(InstanceState::Offline).0,
            state_version: AtomicU64::new(next_version()),
            console,
            stdin: tokio::sync::Mutex::new(None),
            done: Mutex::default(),
            stats: stats::Cache::default(),
        })
    }

    /// Changes the state, announcing it on the console and on `/v1/events`.
    pub(crate) fn set_state(
        &self,
        inst: &Instance,
        state: InstanceState,
        desired: Option<DesiredState>,
    ) {
        let mut version = 0;
        let changed = inst.state.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            if changed {
                inst.state_version.store(next_version(), Ordering::Release);
            }
            version = inst.state_version.load(Ordering::Acquire);
            changed
        });
        if changed || desired.is_some() {
            self.announce(inst, state, version, desired);
        }
    }

    /// Moves from one of `from` to `to` atomically; false (and nothing announced) when
    /// the instance is in another state.
    pub(crate) fn transition(
        &self,
        inst: &Instance,
        from: &[InstanceState],
        to: InstanceState,
    ) -> bool {
        let mut version = 0;
        let changed = inst.state.send_if_modified(|s| {
            let ok = from.contains(s) && *s != to;
            if ok {
                *s = to;
                version = next_version();
                inst.state_version.store(version, Ordering::Release);
            }
            ok
        });
        if changed {
            self.announce(inst, to, version, None);
        }
        changed
    }

    fn announce(
        &self,
        inst: &Instance,
        state: InstanceState,
        version: u64,
        desired: Option<DesiredState>,
    ) {
        inst.console
            .emit(&Event::new(events::STATUS, &[state.as_str()]));
        let _ = self.0.states.send(StateEvent {
            instance: inst.id.clone(),
            state,
            desired,
            at: now_ms(),
            version,
        });
    }

    /// A `daemon message` on the instance's console.
    pub(crate) fn message(inst: &Instance, text: &str) {
        inst.console
            .emit(&Event::new(events::DAEMON_MESSAGE, &[text]));
    }

    /// A `daemon error` on the instance's console.
    pub(crate) fn daemon_error(inst: &Instance, text: &str) {
        tracing::warn!(instance = %inst.id, "{text}");
        inst.console
            .emit(&Event::new(events::DAEMON_ERROR, &[text]));
    }

    /// Every instance's status.
    #[must_use]
    pub fn list(&self) -> Vec<InstanceStatus> {
        self.all().iter().map(|i| i.status()).collect()
    }

    /// One instance's status.
    ///
    /// # Errors
    /// [`InstanceError::NotFound`].
    pub fn status(&self, id: &str) -> Result<InstanceStatus, InstanceError> {
        Ok(self.get(id)?.status())
    }

    /// Every state change of every instance.
    #[must_use]
    pub fn state_events(&self) -> broadcast::Receiver<StateEvent> {
        self.0.states.subscribe()
    }

    /// The current state of every instance, as events (sent first on `/v1/events`).
    #[must_use]
    pub fn state_snapshot(&self) -> Vec<StateEvent> {
        let at = now_ms();
        self.all()
            .iter()
            .map(|i| {
                let (state, version) = i.versioned_state();
                StateEvent {
                    instance: i.id.clone(),
                    state,
                    desired: None,
                    at,
                    version,
                }
            })
            .collect()
    }

    /// Subscribes to an instance's console: the last `replay` lines, then live chunks.
    ///
    /// # Errors
    /// [`InstanceError::NotFound`].
    pub fn subscribe(&self, id: &str, replay: usize) -> Result<ConsoleSubscription, InstanceError> {
        let inst = self.get(id)?;
        Ok(inst.console.subscribe(replay, inst.state()))
    }

    /// Stats of every instance that is starting, running or stopping.
    pub async fn running_stats(&self) -> Vec<(String, InstanceStats)> {
        let mut out = Vec::new();
        for inst in self.all() {
            if matches!(
                inst.state(),
                InstanceState::Starting | InstanceState::Running | InstanceState::Stopping
            ) && let Ok(s) = self.stats_of(&inst).await
            {
                out.push((inst.id.clone(), s));
            }
        }
        out
    }

    /// Stats of one instance (cached for a second; disk use for 30 s).
    ///
    /// # Errors
    /// [`InstanceError::NotFound`], or Docker failing.
    pub async fn stats(&self, id: &str) -> Result<InstanceStats, InstanceError> {
        let inst = self.get(id)?;
        self.stats_of(&inst).await
    }

    /// The last `lines` lines of the console log (newest last).
    ///
    /// # Errors
    /// [`InstanceError::NotFound`], or the log unreadable.
    pub async fn logs(&self, id: &str, lines: usize) -> Result<Vec<String>, InstanceError> {
        let inst = self.get(id)?;
        Ok(inst.console.log.tail(lines).await?)
    }

    /// The whole console log.
    ///
    /// # Errors
    /// [`InstanceError::NotFound`], or the log unreadable.
    pub async fn log_file(&self, id: &str) -> Result<Vec<u8>, InstanceError> {
        let inst = self.get(id)?;
        Ok(inst.console.log.read_all().await?)
    }

    /// Empties the console log (and the replay ring).
    ///
    /// # Errors
    /// [`InstanceError::NotFound`], or the log unwritable.
    pub async fn clear_logs(&self, id: &str) -> Result<(), InstanceError> {
        let inst = self.get(id)?;
        inst.console.clear_ring();
        Ok(inst.console.log.truncate().await?)
    }

    /// The install log.
    ///
    /// # Errors
    /// [`InstanceError::NotFound`], or the log unreadable.
    pub async fn install_logs(&self, id: &str, lines: usize) -> Result<Vec<String>, InstanceError> {
        let inst = self.get(id)?;
        Ok(inst.console.install_log.tail(lines).await?)
    }

    /// Flushes every log file (shutdown, tests).
    pub async fn flush(&self) {
        for inst in self.all() {
            let _ = inst.console.log.flush().await;
            let _ = inst.console.install_log.flush().await;
        }
    }
}

impl Manager {
    /// Lets go of every container without touching it: output readers and exit watchers
    /// stop, servers keep running (what an agent crash looks like; used at shutdown and
    /// by tests of re-adoption).
    pub async fn detach(&self) {
        for inst in self.all() {
            {
                let mut run = lock(&inst.run);
                run.generation += 1;
                if let Some(p) = run.pump.take() {
                    p.abort();
                }
            }
            *inst.stdin.lock().await = None;
        }
        self.flush().await;
    }
}

#[cfg(test)]
mod version_tests {
    use super::next_version;

    #[test]
    fn state_versions_only_grow_and_start_from_the_clock() {
        let clock = u64::try_from(chrono::Utc::now().timestamp_micros()).expect("after 1970");
        let mut last = next_version();
        assert!(last >= clock, "{last} < {clock}");
        // Faster than the clock ticks: still strictly increasing.
        for _ in 0..10_000 {
            let v = next_version();
            assert!(v > last, "{v} after {last}");
            last = v;
        }
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..1000).map(|_| next_version()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no version handed out twice");
    }
}
