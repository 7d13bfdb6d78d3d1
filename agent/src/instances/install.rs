//! The install step: the egg's script in its install image, as root, with the server
//! files at `/mnt/server` and the script at `/mnt/install`; its output goes to the
//! install log and to the console as `install output`. The install container gets the
//! game container's limits and hardening (`container::hardened`).

use std::collections::HashMap;
use std::sync::Arc;

use bollard::container::{Config, CreateContainerOptions, LogOutput, StartContainerOptions};
use futures_util::StreamExt;
use shardlyn_proto::instance::{
    DesiredState, Event, INSTALL_ROOT, INSTANCE_LABEL, InstanceState, InstanceStatus, ROLE_LABEL,
    events,
};

use super::console::LineSplitter;
use super::container::{Role, environment, hardened, installer_name};
use super::{Instance, InstanceError, Manager, lock, store};

impl Manager {
    /// Runs the install script again (wiping nothing).
    ///
    /// # Errors
    /// `NotFound`; `Conflict` while running or installing.
    pub fn reinstall(&self, id: &str) -> Result<InstanceStatus, InstanceError> {
        let inst = self.get(id)?;
        self.begin_install(&inst)?;
        Ok(inst.status())
    }

    /// Moves to `installing` and runs the install in the background.
    pub(crate) fn begin_install(&self, inst: &Arc<Instance>) -> Result<(), InstanceError> {
        if !self.transition(
            inst,
            &[InstanceState::Offline, InstanceState::InstallFailed],
            InstanceState::Installing,
        ) {
            return Err(InstanceError::Conflict(format!(
                "the server is {}; stop it first",
                inst.state().as_str()
            )));
        }
        let manager = self.clone();
        let inst = inst.clone();
        tokio::spawn(async move { manager.run_install(inst).await });
        Ok(())
    }

    async fn run_install(self, inst: Arc<Instance>) {
        let _ = inst.console.install_log.truncate().await;
        inst.console.emit(&Event::new(events::INSTALL_STARTED, &[]));
        let result = self.install_script(&inst).await;
        let ok = match result {
            Ok(0) => true,
            Ok(code) => {
                self.install_line(&inst, &format!("install script exited with code {code}"));
                false
            }
            Err(e) => {
                self.install_line(&inst, &format!("install failed: {e}"));
                Self::daemon_error(&inst, &format!("install failed: {e}"));
                false
            }
        };
        let _ = inst.console.install_log.flush().await;
        let stored = {
            let mut run = lock(&inst.run);
            run.installed = run.installed || ok;
            store::Stored {
                spec: inst.spec(),
                installed: run.installed,
            }
        };
        if let Err(e) = store::save(&self.0.paths.specs, &stored) {
            tracing::warn!(instance = %inst.id, error = %e, "saving the spec");
        }
        inst.console.emit(&Event::new(
            events::INSTALL_COMPLETED,
            &[if ok { "success" } else { "failure" }],
        ));
        if ok {
            self.set_state(&inst, InstanceState::Offline, None);
            let wanted = lock(&inst.spec).desired == DesiredState::Running;
            if wanted && let Err(e) = self.start(&inst, false).await {
                tracing::warn!(instance = %inst.id, error = %e, "start after install");
            }
        } else {
            self.set_state(&inst, InstanceState::InstallFailed, None);
        }
    }

    fn install_line(&self, inst: &Instance, line: &str) {
        let _ = self;
        inst.console
            .lines(events::INSTALL_OUTPUT, &[line.to_string()], true);
    }

    /// Runs the script; the exit code, or why it could not run.
    async fn install_script(&self, inst: &Instance) -> Result<i64, InstanceError> {
        let spec = inst.spec();
        let volume = self.0.paths.volume(&spec.id);
        tokio::fs::create_dir_all(&volume).await?;
        let Some(install) = spec.install.clone() else {
            self.install_line(inst, "no install script; nothing to do");
            return Ok(0);
        };
        self.ensure_image(&install.image).await?;
        let docker = self.docker()?;
        let name = installer_name(&self.0.tag, &spec.id);
        self.remove_container(&name).await?;
        let dir = self.0.paths.tmp.join(format!("install-{}", spec.id));
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("install.sh"), install.script.replace("\r\n", "\n")).await?;
        let labels = HashMap::from([
            (INSTANCE_LABEL.to_string(), spec.id.clone()),
            (ROLE_LABEL.to_string(), "install".to_string()),
            (
                shardlyn_proto::instance::AGENT_LABEL.to_string(),
                self.0.tag.clone(),
            ),
        ]);
        let config = Config {
            image: Some(install.image.clone()),
            user: Some("0:0".to_string()),
            env: Some(environment(&spec, &self.0.settings.timezone)),
            entrypoint: Some(vec![
                install.entrypoint.clone(),
                "/mnt/install/install.sh".to_string(),
            ]),
            cmd: Some(Vec::new()),
            working_dir: Some(INSTALL_ROOT.to_string()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            labels: Some(labels),
            host_config: Some(hardened(
                &spec,
                vec![
                    format!("{}:{INSTALL_ROOT}", volume.to_string_lossy()),
                    format!("{}:/mnt/install", dir.to_string_lossy()),
                ],
                Role::Installer,
            )),
            ..Config::default()
        };
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: name.clone(),
                    platform: None,
                }),
                config,
            )
            .await?;
        let result = self.run_installer(inst, &created.id).await;
        let _ = self.remove_container(&created.id).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        if self.0.is_root
            && let Some((uid, gid)) = self.0.settings.container_ids()
        {
            let v = volume.clone();
            let chowned = tokio::task::spawn_blocking(move || store::chown_tree(&v, uid, gid))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r);
            if let Err(e) = chowned {
                self.install_line(
                    inst,
                    &format!("could not give the files to {uid}:{gid}: {e}"),
                );
            }
        }
        result
    }

    async fn run_installer(&self, inst: &Instance, container: &str) -> Result<i64, InstanceError> {
        let mut attached = self.attach(container).await?;
        self.docker()?
            .start_container(container, None::<StartContainerOptions<String>>)
            .await?;
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        while let Some(Ok(item)) = attached.output.next().await {
            if let LogOutput::StdOut { message } | LogOutput::StdErr { message } = item {
                splitter.push(&message, &mut lines);
                inst.console.lines(events::INSTALL_OUTPUT, &lines, true);
                lines.clear();
            }
        }
        splitter.finish(&mut lines);
        inst.console.lines(events::INSTALL_OUTPUT, &lines, true);
        let (code, _) = self.wait_exit(container).await;
        Ok(code)
    }
}
