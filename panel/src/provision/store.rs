//! SQL of `provision_requests`, `provision_runs` and `provision_logs`; the only place
//! their rows are mapped.

use sqlx::AnyPool;

/// A provision request as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Request {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub provider: String,
    pub region: String,
    pub instance_type: String,
    pub image: String,
    pub credential_id: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    /// The Terraform variables of the last plan, JSON sealed (its user data holds the
    /// registration token).
    pub sealed_vars: Option<String>,
    /// The plan file awaiting approval, sealed (base64 inside).
    pub sealed_plan: Option<String>,
    /// What the plan does (`terraform show -json`, summarised), JSON.
    pub plan_summary: Option<String>,
    pub planned_at: Option<i64>,
    pub price_hourly: Option<String>,
    pub price_monthly: Option<String>,
    pub server_id: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub firewall_id: Option<String>,
    pub node_id: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! columns {
    () => {
        "id, org_id, name, provider, region, instance_type, image, credential_id, status, \
         status_message, sealed_vars, sealed_plan, plan_summary, planned_at, price_hourly, \
         price_monthly, server_id, ipv4, ipv6, firewall_id, node_id, created_by, created_at, \
         updated_at"
    };
}

/// Stores a new request.
///
/// # Errors
/// Database failures.
pub async fn insert<'e>(db: impl sqlx::AnyExecutor<'e>, r: &Request) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO provision_requests (id, org_id, name, provider, region, instance_type, \
         image, credential_id, status, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&r.id)
    .bind(&r.org_id)
    .bind(&r.name)
    .bind(&r.provider)
    .bind(&r.region)
    .bind(&r.instance_type)
    .bind(&r.image)
    .bind(&r.credential_id)
    .bind(&r.status)
    .bind(&r.created_by)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

/// One request.
///
/// # Errors
/// Database failures.
pub async fn find(pool: &AnyPool, id: &str) -> sqlx::Result<Option<Request>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM provision_requests WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The live request (applied or provisioned) that made node `node_id`.
///
/// # Errors
/// Database failures.
pub async fn for_node(pool: &AnyPool, node_id: &str) -> sqlx::Result<Option<Request>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM provision_requests WHERE node_id = $1 AND status IN ('applied', 'provisioned') \
         ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(node_id)
    .fetch_optional(pool)
    .await
}

/// How many requests an organization keeps.
///
/// # Errors
/// Database failures.
pub async fn count(pool: &AnyPool, org_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM provision_requests WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
}

/// An organization's requests, newest first.
///
/// # Errors
/// Database failures.
pub async fn list(pool: &AnyPool, org_id: &str) -> sqlx::Result<Vec<Request>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM provision_requests WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT 500"
    ))
    .bind(org_id)
    .fetch_all(pool)
    .await
}

/// Moves a request to `status` (with a message) when it is in one of `from` (at most
/// five); false when
/// it was not (someone else moved it first).
///
/// # Errors
/// Database failures.
pub async fn transition(
    pool: &AnyPool,
    id: &str,
    from: &[&str],
    status: &str,
    message: Option<&str>,
    now: i64,
) -> sqlx::Result<bool> {
    // Up to five statuses, the list padded with its first.
    let pick = |i: usize| from.get(i).or(from.first()).copied().unwrap_or("");
    let done = sqlx::query(
        "UPDATE provision_requests SET status = $1, status_message = $2, updated_at = $3 \
         WHERE id = $4 AND status IN ($5, $6, $7, $8, $9)",
    )
    .bind(status)
    .bind(message)
    .bind(now)
    .bind(id)
    .bind(pick(0))
    .bind(pick(1))
    .bind(pick(2))
    .bind(pick(3))
    .bind(pick(4))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a finished plan: its variables and file (sealed), summary and price.
///
/// # Errors
/// Database failures.
#[allow(clippy::too_many_arguments)]
pub async fn set_plan(
    pool: &AnyPool,
    id: &str,
    sealed_vars: &str,
    sealed_plan: &str,
    summary: &str,
    price: Option<(&str, &str)>,
    instance_type: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE provision_requests SET status = 'planned', status_message = NULL, \
         sealed_vars = $1, sealed_plan = $2, plan_summary = $3, planned_at = $4, \
         price_hourly = $5, price_monthly = $6, instance_type = $7, updated_at = $4 WHERE id = $8",
    )
    .bind(sealed_vars)
    .bind(sealed_plan)
    .bind(summary)
    .bind(now)
    .bind(price.map(|p| p.0))
    .bind(price.map(|p| p.1))
    .bind(instance_type)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records what an apply created.
///
/// # Errors
/// Database failures.
pub async fn set_applied(
    pool: &AnyPool,
    id: &str,
    server_id: Option<&str>,
    ipv4: Option<&str>,
    ipv6: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE provision_requests SET status = CASE WHEN node_id IS NULL THEN 'applied' \
         ELSE 'provisioned' END, status_message = NULL, sealed_plan = NULL, server_id = $1, \
         ipv4 = $2, ipv6 = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(server_id)
    .bind(ipv4)
    .bind(ipv6)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the plan awaiting approval.
///
/// # Errors
/// Database failures.
pub async fn clear_plan(pool: &AnyPool, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE provision_requests SET sealed_plan = NULL WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes a request (and its runs, logs, state and lock).
///
/// # Errors
/// Database failures.
pub async fn delete(pool: &AnyPool, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM provision_requests WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

impl crate::authz::OrgScoped for Request {
    const NAME: &'static str = "provision request";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}

/// A Terraform run as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Run {
    pub id: String,
    pub request_id: String,
    pub kind: String,
    pub status: String,
    pub password_hash: String,
    pub lease_until: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub message: Option<String>,
}

/// Starts a run of `kind` unless one is already running for the request (false then).
///
/// # Errors
/// Database failures other than the one-running-run constraint.
pub async fn start_run(pool: &AnyPool, run: &Run) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO provision_runs (id, request_id, kind, status, password_hash, lease_until, \
         started_at) SELECT $1, $2, $3, 'running', $4, $5, $6 WHERE NOT EXISTS \
         (SELECT 1 FROM provision_runs WHERE request_id = $2 AND status = 'running')",
    )
    .bind(&run.id)
    .bind(&run.request_id)
    .bind(&run.kind)
    .bind(&run.password_hash)
    .bind(run.lease_until)
    .bind(run.started_at)
    .execute(pool)
    .await;
    match done {
        Ok(d) => Ok(d.rows_affected() == 1),
        // Two starts raced past NOT EXISTS: the unique index let one through.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Renews a running run's lease (and its state lock's); false when it is no longer
/// running (the reaper failed it).
///
/// # Errors
/// Database failures.
pub async fn renew(pool: &AnyPool, run_id: &str, until: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE provision_runs SET lease_until = $1 WHERE id = $2 AND status = 'running'",
    )
    .bind(until)
    .bind(run_id)
    .execute(pool)
    .await?;
    sqlx::query("UPDATE provision_locks SET expires_at = $1 WHERE run_id = $2")
        .bind(until)
        .bind(run_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a run (`succeeded` or `failed`).
///
/// # Errors
/// Database failures.
pub async fn finish_run(
    pool: &AnyPool,
    run_id: &str,
    status: &str,
    message: Option<&str>,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE provision_runs SET status = $1, message = $2, finished_at = $3 \
         WHERE id = $4 AND status = 'running'",
    )
    .bind(status)
    .bind(message)
    .bind(now)
    .bind(run_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The run with this id.
///
/// # Errors
/// Database failures.
pub async fn run(pool: &AnyPool, id: &str) -> sqlx::Result<Option<Run>> {
    sqlx::query_as(
        "SELECT id, request_id, kind, status, password_hash, lease_until, started_at, \
         finished_at, message FROM provision_runs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A request's runs, newest first.
///
/// # Errors
/// Database failures.
pub async fn runs(pool: &AnyPool, request_id: &str) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(
        "SELECT id, request_id, kind, status, password_hash, lease_until, started_at, \
         finished_at, message FROM provision_runs WHERE request_id = $1 \
         ORDER BY started_at DESC, id LIMIT 100",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await
}

/// Runs still marked running whose lease lapsed before `now`.
///
/// # Errors
/// Database failures.
pub async fn lapsed(pool: &AnyPool, now: i64) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(
        "SELECT id, request_id, kind, status, password_hash, lease_until, started_at, \
         finished_at, message FROM provision_runs WHERE status = 'running' AND lease_until < $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await
}

/// One line of a run's log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogLine {
    pub run_id: String,
    pub seq: i64,
    pub at: i64,
    pub line: String,
}

/// Appends lines to a run's log, numbered from `first_seq`.
///
/// # Errors
/// Database failures.
pub async fn append_log(
    pool: &AnyPool,
    run_id: &str,
    first_seq: i64,
    lines: &[(i64, String)],
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    for (i, (at, line)) in lines.iter().enumerate() {
        sqlx::query("INSERT INTO provision_logs (run_id, seq, at, line) VALUES ($1, $2, $3, $4)")
            .bind(run_id)
            .bind(first_seq + i64::try_from(i).unwrap_or(0))
            .bind(at)
            .bind(line)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// A request's log lines after `after` (over all its runs, oldest first), at most
/// `limit`. The position is the pair (run start, seq), flattened as a cursor by the
/// caller.
///
/// # Errors
/// Database failures.
pub async fn log_of_run(
    pool: &AnyPool,
    run_id: &str,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<LogLine>> {
    sqlx::query_as(
        "SELECT run_id, seq, at, line FROM provision_logs WHERE run_id = $1 AND seq > $2 \
         ORDER BY seq LIMIT $3",
    )
    .bind(run_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
