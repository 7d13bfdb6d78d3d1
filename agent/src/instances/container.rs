//! The Docker side of an instance, following Wings' conventions so Pterodactyl "yolks"
//! images run unchanged: container `shardlyn-{id}`, server files at `/home/container`,
//! the egg's `STARTUP` in the environment, the image's own entrypoint, stdin open.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::{
    AttachContainerOptions, AttachContainerResults, Config, CreateContainerOptions,
    RemoveContainerOptions,
};
use bollard::image::CreateImageOptions;
use bollard::models::{HostConfig, HostConfigLogConfig, PortBinding};
use futures_util::StreamExt;
use sha2::Digest;
use shardlyn_proto::instance::{AGENT_LABEL, CONTAINER_ROOT, INSTANCE_LABEL, InstanceSpec};

use super::{InstanceError, Manager};

/// Label holding the hash of the container's configuration.
pub(crate) const SPEC_HASH_LABEL: &str = "io.shardlyn.spec-hash";

/// Capabilities dropped from game servers (Wings' list); CHOWN, SETUID, SETGID, KILL,
/// DAC_READ_SEARCH... stay, yolks need them.
const CAP_DROP: &[&str] = &[
    "setpcap",
    "mknod",
    "audit_write",
    "net_raw",
    "dac_override",
    "fowner",
    "fsetid",
    "net_bind_service",
    "sys_chroot",
    "setfcap",
];

/// The game container of server `id` on the agent tagged `tag` (see [`agent_tag`]).
pub(crate) fn container_name(tag: &str, id: &str) -> String {
    format!("shardlyn-{tag}-{id}")
}

/// The install container of server `id` on the agent tagged `tag`.
pub(crate) fn installer_name(tag: &str, id: &str) -> String {
    format!("shardlyn-{tag}-{id}-installer")
}

/// The tag of the agent whose data directory is `data_dir` (absolute): 8 hex digits of
/// its SHA-256. Container names and labels carry it, so several agents on one Docker
/// engine (a homelab's nodes, these tests, a server moving between two of them) never
/// take each other's containers.
#[must_use]
pub fn agent_tag(data_dir: &std::path::Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..4])
}

/// The game container of server `id` of the agent on `data_dir` (tests, tools).
#[must_use]
pub fn container_name_in(data_dir: &std::path::Path, id: &str) -> String {
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    container_name(&agent_tag(&dir), id)
}

/// The install container of server `id` of the agent on `data_dir`.
#[must_use]
pub fn installer_name_in(data_dir: &std::path::Path, id: &str) -> String {
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    installer_name(&agent_tag(&dir), id)
}

/// `SERVER_IP`/`SERVER_PORT`: the primary allocation (or the first).
fn primary(spec: &InstanceSpec) -> (String, u16) {
    spec.allocations
        .iter()
        .find(|a| a.primary)
        .or_else(|| spec.allocations.first())
        .map_or_else(|| ("0.0.0.0".into(), 0), |a| (a.ip.clone(), a.port))
}

/// The environment every container of the instance gets.
pub(crate) fn environment(spec: &InstanceSpec, timezone: &str) -> Vec<String> {
    let (ip, port) = primary(spec);
    let mut env: Vec<String> = spec
        .environment
        .iter()
        .filter(|(k, _)| !k.is_empty() && !k.contains('='))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.push(format!("STARTUP={}", spec.startup));
    env.push(format!("SERVER_MEMORY={}", spec.limits.memory_mb));
    env.push(format!("SERVER_IP={ip}"));
    env.push(format!("SERVER_PORT={port}"));
    env.push(format!("TZ={timezone}"));
    env.push(format!("HOME={CONTAINER_ROOT}"));
    env.push("USER=container".into());
    env
}

const MIB: i64 = 1024 * 1024;

/// Capabilities the installer keeps although the game server drops them: it runs as root
/// over files that belong to the game's user (a reinstall, or a volume owned by a
/// non-root agent), so it needs to bypass their permission bits (`dac_override`) and to
/// chmod/utime them (`fowner`). Both act only on what the container sees: its own image
/// and the two bind mounts.
const INSTALLER_KEEPS: &[&str] = &["dac_override", "fowner"];

/// Which container of an instance a host configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Server,
    Installer,
}

impl Role {
    fn cap_drop(self) -> Vec<String> {
        CAP_DROP
            .iter()
            .filter(|c| self == Self::Server || !INSTALLER_KEEPS.contains(c))
            .map(|c| (*c).to_string())
            .collect()
    }
}

/// Limits and hardening every container of an instance gets, game server and installer
/// alike: the memory (and swap), CPU and pid limits of the spec, no-new-privileges,
/// Wings' dropped capabilities (see [`INSTALLER_KEEPS`]), a small `/tmp` and bounded
/// logs; `binds` are the mounts.
pub(crate) fn hardened(spec: &InstanceSpec, binds: Vec<String>, role: Role) -> HostConfig {
    let l = &spec.limits;
    let memory = (l.memory_mb > 0).then(|| l.memory_mb.saturating_mul(MIB));
    let memory_swap = memory.map(|m| {
        if l.swap_mb < 0 {
            -1
        } else {
            m.saturating_add(l.swap_mb.saturating_mul(MIB))
        }
    });
    HostConfig {
        binds: Some(binds),
        memory,
        memory_swap,
        cpu_quota: (l.cpu_percent > 0).then(|| l.cpu_percent.saturating_mul(1000)),
        cpu_period: (l.cpu_percent > 0).then_some(100_000),
        pids_limit: Some(if l.pids > 0 { l.pids } else { 512 }),
        security_opt: Some(vec!["no-new-privileges".into()]),
        cap_drop: Some(role.cap_drop()),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_string(),
            "rw,exec,nosuid,size=100M".to_string(),
        )])),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".to_string(), "5m".to_string()),
                ("max-file".to_string(), "1".to_string()),
                ("compress".to_string(), "false".to_string()),
            ])),
        }),
        ..HostConfig::default()
    }
}

/// The game server container's host configuration: [`hardened`] plus its ports, memory
/// reservation and IO weight.
fn host_config(spec: &InstanceSpec, volume: &str, with_io_weight: bool) -> HostConfig {
    let l = &spec.limits;
    let mut ports: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for a in &spec.allocations {
        for proto in ["tcp", "udp"] {
            ports
                .entry(format!("{}/{proto}", a.port))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(a.ip.clone()),
                    host_port: Some(a.port.to_string()),
                });
        }
    }
    let base = hardened(
        spec,
        vec![format!("{volume}:{CONTAINER_ROOT}")],
        Role::Server,
    );
    HostConfig {
        port_bindings: Some(ports),
        memory_reservation: base.memory,
        blkio_weight: if with_io_weight && (10..=1000).contains(&l.io_weight) {
            u16::try_from(l.io_weight).ok()
        } else {
            None
        },
        ..base
    }
}

/// The full create configuration of the game server container.
pub(crate) fn run_config(
    manager: &Manager,
    spec: &InstanceSpec,
    with_io_weight: bool,
) -> Config<String> {
    let volume = manager.0.paths.volume(&spec.id);
    let mut exposed = HashMap::new();
    for a in &spec.allocations {
        exposed.insert(format!("{}/tcp", a.port), HashMap::new());
        exposed.insert(format!("{}/udp", a.port), HashMap::new());
    }
    let mut config = Config {
        image: Some(spec.image.clone()),
        user: Some(manager.0.settings.container_user.clone()),
        env: Some(environment(spec, &manager.0.settings.timezone)),
        working_dir: Some(CONTAINER_ROOT.into()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(false),
        tty: Some(false),
        exposed_ports: Some(exposed),
        labels: Some(HashMap::from([
            (INSTANCE_LABEL.to_string(), spec.id.clone()),
            (AGENT_LABEL.to_string(), manager.0.tag.clone()),
        ])),
        host_config: Some(host_config(spec, &volume.to_string_lossy(), with_io_weight)),
        ..Config::default()
    };
    let hash = hash_config(&config);
    if let Some(labels) = config.labels.as_mut() {
        labels.insert(SPEC_HASH_LABEL.into(), hash);
    }
    config
}

/// A stable hash of a create configuration (maps serialized in key order).
fn hash_config(config: &Config<String>) -> String {
    let value = serde_json::to_value(config).unwrap_or_default();
    // serde_json's Map is ordered by key, so the text is stable.
    let text = value.to_string();
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..16])
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Docker's 409 for a container another call is already removing.
fn is_removal_in_progress(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        } if message.contains("already in progress")
    )
}

impl Manager {
    /// Makes sure `image` exists locally, pulling it within the configured timeout.
    pub(crate) async fn ensure_image(&self, image: &str) -> Result<(), InstanceError> {
        let docker = self.docker()?;
        match docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let secs = self.0.settings.pull_timeout_secs;
        tracing::info!(image, "pulling image");
        let pull = async {
            let mut stream = docker.create_image(
                Some(CreateImageOptions {
                    from_image: image,
                    ..CreateImageOptions::default()
                }),
                None,
                None,
            );
            while let Some(item) = stream.next().await {
                item?;
            }
            Ok::<(), bollard::errors::Error>(())
        };
        let reason = match tokio::time::timeout(Duration::from_secs(secs), pull).await {
            Ok(Ok(())) => match docker.inspect_image(image).await {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {secs} s"),
        };
        Err(InstanceError::ImageUnavailable(format!(
            "image {image} is not available locally and could not be pulled: {reason}"
        )))
    }

    /// Creates the container unless one with the same configuration exists; returns its id.
    pub(crate) async fn ensure_container(
        &self,
        spec: &InstanceSpec,
    ) -> Result<(String, Vec<String>), InstanceError> {
        let docker = self.docker()?;
        let name = container_name(&self.0.tag, &spec.id);
        let mut warnings = Vec::new();
        let config = run_config(self, spec, true);
        let want = config
            .labels
            .as_ref()
            .and_then(|l| l.get(SPEC_HASH_LABEL))
            .cloned();
        let lite = run_config(self, spec, false);
        let want_lite = lite
            .labels
            .as_ref()
            .and_then(|l| l.get(SPEC_HASH_LABEL))
            .cloned();
        match docker.inspect_container(&name, None).await {
            Ok(existing) => {
                let have = existing
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.as_ref())
                    .and_then(|l| l.get(SPEC_HASH_LABEL))
                    .cloned();
                let running = existing
                    .state
                    .as_ref()
                    .and_then(|s| s.running)
                    .unwrap_or(false);
                if !running && have.is_some() && (have == want || have == want_lite) {
                    return Ok((existing.id.unwrap_or(name), warnings));
                }
                docker
                    .remove_container(
                        &name,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..RemoveContainerOptions::default()
                        }),
                    )
                    .await?;
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let options = Some(CreateContainerOptions {
            name: name.clone(),
            platform: None,
        });
        let created = match docker.create_container(options.clone(), config).await {
            Ok(c) => c,
            Err(e)
                if e.to_string().to_lowercase().contains("blkio")
                    || e.to_string().to_lowercase().contains("io weight") =>
            {
                warnings.push(format!(
                    "the container engine refused the IO weight ({e}); running without it"
                ));
                docker.create_container(options, lite).await?
            }
            Err(e) => return Err(e.into()),
        };
        warnings.extend(created.warnings.into_iter().filter(|w| !w.is_empty()));
        Ok((created.id, warnings))
    }

    /// Attaches to stdin, stdout and stderr (before start, so no output is lost).
    pub(crate) async fn attach(
        &self,
        container: &str,
    ) -> Result<AttachContainerResults, InstanceError> {
        Ok(self
            .docker()?
            .attach_container(
                container,
                Some(AttachContainerOptions::<String> {
                    stdin: Some(true),
                    stdout: Some(true),
                    stderr: Some(true),
                    stream: Some(true),
                    logs: Some(false),
                    detach_keys: None,
                }),
            )
            .await?)
    }

    /// Force-removes a container by name or id; a missing one is fine.
    pub(crate) async fn remove_container(&self, name: &str) -> Result<(), InstanceError> {
        match self
            .docker()?
            .remove_container(
                name,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..RemoveContainerOptions::default()
                }),
            )
            .await
        {
            // Another removal of it (an install cleaning up after itself) is under way:
            // done once it is gone.
            Err(e) if is_removal_in_progress(&e) => {
                let docker = self.docker()?;
                for _ in 0..100 {
                    match docker.inspect_container(name, None).await {
                        Err(e) if is_not_found(&e) => return Ok(()),
                        _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                    }
                }
                Err(e.into())
            }
            Err(e) if !is_not_found(&e) => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Waits for the container to stop; returns its exit code and whether it ran out of
    /// memory. A wait the Engine cuts short (a hiccup of its API) while the container
    /// still runs is waited again: taking that for an exit would "restart" a live server
    /// by removing its container.
    pub(crate) async fn wait_exit(&self, container: &str) -> (i64, bool) {
        let Ok(docker) = self.docker() else {
            return (-1, false);
        };
        let mut pause = Duration::from_millis(100);
        loop {
            let mut wait = docker.wait_container(
                container,
                Some(bollard::container::WaitContainerOptions {
                    condition: "not-running",
                }),
            );
            let mut code = match wait.next().await {
                Some(Ok(r)) => Some(r.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Some(code)
                }
                _ => None,
            };
            let Ok(info) = docker.inspect_container(container, None).await else {
                return (code.unwrap_or(-1), false);
            };
            let state = info.state.unwrap_or_default();
            if code.is_none() && state.running == Some(true) {
                tracing::warn!(
                    container,
                    "the Engine ended a wait while the container runs; waiting again"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
            if code.is_none() {
                code = state.exit_code;
            }
            return (code.unwrap_or(-1), state.oom_killed.unwrap_or(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardlyn_proto::instance::{Allocation, DesiredState, Limits, StopSpec};

    fn spec() -> InstanceSpec {
        InstanceSpec {
            id: "abc".into(),
            name: "x".into(),
            image: "img".into(),
            startup: "java -Xmx{{SERVER_MEMORY}}M".into(),
            environment: [("A".to_string(), "1".to_string())].into(),
            limits: Limits::default(),
            allocations: vec![
                Allocation {
                    ip: "0.0.0.0".into(),
                    port: 25565,
                    primary: false,
                },
                Allocation {
                    ip: "127.0.0.1".into(),
                    port: 25566,
                    primary: true,
                },
            ],
            install: None,
            config_files: vec![],
            done: vec![],
            stop: StopSpec::Command("stop".into()),
            stop_grace_secs: 10,
            desired: DesiredState::Running,
            crash_restart: true,
            file_denylist: vec![],
        }
    }

    #[test]
    fn environment_follows_wings() {
        let env = environment(&spec(), "UTC");
        for want in [
            "A=1",
            "STARTUP=java -Xmx{{SERVER_MEMORY}}M",
            "SERVER_MEMORY=1024",
            "SERVER_IP=127.0.0.1",
            "SERVER_PORT=25566",
            "TZ=UTC",
            "HOME=/home/container",
            "USER=container",
        ] {
            assert!(env.iter().any(|e| e == want), "{want} in {env:?}");
        }
    }

    #[test]
    fn limits_map_to_docker_units() {
        let mut s = spec();
        s.limits.swap_mb = 512;
        let h = host_config(&s, "/v", true);
        assert_eq!(h.memory, Some(1024 * MIB));
        assert_eq!(h.memory_swap, Some(1536 * MIB));
        assert_eq!(h.cpu_quota, Some(100_000));
        assert_eq!(h.cpu_period, Some(100_000));
        assert_eq!(h.blkio_weight, Some(500));
        assert_eq!(host_config(&s, "/v", false).blkio_weight, None);
        s.limits.swap_mb = -1;
        assert_eq!(host_config(&s, "/v", true).memory_swap, Some(-1));
        let ports = host_config(&s, "/v", true)
            .port_bindings
            .unwrap_or_default();
        assert_eq!(ports.len(), 4);
    }
}
