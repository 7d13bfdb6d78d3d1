//! SQL of `cloud_cost_entries`, the only place its rows are mapped. An entry is opened
//! for a provision request once its apply made the cloud server, at most one open per
//! request; it is ended when the request destroys the server, when a resize starts the
//! next entry, or when the node is deleted.

use sqlx::AnyPool;

/// A ledger entry as stored, with the node's live id and name when it still exists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub id: String,
    pub org_id: String,
    /// The node (from the entry, else from its request while the request names it).
    pub node_id: Option<String>,
    /// The node's id when the node still exists.
    pub live_node_id: Option<String>,
    pub provision_request_id: Option<String>,
    /// The node's current name, else the name recorded.
    pub node_name: String,
    pub provider: String,
    pub instance_type: String,
    pub location: String,
    pub currency: String,
    pub hourly_nanos: Option<i64>,
    pub monthly_nanos: Option<i64>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

macro_rules! select {
    () => {
        "SELECT e.id, e.org_id, COALESCE(e.node_id, r.node_id) AS node_id, \
         n.id AS live_node_id, e.provision_request_id, COALESCE(n.name, e.node_name) AS node_name, \
         e.provider, e.instance_type, e.location, e.currency, e.hourly_nanos, e.monthly_nanos, \
         e.started_at, e.ended_at FROM cloud_cost_entries e \
         LEFT JOIN provision_requests r ON r.id = e.provision_request_id \
         LEFT JOIN nodes n ON n.id = COALESCE(e.node_id, r.node_id)"
    };
}

/// A new entry's fields.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub org_id: &'a str,
    pub node_id: Option<&'a str>,
    pub provision_request_id: &'a str,
    pub node_name: &'a str,
    pub provider: &'a str,
    pub instance_type: &'a str,
    pub location: &'a str,
    pub currency: &'a str,
    pub hourly_nanos: Option<i64>,
    pub monthly_nanos: Option<i64>,
    pub started_at: i64,
}

/// Opens an entry unless the request already has an open one (false then).
///
/// # Errors
/// Database failures.
pub async fn open(pool: &AnyPool, e: &NewEntry<'_>) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO cloud_cost_entries (id, org_id, node_id, provision_request_id, node_name, \
         provider, instance_type, location, currency, hourly_nanos, monthly_nanos, started_at, \
         created_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
         WHERE NOT EXISTS (SELECT 1 FROM cloud_cost_entries WHERE provision_request_id = $4 \
         AND ended_at IS NULL)",
    )
    .bind(crate::db::new_id())
    .bind(e.org_id)
    .bind(e.node_id)
    .bind(e.provision_request_id)
    .bind(e.node_name)
    .bind(e.provider)
    .bind(e.instance_type)
    .bind(e.location)
    .bind(e.currency)
    .bind(e.hourly_nanos)
    .bind(e.monthly_nanos)
    .bind(e.started_at)
    .bind(crate::db::now_ms())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends request `request_id`'s open entry at `at`, keeping the node it made (the
/// request forgets it when the node is deleted); false when none was open.
///
/// # Errors
/// Database failures.
pub async fn end_for_request(pool: &AnyPool, request_id: &str, at: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE cloud_cost_entries SET ended_at = $1, node_id = COALESCE(node_id, \
         (SELECT node_id FROM provision_requests WHERE id = $2)) \
         WHERE provision_request_id = $2 AND ended_at IS NULL",
    )
    .bind(at)
    .bind(request_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends the open entries of node `node_id` at `at` (it is being deleted); how many.
///
/// # Errors
/// Database failures.
pub async fn end_for_node(pool: &AnyPool, node_id: &str, at: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE cloud_cost_entries SET ended_at = $1, node_id = $2 WHERE ended_at IS NULL \
         AND (node_id = $2 OR provision_request_id IN \
         (SELECT id FROM provision_requests WHERE node_id = $2))",
    )
    .bind(at)
    .bind(node_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The entries of `org_id` that ran in `[from, to)`, oldest first.
///
/// # Errors
/// Database failures.
pub async fn in_period(
    pool: &AnyPool,
    org_id: &str,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as(concat!(
        select!(),
        " WHERE e.org_id = $1 AND e.started_at < $2 AND (e.ended_at IS NULL OR \
         e.ended_at > $3) ORDER BY e.started_at, e.id LIMIT 5000"
    ))
    .bind(org_id)
    .bind(to)
    .bind(from)
    .fetch_all(pool)
    .await
}

/// The open entries of `org_id`.
///
/// # Errors
/// Database failures.
pub async fn running(pool: &AnyPool, org_id: &str) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as(concat!(
        select!(),
        " WHERE e.org_id = $1 AND e.ended_at IS NULL ORDER BY e.started_at, e.id LIMIT 5000"
    ))
    .bind(org_id)
    .fetch_all(pool)
    .await
}

/// Sets an open entry's prices; false when it ended meanwhile.
///
/// # Errors
/// Database failures.
pub async fn set_price(
    pool: &AnyPool,
    id: &str,
    currency: &str,
    hourly_nanos: i64,
    monthly_nanos: Option<i64>,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE cloud_cost_entries SET currency = $1, hourly_nanos = $2, monthly_nanos = $3, \
         price_updated_at = $4 WHERE id = $5 AND ended_at IS NULL",
    )
    .bind(currency)
    .bind(hourly_nanos)
    .bind(monthly_nanos)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
