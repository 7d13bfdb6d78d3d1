//! The import tables: `pterodactyl_imports` (one job each), `pterodactyl_import_items`
//! (its report, one row per thing read) and `pterodactyl_map` (every object an import
//! made, by Pterodactyl UUID, so a re-run makes nothing twice).

use serde::Serialize;
use sqlx::{AnyExecutor, AnyPool};

use crate::db::row::Flag;

/// One import as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Import {
    pub id: String,
    pub mode: String,
    pub source: String,
    pub status: String,
    #[sqlx(try_from = "Flag")]
    pub dry_run: bool,
    pub options: String,
    pub sealed_secrets: Option<String>,
    pub allowed_hosts: String,
    pub phase: String,
    pub counts: String,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

impl Import {
    /// Whether it ended (its secrets are gone then).
    #[must_use]
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed")
    }
}

/// One line of an import's report.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct Item {
    /// `user`, `egg`, `server`, `subuser`, `schedule` or `files`.
    pub kind: String,
    pub source_uuid: String,
    pub name: String,
    /// `planned`, `imported`, `exists`, `skipped`, `clash` or `failed`.
    pub status: String,
    pub target_id: Option<String>,
    pub message: String,
    #[serde(skip)]
    pub detail: String,
}

const COLUMNS: &str = "id, mode, source, status, dry_run, options, sealed_secrets, allowed_hosts, \
     phase, counts, error, created_by, created_at, updated_at, finished_at";

/// Inserts a new import, leased to `owner` until `until`.
///
/// # Errors
/// Database failures.
pub async fn insert(pool: &AnyPool, i: &Import, owner: &str, until: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pterodactyl_imports (id, mode, source, status, dry_run, options, sealed_secrets, \
         allowed_hosts, phase, counts, error, created_by, lease_owner, lease_until, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
    )
    .bind(&i.id)
    .bind(&i.mode)
    .bind(&i.source)
    .bind(&i.status)
    .bind(i64::from(i.dry_run))
    .bind(&i.options)
    .bind(&i.sealed_secrets)
    .bind(&i.allowed_hosts)
    .bind(&i.phase)
    .bind(&i.counts)
    .bind(&i.error)
    .bind(&i.created_by)
    .bind(owner)
    .bind(until)
    .bind(i.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// One import.
///
/// # Errors
/// Database failures.
pub async fn find(pool: &AnyPool, id: &str) -> sqlx::Result<Option<Import>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM pterodactyl_imports WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The newest imports first.
///
/// # Errors
/// Database failures.
pub async fn list(pool: &AnyPool, limit: i64) -> sqlx::Result<Vec<Import>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM pterodactyl_imports ORDER BY created_at DESC, id DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Writes status, phase, counts and error, renewing `owner`'s lease; `false` when
/// another replica holds the import now.
///
/// # Errors
/// Database failures.
pub async fn save(
    pool: &AnyPool,
    i: &Import,
    owner: &str,
    until: i64,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE pterodactyl_imports SET status = $1, phase = $2, counts = $3, error = $4, \
         updated_at = $5, lease_until = $6, finished_at = $7, sealed_secrets = $8 \
         WHERE id = $9 AND lease_owner = $10",
    )
    .bind(&i.status)
    .bind(&i.phase)
    .bind(&i.counts)
    .bind(&i.error)
    .bind(now)
    .bind(until)
    .bind(i.finished_at)
    .bind(&i.sealed_secrets)
    .bind(&i.id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Unfinished imports whose lease lapsed (their replica died).
///
/// # Errors
/// Database failures.
pub async fn lapsed(pool: &AnyPool, now: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM pterodactyl_imports WHERE status IN ('pending', 'running') \
         AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at LIMIT 8",
    )
    .bind(now)
    .fetch_all(pool)
    .await
}

/// Takes a lapsed import over; `false` when another replica was first.
///
/// # Errors
/// Database failures.
pub async fn take_over(
    pool: &AnyPool,
    id: &str,
    owner: &str,
    now: i64,
    until: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE pterodactyl_imports SET lease_owner = $1, lease_until = $2 \
         WHERE id = $3 AND status IN ('pending', 'running') \
         AND (lease_until IS NULL OR lease_until < $4)",
    )
    .bind(owner)
    .bind(until)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what happened to one thing read (replacing an earlier line for it).
///
/// # Errors
/// Database failures.
pub async fn put_item<'e>(
    db: impl AnyExecutor<'e>,
    import_id: &str,
    item: &Item,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pterodactyl_import_items (import_id, kind, source_uuid, name, status, target_id, \
         message, detail, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (import_id, kind, source_uuid) DO UPDATE SET name = $4, status = $5, \
         target_id = $6, message = $7, detail = $8, updated_at = $9",
    )
    .bind(import_id)
    .bind(&item.kind)
    .bind(&item.source_uuid)
    .bind(&item.name)
    .bind(&item.status)
    .bind(&item.target_id)
    .bind(&item.message)
    .bind(&item.detail)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// An import's report lines, by kind then name.
///
/// # Errors
/// Database failures.
pub async fn items(pool: &AnyPool, import_id: &str) -> sqlx::Result<Vec<Item>> {
    sqlx::query_as(
        "SELECT kind, source_uuid, name, status, target_id, message, detail \
         FROM pterodactyl_import_items WHERE import_id = $1 \
         ORDER BY CASE kind WHEN 'user' THEN 0 WHEN 'egg' THEN 1 WHEN 'server' THEN 2 \
         WHEN 'subuser' THEN 3 WHEN 'schedule' THEN 4 ELSE 5 END, name, source_uuid",
    )
    .bind(import_id)
    .fetch_all(pool)
    .await
}

/// What an earlier import made of `(kind, source_uuid)`.
///
/// # Errors
/// Database failures.
pub async fn mapped<'e>(
    db: impl AnyExecutor<'e>,
    kind: &str,
    source_uuid: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT target_id FROM pterodactyl_map WHERE kind = $1 AND source_uuid = $2")
        .bind(kind)
        .bind(source_uuid)
        .fetch_optional(db)
        .await
}

/// Records that `import_id` made `target_id` of `(kind, source_uuid)`.
///
/// # Errors
/// Database failures.
pub async fn map<'e>(
    db: impl AnyExecutor<'e>,
    kind: &str,
    source_uuid: &str,
    target_id: &str,
    import_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pterodactyl_map (kind, source_uuid, target_id, import_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, source_uuid) DO UPDATE SET target_id = $3",
    )
    .bind(kind)
    .bind(source_uuid)
    .bind(target_id)
    .bind(import_id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}
