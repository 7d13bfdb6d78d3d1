//! The `subscriptions` table (one row per organization that has a Stripe customer or a
//! plan given by an admin) and how a subscription read from Stripe lands in it.
//!
//! A row changes only from what Stripe says about the subscription, read again from
//! Stripe's API (an event, a re-fetch, the nightly reconciliation): never from the
//! browser coming back from Checkout. [`apply`] writes the absolute state Stripe gave,
//! so events in any order and any number of times end in the same row.

use sqlx::{Any, AnyConnection, AnyPool};

use super::plans;
use super::stripe::Subscription as StripeSub;
use crate::db::new_id;

/// Statuses under which the paid plan applies (past due and unpaid too: the grace
/// period and suspension handle those).
pub fn holds_plan(status: &str) -> bool {
    matches!(
        status,
        "active" | "trialing" | "past_due" | "unpaid" | "manual" | "paused"
    )
}

/// Statuses that start the grace period.
pub fn is_overdue(status: &str) -> bool {
    matches!(status, "past_due" | "unpaid")
}

/// Statuses of a paid-up subscription.
pub fn is_good(status: &str) -> bool {
    matches!(status, "active" | "trialing" | "manual")
}

/// A row of `subscriptions`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub org_id: String,
    pub plan_id: Option<String>,
    pub status: String,
    pub billing_interval: String,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// Milliseconds.
    pub current_period_end: Option<i64>,
    #[sqlx(try_from = "crate::db::row::Flag")]
    pub cancel_at_period_end: bool,
    pub past_due_since: Option<i64>,
    pub last_dunning_mail_at: Option<i64>,
    pub suspended_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub synced_at: Option<i64>,
    pub drift: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, org_id, plan_id, status, billing_interval, stripe_customer_id, \
    stripe_subscription_id, current_period_end, cancel_at_period_end, past_due_since, \
    last_dunning_mail_at, suspended_at, terminated_at, synced_at, drift, created_at, updated_at";

/// The row of organization `org_id`.
///
/// # Errors
/// Database failures.
pub async fn by_org<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    org_id: &str,
) -> sqlx::Result<Option<Row>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE org_id = $1"
    )))
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// A row by id.
///
/// # Errors
/// Database failures.
pub async fn by_id<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    id: &str,
) -> sqlx::Result<Option<Row>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Every row, newest first.
///
/// # Errors
/// Database failures.
pub async fn all(pool: &AnyPool) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions ORDER BY created_at DESC"
    )))
    .fetch_all(pool)
    .await
}

/// The row of `org_id`, made (status `none`) when missing.
///
/// # Errors
/// Database failures.
pub async fn ensure_row(conn: &mut AnyConnection, org_id: &str, now: i64) -> sqlx::Result<Row> {
    if let Some(row) = by_org(&mut *conn, org_id).await? {
        return Ok(row);
    }
    sqlx::query(
        "INSERT INTO subscriptions (id, org_id, status, created_at, updated_at) \
         VALUES ($1, $2, 'none', $3, $3) ON CONFLICT (org_id) DO NOTHING",
    )
    .bind(new_id())
    .bind(org_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    by_org(conn, org_id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// Records organization `org_id`'s Stripe customer.
///
/// # Errors
/// Database failures.
pub async fn set_customer(
    pool: &AnyPool,
    org_id: &str,
    customer: &str,
    now: i64,
) -> sqlx::Result<()> {
    let mut conn = pool.acquire().await?;
    ensure_row(&mut conn, org_id, now).await?;
    sqlx::query(
        "UPDATE subscriptions SET stripe_customer_id = $1, updated_at = $2 \
         WHERE org_id = $3 AND stripe_customer_id IS NULL",
    )
    .bind(customer)
    .bind(now)
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What applying a subscription changed.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub org_id: Option<String>,
    pub status: Option<String>,
    /// It was overdue and is paid up again while the servers are suspended: restore them.
    pub restore: bool,
    /// It just became overdue (the grace period starts).
    pub became_overdue: bool,
    /// How the row differed from Stripe (the reconciliation reports it).
    pub drift: Vec<String>,
}

/// The plan a Stripe subscription is on: the plan with its price, else its metadata's.
async fn plan_of(
    conn: &mut AnyConnection,
    sub: &StripeSub,
) -> sqlx::Result<(Option<String>, &'static str)> {
    if let Some(price) = sub.price_id() {
        let found: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT id, stripe_price_year FROM plans \
             WHERE stripe_price_month = $1 OR stripe_price_year = $1 ORDER BY created_at LIMIT 1",
        )
        .bind(price)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((id, year)) = found {
            let interval = if year.as_deref() == Some(price) {
                "year"
            } else {
                "month"
            };
            return Ok((Some(id), interval));
        }
    }
    let by_meta = sub
        .metadata
        .as_ref()
        .and_then(|m| m.get("plan_id"))
        .cloned();
    if let Some(id) = by_meta
        && plans::find(&mut *conn, &id).await?.is_some()
    {
        return Ok((Some(id), "month"));
    }
    Ok((None, "month"))
}

/// The organization a Stripe subscription belongs to: the row holding it, the row of
/// its customer, else its metadata's `org_id` (an organization that exists).
async fn org_of(conn: &mut AnyConnection, sub: &StripeSub) -> sqlx::Result<Option<String>> {
    let by_row: Option<String> = sqlx::query_scalar(
        "SELECT org_id FROM subscriptions WHERE stripe_subscription_id = $1 \
         OR stripe_customer_id = $2 ORDER BY (stripe_subscription_id = $1) DESC LIMIT 1",
    )
    .bind(&sub.id)
    .bind(&sub.customer)
    .fetch_optional(&mut *conn)
    .await?;
    if by_row.is_some() {
        return Ok(by_row);
    }
    if let Some(org) = sub.org_id() {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM organizations WHERE id = $1")
                .bind(org)
                .fetch_optional(&mut *conn)
                .await?;
        return Ok(exists);
    }
    Ok(None)
}

/// Writes what Stripe says of `sub` into its organization's row, inside `conn`'s
/// transaction. A subscription of no known organization changes nothing. An ended
/// subscription does not overwrite another, live one of the same organization (a plan
/// changed through a new subscription ends the old one after the new one began).
///
/// # Errors
/// Database failures.
pub async fn apply(conn: &mut AnyConnection, sub: &StripeSub, now: i64) -> sqlx::Result<Applied> {
    let mut out = Applied::default();
    let Some(org_id) = org_of(conn, sub).await? else {
        return Ok(out);
    };
    let row = ensure_row(conn, &org_id, now).await?;
    out.org_id = Some(org_id.clone());
    let ended = !holds_plan(&sub.status);
    if ended
        && row
            .stripe_subscription_id
            .as_deref()
            .is_some_and(|s| s != sub.id)
        && holds_plan(&row.status)
    {
        out.status = Some(row.status);
        return Ok(out);
    }
    let (plan_id, interval) = plan_of(conn, sub).await?;
    let period_end = sub.period_end().map(|s| s * 1000);
    let cancel = sub.cancel_at_period_end.unwrap_or(false);
    let past_due_since = if is_overdue(&sub.status) {
        Some(row.past_due_since.unwrap_or(now))
    } else {
        None
    };
    if row.status != sub.status {
        out.drift
            .push(format!("status {} → {}", row.status, sub.status));
    }
    if row.plan_id != plan_id {
        out.drift.push(format!(
            "plan {} → {}",
            row.plan_id.as_deref().unwrap_or("none"),
            plan_id.as_deref().unwrap_or("none")
        ));
    }
    if row.current_period_end != period_end {
        out.drift.push("period end".into());
    }
    if row.cancel_at_period_end != cancel {
        out.drift.push(format!("cancel_at_period_end → {cancel}"));
    }
    out.restore = row.suspended_at.is_some() && is_good(&sub.status);
    out.became_overdue = is_overdue(&sub.status) && row.past_due_since.is_none();
    sqlx::query(
        "UPDATE subscriptions SET plan_id = $1, status = $2, billing_interval = $3, \
         stripe_customer_id = $4, stripe_subscription_id = $5, current_period_end = $6, \
         cancel_at_period_end = $7, past_due_since = $8, synced_at = $9, updated_at = $9, \
         last_dunning_mail_at = CASE WHEN $8 IS NULL THEN NULL ELSE last_dunning_mail_at END \
         WHERE org_id = $10",
    )
    .bind(&plan_id)
    .bind(&sub.status)
    .bind(interval)
    .bind(&sub.customer)
    .bind(&sub.id)
    .bind(period_end)
    .bind(i64::from(cancel))
    .bind(past_due_since)
    .bind(now)
    .bind(&org_id)
    .execute(&mut *conn)
    .await?;
    out.status = Some(sub.status.clone());
    Ok(out)
}
