//! Account lockout: `lockout_threshold` failed logins within `lockout_window_secs` lock
//! the account for `lockout_duration_secs`. Kept in the database so every replica agrees.

use sqlx::AnyPool;

use crate::config::AuthConfig;
use crate::db::{new_id, now_ms};

fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// Records a failed login; returns the lock expiry if this failure locked the account.
///
/// # Errors
/// Database failures.
pub async fn record_failure(
    pool: &AnyPool,
    policy: &AuthConfig,
    user_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let now = now_ms();
    let since = now - secs_ms(policy.lockout_window_secs);
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO login_failures (id, user_id, at) VALUES ($1, $2, $3)")
        .bind(new_id())
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM login_failures WHERE user_id = $1 AND at < $2")
        .bind(user_id)
        .bind(since)
        .execute(&mut *tx)
        .await?;
    let failures: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM login_failures WHERE user_id = $1 AND at >= $2",
    )
    .bind(user_id)
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    let mut locked = None;
    if failures >= i64::from(policy.lockout_threshold) {
        let until = now + secs_ms(policy.lockout_duration_secs);
        sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2")
            .bind(until)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM login_failures WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        locked = Some(until);
    }
    tx.commit().await?;
    Ok(locked)
}

/// Forgets failures after a successful login.
///
/// # Errors
/// Database failures.
pub async fn clear(pool: &AnyPool, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    sqlx::query("UPDATE users SET locked_until = NULL WHERE id = $1 AND locked_until IS NOT NULL")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Seconds until a lock ends, if the account is locked now.
#[must_use]
pub fn remaining_secs(locked_until: Option<i64>) -> Option<u64> {
    let until = locked_until?;
    let left = until - now_ms();
    (left > 0).then(|| u64::try_from((left + 999) / 1000).unwrap_or(1))
}
