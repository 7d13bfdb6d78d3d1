//! Building the [`InstanceSpec`] the agent runs from an instance and its workload's egg.
//!
//! - `environment`: every egg variable's value (stored, else the egg default); the agent
//!   adds `SERVER_MEMORY`, `SERVER_IP`, `SERVER_PORT` and `STARTUP` itself.
//! - `install`: `None` when the egg's install script is blank; CRLF becomes LF, and an
//!   egg without install container or entrypoint gets Pterodactyl's defaults
//!   (`ghcr.io/pterodactyl/installers:alpine`, `ash`).
//! - `stop`: a console command as a command; `^C`, `^c` and `^^C` as `SIGINT`; another
//!   `^NAME` as `SIGNAME` when NAME is a signal (`^SIGTERM` and `^TERM` both give
//!   `SIGTERM`), otherwise `SIGTERM` (the corpus has a `^X`, which no signal is); no stop
//!   at all (or one inherited through `config.extends`) as `SIGTERM`.

use shardlyn_proto::egg::{Egg, StopCommand};
use shardlyn_proto::instance::{ConfigFileSpec, InstallSpec, InstanceSpec, StopSpec};

use super::input::resolved;
use super::store::Instance;
use crate::config::InstancesConfig;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::workloads::store as workloads;

/// Install image used when an egg names none (Pterodactyl's default).
pub const DEFAULT_INSTALL_IMAGE: &str = "ghcr.io/pterodactyl/installers:alpine";
/// Install interpreter used when an egg names none.
pub const DEFAULT_INSTALL_ENTRYPOINT: &str = "ash";

/// Signals a `^NAME` stop may name.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ABRT", "KILL", "USR1", "USR2", "PIPE", "ALRM", "TERM", "CONT", "STOP",
    "TSTP", "WINCH",
];

/// The spec of `instance`, from its stored settings and its workload's current egg.
///
/// # Errors
/// The workload is gone (a 500: the database refuses to delete a workload in use) or a
/// database failure.
pub async fn build_spec(state: &AppState, instance: &Instance) -> AppResult<InstanceSpec> {
    let workload = workloads::of_instance(&state.db.pool, instance)
        .await?
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "workload {} of instance {} is missing",
                instance.workload_id,
                instance.id
            ))
        })?;
    Ok(spec_from(instance, &workload.egg, &state.config.instances))
}

/// The spec of `instance` running `egg` (pure; see [`build_spec`]).
#[must_use]
pub fn spec_from(instance: &Instance, egg: &Egg, config: &InstancesConfig) -> InstanceSpec {
    InstanceSpec {
        id: instance.id.clone(),
        name: instance.name.clone(),
        image: instance.image.clone(),
        startup: egg.startup.clone(),
        environment: resolved(egg, &instance.variables),
        limits: instance.limits.clone(),
        allocations: instance.allocations.clone(),
        install: install(egg),
        config_files: egg
            .config
            .files
            .iter()
            .map(|f| ConfigFileSpec {
                path: f.path.clone(),
                parser: f.parser.as_str().to_owned(),
                find: f.find.clone(),
            })
            .collect(),
        done: egg.config.startup.done.clone(),
        stop: stop(egg.config.stop.as_ref()),
        stop_grace_secs: config.stop_grace_secs,
        desired: instance.desired_state,
        crash_restart: true,
        file_denylist: egg.file_denylist.clone(),
    }
}

/// Whether the egg has an install step.
#[must_use]
pub fn has_install(egg: &Egg) -> bool {
    !egg.install.script.trim().is_empty()
}

fn install(egg: &Egg) -> Option<InstallSpec> {
    if !has_install(egg) {
        return None;
    }
    let or = |s: &str, default: &str| {
        if s.trim().is_empty() {
            default.to_owned()
        } else {
            s.to_owned()
        }
    };
    Some(InstallSpec {
        image: or(&egg.install.container, DEFAULT_INSTALL_IMAGE),
        entrypoint: or(&egg.install.entrypoint, DEFAULT_INSTALL_ENTRYPOINT),
        script: egg.install.script.replace("\r\n", "\n"),
    })
}

/// How the agent stops the server (see the module doc).
#[must_use]
pub fn stop(stop: Option<&StopCommand>) -> StopSpec {
    let sigterm = || StopSpec::Signal("SIGTERM".into());
    match stop {
        None => sigterm(),
        Some(StopCommand::Command(c)) => StopSpec::Command(c.clone()),
        Some(s @ StopCommand::Signal(raw)) => {
            if let Some(name) = s.signal_name() {
                return StopSpec::Signal(name.to_owned());
            }
            let upper = raw.trim_start_matches('^').trim().to_ascii_uppercase();
            let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
            if SIGNALS.contains(&bare) {
                StopSpec::Signal(format!("SIG{bare}"))
            } else {
                sigterm()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(raw: &str) -> StopSpec {
        stop(Some(&StopCommand::from_egg(raw)))
    }

    #[test]
    fn stops_map_to_commands_and_signals() {
        let signal = |s: &str| StopSpec::Signal(s.to_owned());
        assert_eq!(sig("^C"), signal("SIGINT"));
        assert_eq!(sig("^c"), signal("SIGINT"));
        assert_eq!(sig("^^C"), signal("SIGINT"));
        assert_eq!(sig("^SIGTERM"), signal("SIGTERM"));
        assert_eq!(sig("^hup"), signal("SIGHUP"));
        assert_eq!(sig("^X"), signal("SIGTERM"));
        assert_eq!(sig("stop"), StopSpec::Command("stop".into()));
        assert_eq!(stop(None), signal("SIGTERM"));
    }
}
