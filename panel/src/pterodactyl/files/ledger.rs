//! The copy's memory (`pterodactyl_files`): per imported server and path, what the source
//! was when it was read (size, mtime, mode) and the SHA-256 of the bytes sent. A re-run
//! trusts a row only while both the source entry and the target's checksum still match
//! it, so a stale row costs a resend, never a wrong file.

use std::collections::BTreeMap;

use sqlx::AnyPool;

/// One path the copy sent (or found already there and checked).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Row {
    pub path: String,
    #[sqlx(try_from = "crate::db::row::Flag")]
    pub is_dir: bool,
    pub size: i64,
    pub mtime: i64,
    pub mode: i64,
    /// Hex SHA-256 of a file's bytes as sent; empty for a directory.
    pub sha256: String,
}

/// Every row of `instance_id`, by path.
///
/// # Errors
/// A database failure.
pub async fn load(pool: &AnyPool, instance_id: &str) -> sqlx::Result<BTreeMap<String, Row>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT path, is_dir, size, mtime, mode, sha256 FROM pterodactyl_files \
         WHERE instance_id = $1",
    )
    .bind(instance_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.path.clone(), r)).collect())
}

const UPSERT: &str = "INSERT INTO pterodactyl_files \
     (instance_id, path, is_dir, size, mtime, mode, sha256, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (instance_id, path) DO UPDATE SET is_dir = excluded.is_dir, \
     size = excluded.size, mtime = excluded.mtime, mode = excluded.mode, \
     sha256 = excluded.sha256, updated_at = excluded.updated_at";

/// Records (or replaces) the row of `row.path`.
///
/// # Errors
/// A database failure.
pub async fn put(pool: &AnyPool, instance_id: &str, row: &Row, now: i64) -> sqlx::Result<()> {
    put_many(pool, instance_id, std::slice::from_ref(row), now).await
}

/// Records (or replaces) `rows`, in one transaction.
///
/// # Errors
/// A database failure.
pub async fn put_many(
    pool: &AnyPool,
    instance_id: &str,
    rows: &[Row],
    now: i64,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    for row in rows {
        sqlx::query(UPSERT)
            .bind(instance_id)
            .bind(&row.path)
            .bind(i64::from(row.is_dir))
            .bind(row.size)
            .bind(row.mtime)
            .bind(row.mode)
            .bind(&row.sha256)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Forgets the rows of `paths`.
///
/// # Errors
/// A database failure.
pub async fn forget(pool: &AnyPool, instance_id: &str, paths: &[String]) -> sqlx::Result<()> {
    for path in paths {
        sqlx::query("DELETE FROM pterodactyl_files WHERE instance_id = $1 AND path = $2")
            .bind(instance_id)
            .bind(path)
            .execute(pool)
            .await?;
    }
    Ok(())
}
