//! SQL for `backups` and `backup_configs`; the only place their rows are mapped.

use sqlx::AnyExecutor;

use crate::db::row::Flag;

/// A stored backup.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Backup {
    pub id: String,
    pub instance_id: String,
    pub org_id: String,
    pub name: String,
    pub status: String,
    pub target: String,
    pub config_id: Option<String>,
    pub object_key: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[sqlx(try_from = "Flag")]
    pub locked: bool,
    pub ignored: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    /// Where an S3 backup was written (endpoint as configured then, empty for AWS's
    /// default; region; bucket): it is read and deleted there, whatever the config says
    /// now. Empty for local backups.
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_bucket: String,
}

macro_rules! backup_columns {
    () => {
        "id, instance_id, org_id, name, status, target, config_id, object_key, size_bytes, \
         sha256, locked, ignored, error, created_at, completed_at, s3_endpoint, s3_region, \
         s3_bucket"
    };
}

/// Inserts a backup row.
///
/// # Errors
/// Database failure.
pub async fn insert(db: impl AnyExecutor<'_>, b: &Backup) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO backups (id, instance_id, org_id, name, status, target, config_id, \
         object_key, size_bytes, sha256, locked, ignored, error, created_at, completed_at, \
         s3_endpoint, s3_region, s3_bucket) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&b.id)
    .bind(&b.instance_id)
    .bind(&b.org_id)
    .bind(&b.name)
    .bind(&b.status)
    .bind(&b.target)
    .bind(&b.config_id)
    .bind(&b.object_key)
    .bind(b.size_bytes)
    .bind(&b.sha256)
    .bind(i64::from(b.locked))
    .bind(&b.ignored)
    .bind(&b.error)
    .bind(b.created_at)
    .bind(b.completed_at)
    .bind(&b.s3_endpoint)
    .bind(&b.s3_region)
    .bind(&b.s3_bucket)
    .execute(db)
    .await?;
    Ok(())
}

/// The backups of an instance, newest first.
///
/// # Errors
/// Database failure.
pub async fn list(db: impl AnyExecutor<'_>, instance_id: &str) -> Result<Vec<Backup>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        backup_columns!(),
        " FROM backups WHERE instance_id = $1 \
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(instance_id)
    .fetch_all(db)
    .await
}

/// One backup of an instance.
///
/// # Errors
/// Database failure.
pub async fn find(
    db: impl AnyExecutor<'_>,
    instance_id: &str,
    id: &str,
) -> Result<Option<Backup>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        backup_columns!(),
        " FROM backups WHERE instance_id = $1 AND id = $2"
    ))
    .bind(instance_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The backups of `node_id`'s instances that are `running`, or `pending` since before
/// `pending_before` (ms).
///
/// # Errors
/// Database failure.
pub async fn unfinished_on_node(
    db: impl AnyExecutor<'_>,
    node_id: &str,
    pending_before: i64,
) -> Result<Vec<Backup>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        backup_columns!(),
        " FROM backups WHERE instance_id IN (SELECT id FROM instances WHERE node_id = $1) \
         AND (status = 'running' OR (status = 'pending' AND created_at < $2))"
    ))
    .bind(node_id)
    .bind(pending_before)
    .fetch_all(db)
    .await
}

/// Records the end of a running backup (a no-op when it is no longer running).
///
/// # Errors
/// Database failure.
pub async fn finish(
    db: impl AnyExecutor<'_>,
    id: &str,
    status: &str,
    size_bytes: i64,
    sha256: &str,
    error: Option<&str>,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE backups SET status = $2, size_bytes = $3, sha256 = $4, error = $5, \
         completed_at = $6 WHERE id = $1 AND status IN ('pending', 'running')",
    )
    .bind(id)
    .bind(status)
    .bind(size_bytes)
    .bind(sha256)
    .bind(error)
    .bind(at)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Marks a pending backup running.
///
/// # Errors
/// Database failure.
pub async fn set_running(db: impl AnyExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backups SET status = 'running' WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Locks or unlocks a backup.
///
/// # Errors
/// Database failure.
pub async fn set_locked(
    db: impl AnyExecutor<'_>,
    id: &str,
    locked: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backups SET locked = $2 WHERE id = $1")
        .bind(id)
        .bind(i64::from(locked))
        .execute(db)
        .await?;
    Ok(())
}

/// Forgets the local backups of an instance (they stayed on a node it left).
///
/// # Errors
/// Database failure.
pub async fn delete_local_of(
    db: impl AnyExecutor<'_>,
    instance_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM backups WHERE instance_id = $1 AND target = 'local'")
        .bind(instance_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Deletes a backup row.
///
/// # Errors
/// Database failure.
pub async fn delete(db: impl AnyExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM backups WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// A storage target of an organization.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Config {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub kind: String,
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub sealed_credentials: String,
    pub part_size: i64,
    pub max_backups: i64,
    #[sqlx(try_from = "Flag")]
    pub active: bool,
    pub created_at: i64,
}

macro_rules! config_columns {
    () => {
        "id, org_id, name, kind, endpoint, region, bucket, prefix, sealed_credentials, \
         part_size, max_backups, active, created_at"
    };
}

/// Inserts or replaces (by id) a config.
///
/// # Errors
/// Database failure.
pub async fn save_config(db: impl AnyExecutor<'_>, c: &Config) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO backup_configs (id, org_id, name, kind, endpoint, region, bucket, prefix, \
         sealed_credentials, part_size, max_backups, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (id) DO UPDATE SET name = $3, kind = $4, endpoint = $5, region = $6, \
         bucket = $7, prefix = $8, sealed_credentials = $9, part_size = $10, \
         max_backups = $11",
    )
    .bind(&c.id)
    .bind(&c.org_id)
    .bind(&c.name)
    .bind(&c.kind)
    .bind(&c.endpoint)
    .bind(&c.region)
    .bind(&c.bucket)
    .bind(&c.prefix)
    .bind(&c.sealed_credentials)
    .bind(c.part_size)
    .bind(c.max_backups)
    .bind(i64::from(c.active))
    .bind(c.created_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The configs of an organization, oldest first.
///
/// # Errors
/// Database failure.
pub async fn list_configs(
    db: impl AnyExecutor<'_>,
    org_id: &str,
) -> Result<Vec<Config>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        config_columns!(),
        " FROM backup_configs WHERE org_id = $1 ORDER BY created_at, id"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// One config by id, unchecked: for a backup's own config and re-reads after a write;
/// routes reach configs through [`crate::authz`].
///
/// # Errors
/// Database failure.
pub(super) async fn find_config(
    db: impl AnyExecutor<'_>,
    id: &str,
) -> Result<Option<Config>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        config_columns!(),
        " FROM backup_configs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The active config of an organization.
///
/// # Errors
/// Database failure.
pub async fn active_config(
    db: impl AnyExecutor<'_>,
    org_id: &str,
) -> Result<Option<Config>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        config_columns!(),
        " FROM backup_configs WHERE org_id = $1 AND active = 1 LIMIT 1"
    ))
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// Makes `id` the only active config of its organization.
///
/// # Errors
/// Database failure.
pub async fn activate(pool: &sqlx::AnyPool, org_id: &str, id: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE backup_configs SET active = 0 WHERE org_id = $1")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE backup_configs SET active = 1 WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Deletes a config.
///
/// # Errors
/// Database failure.
pub async fn delete_config(db: impl AnyExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM backup_configs WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

impl crate::authz::OrgScoped for Config {
    const NAME: &'static str = "backup config";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find_config(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}
