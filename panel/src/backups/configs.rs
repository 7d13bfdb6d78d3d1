//! `/v1/backup-config`: an organization's backup storage targets (the node's disk or an
//! S3-compatible bucket), credentials sealed at rest, one active; bucket list/create.
//! Reads need `backup_config.read`, changes `backup_config.write`, in the organization of
//! `?organization_id=` (default: the caller's personal one). An S3 endpoint goes through
//! the outbound guard when saved (422 `OUTBOUND_DENIED`, nothing saved) and when used.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::s3::{self, Credentials};
use super::store::{self, Config};
use crate::auth::extract::CurrentUser;
use crate::authz::{self, Authorized, Permission, perm};
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::respond::Created;
use crate::state::AppState;

const READ: &str = "backup_config.read";
const WRITE: &str = "backup_config.write";
const DEFAULT_PART: i64 = 8 * 1024 * 1024;
const MIN_PART: i64 = 5 * 1024 * 1024;
const MAX_PART: i64 = 512 * 1024 * 1024;

/// A backup target as answered (credentials never leave the panel). The built-in
/// "Node disk" target, answered while none is active, has no `id` (null) and only the
/// fields it has.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigView {
    pub id: Option<String>,
    pub organization_id: String,
    pub name: String,
    /// `local` or `s3`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Multipart upload part size, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<i64>,
    /// Backups kept per instance (0: no limit).
    pub max_backups: i64,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_credentials: Option<bool>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// The configurations of an organization.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigList {
    pub data: Vec<ConfigView>,
}

/// A bucket by name.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Bucket {
    pub name: String,
}

/// The buckets the target's credentials can see.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BucketList {
    pub data: Vec<Bucket>,
}

fn view(c: &Config) -> ConfigView {
    ConfigView {
        id: Some(c.id.clone()),
        organization_id: c.org_id.clone(),
        name: c.name.clone(),
        kind: c.kind.clone(),
        endpoint: Some(c.endpoint.clone()),
        region: Some(c.region.clone()),
        bucket: Some(c.bucket.clone()),
        prefix: Some(c.prefix.clone()),
        part_size: Some(c.part_size),
        max_backups: c.max_backups,
        active: c.active,
        has_credentials: Some(!c.sealed_credentials.is_empty()),
        created_at: Some(rfc3339(c.created_at)),
    }
}

/// The node's disk, the target while none is active.
fn node_disk(org_id: String) -> ConfigView {
    ConfigView {
        id: None,
        organization_id: org_id,
        name: "Node disk".into(),
        kind: "local".into(),
        endpoint: None,
        region: None,
        bucket: None,
        prefix: None,
        part_size: None,
        max_backups: 0,
        active: true,
        has_credentials: None,
        created_at: None,
    }
}

/// Create/update body; on update, omitted fields keep their value.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub organization_id: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub part_size: Option<i64>,
    pub max_backups: Option<i64>,
    pub active: Option<bool>,
}

fn apply(state: &AppState, c: &mut Config, b: Body) -> AppResult<()> {
    if let Some(v) = b.name {
        c.name = v.trim().to_string();
    }
    if let Some(v) = b.kind {
        c.kind = v;
    }
    if let Some(v) = b.endpoint {
        c.endpoint = v.trim().trim_end_matches('/').to_string();
    }
    if let Some(v) = b.region {
        c.region = v.trim().to_string();
    }
    if let Some(v) = b.bucket {
        c.bucket = v.trim().to_string();
    }
    if let Some(v) = b.prefix {
        c.prefix = v.trim().trim_matches('/').to_string();
    }
    if let Some(v) = b.part_size {
        c.part_size = v;
    }
    if let Some(v) = b.max_backups {
        c.max_backups = v;
    }
    if b.access_key_id.is_some() || b.secret_access_key.is_some() {
        let old = s3::credentials(state, c).unwrap_or_default();
        let creds = Credentials {
            access_key_id: b.access_key_id.unwrap_or(old.access_key_id),
            secret_access_key: b.secret_access_key.unwrap_or(old.secret_access_key),
        };
        c.sealed_credentials = s3::seal(state, &creds);
    }
    if c.name.is_empty() || c.name.chars().count() > 100 {
        return Err(AppError::Validation(
            "name must be 1 to 100 characters".into(),
        ));
    }
    if c.kind != "local" && c.kind != "s3" {
        return Err(AppError::Validation("kind must be local or s3".into()));
    }
    if !(MIN_PART..=MAX_PART).contains(&c.part_size) {
        return Err(AppError::Validation(
            "part_size must be between 5 MiB and 512 MiB (in bytes)".into(),
        ));
    }
    if !(0..=10_000).contains(&c.max_backups) {
        return Err(AppError::Validation(
            "max_backups must be 0 to 10000".into(),
        ));
    }
    if c.kind == "s3" {
        if !s3::valid_bucket(&c.bucket) {
            return Err(AppError::Validation(
                "bucket is not a valid S3 bucket name".into(),
            ));
        }
        let scheme_ok = c.endpoint.starts_with("http://") || c.endpoint.starts_with("https://");
        if !(c.endpoint.is_empty() || scheme_ok) {
            return Err(AppError::Validation(
                "endpoint must be an http(s) URL".into(),
            ));
        }
        if c.region.len() > 64
            || !c
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(AppError::Validation(
                "region must be lowercase letters, digits and '-'".into(),
            ));
        }
        if c.sealed_credentials.is_empty() {
            return Err(AppError::Validation(
                "access_key_id and secret_access_key are required".into(),
            ));
        }
    }
    Ok(())
}

/// A config again after it was written.
async fn reload(state: &AppState, id: &str) -> AppResult<Config> {
    store::find_config(&state.db.pool, id)
        .await?
        .ok_or_else(|| AppError::not_found("backup config"))
}

/// `GET /v1/backup-config`: the active target (the node's disk when none is set).
pub async fn active(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<OrgQuery>,
) -> AppResult<AppJson<ConfigView>> {
    let m = scoped(&state, &user, q.organization_id.as_deref(), READ).await?;
    Ok(AppJson(
        match store::active_config(&state.db.pool, &m.org_id).await? {
            Some(c) => view(&c),
            None => node_disk(m.org_id),
        },
    ))
}

/// `GET /v1/backup-config/list`.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<OrgQuery>,
) -> AppResult<AppJson<ConfigList>> {
    let m = scoped(&state, &user, q.organization_id.as_deref(), READ).await?;
    let list = store::list_configs(&state.db.pool, &m.org_id).await?;
    Ok(AppJson(ConfigList {
        data: list.iter().map(view).collect(),
    }))
}

/// `POST /v1/backup-config`.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<Body>,
) -> AppResult<Created<ConfigView>> {
    let m = scoped(&state, &user, body.organization_id.as_deref(), WRITE).await?;
    let mut config = Config {
        id: new_id(),
        org_id: m.org_id.clone(),
        name: String::new(),
        kind: "s3".into(),
        endpoint: String::new(),
        region: String::new(),
        bucket: String::new(),
        prefix: String::new(),
        sealed_credentials: String::new(),
        part_size: DEFAULT_PART,
        max_backups: 0,
        active: false,
        created_at: now_ms(),
    };
    let activate = body.active;
    apply(&state, &mut config, body)?;
    s3::precheck(&state, &config).await?;
    store::save_config(&state.db.pool, &config).await?;
    let none_active = store::active_config(&state.db.pool, &m.org_id)
        .await?
        .is_none();
    if activate.unwrap_or(none_active) {
        store::activate(&state.db.pool, &m.org_id, &config.id).await?;
    }
    let config = reload(&state, &config.id).await?;
    Ok(Created(view(&config)))
}

/// `GET /v1/backup-config/{id}`.
pub async fn get(
    Authorized {
        resource: config, ..
    }: Authorized<Config, perm::BackupConfigRead>,
) -> AppResult<AppJson<ConfigView>> {
    Ok(AppJson(view(&config)))
}

/// `PUT /v1/backup-config/{id}`.
pub async fn update(
    State(state): State<AppState>,
    Authorized {
        resource: mut config,
        ..
    }: Authorized<Config, perm::BackupConfigWrite>,
    AppJson(body): AppJson<Body>,
) -> AppResult<AppJson<ConfigView>> {
    let activate = body.active;
    apply(&state, &mut config, body)?;
    s3::precheck(&state, &config).await?;
    store::save_config(&state.db.pool, &config).await?;
    if activate == Some(true) {
        store::activate(&state.db.pool, &config.org_id, &config.id).await?;
    }
    Ok(AppJson(view(&reload(&state, &config.id).await?)))
}

/// `DELETE /v1/backup-config/{id}`: refused while backups are stored through it.
pub async fn delete(
    State(state): State<AppState>,
    Authorized {
        resource: config, ..
    }: Authorized<Config, perm::BackupConfigWrite>,
) -> AppResult<StatusCode> {
    let used: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM backups WHERE config_id = $1 \
         AND status <> 'failed'",
    )
    .bind(&config.id)
    .fetch_one(&state.db.pool)
    .await?;
    if used > 0 {
        return Err(AppError::Conflict(format!(
            "{used} backups are stored through this configuration: delete them first"
        )));
    }
    store::delete_config(&state.db.pool, &config.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/backup-config/{id}/activate`.
pub async fn activate(
    State(state): State<AppState>,
    Authorized {
        resource: config, ..
    }: Authorized<Config, perm::BackupConfigWrite>,
) -> AppResult<AppJson<ConfigView>> {
    store::activate(&state.db.pool, &config.org_id, &config.id).await?;
    Ok(AppJson(view(&reload(&state, &config.id).await?)))
}

/// `?config_id=` (default: the active config) for the bucket routes.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct BucketQuery {
    pub organization_id: Option<String>,
    pub config_id: Option<String>,
}

/// The S3 config named in the request (checked for `P`), else the organization's active
/// one.
async fn s3_config<P: Permission>(
    state: &AppState,
    user: &CurrentUser,
    org: Option<&str>,
    config_id: Option<&str>,
) -> AppResult<Config> {
    let config = match config_id {
        Some(id) => authz::load::<Config, P>(state, &user.user, id).await?.0,
        None => {
            let m = scoped(state, user, org, P::KEY).await?;
            store::active_config(&state.db.pool, &m.org_id)
                .await?
                .ok_or_else(|| AppError::not_found("active backup config"))?
        }
    };
    if config.kind != "s3" {
        return Err(AppError::Validation(
            "the backup config is not an S3 target".into(),
        ));
    }
    Ok(config)
}

/// `GET /v1/backup-config/s3-buckets`.
pub async fn buckets(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<BucketQuery>,
) -> AppResult<AppJson<BucketList>> {
    let config = s3_config::<perm::BackupConfigRead>(
        &state,
        &user,
        q.organization_id.as_deref(),
        q.config_id.as_deref(),
    )
    .await?;
    let names = s3::list_buckets(&state, &config).await?;
    Ok(AppJson(BucketList {
        data: names.into_iter().map(|name| Bucket { name }).collect(),
    }))
}

/// The create-bucket body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBucket {
    /// Checked after authorization, so a caller without the permission learns nothing.
    #[serde(default)]
    pub name: Option<String>,
    pub config_id: Option<String>,
    pub organization_id: Option<String>,
}

/// `POST /v1/backup-config/s3-buckets`.
pub async fn create_bucket(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<CreateBucket>,
) -> AppResult<Created<Bucket>> {
    let config = s3_config::<perm::BackupConfigWrite>(
        &state,
        &user,
        body.organization_id.as_deref(),
        body.config_id.as_deref(),
    )
    .await?;
    let name = body.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(AppError::Validation("name is required".into()));
    }
    s3::create_bucket(&state, &config, name).await?;
    Ok(Created(Bucket {
        name: name.to_string(),
    }))
}
