//! SQL for `instance_git` and `git_syncs`; the only place their rows are mapped.

use sqlx::AnyExecutor;

use crate::db::row::Flag;

/// The git settings of one instance. The secrets stay sealed here.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GitConfig {
    pub instance_id: String,
    pub org_id: String,
    pub repo_url: String,
    /// [`shardlyn_proto::git::repo_key`] of `repo_url`, for matching pushes.
    pub repo_key: String,
    pub branch: String,
    pub target_dir: String,
    pub sealed_deploy_key: Option<String>,
    pub deploy_key_fingerprint: Option<String>,
    pub sealed_token: Option<String>,
    pub token_username: Option<String>,
    #[sqlx(try_from = "Flag")]
    pub restart_after_sync: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One sync of the history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GitSync {
    pub id: String,
    pub instance_id: String,
    pub org_id: String,
    /// `manual` or `webhook`.
    #[sqlx(rename = "trigger_kind")]
    pub trigger: String,
    /// The user id (manual) or the webhook delivery id.
    pub triggered_by: Option<String>,
    /// `running`, `success` or `failed`.
    pub status: String,
    pub repo_url: String,
    pub branch: String,
    pub commit_sha: Option<String>,
    pub commit_message: Option<String>,
    pub files: i64,
    pub removed: i64,
    #[sqlx(try_from = "Flag")]
    pub restarted: bool,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

macro_rules! config_columns {
    () => {
        "instance_id, org_id, repo_url, repo_key, branch, target_dir, sealed_deploy_key, \
         deploy_key_fingerprint, sealed_token, token_username, restart_after_sync, \
         created_at, updated_at"
    };
}

macro_rules! sync_columns {
    () => {
        "id, instance_id, org_id, trigger_kind, triggered_by, status, repo_url, branch, \
         commit_sha, commit_message, files, removed, restarted, error, started_at, finished_at"
    };
}

/// The git settings of an instance.
///
/// # Errors
/// Database failure.
pub async fn find(
    db: impl AnyExecutor<'_>,
    instance_id: &str,
) -> Result<Option<GitConfig>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        config_columns!(),
        " FROM instance_git WHERE instance_id = $1"
    ))
    .bind(instance_id)
    .fetch_optional(db)
    .await
}

/// The settings of an organization's instances that deploy `branch` of a repository
/// whose key is one of `keys`.
///
/// # Errors
/// Database failure.
pub async fn matching(
    db: impl AnyExecutor<'_>,
    org_id: &str,
    keys: &[String],
    branch: &str,
) -> Result<Vec<GitConfig>, sqlx::Error> {
    let rows: Vec<GitConfig> = sqlx::query_as(concat!(
        "SELECT ",
        config_columns!(),
        " FROM instance_git WHERE org_id = $1 AND branch = $2 \
         ORDER BY instance_id"
    ))
    .bind(org_id)
    .bind(branch)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|c| keys.contains(&c.repo_key))
        .collect())
}

/// Creates or replaces the settings of an instance.
///
/// # Errors
/// Database failure.
pub async fn save(db: impl AnyExecutor<'_>, c: &GitConfig) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instance_git (instance_id, org_id, repo_url, repo_key, branch, target_dir, \
         sealed_deploy_key, deploy_key_fingerprint, sealed_token, token_username, \
         restart_after_sync, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (instance_id) DO UPDATE SET repo_url = $3, repo_key = $4, branch = $5, \
         target_dir = $6, sealed_deploy_key = $7, deploy_key_fingerprint = $8, \
         sealed_token = $9, token_username = $10, restart_after_sync = $11, updated_at = $13",
    )
    .bind(&c.instance_id)
    .bind(&c.org_id)
    .bind(&c.repo_url)
    .bind(&c.repo_key)
    .bind(&c.branch)
    .bind(&c.target_dir)
    .bind(&c.sealed_deploy_key)
    .bind(&c.deploy_key_fingerprint)
    .bind(&c.sealed_token)
    .bind(&c.token_username)
    .bind(i64::from(c.restart_after_sync))
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(db)
    .await
    .map(|_| ())
}

/// Removes the settings of an instance; false when there were none.
///
/// # Errors
/// Database failure.
pub async fn delete(db: impl AnyExecutor<'_>, instance_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM instance_git WHERE instance_id = $1")
        .bind(instance_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Records a sync as `running`. Fails with a unique violation when one already runs.
///
/// # Errors
/// Database failure.
pub async fn insert_sync(db: impl AnyExecutor<'_>, s: &GitSync) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO git_syncs (",
        sync_columns!(),
        ") \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&s.id)
    .bind(&s.instance_id)
    .bind(&s.org_id)
    .bind(&s.trigger)
    .bind(&s.triggered_by)
    .bind(&s.status)
    .bind(&s.repo_url)
    .bind(&s.branch)
    .bind(&s.commit_sha)
    .bind(&s.commit_message)
    .bind(s.files)
    .bind(s.removed)
    .bind(i64::from(s.restarted))
    .bind(&s.error)
    .bind(s.started_at)
    .bind(s.finished_at)
    .execute(db)
    .await
    .map(|_| ())
}

/// How a running sync ended.
#[derive(Debug, Default)]
pub struct Outcome<'a> {
    pub status: &'a str,
    pub commit_sha: Option<&'a str>,
    pub commit_message: Option<&'a str>,
    pub files: i64,
    pub removed: i64,
    pub restarted: bool,
    pub error: Option<&'a str>,
}

/// Records the end of a running sync; false when it was not running any more.
///
/// # Errors
/// Database failure.
pub async fn finish_sync(
    db: impl AnyExecutor<'_>,
    id: &str,
    o: &Outcome<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE git_syncs SET status = $2, commit_sha = $3, commit_message = $4, files = $5, \
         removed = $6, restarted = $7, error = $8, finished_at = $9 \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(o.status)
    .bind(o.commit_sha)
    .bind(o.commit_message)
    .bind(o.files)
    .bind(o.removed)
    .bind(i64::from(o.restarted))
    .bind(o.error)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Marks syncs of an instance still `running` since before `before` as failed (their
/// panel task died, e.g. with a restart).
///
/// # Errors
/// Database failure.
pub async fn fail_stale(
    db: impl AnyExecutor<'_>,
    instance_id: &str,
    before: i64,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE git_syncs SET status = 'failed', finished_at = $3, \
         error = 'interrupted: the panel lost track of this sync' \
         WHERE instance_id = $1 AND status = 'running' AND started_at < $2",
    )
    .bind(instance_id)
    .bind(before)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// One sync of an instance.
///
/// # Errors
/// Database failure.
pub async fn find_sync(
    db: impl AnyExecutor<'_>,
    instance_id: &str,
    id: &str,
) -> Result<Option<GitSync>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        sync_columns!(),
        " FROM git_syncs WHERE instance_id = $1 AND id = $2"
    ))
    .bind(instance_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The newest syncs of an instance first, one page.
///
/// # Errors
/// Database failure.
pub async fn history(
    db: impl AnyExecutor<'_>,
    instance_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<GitSync>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        sync_columns!(),
        " FROM git_syncs WHERE instance_id = $1 \
         ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(instance_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// How many syncs an instance has.
///
/// # Errors
/// Database failure.
pub async fn count(db: impl AnyExecutor<'_>, instance_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM git_syncs WHERE instance_id = $1")
        .bind(instance_id)
        .fetch_one(db)
        .await
}

/// The newest sync of an instance, and its newest successful one.
///
/// # Errors
/// Database failure.
pub async fn latest(
    db: impl AnyExecutor<'_> + Copy,
    instance_id: &str,
) -> Result<(Option<GitSync>, Option<GitSync>), sqlx::Error> {
    let last = history(db, instance_id, 1, 0).await?.into_iter().next();
    let ok = sqlx::query_as(concat!(
        "SELECT ",
        sync_columns!(),
        " FROM git_syncs WHERE instance_id = $1 AND status = 'success' \
         ORDER BY started_at DESC, id DESC LIMIT 1"
    ))
    .bind(instance_id)
    .fetch_optional(db)
    .await?;
    Ok((last, ok))
}
