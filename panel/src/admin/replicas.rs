//! `GET /v1/admin/replicas`: the panel processes of this cluster, which of them runs the
//! cluster's jobs, and the agents each holds. With Redis the list comes from the
//! replicas' records there (`tunnel::registry`); without it, this process is the only
//! replica.

use std::collections::HashMap;

use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::extract::AdminUser;
use crate::error::{AppError, AppJson, AppResult};
use crate::jobs::lease;
use crate::state::AppState;
use crate::types::Timestamp;

/// One panel process.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Replica")]
pub struct ReplicaView {
    pub id: String,
    /// Its replica listener (`cluster.advertise_url`); `null` without Redis.
    pub url: Option<String>,
    pub version: String,
    pub started_at: Timestamp,
    /// The replica that answered this request.
    pub this: bool,
    /// It holds the cluster's job lease (retention, sweeps).
    pub runs_jobs: bool,
    /// The agents whose tunnels it holds, by node name.
    pub agents: Vec<ReplicaAgent>,
}

/// An agent connected to a replica.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "ReplicaAgent")]
pub struct ReplicaAgent {
    pub node_id: String,
    /// `null` for a node that no longer exists.
    pub name: Option<String>,
}

/// `{"data": [replica...]}`, oldest first.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "ReplicaList")]
pub struct ReplicaList {
    pub data: Vec<ReplicaView>,
}

/// The replicas and their agents.
///
/// # Errors
/// 503 when Redis cannot be read (the list would be wrong).
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<ReplicaList>> {
    let runs_jobs =
        lease::holder(&state.db.pool, lease::CLUSTER_JOBS, state.clock.now_ms()).await?;
    let names: HashMap<String, String> = sqlx::query_as("SELECT id, name FROM nodes")
        .fetch_all(&state.db.pool)
        .await?
        .into_iter()
        .collect();
    let agents = |mut ids: Vec<String>| -> Vec<ReplicaAgent> {
        ids.sort_unstable();
        ids.dedup();
        let mut agents: Vec<ReplicaAgent> = ids
            .into_iter()
            .map(|node_id| ReplicaAgent {
                name: names.get(&node_id).cloned(),
                node_id,
            })
            .collect();
        agents.sort_by(|a, b| a.name.cmp(&b.name).then(a.node_id.cmp(&b.node_id)));
        agents
    };
    let Some(registry) = state.tunnels.registry() else {
        let held = state
            .tunnels
            .list()
            .iter()
            .map(|c| c.node_id.clone())
            .collect();
        return Ok(AppJson(ReplicaList {
            data: vec![ReplicaView {
                id: state.replica_id.clone(),
                url: None,
                version: env!("CARGO_PKG_VERSION").into(),
                started_at: Timestamp(state.started_at_ms()),
                this: true,
                runs_jobs: runs_jobs.as_deref() == Some(state.replica_id.as_str()),
                agents: agents(held),
            }],
        }));
    };
    let (records, mut held) = registry.census().await.map_err(|e| {
        tracing::warn!(error = %e, "reading the replicas from redis");
        AppError::Unavailable("the replica registry (Redis) cannot be read".into())
    })?;
    let data = records
        .into_iter()
        .map(|r| ReplicaView {
            this: r.id == state.replica_id,
            runs_jobs: runs_jobs.as_deref() == Some(r.id.as_str()),
            agents: agents(held.remove(&r.url).unwrap_or_default()),
            started_at: Timestamp(r.started_at),
            url: Some(r.url),
            version: r.version,
            id: r.id,
        })
        .collect();
    Ok(AppJson(ReplicaList { data }))
}
