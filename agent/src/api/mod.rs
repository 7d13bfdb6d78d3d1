//! The agent API: an axum router the panel calls over the tunnel (HTTP/2). It is a plain
//! router, so it is tested without a panel. Every route is registered from its
//! declaration in `shardlyn_proto::agent_api` ([`Declared::at`]); `routes_test.rs`
//! checks that each declared route is served.

mod backups;
mod containers;
mod events;
mod files;
mod instances;
mod inventory;
pub(crate) mod json;
pub mod metrics;
mod processes;
mod transfers;
pub(crate) mod uploads;

#[cfg(test)]
mod routes_test;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use shardlyn_proto::agent_api::{self as api, Endpoint, Method};
use shardlyn_proto::register::AgentHealth;

/// State of the agent API.
#[derive(Clone)]
pub struct AgentState {
    pub node_id: String,
    pub runtime: std::sync::Arc<crate::runtime::DockerRuntime>,
    pub sampler: std::sync::Arc<metrics::Sampler>,
    /// The instance manager: one per agent process, shared by every tunnel connection.
    pub instances: crate::instances::Manager,
    /// Backups of this node (`crate::backups`).
    pub backups: crate::backups::Backups,
    /// Moves of servers to and from this node (`crate::transfers`).
    pub transfers: crate::transfers::Transfers,
    /// Locks of the tus uploads in progress (`uploads.rs`).
    pub(crate) uploads: uploads::Uploads,
    /// Git syncs running on this node (`crate::git`).
    pub git: crate::git::Syncs,
    /// SFTP logins waiting for the panel's answer (`crate::sftp`).
    pub sftp: crate::sftp::Gate,
    /// Shells open on this node (`crate::shell`).
    pub shells: crate::shell::Sessions,
}

impl AgentState {
    /// State for `node_id` around an existing instance manager.
    #[must_use]
    pub fn new(node_id: String, instances: crate::instances::Manager) -> Self {
        Self {
            node_id,
            runtime: std::sync::Arc::new(crate::runtime::DockerRuntime::local()),
            sampler: std::sync::Arc::default(),
            backups: crate::backups::Backups::new(&instances),
            transfers: crate::transfers::Transfers::new(&instances),
            uploads: uploads::Uploads::default(),
            git: crate::git::Syncs::default(),
            sftp: crate::sftp::Gate::default(),
            shells: crate::shell::Sessions::new(instances.0.settings.shell_max_sessions),
            instances,
        }
    }
}

/// Registers a handler for a route declared in `shardlyn_proto::agent_api`: the method
/// and path come from the declaration, so the panel's client and this router agree.
pub(crate) trait Declared {
    #[must_use]
    fn at<E: Endpoint, H, T>(self, handler: H) -> Self
    where
        H: Handler<T, AgentState>,
        T: 'static;
}

impl Declared for Router<AgentState> {
    fn at<E: Endpoint, H, T>(self, handler: H) -> Self
    where
        H: Handler<T, AgentState>,
        T: 'static,
    {
        let filter = match E::METHOD {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        };
        self.route(E::PATH, on(filter, handler))
    }
}

/// Every route of the agent API.
pub fn router(state: AgentState) -> Router {
    Router::new()
        .at::<api::Health, _, _>(health)
        .at::<api::InventoryAll, _, _>(inventory::all)
        .at::<api::InventorySystem, _, _>(inventory::system)
        .at::<api::InventoryNetwork, _, _>(inventory::network)
        .at::<api::InventoryDisks, _, _>(inventory::disks)
        .at::<api::InventoryUsers, _, _>(inventory::users)
        .at::<api::InventoryProcesses, _, _>(inventory::processes)
        .at::<api::Metrics, _, _>(metrics::sample)
        .at::<api::Containers, _, _>(containers::list)
        .at::<api::ContainerLogsRoute, _, _>(containers::logs)
        .at::<api::ContainerPower, _, _>(containers::power)
        .at::<api::ProcessKill, _, _>(processes::kill)
        .merge(files::router())
        .merge(uploads::router())
        .merge(backups::router())
        .merge(transfers::router())
        .merge(crate::git::api::router())
        .at::<api::Events, _, _>(events::states)
        .at::<api::SftpAnswer, _, _>(crate::sftp::answer)
        .at::<api::SshTrustPut, _, _>(ssh_trust)
        .at::<api::Shell, _, _>(crate::shell::open)
        .at::<api::Instances, _, _>(instances::list)
        .at::<api::InstanceGet, _, _>(instances::get)
        .at::<api::InstancePut, _, _>(instances::put)
        .at::<api::InstanceDelete, _, _>(instances::delete)
        .at::<api::InstanceInstall, _, _>(instances::install)
        .at::<api::InstancePower, _, _>(instances::power)
        .at::<api::InstanceCommand, _, _>(instances::command)
        .at::<api::InstanceStatsRoute, _, _>(instances::stats)
        .at::<api::InstanceLogs, _, _>(instances::logs)
        .at::<api::InstanceLogsClear, _, _>(instances::clear_logs)
        .at::<api::InstanceLogsDownload, _, _>(instances::download_logs)
        .at::<api::InstanceInstallLogs, _, _>(instances::install_logs)
        .at::<api::InstanceEvents, _, _>(events::instance)
        .fallback(|| async { crate::error::ApiError::not_found("no such agent route") })
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<AgentState>,
) -> axum::Json<AgentHealth> {
    axum::Json(AgentHealth {
        status: "ok".into(),
        node_id: state.node_id,
        version: crate::VERSION.into(),
        protocol: shardlyn_proto::PROTOCOL_VERSION,
    })
}

/// Serves the agent API over plain HTTP on `listener` (tests and local debugging; the
/// panel reaches it through the tunnel).
///
/// # Errors
/// The listener fails.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    state: AgentState,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// `PUT /v1/ssh/trust`: installs the CA keys and the KRL where the operator enabled it
/// (`ssh_trust_dir`); a KRL or key list that does not check out is refused (400) and
/// nothing installed changes.
async fn ssh_trust(
    axum::extract::State(state): axum::extract::State<AgentState>,
    json::AgentJson(trust): json::AgentJson<shardlyn_proto::ssh::SshTrust>,
) -> crate::error::ApiResult<axum::Json<shardlyn_proto::ssh::TrustInstalled>> {
    let settings = &state.instances.0.settings;
    if settings.ssh_trust_dir.is_empty() {
        return Ok(axum::Json(shardlyn_proto::ssh::TrustInstalled::default()));
    }
    let dir = std::path::PathBuf::from(&settings.ssh_trust_dir);
    let (node, logins) = (state.node_id.clone(), settings.ssh_logins.clone());
    let target = dir.clone();
    tokio::task::spawn_blocking(move || {
        crate::ssh_trust::install(&target, &node, &logins, &trust.ca_keys, &trust.krl_base64)
    })
    .await
    .map_err(|e| crate::error::ApiError::internal(e.to_string()))?
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            crate::error::ApiError::bad_request(e.to_string())
        } else {
            crate::error::ApiError::internal(e.to_string())
        }
    })?;
    Ok(axum::Json(shardlyn_proto::ssh::TrustInstalled {
        installed: true,
        dir: Some(dir.display().to_string()),
    }))
}
