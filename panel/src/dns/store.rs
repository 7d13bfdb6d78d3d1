//! SQL of `dns_records` and `dns_auto_configs`; the only place their rows are mapped.

use sqlx::{AnyExecutor, AnyPool};

use crate::db::row::Flag;

/// A record set the panel made (see the migration `0036_dns.sql`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Record {
    pub id: String,
    pub org_id: String,
    pub credential_id: String,
    pub zone_id: String,
    pub zone_name: String,
    pub record_type: String,
    pub name: String,
    /// One value per line (a set of several values keeps them sorted).
    pub content: String,
    pub ttl: i64,
    pub node_id: Option<String>,
    pub instance_id: Option<String>,
    pub origin: String,
    pub status: String,
    pub last_error: Option<String>,
    pub checked_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record {
    /// The record as a provider record set.
    #[must_use]
    pub fn set(&self) -> super::RecordSet {
        super::RecordSet {
            name: self.name.clone(),
            record_type: self.record_type.clone(),
            ttl: u32::try_from(self.ttl).unwrap_or(super::names::TTL_DEFAULT),
            contents: self.content.lines().map(str::to_owned).collect(),
        }
        .normalized()
    }
}

macro_rules! columns {
    () => {
        "id, org_id, credential_id, zone_id, zone_name, record_type, name, content, ttl, \
         node_id, instance_id, origin, status, last_error, checked_at, created_by, created_at, \
         updated_at"
    };
}

/// Stores a new record.
///
/// # Errors
/// Database failures (a second row for the same set breaks `dns_records_rrset`).
pub async fn insert<'e>(db: impl AnyExecutor<'e>, r: &Record) -> sqlx::Result<()> {
    sqlx::query(concat!(
        "INSERT INTO dns_records (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    ))
    .bind(&r.id)
    .bind(&r.org_id)
    .bind(&r.credential_id)
    .bind(&r.zone_id)
    .bind(&r.zone_name)
    .bind(&r.record_type)
    .bind(&r.name)
    .bind(&r.content)
    .bind(r.ttl)
    .bind(&r.node_id)
    .bind(&r.instance_id)
    .bind(&r.origin)
    .bind(&r.status)
    .bind(&r.last_error)
    .bind(r.checked_at)
    .bind(&r.created_by)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Saves a record's name, content, TTL, node, status and error.
///
/// # Errors
/// Database failures.
pub async fn update<'e>(db: impl AnyExecutor<'e>, r: &Record) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE dns_records SET name = $1, content = $2, ttl = $3, node_id = $4, status = $5, \
         last_error = $6, checked_at = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(&r.name)
    .bind(&r.content)
    .bind(r.ttl)
    .bind(&r.node_id)
    .bind(&r.status)
    .bind(&r.last_error)
    .bind(r.checked_at)
    .bind(r.updated_at)
    .bind(&r.id)
    .execute(db)
    .await?;
    Ok(())
}

/// Sets a record's status and error (and when it was checked).
///
/// # Errors
/// Database failures.
pub async fn set_status<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    status: &str,
    error: Option<&str>,
    at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE dns_records SET status = $1, last_error = $2, checked_at = $3 WHERE id = $4",
    )
    .bind(status)
    .bind(error)
    .bind(at)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets a record.
///
/// # Errors
/// Database failures.
pub async fn delete<'e>(db: impl AnyExecutor<'e>, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM dns_records WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The record `id` of organization `org_id`.
///
/// # Errors
/// Database failures.
pub async fn find(pool: &AnyPool, org_id: &str, id: &str) -> sqlx::Result<Option<Record>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dns_records WHERE id = $1 AND org_id = $2"
    ))
    .bind(id)
    .bind(org_id)
    .fetch_optional(pool)
    .await
}

/// The record `id`, whichever organization's.
///
/// # Errors
/// Database failures.
pub async fn find_any(pool: &AnyPool, id: &str) -> sqlx::Result<Option<Record>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dns_records WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The record of a set, whoever made it.
///
/// # Errors
/// Database failures.
pub async fn find_set(
    pool: &AnyPool,
    credential_id: &str,
    zone_id: &str,
    name: &str,
    record_type: &str,
) -> sqlx::Result<Option<Record>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dns_records WHERE credential_id = $1 AND zone_id = $2 AND name = $3 \
         AND record_type = $4"
    ))
    .bind(credential_id)
    .bind(zone_id)
    .bind(name)
    .bind(record_type)
    .fetch_optional(pool)
    .await
}

/// What a record list is narrowed to.
#[derive(Debug, Default, Clone)]
pub struct Filter<'a> {
    pub credential_id: Option<&'a str>,
    pub zone_id: Option<&'a str>,
    pub instance_id: Option<&'a str>,
    pub node_id: Option<&'a str>,
}

/// Most records a list answers.
pub const LIST_LIMIT: i64 = 5000;

/// An organization's records, by zone then name then type.
///
/// # Errors
/// Database failures.
pub async fn list(pool: &AnyPool, org_id: &str, f: &Filter<'_>) -> sqlx::Result<Vec<Record>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dns_records WHERE org_id = $1 \
         AND ($2 IS NULL OR credential_id = $2) AND ($3 IS NULL OR zone_id = $3) \
         AND ($4 IS NULL OR instance_id = $4) AND ($5 IS NULL OR node_id = $5) \
         ORDER BY zone_name, name, record_type LIMIT $6"
    ))
    .bind(org_id)
    .bind(f.credential_id)
    .bind(f.zone_id)
    .bind(f.instance_id)
    .bind(f.node_id)
    .bind(LIST_LIMIT)
    .fetch_all(pool)
    .await
}

/// The records auto-DNS made for server `instance_id`.
///
/// # Errors
/// Database failures.
pub async fn of_instance(pool: &AnyPool, instance_id: &str) -> sqlx::Result<Vec<Record>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dns_records WHERE instance_id = $1 ORDER BY name, record_type"
    ))
    .bind(instance_id)
    .fetch_all(pool)
    .await
}

/// The records that follow node `node_id`'s addresses.
///
/// # Errors
/// Database failures.
pub async fn of_node(pool: &AnyPool, node_id: &str) -> sqlx::Result<Vec<Record>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dns_records WHERE node_id = $1 ORDER BY name, record_type"
    ))
    .bind(node_id)
    .fetch_all(pool)
    .await
}

/// Every record of one zone of one credential.
///
/// # Errors
/// Database failures.
pub async fn of_zone(
    pool: &AnyPool,
    credential_id: &str,
    zone_id: &str,
) -> sqlx::Result<Vec<Record>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dns_records WHERE credential_id = $1 AND zone_id = $2"
    ))
    .bind(credential_id)
    .bind(zone_id)
    .fetch_all(pool)
    .await
}

/// The zones records are kept in: `(credential_id, zone_id, zone_name)`.
///
/// # Errors
/// Database failures.
pub async fn zones(pool: &AnyPool) -> sqlx::Result<Vec<(String, String, String)>> {
    sqlx::query_as(
        "SELECT credential_id, zone_id, MIN(zone_name) FROM dns_records \
         GROUP BY credential_id, zone_id ORDER BY credential_id, zone_id",
    )
    .fetch_all(pool)
    .await
}

/// Whether another server's auto record already uses `name` in a zone.
///
/// # Errors
/// Database failures.
pub async fn name_taken(
    pool: &AnyPool,
    credential_id: &str,
    zone_id: &str,
    name: &str,
    except_instance: &str,
) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM dns_records WHERE credential_id = $1 AND zone_id = $2 \
         AND name = $3 AND (instance_id IS NULL OR instance_id <> $4)",
    )
    .bind(credential_id)
    .bind(zone_id)
    .bind(name)
    .bind(except_instance)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// An organization's auto-DNS settings.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AutoConfig {
    pub org_id: String,
    #[sqlx(try_from = "Flag")]
    pub enabled: bool,
    pub credential_id: Option<String>,
    pub zone_id: Option<String>,
    pub zone_name: Option<String>,
    pub name_pattern: String,
    /// JSON array of types.
    pub record_types: String,
    pub ttl: i64,
    pub updated_at: i64,
}

/// The auto-DNS settings of `org_id`, if saved.
///
/// # Errors
/// Database failures.
pub async fn auto_config<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
) -> sqlx::Result<Option<AutoConfig>> {
    sqlx::query_as(
        "SELECT org_id, enabled, credential_id, zone_id, zone_name, name_pattern, record_types, \
         ttl, updated_at FROM dns_auto_configs WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// Saves an organization's auto-DNS settings.
///
/// # Errors
/// Database failures.
pub async fn save_auto_config(pool: &AnyPool, c: &AutoConfig) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO dns_auto_configs (org_id, enabled, credential_id, zone_id, zone_name, \
         name_pattern, record_types, ttl, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (org_id) DO UPDATE SET enabled = $2, credential_id = $3, zone_id = $4, \
         zone_name = $5, name_pattern = $6, record_types = $7, ttl = $8, updated_at = $9",
    )
    .bind(&c.org_id)
    .bind(i64::from(c.enabled))
    .bind(&c.credential_id)
    .bind(&c.zone_id)
    .bind(&c.zone_name)
    .bind(&c.name_pattern)
    .bind(&c.record_types)
    .bind(c.ttl)
    .bind(c.updated_at)
    .execute(pool)
    .await?;
    Ok(())
}
