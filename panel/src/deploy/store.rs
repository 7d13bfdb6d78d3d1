//! SQL of the `deployments` table; the only place a deployment row is mapped.
//!
//! A deployment is run by the replica holding its lease (`lease_owner`, `lease_until`,
//! on the panel's clock): the replica that accepted it first, then any replica that
//! finds the lease lapsed (its runner died) and takes it over with a conditional UPDATE.

use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::db::row::Flag;

/// A deployment as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Deployment {
    pub id: String,
    pub org_id: String,
    pub template: String,
    pub name: String,
    /// The JSON object of variables asked for.
    pub variables: String,
    pub node_id: Option<String>,
    pub subdomain: Option<String>,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// The JSON list of [`Step`]s.
    pub steps: String,
    pub workload_id: Option<String>,
    /// The workload was made by this deployment (a failure removes it when unused).
    #[sqlx(try_from = "Flag")]
    pub workload_made: bool,
    pub instance_id: Option<String>,
    pub dns_record_id: Option<String>,
    pub error: Option<String>,
    pub created_by: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One step of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// `pending`, `running`, `succeeded`, `skipped` or `failed`.
    pub status: String,
    pub message: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl Deployment {
    /// Its steps (none when the column does not parse).
    #[must_use]
    pub fn steps(&self) -> Vec<Step> {
        serde_json::from_str(&self.steps).unwrap_or_default()
    }

    /// Whether it is done, one way or the other.
    #[must_use]
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed")
    }
}

const COLUMNS: &str = "id, org_id, template, name, variables, node_id, subdomain, status, steps, \
     workload_id, workload_made, instance_id, dns_record_id, error, created_by, lease_owner, \
     lease_until, created_at, updated_at";

/// Inserts a new deployment.
///
/// # Errors
/// Database failures.
pub async fn insert(pool: &AnyPool, d: &Deployment) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO deployments (id, org_id, template, name, variables, node_id, subdomain, \
         status, steps, workload_id, workload_made, instance_id, dns_record_id, error, \
         created_by, lease_owner, lease_until, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19)",
    )
    .bind(&d.id)
    .bind(&d.org_id)
    .bind(&d.template)
    .bind(&d.name)
    .bind(&d.variables)
    .bind(&d.node_id)
    .bind(&d.subdomain)
    .bind(&d.status)
    .bind(&d.steps)
    .bind(&d.workload_id)
    .bind(i64::from(d.workload_made))
    .bind(&d.instance_id)
    .bind(&d.dns_record_id)
    .bind(&d.error)
    .bind(&d.created_by)
    .bind(&d.lease_owner)
    .bind(d.lease_until)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// One deployment.
///
/// # Errors
/// Database failures.
pub async fn find(pool: &AnyPool, id: &str) -> Result<Option<Deployment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deployments WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// An organization's deployments, newest first.
///
/// # Errors
/// Database failures.
pub async fn list(
    pool: &AnyPool,
    org_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<Deployment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deployments WHERE org_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(org_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// How many deployments an organization has.
///
/// # Errors
/// Database failures.
pub async fn count(pool: &AnyPool, org_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM deployments WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
}

/// Writes what the runner changed (status, steps, node, what it made, the error) and renews
/// its lease, if `owner` still holds it; whether it did.
///
/// # Errors
/// Database failures.
pub async fn save(
    pool: &AnyPool,
    d: &Deployment,
    owner: &str,
    lease_until: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deployments SET status = $1, steps = $2, workload_id = $3, workload_made = $4, \
         instance_id = $5, dns_record_id = $6, error = $7, lease_until = $8, updated_at = $9, \
         node_id = $10 WHERE id = $11 AND lease_owner = $12",
    )
    .bind(&d.status)
    .bind(&d.steps)
    .bind(&d.workload_id)
    .bind(i64::from(d.workload_made))
    .bind(&d.instance_id)
    .bind(&d.dns_record_id)
    .bind(&d.error)
    .bind(lease_until)
    .bind(now)
    .bind(&d.node_id)
    .bind(&d.id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Renews `owner`'s lease on deployment `id`; whether it still holds it.
///
/// # Errors
/// Database failures.
pub async fn renew(
    pool: &AnyPool,
    id: &str,
    owner: &str,
    lease_until: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deployments SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 \
         AND status IN ('pending', 'running')",
    )
    .bind(lease_until)
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Open deployments whose lease lapsed at `now` (their runner died), oldest first.
///
/// # Errors
/// Database failures.
pub async fn lapsed(pool: &AnyPool, now: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM deployments WHERE status IN ('pending', 'running') \
         AND (lease_until IS NULL OR lease_until <= $1) ORDER BY created_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Takes deployment `id` over for `owner` when its lease lapsed; whether it did (one
/// replica wins).
///
/// # Errors
/// Database failures.
pub async fn take_over(
    pool: &AnyPool,
    id: &str,
    owner: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deployments SET lease_owner = $1, lease_until = $2 WHERE id = $3 \
         AND status IN ('pending', 'running') AND (lease_until IS NULL OR lease_until <= $4)",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
