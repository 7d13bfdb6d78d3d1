//! `/v1/instances/{id}/backups`: list, create, download, restore, lock, delete. The agent
//! does the work; the panel row stays `running` until the agent reports the end on its
//! event stream (`progress.rs`; a node that connects is asked about rows still
//! unfinished).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shardlyn_proto::backup::{BackupInfo, BackupStatus, CreateBackup, RestoreBackup, Target};
use shardlyn_proto::instance::{DesiredState, PowerAction};

use super::s3;
use super::store::{self, Backup};
use super::view::{BackupList, BackupView, RestoreStarted};
use crate::authz::{Authorized, perm};
use crate::billing::limits::{self, Ask, Limit};
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::instances::ops::power::{act, connected};
use crate::instances::ops::sync;
use crate::instances::store::Instance;
use crate::respond::Accepted;
use crate::state::AppState;
use crate::tunnel::AgentConn;
use shardlyn_proto::agent_api as api;

/// `GET /v1/instances/{id}/backups`.
pub async fn list(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesBackupsRead>,
) -> AppResult<AppJson<BackupList>> {
    let rows = store::list(&state.db.pool, &instance.id).await?;
    Ok(AppJson(BackupList {
        data: rows.iter().map(BackupView::from).collect(),
    }))
}

/// Asks the agent once about an unfinished backup and records its end: the agent's
/// record when the row changed.
pub(super) async fn check(
    state: &AppState,
    conn: &AgentConn,
    instance_id: &str,
    bid: &str,
) -> Option<BackupInfo> {
    let answer = conn
        .request::<api::BackupGet>(&(instance_id, bid), &(), &())
        .await;
    let info = match answer {
        Ok(info) => info,
        Err(AppError::NotFound(_)) => BackupInfo {
            id: bid.to_string(),
            instance: instance_id.to_owned(),
            status: BackupStatus::Failed,
            size_bytes: 0,
            sha256: String::new(),
            error: Some("the node has no record of this backup".into()),
            started_at: 0,
            completed_at: None,
        },
        Err(_) => return None,
    };
    if info.status == BackupStatus::Running {
        return None;
    }
    let result = store::finish(
        &state.db.pool,
        bid,
        info.status.as_str(),
        i64::try_from(info.size_bytes).unwrap_or(i64::MAX),
        &info.sha256,
        info.error.as_deref(),
        info.completed_at.unwrap_or_else(now_ms),
    )
    .await;
    match result {
        Ok(true) => {
            let failed = info.status == BackupStatus::Failed;
            crate::alerts::evaluate::on_backup_end(state, instance_id, failed).await;
            Some(info)
        }
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(backup.id = %bid, error = %e, "recording a backup");
            None
        }
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Ignored {
    #[default]
    None,
    Text(String),
    List(Vec<String>),
}

/// The create body.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub ignored: Ignored,
    #[serde(default, alias = "is_locked")]
    pub locked: bool,
}

/// The object key of a backup in a bucket.
fn object_key(prefix: &str, instance: &str, bid: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{instance}/{bid}.tar.zst")
    } else {
        format!("{prefix}/{instance}/{bid}.tar.zst")
    }
}

/// The wire target of a stored backup.
pub(crate) async fn target_of(state: &AppState, b: &Backup) -> AppResult<Target> {
    if b.target != "s3" {
        return Ok(Target::Local);
    }
    let config = config_of(state, b).await?;
    s3::precheck(state, &config).await?;
    s3::target(state, &config, &b.object_key)
}

/// The storage config of a backup (for its credentials), pointing at where the backup
/// was written: the endpoint, region and bucket recorded with it, not the config's
/// current ones.
async fn config_of(state: &AppState, b: &Backup) -> AppResult<store::Config> {
    let id = b.config_id.as_deref().unwrap_or_default();
    let mut config = store::find_config(&state.db.pool, id)
        .await?
        .ok_or_else(|| AppError::Conflict("the backup's storage configuration is gone".into()))?;
    if b.target == "s3" && !b.s3_bucket.is_empty() {
        config.endpoint.clone_from(&b.s3_endpoint);
        config.region.clone_from(&b.s3_region);
        config.bucket.clone_from(&b.s3_bucket);
    }
    Ok(config)
}

/// Removes a backup's archive from where it lives.
async fn remove_archive(state: &AppState, instance: &Instance, b: &Backup) -> AppResult<()> {
    if b.target == "s3" {
        if let Ok(config) = config_of(state, b).await {
            s3::delete(state, &config, &b.object_key).await?;
        }
        // The agent may hold a record of it too.
        if let Some(conn) = state.tunnels.find(&instance.node_id).await {
            let _ = conn
                .request::<api::BackupDelete>(&(instance.id.as_str(), b.id.as_str()), &(), &())
                .await;
        }
        return Ok(());
    }
    let conn = connected(state, &instance.node_id).await?;
    match conn
        .request::<api::BackupDelete>(&(instance.id.as_str(), b.id.as_str()), &(), &())
        .await
    {
        Ok(_) | Err(AppError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the archives an instance leaves in object storage when it is deleted (its
/// node removes the local ones with the server's files). Best effort: a failure is
/// logged and the deletion goes on, as an unreachable bucket must not keep a server.
pub async fn forget_remote(state: &AppState, instance: &Instance) {
    let rows = match store::list(&state.db.pool, &instance.id).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(instance.id = %instance.id, error = %e, "listing backups of a deleted instance");
            return;
        }
    };
    for b in rows
        .iter()
        .filter(|b| b.target == "s3" && !b.object_key.is_empty())
    {
        let removed = match config_of(state, b).await {
            Ok(config) => s3::delete(state, &config, &b.object_key).await,
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            tracing::warn!(backup.id = %b.id, error = %e, "removing the archive of a deleted instance");
        }
    }
}

/// Makes room for one more backup under the limit: deletes the oldest unlocked,
/// finished backups.
async fn rotate(state: &AppState, instance: &Instance, limit: i64) -> AppResult<()> {
    if limit <= 0 {
        return Ok(());
    }
    let mut rows = store::list(&state.db.pool, &instance.id).await?;
    rows.reverse(); // oldest first
    let mut count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    for b in rows.iter().filter(|b| !b.locked && b.status != "running") {
        if count < limit {
            break;
        }
        remove_archive(state, instance, b).await?;
        store::delete(&state.db.pool, &b.id).await?;
        count -= 1;
    }
    if count >= limit {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "BACKUP_LIMIT",
            format!("the backup limit ({limit}) is reached and no backup can be rotated out"),
        ));
    }
    Ok(())
}

/// Refuses early (402 `PLAN_LIMIT`, before anything is rotated out or the node is
/// asked) a backup the plan's `backups_per_server` cap refuses even after the backup
/// config's rotation made room. The cap is checked again, held, where the row is made.
async fn plan_precheck(
    state: &AppState,
    instance: &Instance,
    config: Option<&store::Config>,
) -> AppResult<()> {
    let mut conn = state.db.pool.acquire().await?;
    let Some(cap) = limits::plan_for(&mut conn, state, &instance.org_id)
        .await?
        .and_then(|plan| Limit::BackupsPerServer.cap(&plan.limits))
    else {
        return Ok(());
    };
    let rows = store::list(&mut *conn, &instance.id).await?;
    let kept = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let rotated = match config {
        Some(c) if c.max_backups > 0 => {
            let removable = rows
                .iter()
                .filter(|b| !b.locked && b.status != "running")
                .count();
            (kept - c.max_backups + 1).clamp(0, i64::try_from(removable).unwrap_or(i64::MAX))
        }
        _ => 0,
    };
    if kept - rotated < cap {
        return Ok(());
    }
    Err(AppError::PlanLimit {
        limit: Limit::BackupsPerServer.key(),
        usage: kept,
        cap,
        message: format!(
            "the organization's plan keeps {cap} backup(s) of a server and this one has \
             {kept}: delete one, or upgrade the plan"
        ),
    })
}

/// `POST /v1/instances/{id}/backups`.
pub async fn create(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesBackupsWrite>,
    body: axum::body::Bytes,
) -> AppResult<Accepted<BackupView>> {
    let body: CreateBody = super::optional_json(&body)?;
    let row = begin(&state, &instance, body).await?;
    Ok(Accepted(BackupView::from(&row)))
}

/// Starts a backup of `instance` as `body` asks: checks the body, rotates under the
/// limit, records the row, asks the agent and watches it. What `create` and scheduled
/// backup tasks do once the caller is authorized.
///
/// # Errors
/// 400 on a bad body, 402 `PLAN_LIMIT` past the plan's `backups_per_server`, 409 when
/// the node is offline or the limit cannot be kept.
pub(crate) async fn begin(
    state: &AppState,
    instance: &Instance,
    body: CreateBody,
) -> AppResult<Backup> {
    let config = store::active_config(&state.db.pool, &instance.org_id).await?;
    plan_precheck(state, instance, config.as_ref()).await?;
    let conn = connected(state, &instance.node_id).await?;
    let ignored = match body.ignored {
        Ignored::None => String::new(),
        Ignored::Text(t) => t,
        Ignored::List(l) => l.join("\n"),
    };
    if ignored.len() > 64 * 1024 {
        return Err(AppError::Validation("ignored is too long".into()));
    }
    let name = body.name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.chars().count() > 191 {
        return Err(AppError::Validation("name is too long".into()));
    }
    let bid = new_id();
    let name = if name.is_empty() {
        format!("Backup at {}", crate::db::rfc3339(now_ms()))
    } else {
        name
    };
    if let Some(c) = &config {
        rotate(state, instance, c.max_backups).await?;
    }
    let (target_name, config_id, key, target) = match &config {
        Some(c) if c.kind == "s3" => {
            s3::precheck(state, c).await?;
            let key = object_key(&c.prefix, &instance.id, &bid);
            let target = s3::target(state, c, &key)?;
            ("s3", Some(c.id.clone()), key, target)
        }
        _ => ("local", None, format!("{bid}.tar.zst"), Target::Local),
    };
    // Recorded with the backup: reads and deletes go where it was written.
    let (s3_endpoint, s3_region, s3_bucket) = match &config {
        Some(c) if c.kind == "s3" => (c.endpoint.clone(), c.region.clone(), c.bucket.clone()),
        _ => Default::default(),
    };
    let row = Backup {
        id: bid.clone(),
        instance_id: instance.id.clone(),
        org_id: instance.org_id.clone(),
        name,
        status: "pending".into(),
        target: target_name.into(),
        config_id,
        object_key: key,
        size_bytes: 0,
        sha256: String::new(),
        locked: body.locked,
        ignored: ignored.clone(),
        error: None,
        created_at: now_ms(),
        completed_at: None,
        s3_endpoint,
        s3_region,
        s3_bucket,
    };
    // The plan's cap, with the organization held: concurrent backups of one server queue.
    let mut tx = limits::lock(state, &instance.org_id).await?;
    limits::check(
        &mut tx,
        state,
        &instance.org_id,
        &[Ask::backup_of(&instance.id)],
    )
    .await?;
    store::insert(&mut *tx, &row).await?;
    tx.commit().await?;
    let request = CreateBackup {
        id: bid.clone(),
        ignored,
        target,
    };
    let id = instance.id.as_str();
    let sent = match conn.request::<api::BackupCreate>(&id, &(), &request).await {
        Err(AppError::NotFound(_)) => match sync::push_instance(state, instance).await {
            Ok(()) => conn.request::<api::BackupCreate>(&id, &(), &request).await,
            Err(e) => Err(e),
        },
        other => other,
    };
    if let Err(e) = sent {
        let _ = store::finish(
            &state.db.pool,
            &bid,
            "failed",
            0,
            "",
            Some(&e.to_string()),
            now_ms(),
        )
        .await;
        return Err(e);
    }
    // Its progress and end arrive on the node's event stream (`progress`).
    store::set_running(&state.db.pool, &bid).await?;
    store::find(&state.db.pool, &instance.id, &bid)
        .await?
        .ok_or_else(|| AppError::not_found("backup"))
}

/// Backup `bid` of an instance the caller was authorized on.
async fn backup_for(
    state: &AppState,
    instance: Instance,
    bid: &str,
) -> AppResult<(Instance, Backup)> {
    let backup = store::find(&state.db.pool, &instance.id, bid)
        .await?
        .ok_or_else(|| AppError::not_found("backup"))?;
    Ok((instance, backup))
}

fn completed(b: &Backup) -> AppResult<()> {
    if b.status == "completed" {
        Ok(())
    } else {
        Err(AppError::coded(
            StatusCode::CONFLICT,
            "BACKUP_NOT_COMPLETED",
            format!("the backup is {}", b.status),
        ))
    }
}

/// `GET /v1/instances/{id}/backups/{bid}/download`: the archive, streamed.
pub async fn download(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesBackupsRead>,
    AppPath((_, bid)): AppPath<(String, String)>,
) -> AppResult<Response> {
    let (instance, backup) = backup_for(&state, instance, &bid).await?;
    completed(&backup)?;
    let mut response = if backup.target == "s3" {
        use object_store::ObjectStore;
        let config = config_of(&state, &backup).await?;
        let got = s3::store(&state, &config)
            .await?
            .get(&object_store::path::Path::from(backup.object_key.as_str()))
            .await
            .map_err(|e| AppError::Unavailable(format!("S3 read failed: {e}")))?;
        Body::from_stream(got.into_stream()).into_response()
    } else {
        let conn = connected(&state, &instance.node_id).await?;
        let upstream = conn
            .stream::<api::BackupDownload>(&(instance.id.as_str(), backup.id.as_str()), &())
            .await?;
        Body::new(upstream.into_body()).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zstd"),
    );
    if let Ok(v) = HeaderValue::from_str(&backup.size_bytes.to_string()) {
        headers.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"backup-{}.tar.zst\"",
        backup.id
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// The restore body.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// Empty the server directory first.
    #[serde(default)]
    pub truncate: bool,
}

/// `POST /v1/instances/{id}/backups/{bid}/restore`: stops the server, then the agent
/// verifies the archive's checksum (409 on a mismatch, nothing touched) and extracts it;
/// `backup restore completed` reaches the console when done.
pub async fn restore(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesBackupsRestore>,
    AppPath((_, bid)): AppPath<(String, String)>,
    body: axum::body::Bytes,
) -> AppResult<Accepted<RestoreStarted>> {
    let body: RestoreBody = super::optional_json(&body)?;
    let (instance, backup) = backup_for(&state, instance, &bid).await?;
    completed(&backup)?;
    let conn = connected(&state, &instance.node_id).await?;
    let target = target_of(&state, &backup).await?;
    let status = match act(&state, &instance, PowerAction::Stop).await {
        Ok(s) => Some(s.state),
        Err(AppError::Conflict(_) | AppError::Coded { .. }) => None,
        Err(e) => return Err(e),
    };
    let request = RestoreBackup {
        sha256: backup.sha256.clone(),
        truncate: body.truncate,
        target,
    };
    conn.request::<api::BackupRestore>(&(instance.id.as_str(), backup.id.as_str()), &(), &request)
        .await?;
    let state_now = match status {
        Some(s) => s,
        None => crate::instances::store::find(&state.db.pool, &instance.id)
            .await?
            .map_or(instance.state, |i| i.state),
    };
    Ok(Accepted(RestoreStarted {
        id: backup.id,
        instance_id: instance.id,
        restoring: true,
        truncate: body.truncate,
        state: state_now,
        desired_state: DesiredState::Stopped,
    }))
}

/// The lock body.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockBody {
    /// Omitted: toggle.
    #[serde(default)]
    pub locked: Option<bool>,
}

/// `POST /v1/instances/{id}/backups/{bid}/lock`: locks (or unlocks) a backup.
pub async fn lock(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesBackupsWrite>,
    AppPath((_, bid)): AppPath<(String, String)>,
    body: axum::body::Bytes,
) -> AppResult<AppJson<BackupView>> {
    let body: LockBody = super::optional_json(&body)?;
    let (instance, backup) = backup_for(&state, instance, &bid).await?;
    let locked = body.locked.unwrap_or(!backup.locked);
    store::set_locked(&state.db.pool, &backup.id, locked).await?;
    let row = store::find(&state.db.pool, &instance.id, &backup.id)
        .await?
        .ok_or_else(|| AppError::not_found("backup"))?;
    Ok(AppJson(BackupView::from(&row)))
}

/// `DELETE /v1/instances/{id}/backups/{bid}`: refused while locked or running.
pub async fn delete(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesBackupsWrite>,
    AppPath((_, bid)): AppPath<(String, String)>,
) -> AppResult<StatusCode> {
    let (instance, backup) = backup_for(&state, instance, &bid).await?;
    if backup.locked {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "BACKUP_LOCKED",
            "the backup is locked: unlock it first",
        ));
    }
    if backup.status == "running" || backup.status == "pending" {
        return Err(AppError::Conflict("the backup is still running".into()));
    }
    remove_archive(&state, &instance, &backup).await?;
    store::delete(&state.db.pool, &backup.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
