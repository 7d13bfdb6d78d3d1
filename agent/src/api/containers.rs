//! Containers on the node: list, logs, start, stop, restart, kill.
//!
//! Trust boundary: these routes reach only the containers this agent created (their
//! `io.shardlyn.instance` label names one of its instances), unless the panel adds
//! `?all=true`, which it does only for platform admins. Any other container is as
//! missing as one that does not exist (404); the list leaves it out.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use shardlyn_proto::agent_api::{ContainerLogsQuery, ContainerPowerQuery, Scope};
use shardlyn_proto::inventory::ContainerLogs;

use super::AgentState;
use crate::error::{ApiError, ApiResult};
use crate::runtime::{ContainerInfo, Runtime, RuntimeError};

/// Docker ids and names: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Refuses an invalid container id in a path.
fn check_id(id: &str) -> ApiResult<()> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request("invalid container id"))
    }
}

/// Whether `instance` (a container's label) is one of this agent's instances.
fn is_ours(state: &AgentState, instance: Option<&str>) -> bool {
    instance.is_some_and(|i| state.instances.get(i).is_ok())
}

/// The containers this agent created.
///
/// # Errors
/// The runtime fails.
pub(super) async fn managed(state: &AgentState) -> Result<Vec<ContainerInfo>, RuntimeError> {
    let mut list = state.runtime.list().await?;
    list.retain(|c| is_ours(state, c.instance_id.as_deref()));
    Ok(list)
}

/// The full id of container `id` when the caller may act on it; a container out of the
/// caller's reach is `NotFound`, like one that does not exist.
async fn reachable(state: &AgentState, id: &str, all: bool) -> Result<String, RuntimeError> {
    let found = state.runtime.inspect(id).await?;
    if all || is_ours(state, found.instance_id.as_deref()) {
        Ok(found.id)
    } else {
        tracing::info!(container = %id, "refusing a container this agent did not create");
        Err(RuntimeError::NotFound)
    }
}

pub async fn list(
    State(state): State<AgentState>,
    Query(scope): Query<Scope>,
) -> ApiResult<Json<Vec<ContainerInfo>>> {
    let list = if scope.all {
        state.runtime.list().await?
    } else {
        managed(&state).await?
    };
    Ok(Json(list))
}

pub async fn logs(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<ContainerLogsQuery>,
) -> ApiResult<Json<ContainerLogs>> {
    check_id(&id)?;
    let id = reachable(&state, &id, q.all).await?;
    let lines = state
        .runtime
        .logs(&id, q.tail.unwrap_or(100).min(10_000))
        .await?;
    Ok(Json(ContainerLogs { lines }))
}

pub async fn power(
    State(state): State<AgentState>,
    Path((id, action)): Path<(String, String)>,
    Query(q): Query<ContainerPowerQuery>,
) -> ApiResult<StatusCode> {
    check_id(&id)?;
    if !matches!(action.as_str(), "start" | "stop" | "restart" | "kill") {
        return Err(ApiError::not_found("no such container action"));
    }
    let signal = q.signal.unwrap_or_else(|| "SIGKILL".into());
    if action == "kill" && (!signal.chars().all(|c| c.is_ascii_alphanumeric()) || signal.len() > 16)
    {
        return Err(ApiError::bad_request("invalid signal"));
    }
    let id = reachable(&state, &id, q.all).await?;
    let timeout = q.timeout.unwrap_or(10).min(600);
    match action.as_str() {
        "start" => state.runtime.start(&id).await?,
        "stop" => state.runtime.stop(&id, i64::from(timeout)).await?,
        "restart" => {
            state
                .runtime
                .restart(&id, isize::try_from(timeout).unwrap_or(10))
                .await?;
        }
        _ => state.runtime.kill(&id, &signal).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn container_ids_are_checked() {
        assert!(super::valid_id("3f1c2a"));
        assert!(super::valid_id("my-server_1.x"));
        for bad in ["", "../x", "-x", "a/b", "a b", &"a".repeat(129)] {
            assert!(!super::valid_id(bad), "{bad}");
        }
    }
}
