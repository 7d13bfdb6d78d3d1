//! Containers through the Docker Engine API (bollard), behind the small [`Runtime`]
//! trait the rest of the agent uses. Podman's Docker-compatible socket works the same.

use std::future::Future;

use bollard::Docker;
use bollard::container::{
    KillContainerOptions, ListContainersOptions, LogsOptions, RestartContainerOptions,
    StartContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;

/// Label every Shardlyn-managed container carries: the instance id.
pub const INSTANCE_LABEL: &str = "io.shardlyn.instance";

pub use shardlyn_proto::inventory::ContainerInfo;

/// A container found by name or id: its full id and the instance its label names.
#[derive(Debug, Clone)]
pub struct ContainerRef {
    pub id: String,
    pub instance_id: Option<String>,
}

/// What can go wrong talking to the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("container runtime unavailable: {0}")]
    Unavailable(String),
}

impl RuntimeError {
    /// The HTTP status and the stable code.
    #[must_use]
    pub fn status_code(&self) -> (http::StatusCode, &'static str) {
        use http::StatusCode as S;
        match self {
            Self::NotFound => (S::NOT_FOUND, "NOT_FOUND"),
            Self::Conflict(_) => (S::CONFLICT, "CONFLICT"),
            Self::Unavailable(_) => (S::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        }
    }
}

/// The container operations the agent needs.
pub trait Runtime: Send + Sync {
    fn list(&self) -> impl Future<Output = Result<Vec<ContainerInfo>, RuntimeError>> + Send;
    /// Finds a container by name, id or id prefix.
    fn inspect(&self, id: &str) -> impl Future<Output = Result<ContainerRef, RuntimeError>> + Send;
    fn start(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    fn stop(
        &self,
        id: &str,
        timeout_secs: i64,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    fn restart(
        &self,
        id: &str,
        timeout_secs: isize,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    fn kill(&self, id: &str, signal: &str)
    -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// The last `tail` lines of stdout and stderr.
    fn logs(
        &self,
        id: &str,
        tail: u32,
    ) -> impl Future<Output = Result<Vec<String>, RuntimeError>> + Send;
}

/// The Docker Engine.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Option<Docker>,
}

impl DockerRuntime {
    /// Connects lazily to the local socket (`DOCKER_HOST` is honoured).
    #[must_use]
    pub fn local() -> Self {
        Self {
            docker: Docker::connect_with_local_defaults().ok(),
        }
    }

    fn docker(&self) -> Result<&Docker, RuntimeError> {
        self.docker
            .as_ref()
            .ok_or_else(|| RuntimeError::Unavailable("no Docker socket".into()))
    }
}

fn map_err(err: bollard::errors::Error) -> RuntimeError {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NotFound,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 304 | 409,
            message,
        } => RuntimeError::Conflict(message),
        other => RuntimeError::Unavailable(other.to_string()),
    }
}

impl Runtime for DockerRuntime {
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let options = ListContainersOptions::<String> {
            all: true,
            ..Default::default()
        };
        let list = self
            .docker()?
            .list_containers(Some(options))
            .await
            .map_err(map_err)?;
        Ok(list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                ContainerInfo {
                    id: c.id.unwrap_or_default(),
                    names: c
                        .names
                        .unwrap_or_default()
                        .into_iter()
                        .map(|n| n.trim_start_matches('/').to_string())
                        .collect(),
                    image: c.image.unwrap_or_default(),
                    state: c.state.unwrap_or_default(),
                    status: c.status.unwrap_or_default(),
                    created_unix: c.created.unwrap_or_default(),
                    instance_id: labels.get(INSTANCE_LABEL).cloned(),
                    labels,
                }
            })
            .collect())
    }

    async fn inspect(&self, id: &str) -> Result<ContainerRef, RuntimeError> {
        let found = self
            .docker()?
            .inspect_container(id, None)
            .await
            .map_err(map_err)?;
        Ok(ContainerRef {
            id: found.id.unwrap_or_default(),
            instance_id: found
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(INSTANCE_LABEL)),
        })
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker()?
            .start_container(id, None::<StartContainerOptions<String>>)
            .await
            .map_err(map_err)
    }

    async fn stop(&self, id: &str, timeout_secs: i64) -> Result<(), RuntimeError> {
        self.docker()?
            .stop_container(id, Some(StopContainerOptions { t: timeout_secs }))
            .await
            .map_err(map_err)
    }

    async fn restart(&self, id: &str, timeout_secs: isize) -> Result<(), RuntimeError> {
        self.docker()?
            .restart_container(id, Some(RestartContainerOptions { t: timeout_secs }))
            .await
            .map_err(map_err)
    }

    async fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        self.docker()?
            .kill_container(id, Some(KillContainerOptions { signal }))
            .await
            .map_err(map_err)
    }

    async fn logs(&self, id: &str, tail: u32) -> Result<Vec<String>, RuntimeError> {
        let options = LogsOptions::<String> {
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker()?.logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&chunk.map_err(map_err)?.to_string());
        }
        Ok(text.lines().map(str::to_string).collect())
    }
}
