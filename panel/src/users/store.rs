//! SQL for the `users` table; the only place a user row is mapped to a struct.

use serde::{Deserialize, Serialize};
use sqlx::AnyExecutor;

use crate::db::row::{Flag, IsSet};
use crate::db::{now_ms, ts};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    #[sqlx(try_from = "Flag")]
    pub is_admin: bool,
    #[sqlx(rename = "suspended_at", try_from = "IsSet")]
    pub suspended: bool,
    #[sqlx(try_from = "Flag")]
    pub mfa_enabled: bool,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

/// A user with the columns only authentication reads.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserAuthRow {
    #[sqlx(flatten)]
    pub user: User,
    pub password_hash: String,
    pub locked_until: Option<i64>,
    /// Whether the address is verified (see `auth::verify_email`).
    #[sqlx(rename = "email_verified_at", try_from = "IsSet")]
    pub email_verified: bool,
}

/// The user columns [`User`] reads, unqualified and qualified with `u.`.
macro_rules! user_columns {
    () => {
        "id, email, name, is_admin, suspended_at, mfa_enabled, created_at, updated_at"
    };
    (u) => {
        "u.id, u.email, u.name, u.is_admin, u.suspended_at, u.mfa_enabled, u.created_at, u.updated_at"
    };
}
pub(crate) use user_columns;

/// Inserts a user; `email_verified` records the address as verified now.
pub async fn insert<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    email: &str,
    name: &str,
    password_hash: &str,
    is_admin: bool,
    email_verified: bool,
) -> Result<User, sqlx::Error> {
    let now = now_ms();
    sqlx::query_as(concat!(
        "INSERT INTO users (id, email, name, password_hash, is_admin, created_at, updated_at, \
         email_verified_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING ",
        user_columns!()
    ))
    .bind(id)
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(i64::from(is_admin))
    .bind(now)
    .bind(email_verified.then_some(now))
    .fetch_one(db)
    .await
}

/// A user by id.
pub async fn find<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A user with credentials, by normalized email.
pub async fn find_auth_by_email<'e>(
    db: impl AnyExecutor<'e>,
    email: &str,
) -> Result<Option<UserAuthRow>, sqlx::Error> {
    find_auth(
        db,
        concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash, locked_until, email_verified_at FROM users WHERE email = $1"
        ),
        email,
    )
    .await
}

/// A user with credentials, by id.
pub async fn find_auth_by_id<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
) -> Result<Option<UserAuthRow>, sqlx::Error> {
    find_auth(
        db,
        concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash, locked_until, email_verified_at FROM users WHERE id = $1"
        ),
        id,
    )
    .await
}

async fn find_auth<'e>(
    db: impl AnyExecutor<'e>,
    sql: &'static str,
    value: &str,
) -> Result<Option<UserAuthRow>, sqlx::Error> {
    sqlx::query_as(sql).bind(value).fetch_optional(db).await
}

/// How many users exist.
pub async fn count<'e>(db: impl AnyExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM users")
        .fetch_one(db)
        .await
}

macro_rules! search_filter {
    () => {
        " WHERE ($1 IS NULL OR LOWER(email) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\')"
    };
}

/// One page of users, newest first, optionally filtered by a substring of email or name,
/// and how many users match.
pub async fn list(
    pool: &sqlx::AnyPool,
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<User>, i64), sqlx::Error> {
    let pattern = search.map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    let users = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users",
        search_filter!(),
        " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(pattern.as_deref())
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(concat!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM users",
        search_filter!()
    ))
    .bind(pattern.as_deref())
    .fetch_one(pool)
    .await?;
    Ok((users, total))
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
#[must_use]
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Replaces a user's password hash.
pub async fn set_password<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Replaces a user's password hash only while it is still `old`, without touching the
/// sessions (a re-hash of the same password: `auth::login::upgrade_bcrypt`); returns
/// whether it was replaced.
pub async fn upgrade_password_hash<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    old: &str,
    new: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4",
    )
    .bind(new)
    .bind(now_ms())
    .bind(id)
    .bind(old)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Sets or clears the suspension time; returns whether the user exists.
pub async fn set_suspended<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    suspended: bool,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let result = sqlx::query("UPDATE users SET suspended_at = $1, updated_at = $2 WHERE id = $3")
        .bind(suspended.then_some(now))
        .bind(now)
        .bind(id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Records the user's address as verified (once: a later call keeps the first time).
pub async fn mark_email_verified<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}
