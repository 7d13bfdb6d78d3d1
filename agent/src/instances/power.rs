//! Power: start (config files, container, attach, start, `done` detection), stop,
//! kill, restart, console commands, the output pump of a run, and what happens when a
//! run ends (Wings' crash detection: restart once per 60 s, else stop and say so).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::container::{KillContainerOptions, LogOutput, StartContainerOptions};
use futures_util::{Stream, StreamExt};
use shardlyn_proto::instance::{
    DesiredState, InstanceState, InstanceStatus, PowerAction, StopSpec, events,
};
use tokio::io::AsyncWriteExt;

use super::console::{LineSplitter, Matcher, strip_ansi};
use super::container::container_name;
use super::{Instance, InstanceError, Manager, lock, now_ms, store};

/// A second crash within this window keeps the server stopped.
const CRASH_WINDOW: Duration = Duration::from_secs(60);

type Output =
    std::pin::Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// Normalizes a signal name: `^C` → `SIGINT`, `term` → `SIGTERM`.
pub(crate) fn signal_name(s: &str) -> Option<String> {
    let s = s.trim();
    if s == "^C" {
        return Some("SIGINT".into());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    (name.len() <= 12 && name[3..].bytes().all(|b| b.is_ascii_alphanumeric()) && name.len() > 3)
        .then_some(name)
}

impl Manager {
    /// Runs a power action. Answers at once; the work goes on in the background.
    ///
    /// # Errors
    /// `NotFound`, `Conflict` for impossible transitions, `ImageUnavailable` for a start
    /// whose image is missing and cannot be pulled.
    pub async fn power(
        &self,
        id: &str,
        action: PowerAction,
    ) -> Result<InstanceStatus, InstanceError> {
        let inst = self.get(id)?;
        match action {
            PowerAction::Start => self.start(&inst, true).await?,
            PowerAction::Stop => self.stop(&inst, true).await?,
            PowerAction::Kill => self.kill(&inst).await?,
            PowerAction::Restart => self.restart(&inst).await?,
        }
        Ok(inst.status())
    }

    pub(crate) fn set_desired(&self, inst: &Instance, desired: DesiredState) {
        let stored = {
            let mut spec = lock(&inst.spec);
            if spec.desired == desired {
                return;
            }
            spec.desired = desired;
            store::Stored {
                spec: spec.clone(),
                installed: lock(&inst.run).installed,
            }
        };
        if let Err(e) = store::save(&self.0.paths.specs, &stored) {
            tracing::warn!(instance = %inst.id, error = %e, "saving the spec");
        }
    }

    /// Checks the transition, the image, then starts in the background.
    pub(crate) async fn start(
        &self,
        inst: &Arc<Instance>,
        asked: bool,
    ) -> Result<(), InstanceError> {
        check_can_start(inst)?;
        let image = lock(&inst.spec).image.clone();
        if let Err(e) = self.ensure_image(&image).await {
            Self::daemon_error(inst, &e.to_string());
            return Err(e);
        }
        {
            // Re-checked: another request may have won meanwhile.
            check_can_start(inst)?;
            let mut run = lock(&inst.run);
            if asked {
                run.crash_stopped = false;
            }
            run.restart_after_stop = false;
        }
        if !self.transition(inst, &[InstanceState::Offline], InstanceState::Starting) {
            return Err(InstanceError::Conflict(
                "another power action changed the server meanwhile".into(),
            ));
        }
        if asked {
            self.set_desired(inst, DesiredState::Running);
        }
        let manager = self.clone();
        let inst = inst.clone();
        tokio::spawn(async move {
            if let Err(e) = manager.run_start(&inst).await {
                Self::daemon_error(&inst, &format!("starting the server failed: {e}"));
                let pump = lock(&inst.run).pump.take();
                if let Some(p) = pump {
                    p.abort();
                }
                manager.set_state(&inst, InstanceState::Offline, None);
            }
        });
        Ok(())
    }

    async fn run_start(&self, inst: &Arc<Instance>) -> Result<(), InstanceError> {
        let spec = inst.spec();
        let root = self.0.paths.volume(&spec.id);
        if !spec.config_files.is_empty() {
            let placeholders = super::config_files::Placeholders {
                env: spec.environment.clone(),
                default_ip: spec
                    .allocations
                    .iter()
                    .find(|a| a.primary)
                    .map(|a| a.ip.clone())
                    .unwrap_or_default(),
                default_port: spec
                    .allocations
                    .iter()
                    .find(|a| a.primary)
                    .map_or(0, |a| a.port),
                memory_mb: spec.limits.memory_mb,
                config: std::collections::BTreeMap::new(),
            };
            let files = spec.config_files.clone();
            let root = root.clone();
            let warnings = tokio::task::spawn_blocking(move || {
                super::config_files::apply(&root, &files, &placeholders)
            })
            .await
            .unwrap_or_default();
            for w in warnings {
                Self::message(inst, &w);
            }
        }
        let (matchers, errors) = Matcher::compile(&spec.done);
        for e in errors {
            Self::message(inst, &e);
        }
        let no_done = matchers.is_empty();
        *lock(&inst.done) = matchers;
        let (container, warnings) = self.ensure_container(&spec).await?;
        for w in warnings {
            Self::message(inst, &w);
        }
        let attached = self.attach(&container).await?;
        *inst.stdin.lock().await = Some(attached.input);
        let generation = {
            let mut run = lock(&inst.run);
            run.generation += 1;
            run.stop_requested = false;
            run.container_id = Some(container.clone());
            run.generation
        };
        let pump = tokio::spawn(self.clone().pump(
            inst.clone(),
            generation,
            container.clone(),
            attached.output,
        ));
        // Set before the start: the output pump may see the `done` line (and report the
        // server running) before the Engine's answer to the start comes back.
        {
            let mut run = lock(&inst.run);
            run.pump = Some(pump.abort_handle());
            run.started_at = Some(now_ms());
        }
        let started = async {
            self.docker()?
                .start_container(&container, None::<StartContainerOptions<String>>)
                .await
                .map_err(InstanceError::from)
        }
        .await;
        if let Err(e) = started {
            lock(&inst.run).started_at = None;
            return Err(e);
        }
        if no_done && inst.state() == InstanceState::Starting {
            self.set_state(inst, InstanceState::Running, None);
        }
        Ok(())
    }

    /// Reads a run's output until the container ends, then handles the exit.
    pub(crate) async fn pump(
        self,
        inst: Arc<Instance>,
        generation: u64,
        container: String,
        mut output: Output,
    ) {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        while let Some(item) = output.next().await {
            let Ok(item) = item else { break };
            let bytes = match item {
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message } => message,
                LogOutput::StdIn { .. } => continue,
            };
            splitter.push(&bytes, &mut lines);
            // Drain what is already buffered, so a flood is published in big chunks.
            while lines.len() < 4096 {
                match futures_util::FutureExt::now_or_never(output.next()) {
                    Some(Some(Ok(
                        LogOutput::StdOut { message }
                        | LogOutput::StdErr { message }
                        | LogOutput::Console { message },
                    ))) => splitter.push(&message, &mut lines),
                    Some(Some(Ok(LogOutput::StdIn { .. }))) => {}
                    Some(None | Some(Err(_))) => {
                        self.publish(&inst, &mut lines);
                        return self
                            .finish_run(&inst, generation, &container, splitter)
                            .await;
                    }
                    None => break,
                }
            }
            self.publish(&inst, &mut lines);
        }
        self.finish_run(&inst, generation, &container, splitter)
            .await;
    }

    async fn finish_run(
        &self,
        inst: &Arc<Instance>,
        generation: u64,
        container: &str,
        mut splitter: LineSplitter,
    ) {
        let mut lines = Vec::new();
        splitter.finish(&mut lines);
        self.publish(inst, &mut lines);
        let (code, oom) = self.wait_exit(container).await;
        self.on_exit(inst, generation, code, oom).await;
    }

    fn publish(&self, inst: &Instance, lines: &mut Vec<String>) {
        if lines.is_empty() {
            return;
        }
        if inst.state() == InstanceState::Starting {
            let done = {
                let matchers = lock(&inst.done);
                lines.iter().any(|l| {
                    let l = strip_ansi(l);
                    !is_startup_echo(&l) && matchers.iter().any(|m| m.matches(&l))
                })
            };
            inst.console.lines(events::CONSOLE_OUTPUT, lines, false);
            if done {
                self.set_state(inst, InstanceState::Running, None);
            }
        } else {
            inst.console.lines(events::CONSOLE_OUTPUT, lines, false);
        }
        lines.clear();
    }

    /// A run ended: a stop asked for, or a crash (Wings' rule).
    async fn on_exit(&self, inst: &Arc<Instance>, generation: u64, code: i64, oom: bool) {
        let (asked, restart, prev, crash_restart) = {
            let mut run = lock(&inst.run);
            if run.generation != generation {
                return;
            }
            run.exit_code = Some(code);
            run.started_at = None;
            run.pump = None;
            let asked = run.stop_requested;
            let restart = run.restart_after_stop;
            run.restart_after_stop = false;
            (asked, restart, inst.state(), lock(&inst.spec).crash_restart)
        };
        *inst.stdin.lock().await = None;
        if asked || prev == InstanceState::Stopping {
            self.set_state(inst, InstanceState::Offline, None);
            if restart {
                let _ = self.0.starts.send(inst.clone());
            }
            return;
        }
        if !matches!(prev, InstanceState::Starting | InstanceState::Running) {
            self.set_state(inst, InstanceState::Offline, None);
            return;
        }
        let why = if oom {
            format!("Server crashed (exit code {code}, out of memory)")
        } else {
            format!("Server crashed (exit code {code})")
        };
        let again = {
            let mut run = lock(&inst.run);
            run.crashed_at = Some(now_ms());
            let recent = run.last_crash.is_some_and(|t| t.elapsed() < CRASH_WINDOW);
            run.last_crash = Some(Instant::now());
            if !crash_restart || recent {
                run.crash_stopped = true;
            }
            crash_restart && !recent
        };
        tracing::warn!(instance = %inst.id, code, oom, restart = again, "server crashed");
        if again {
            Self::message(inst, &format!("{why}; restarting"));
            self.set_state(inst, InstanceState::Offline, None);
            let _ = self.0.starts.send(inst.clone());
        } else {
            self.set_desired(inst, DesiredState::Stopped);
            let text = if crash_restart {
                format!("{why}; it crashed twice within 60 seconds, so it stays stopped")
            } else {
                format!("{why}; crash restart is off, so it stays stopped")
            };
            Self::message(inst, &text);
            self.set_state(inst, InstanceState::Offline, Some(DesiredState::Stopped));
        }
    }

    /// Asks the server to stop (stop command or signal), SIGKILL after the grace time.
    pub(crate) async fn stop(
        &self,
        inst: &Arc<Instance>,
        asked: bool,
    ) -> Result<(), InstanceError> {
        let generation = {
            let mut run = lock(&inst.run);
            match inst.state() {
                InstanceState::Starting | InstanceState::Running => {}
                InstanceState::Stopping => return Ok(()),
                s => {
                    return Err(InstanceError::Conflict(format!(
                        "the server is {}, not running",
                        s.as_str()
                    )));
                }
            }
            run.stop_requested = true;
            run.generation
        };
        if !self.transition(
            inst,
            &[InstanceState::Starting, InstanceState::Running],
            InstanceState::Stopping,
        ) {
            return Ok(());
        }
        if asked {
            self.set_desired(inst, DesiredState::Stopped);
        }
        let (stop, grace) = {
            let spec = lock(&inst.spec);
            (spec.stop.clone(), spec.stop_grace_secs)
        };
        let sent = match &stop {
            StopSpec::Command(cmd) => self.write_stdin(inst, cmd).await.is_ok(),
            StopSpec::Signal(sig) => match signal_name(sig) {
                Some(sig) => self.signal(inst, &sig).await.is_ok(),
                None => false,
            },
        };
        if !sent {
            self.signal(inst, "SIGKILL").await?;
            return Ok(());
        }
        let manager = self.clone();
        let inst = inst.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(grace)).await;
            let same = lock(&inst.run).generation == generation;
            if same && inst.state() == InstanceState::Stopping {
                Self::message(&inst, "The server did not stop in time; killing it");
                let _ = manager.signal(&inst, "SIGKILL").await;
            }
        });
        Ok(())
    }

    /// SIGKILL now.
    pub(crate) async fn kill(&self, inst: &Arc<Instance>) -> Result<(), InstanceError> {
        {
            let mut run = lock(&inst.run);
            match inst.state() {
                InstanceState::Starting | InstanceState::Running | InstanceState::Stopping => {}
                s => {
                    return Err(InstanceError::Conflict(format!(
                        "the server is {}, not running",
                        s.as_str()
                    )));
                }
            }
            run.stop_requested = true;
            run.restart_after_stop = false;
        }
        self.set_desired(inst, DesiredState::Stopped);
        self.set_state(inst, InstanceState::Stopping, None);
        self.signal(inst, "SIGKILL").await
    }

    async fn restart(&self, inst: &Arc<Instance>) -> Result<(), InstanceError> {
        match inst.state() {
            InstanceState::Offline => self.start(inst, true).await,
            InstanceState::Starting | InstanceState::Running | InstanceState::Stopping => {
                lock(&inst.run).crash_stopped = false;
                self.set_desired(inst, DesiredState::Running);
                if inst.state() != InstanceState::Stopping {
                    self.stop(inst, false).await?;
                }
                lock(&inst.run).restart_after_stop = true;
                Ok(())
            }
            s => Err(InstanceError::Conflict(format!(
                "the server is {}; it cannot restart",
                s.as_str()
            ))),
        }
    }

    pub(crate) async fn signal(&self, inst: &Instance, signal: &str) -> Result<(), InstanceError> {
        let name = container_name(&self.0.tag, &inst.id);
        match self
            .docker()?
            .kill_container(&name, Some(KillContainerOptions { signal }))
            .await
        {
            Ok(()) => Ok(()),
            // Already gone: the exit watcher takes it from here.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_stdin(&self, inst: &Instance, line: &str) -> Result<(), InstanceError> {
        let mut stdin = inst.stdin.lock().await;
        let Some(w) = stdin.as_mut() else {
            return Err(InstanceError::Conflict("the server has no console".into()));
        };
        let mut data = Vec::with_capacity(line.len() + 1);
        data.extend_from_slice(line.trim_end_matches('\n').as_bytes());
        data.push(b'\n');
        let result = async {
            w.write_all(&data).await?;
            w.flush().await
        }
        .await;
        result.map_err(|e| InstanceError::Conflict(format!("writing to the console: {e}")))
    }

    /// Sends a console command (the server must be starting or running).
    ///
    /// # Errors
    /// `NotFound`, `Conflict` when not running.
    pub async fn command(&self, id: &str, command: &str) -> Result<(), InstanceError> {
        let inst = self.get(id)?;
        if !matches!(
            inst.state(),
            InstanceState::Starting | InstanceState::Running
        ) {
            return Err(InstanceError::Conflict("the server is not running".into()));
        }
        self.write_stdin(&inst, command).await
    }
}

/// The line a yolks entrypoint prints before running the startup command: it holds
/// the command text (often containing the `done` string), not server output.
fn is_startup_echo(line: &str) -> bool {
    line.starts_with(":/home/container$ ") || line.starts_with("container@pterodactyl~ ")
}

fn check_can_start(inst: &Instance) -> Result<(), InstanceError> {
    match inst.state() {
        InstanceState::Offline => {}
        InstanceState::Installing => {
            return Err(InstanceError::Conflict("the server is installing".into()));
        }
        InstanceState::InstallFailed => {
            return Err(InstanceError::Conflict(
                "the install failed; reinstall first".into(),
            ));
        }
        s => {
            return Err(InstanceError::Conflict(format!(
                "the server is already {}",
                s.as_str()
            )));
        }
    }
    if !lock(&inst.run).installed {
        return Err(InstanceError::Conflict(
            "the server is not installed".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entrypoint_echo_is_not_server_output() {
        assert!(super::is_startup_echo(":/home/container$ echo ready"));
        assert!(super::is_startup_echo(
            "container@pterodactyl~ java -jar x.jar"
        ));
        assert!(!super::is_startup_echo("ready"));
    }

    #[test]
    fn signal_names_are_normalized() {
        assert_eq!(super::signal_name("^C").as_deref(), Some("SIGINT"));
        assert_eq!(super::signal_name("term").as_deref(), Some("SIGTERM"));
        assert_eq!(super::signal_name("SIGKILL").as_deref(), Some("SIGKILL"));
        assert_eq!(super::signal_name("SIG").as_deref(), None);
        assert_eq!(super::signal_name("SIG;rm").as_deref(), None);
    }
}
