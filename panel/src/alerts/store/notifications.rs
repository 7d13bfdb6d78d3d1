//! SQL of `alert_notifications` (one claim per alert, transition and channel),
//! `alert_seen` (the unread count's mark), silences and the recipients of mail.

use sqlx::AnyPool;

/// Claims the notification of `transition` of an alert on `channel`: `true` for the one
/// caller (of any replica) that should send it.
///
/// # Errors
/// Database failures.
pub async fn claim_notification(
    pool: &AnyPool,
    alert_id: &str,
    transition: &str,
    channel: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO alert_notifications (alert_id, transition, channel, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(alert_id)
    .bind(transition)
    .bind(channel)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// When the user last marked the alerts seen (0: never).
///
/// # Errors
/// Database failures.
pub async fn seen_at(pool: &AnyPool, user_id: &str) -> sqlx::Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT seen_at FROM alert_seen WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
    )
}

/// Marks everything fired until `now` seen by the user.
///
/// # Errors
/// Database failures.
pub async fn mark_seen(pool: &AnyPool, user_id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO alert_seen (user_id, seen_at) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET seen_at = $2",
    )
    .bind(user_id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Firing (or fired) in-app alerts of `org_id` fired after `since` and not acknowledged.
///
/// # Errors
/// Database failures.
pub async fn count_unread(pool: &AnyPool, org_id: &str, since: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM alerts a JOIN alert_rules r ON r.id = a.rule_id \
         WHERE a.org_id = $1 AND a.fired_at IS NOT NULL AND a.fired_at > $2 \
         AND a.acked_at IS NULL AND r.notify_in_app = 1",
    )
    .bind(org_id)
    .bind(since)
    .fetch_one(pool)
    .await
}

/// Silences an alert's notifications until `until`.
///
/// # Errors
/// Database failures.
pub async fn silence(pool: &AnyPool, id: &str, until: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE alerts SET silenced_until = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(until)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// The organizations `user_id` is a member of.
///
/// # Errors
/// Database failures.
pub async fn member_orgs(pool: &AnyPool, user_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT org_id FROM org_members WHERE user_id = $1 AND scoped = 0")
        .bind(user_id)
        .fetch_all(pool)
        .await
}

/// The members of `org_id` with their email addresses.
///
/// # Errors
/// Database failures.
pub async fn member_emails(pool: &AnyPool, org_id: &str) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT u.id, u.email FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.scoped = 0",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await
}
