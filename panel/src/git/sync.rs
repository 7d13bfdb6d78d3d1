//! Syncs: `POST /v1/instances/{id}/git/sync` (manual) and [`on_push`] (webhook) record a
//! `running` row, then a task asks the instance's agent to fetch and copy the branch
//! (`POST /v1/instances/{id}/git/sync` on the agent API, answered when done), records
//! `success` or `failed`, and restarts a running server when the settings ask for it
//! (through the power path, [`crate::instances::ops::power::act`]). At most one sync per
//! instance runs (409 `GIT_SYNC_RUNNING`, backed by a partial unique index); a row left
//! `running` by a panel that died is failed once it is older than [`STALE_AFTER`].

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use serde_json::Value;
use shardlyn_proto::git::{SyncRequest, SyncResult, repo_key};
use shardlyn_proto::instance::{DesiredState, PowerAction};

use super::config::configured;
use super::store::{self, GitConfig, GitSync, Outcome};
use super::{GitStatus, GitSyncView, config_view, sync_view};
use crate::authz::{Authorized, perm};
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::instances::ops::power::{act, connected};
use crate::instances::store::Instance;
use crate::pagination::{Page, PageInfo, PageParams};
use crate::respond::Accepted;
use crate::state::AppState;
use crate::tunnel::AgentConn;
use crate::webhooks::push::PushEvent;
use shardlyn_proto::agent_api as api;

/// Longest the panel waits for the agent's answer (the agent bounds each git command
/// to 10 minutes; the copy follows).
const AGENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A `running` row older than this has lost its task.
const STALE_AFTER: Duration = Duration::from_secs(35 * 60);

/// 409 `GIT_SYNC_RUNNING`.
pub(crate) fn busy() -> AppError {
    AppError::coded(
        StatusCode::CONFLICT,
        "GIT_SYNC_RUNNING",
        "a git sync of this instance is already running",
    )
}

/// The running sync of an instance, after failing stale ones.
pub(crate) async fn running(state: &AppState, instance_id: &str) -> AppResult<Option<GitSync>> {
    let now = now_ms();
    let stale = i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
    store::fail_stale(&state.db.pool, instance_id, now - stale, now).await?;
    let (last, _) = store::latest(&state.db.pool, instance_id).await?;
    Ok(last.filter(|s| s.status == "running"))
}

/// Records a `running` sync of `config` and starts its task.
///
/// # Errors
/// 409 `NODE_OFFLINE` or `GIT_SYNC_RUNNING`.
pub(crate) async fn start(
    state: &AppState,
    instance: &Instance,
    config: &GitConfig,
    trigger: &str,
    triggered_by: Option<String>,
) -> AppResult<GitSync> {
    connected(state, &instance.node_id).await?;
    if running(state, &instance.id).await?.is_some() {
        return Err(busy());
    }
    let row = GitSync {
        id: new_id(),
        instance_id: instance.id.clone(),
        org_id: instance.org_id.clone(),
        trigger: trigger.to_owned(),
        triggered_by,
        status: "running".into(),
        repo_url: config.repo_url.clone(),
        branch: config.branch.clone(),
        commit_sha: None,
        commit_message: None,
        files: 0,
        removed: 0,
        restarted: false,
        error: None,
        started_at: now_ms(),
        finished_at: None,
    };
    store::insert_sync(&state.db.pool, &row)
        .await
        .map_err(|e| match AppError::from(e) {
            AppError::Conflict(_) => busy(),
            other => other,
        })?;
    let (state, instance, config, id) = (
        state.clone(),
        instance.clone(),
        config.clone(),
        row.id.clone(),
    );
    tokio::spawn(async move { run(&state, &instance, &config, &id).await });
    Ok(row)
}

/// The task of one sync: ask the agent, record the end, restart if asked.
async fn run(state: &AppState, instance: &Instance, config: &GitConfig, id: &str) {
    let outcome = match ask_agent(state, instance, config).await {
        Ok(result) => {
            let (restarted, error) = restart(state, instance, config).await;
            finish(
                state,
                id,
                &Outcome {
                    status: "success",
                    commit_sha: Some(&result.commit),
                    commit_message: Some(&result.message),
                    files: i64::try_from(result.files).unwrap_or(i64::MAX),
                    removed: i64::try_from(result.removed).unwrap_or(i64::MAX),
                    restarted,
                    error: error.as_deref(),
                },
            )
            .await;
            return;
        }
        Err(e) => e.to_string(),
    };
    finish(
        state,
        id,
        &Outcome {
            status: "failed",
            error: Some(&outcome),
            ..Outcome::default()
        },
    )
    .await;
}

async fn finish(state: &AppState, id: &str, outcome: &Outcome<'_>) {
    if let Err(e) = store::finish_sync(&state.db.pool, id, outcome, now_ms()).await {
        tracing::warn!(git.sync = %id, error = %e, "recording the end of a git sync");
    }
}

/// Restarts the server after a sync when configured and it is meant to be running.
async fn restart(
    state: &AppState,
    instance: &Instance,
    config: &GitConfig,
) -> (bool, Option<String>) {
    if !config.restart_after_sync {
        return (false, None);
    }
    let fresh = match crate::instances::store::find(&state.db.pool, &instance.id).await {
        Ok(Some(i)) => i,
        Ok(None) => return (false, None),
        Err(e) => return (false, Some(format!("restart skipped: {e}"))),
    };
    if fresh.desired_state != DesiredState::Running {
        return (false, None);
    }
    match act(state, &fresh, PowerAction::Restart).await {
        Ok(_) => (true, None),
        Err(e) => (false, Some(format!("synced, but the restart failed: {e}"))),
    }
}

/// The request the agent gets, secrets opened.
fn request(state: &AppState, config: &GitConfig) -> AppResult<SyncRequest> {
    let open = |sealed: &Option<String>| -> AppResult<Option<String>> {
        sealed
            .as_deref()
            .map(|s| {
                crate::sealed::open(&state.master_key, s)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .transpose()
            .map_err(AppError::from)
    };
    Ok(SyncRequest {
        url: config.repo_url.clone(),
        branch: config.branch.clone(),
        target_dir: config.target_dir.clone(),
        deploy_key: open(&config.sealed_deploy_key)?,
        token: open(&config.sealed_token)?,
        token_username: config.token_username.clone(),
    })
}

/// Sends the sync to the agent (pushing the instance's spec first when the agent does
/// not know it) and waits for its answer.
async fn ask_agent(
    state: &AppState,
    instance: &Instance,
    config: &GitConfig,
) -> AppResult<SyncResult> {
    let body = request(state, config)?;
    match send(state, instance, &body).await {
        Err(AppError::NotFound(_)) => {
            crate::instances::ops::sync::push_instance(state, instance).await?;
            send(state, instance, &body).await
        }
        other => other,
    }
}

async fn send(state: &AppState, instance: &Instance, body: &SyncRequest) -> AppResult<SyncResult> {
    let conn = connected(state, &instance.node_id).await?;
    let (headers, body) = AgentConn::json_body::<api::GitSync>(body)?;
    let exchange = async {
        let response = conn
            .open::<api::GitSync>(&instance.id.as_str(), &(), headers, body)
            .await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| AppError::Unavailable(format!("node did not answer: {e}")))?
            .to_bytes();
        Ok::<_, AppError>((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(AGENT_TIMEOUT, exchange)
        .await
        .map_err(|_| AppError::Unavailable("the node did not finish the sync in time".into()))??;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| {
            AppError::Unavailable(format!("node answered an unreadable result: {e}"))
        });
    }
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let message = v["error"].as_str().unwrap_or("no detail").to_owned();
    Err(match (status, v["code"].as_str()) {
        (StatusCode::NOT_FOUND, Some("NOT_FOUND")) => AppError::NotFound(message),
        (StatusCode::CONFLICT, Some("GIT_SYNC_RUNNING")) => busy(),
        _ => AppError::Unavailable(message),
    })
}

/// `POST /v1/instances/{id}/git/sync`: 202 with the `running` sync.
pub async fn trigger(
    State(state): State<AppState>,
    Authorized {
        resource: instance,
        user,
        ..
    }: Authorized<Instance, perm::InstancesGit>,
) -> AppResult<Accepted<GitSyncView>> {
    let config = configured(&state, &instance.id).await?;
    let row = start(
        &state,
        &instance,
        &config,
        "manual",
        Some(user.user.id.clone()),
    )
    .await?;
    Ok(Accepted(sync_view(&row)))
}

/// `GET /v1/instances/{id}/git/status`: whether a sync runs, the last one and the last
/// successful one (the deployed commit).
pub async fn status(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesGit>,
) -> AppResult<AppJson<GitStatus>> {
    let config = store::find(&state.db.pool, &instance.id).await?;
    let current = running(&state, &instance.id).await?;
    let (last, ok) = store::latest(&state.db.pool, &instance.id).await?;
    Ok(AppJson(GitStatus {
        instance_id: instance.id,
        configured: config.is_some(),
        config: config.as_ref().map(config_view),
        running: current.is_some(),
        current: current.as_ref().map(sync_view),
        last_sync: last.as_ref().map(sync_view),
        deployed_commit: ok.as_ref().and_then(|s| s.commit_sha.clone()),
        last_success: ok.as_ref().map(sync_view),
    }))
}

/// `GET /v1/instances/{id}/git/history`: syncs, newest first, paged.
pub async fn history(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesGit>,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<AppJson<Page<GitSyncView>>> {
    let (limit, offset) = page.limit_offset()?;
    let rows = store::history(&state.db.pool, &instance.id, limit, offset).await?;
    let total = store::count(&state.db.pool, &instance.id).await?;
    Ok(AppJson(Page {
        data: rows.iter().map(sync_view).collect(),
        pagination: PageInfo {
            page: page.page,
            per_page: page.per_page,
            total,
        },
    }))
}

/// Starts a sync of every instance of the push's organization that deploys the pushed
/// repository and branch. A sync already running for an instance is left alone (the
/// push is logged as skipped there).
pub async fn on_push(state: &AppState, event: &PushEvent) {
    let keys: Vec<String> = [Some(&event.repo_url), event.web_url.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|u| repo_key(u))
        .collect();
    if keys.is_empty() {
        return;
    }
    let configs = match store::matching(&state.db.pool, &event.org_id, &keys, &event.branch).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "finding git deploys for a push");
            return;
        }
    };
    for config in configs {
        let instance =
            match crate::instances::store::find(&state.db.pool, &config.instance_id).await {
                Ok(Some(i)) if i.org_id == event.org_id => i,
                _ => continue,
            };
        let by = Some(format!("{}:{}", event.provider, event.delivery_id));
        match start(state, &instance, &config, "webhook", by).await {
            Ok(row) => tracing::info!(
                instance.id = %instance.id, git.sync = %row.id, "git sync started by a push"
            ),
            Err(e) => tracing::info!(
                instance.id = %instance.id, reason = %e, "git sync for a push skipped"
            ),
        }
    }
}
