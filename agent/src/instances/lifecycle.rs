//! Specs in and out (`PUT`/`DELETE`), re-adoption of containers at agent start-up, and
//! reconciling an instance toward its desired state.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::container::ListContainersOptions;
use shardlyn_proto::instance::{
    DesiredState, INSTANCE_LABEL, InstanceSpec, InstanceState, InstanceStatus, ROLE_LABEL,
};

use super::container::{container_name, installer_name};
use super::{Instance, InstanceError, Manager, lock, now_ms, store};

impl Manager {
    /// Stores a spec (creating the instance), then reconciles toward its desired state.
    /// A never-installed instance starts its install.
    ///
    /// # Errors
    /// `BadRequest` for a bad id, `Internal` when the spec cannot be saved.
    pub async fn put(&self, spec: InstanceSpec) -> Result<InstanceStatus, InstanceError> {
        if !super::valid_id(&spec.id) {
            return Err(InstanceError::BadRequest("invalid instance id".into()));
        }
        let existing = lock(&self.0.instances).get(&spec.id).cloned();
        let inst = if let Some(inst) = existing {
            *lock(&inst.spec) = spec;
            inst
        } else {
            let inst = self.new_instance(spec, false);
            lock(&self.0.instances)
                .entry(inst.id.clone())
                .or_insert(inst)
                .clone()
        };
        self.settle(inst).await
    }

    /// Saves an instance's spec, makes its directory, and reconciles it.
    async fn settle(&self, inst: Arc<Instance>) -> Result<InstanceStatus, InstanceError> {
        let stored = store::Stored {
            spec: inst.spec(),
            installed: lock(&inst.run).installed,
        };
        let specs = self.0.paths.specs.clone();
        tokio::task::spawn_blocking(move || store::save(&specs, &stored))
            .await
            .map_err(|e| InstanceError::Internal(e.to_string()))??;
        self.prepare_volume(&inst.id).await?;
        self.reconcile(&inst).await;
        Ok(inst.status())
    }

    /// Takes on a server whose files were moved here (`crate::transfers`): stored as
    /// installed (no install runs), then reconciled toward its desired state.
    ///
    /// # Errors
    /// `BadRequest` for a bad id, `Conflict` when this node already runs it, `Internal`
    /// when the spec cannot be saved.
    pub async fn take_over(&self, spec: InstanceSpec) -> Result<InstanceStatus, InstanceError> {
        if !super::valid_id(&spec.id) {
            return Err(InstanceError::BadRequest("invalid instance id".into()));
        }
        let inst = {
            let mut all = lock(&self.0.instances);
            if all.contains_key(&spec.id) {
                return Err(InstanceError::Conflict(
                    "this node already runs that server".into(),
                ));
            }
            let inst = self.new_instance(spec, true);
            all.insert(inst.id.clone(), inst.clone());
            inst
        };
        self.settle(inst).await
    }

    /// Creates the server files directory, owned by the run user when we are root.
    async fn prepare_volume(&self, id: &str) -> Result<(), InstanceError> {
        let volume = self.0.paths.volume(id);
        if tokio::fs::symlink_metadata(&volume).await.is_ok() {
            return Ok(());
        }
        tokio::fs::create_dir_all(&volume).await?;
        if let Some((uid, gid)) = self.0.settings.container_ids() {
            if self.0.is_root {
                std::os::unix::fs::lchown(&volume, Some(uid), Some(gid))?;
            } else {
                tracing::warn!(
                    instance = id,
                    "not running as root: server files stay owned by the agent's user"
                );
            }
        }
        Ok(())
    }

    /// Moves an instance toward its desired state: install when never installed, start
    /// when it should run (unless a crash loop stopped it), stop when it should not.
    pub(crate) async fn reconcile(&self, inst: &Arc<Instance>) {
        let (installed, crash_stopped) = {
            let run = lock(&inst.run);
            (run.installed, run.crash_stopped)
        };
        let desired = lock(&inst.spec).desired;
        let state = inst.state();
        let result = match (state, desired) {
            (InstanceState::Offline, _) if !installed => {
                if lock(&inst.spec).install.is_none() {
                    self.mark_installed(inst);
                    if desired == DesiredState::Running {
                        self.start(inst, false).await
                    } else {
                        Ok(())
                    }
                } else {
                    self.begin_install(inst)
                }
            }
            (InstanceState::Offline, DesiredState::Running) if !crash_stopped => {
                self.start(inst, false).await
            }
            (InstanceState::Starting | InstanceState::Running, DesiredState::Stopped) => {
                self.stop(inst, false).await
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(instance = %inst.id, error = %e, "reconcile");
        }
    }

    fn mark_installed(&self, inst: &Instance) {
        lock(&inst.run).installed = true;
        let stored = store::Stored {
            spec: inst.spec(),
            installed: true,
        };
        if let Err(e) = store::save(&self.0.paths.specs, &stored) {
            tracing::warn!(instance = %inst.id, error = %e, "saving the spec");
        }
    }

    /// Kills and removes the containers, the spec, the server files, the logs, the local
    /// backups and the git staging data.
    ///
    /// # Errors
    /// `NotFound`, or Docker refusing to remove the container.
    pub async fn delete(&self, id: &str) -> Result<(), InstanceError> {
        let inst = self.get(id)?;
        {
            let mut run = lock(&inst.run);
            run.generation += 1;
            run.stop_requested = true;
            if let Some(p) = run.pump.take() {
                p.abort();
            }
        }
        self.remove_container(&container_name(&self.0.tag, id))
            .await?;
        self.remove_container(&installer_name(&self.0.tag, id))
            .await?;
        store::remove(&self.0.paths.specs, id)?;
        let volume = self.0.paths.volume(id);
        // Only a real directory right under volumes/ is removed; remove_dir_all does not
        // follow symlinks inside it.
        if let Ok(meta) = tokio::fs::symlink_metadata(&volume).await {
            if meta.is_dir() && volume.parent() == Some(self.0.paths.volumes.as_path()) {
                tokio::fs::remove_dir_all(&volume).await?;
            } else {
                tokio::fs::remove_file(&volume).await?;
            }
        }
        for name in [
            format!("{id}.log"),
            format!("{id}.log.1"),
            format!("{id}-install.log"),
        ] {
            let _ = tokio::fs::remove_file(self.0.paths.logs.join(name)).await;
        }
        // What else the node keeps for the server: its local backups and its git
        // staging repository.
        if let Some(data) = self.0.paths.volumes.parent() {
            let backups = data.join("backups").join(id);
            if tokio::fs::symlink_metadata(&backups)
                .await
                .is_ok_and(|m| m.is_dir())
            {
                let _ = tokio::fs::remove_dir_all(&backups).await;
            }
        }
        let (manager, gone) = (self.clone(), id.to_owned());
        let _ = tokio::task::spawn_blocking(move || crate::git::forget(&manager, &gone)).await;
        // Known until its files are gone: a move adopting the same server here meanwhile
        // is refused instead of losing its files to this removal.
        lock(&self.0.instances).remove(id);
        let _ = self.0.states.send(shardlyn_proto::instance::StateEvent {
            instance: id.to_string(),
            state: InstanceState::Offline,
            desired: Some(DesiredState::Stopped),
            at: now_ms(),
            version: super::next_version(),
        });
        Ok(())
    }

    /// Loads the stored specs, re-attaches to running containers (their output and exit
    /// watching resume), then reconciles every instance. Containers of unknown instances
    /// are left alone. Call once at start-up.
    ///
    /// # Errors
    /// Docker unreachable (the specs are still loaded).
    pub async fn adopt(&self) -> Result<(), InstanceError> {
        for stored in store::load_all(&self.0.paths.specs) {
            let inst = self.new_instance(stored.spec, stored.installed);
            lock(&self.0.instances).insert(inst.id.clone(), inst);
        }
        let docker = self.docker()?;
        let containers = docker
            .list_containers(Some(ListContainersOptions::<String> {
                all: true,
                filters: HashMap::from([("label".to_string(), vec![INSTANCE_LABEL.to_string()])]),
                ..ListContainersOptions::default()
            }))
            .await?;
        for c in containers {
            let labels = c.labels.unwrap_or_default();
            let Some(id) = labels.get(INSTANCE_LABEL) else {
                continue;
            };
            // Another agent's container on the same Docker engine.
            if labels
                .get(shardlyn_proto::instance::AGENT_LABEL)
                .is_some_and(|tag| *tag != self.0.tag)
            {
                continue;
            }
            let Ok(inst) = self.get(id) else { continue };
            let Some(container) = c.id else { continue };
            if labels.get(ROLE_LABEL).map(String::as_str) == Some("install") {
                // An install cut short by the restart: it runs again below.
                let _ = self.remove_container(&container).await;
                continue;
            }
            if c.state.as_deref() == Some("running") {
                // A failed re-adoption leaves the server offline, and the reconcile below
                // would replace its running container: a hiccup of the Engine is retried.
                for attempt in 1..=3 {
                    match self.readopt(&inst, &container).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(instance = %inst.id, attempt, error = %e, "re-adopting");
                            tokio::time::sleep(std::time::Duration::from_millis(200 * attempt))
                                .await;
                        }
                    }
                }
            }
        }
        for inst in self.all() {
            self.reconcile(&inst).await;
        }
        Ok(())
    }

    async fn readopt(&self, inst: &Arc<Instance>, container: &str) -> Result<(), InstanceError> {
        let info = self.docker()?.inspect_container(container, None).await?;
        let started_at = info
            .state
            .as_ref()
            .and_then(|s| s.started_at.as_deref())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis());
        let attached = self.attach(container).await?;
        *inst.stdin.lock().await = Some(attached.input);
        let generation = {
            let mut run = lock(&inst.run);
            run.generation += 1;
            run.stop_requested = false;
            run.container_id = Some(container.to_string());
            run.started_at = started_at.or_else(|| Some(now_ms()));
            run.installed = true;
            run.generation
        };
        let (matchers, _) = super::console::Matcher::compile(&inst.spec().done);
        *lock(&inst.done) = matchers;
        self.set_state(inst, InstanceState::Running, None);
        let pump = tokio::spawn(self.clone().pump(
            inst.clone(),
            generation,
            container.to_string(),
            attached.output,
        ));
        lock(&inst.run).pump = Some(pump.abort_handle());
        tracing::info!(instance = %inst.id, "re-adopted a running server");
        Ok(())
    }
}
