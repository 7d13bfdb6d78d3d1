//! SQL for `audit_logs`.

use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::db::{new_id, now_ms, ts};
use crate::users::store::escape_like;

/// A row to write.
#[derive(Debug)]
pub struct NewEntry {
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub method: String,
    pub path: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub status: i64,
    pub result: &'static str,
}

/// A stored entry.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow,
)]
pub struct Entry {
    pub id: String,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub method: String,
    pub path: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub status: i64,
    pub result: String,
}

/// Filters of the list and export endpoints.
#[derive(Debug, Default)]
pub struct Filter {
    /// Substring of the action.
    pub action: Option<String>,
    /// Actor id or email.
    pub actor: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Writes one entry; the entry as stored.
///
/// # Errors
/// Database failures.
pub async fn insert(pool: &AnyPool, e: &NewEntry) -> Result<Entry, sqlx::Error> {
    let (id, at) = (new_id(), now_ms());
    sqlx::query(
        "INSERT INTO audit_logs (id, at, actor_id, actor_email, action, method, path, target, ip, status, result) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(at)
    .bind(e.actor_id.as_deref())
    .bind(e.actor_email.as_deref())
    .bind(&e.action)
    .bind(&e.method)
    .bind(&e.path)
    .bind(e.target.as_deref())
    .bind(e.ip.as_deref())
    .bind(e.status)
    .bind(e.result)
    .execute(pool)
    .await?;
    Ok(Entry {
        id,
        at,
        actor_id: e.actor_id.clone(),
        actor_email: e.actor_email.clone(),
        action: e.action.clone(),
        method: e.method.clone(),
        path: e.path.clone(),
        target: e.target.clone(),
        ip: e.ip.clone(),
        status: e.status,
        result: e.result.to_owned(),
    })
}

macro_rules! filter_sql {
    () => {
        "WHERE ($1 IS NULL OR action LIKE $1 ESCAPE '\\') \
     AND ($2 IS NULL OR actor_id = $2 OR actor_email = $2) \
     AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4)"
    };
}

fn action_pattern(f: &Filter) -> Option<String> {
    f.action.as_deref().map(|a| format!("%{}%", escape_like(a)))
}

/// One page of matching entries, newest first, and the total count.
///
/// # Errors
/// Database failures.
pub async fn list(
    pool: &AnyPool,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Entry>, i64), sqlx::Error> {
    let pattern = action_pattern(f);
    let rows: Vec<Entry> = sqlx::query_as(concat!(
        "SELECT id, at, actor_id, actor_email, action, method, path, target, ip, status, result \
         FROM audit_logs ",
        filter_sql!(),
        " ORDER BY at DESC, id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(pattern.as_deref())
    .bind(f.actor.as_deref())
    .bind(f.since_ms)
    .bind(f.until_ms)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(concat!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_logs ",
        filter_sql!()
    ))
    .bind(pattern.as_deref())
    .bind(f.actor.as_deref())
    .bind(f.since_ms)
    .bind(f.until_ms)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}
