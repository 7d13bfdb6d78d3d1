//! SQL for organization invitations (`org_invites`). Tokens are stored only as their
//! SHA-256; a pending invite is one neither accepted nor expired.

use serde::{Deserialize, Serialize};
use sqlx::AnyExecutor;

use crate::db::ts;

/// An invitation as the API shows it (never with its token).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Invite {
    pub id: String,
    #[serde(skip)]
    pub org_id: String,
    pub email: String,
    pub role: String,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub expires_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    pub invited_by: Option<String>,
}

/// The invite columns [`Invite`] reads.
macro_rules! invite_columns {
    () => {
        "id, org_id, email, role, expires_at, created_at, invited_by"
    };
}

/// Stores a new invitation.
pub async fn insert<'e>(
    db: impl AnyExecutor<'e>,
    invite: &Invite,
    token_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO org_invites (id, org_id, email, role, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&invite.id)
    .bind(&invite.org_id)
    .bind(&invite.email)
    .bind(&invite.role)
    .bind(token_hash)
    .bind(invite.invited_by.as_deref())
    .bind(invite.created_at)
    .bind(invite.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Drops the unaccepted invitations of `email` to an organization (a new one replaces them).
pub async fn delete_unaccepted_for_email<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    email: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM org_invites WHERE org_id = $1 AND email = $2 AND accepted_at IS NULL")
        .bind(org_id)
        .bind(email)
        .execute(db)
        .await?;
    Ok(())
}

/// The pending invitations of an organization, newest first.
pub async fn pending<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    now: i64,
) -> Result<Vec<Invite>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        invite_columns!(),
        " FROM org_invites WHERE org_id = $1 AND accepted_at IS NULL AND expires_at > $2 \
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(org_id)
    .bind(now)
    .fetch_all(db)
    .await
}

/// The pending invitation a token opens, if any.
pub async fn find_pending_by_token_hash<'e>(
    db: impl AnyExecutor<'e>,
    token_hash: &str,
    now: i64,
) -> Result<Option<Invite>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        invite_columns!(),
        " FROM org_invites WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Marks a pending invitation accepted; `false` when it was accepted (or expired)
/// meanwhile, so of two concurrent accepts only one wins.
pub async fn mark_accepted<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    user_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE org_invites SET accepted_at = $1, accepted_by = $2 \
         WHERE id = $3 AND accepted_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(user_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes one invitation of an organization; `false` when there was none.
pub async fn delete<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM org_invites WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the account with `email` already belongs to the organization.
pub async fn email_is_member<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(1 AS BIGINT) FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND u.email = $2",
    )
    .bind(org_id)
    .bind(email)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// How many members an organization has.
pub async fn member_count<'e>(db: impl AnyExecutor<'e>, org_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM org_members WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(db)
        .await
}

/// Adds a member unless they already belong to the organization (whose role then stays).
pub async fn add_member_if_absent<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    user_id: &str,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = $3, scoped = 0 WHERE org_members.scoped = 1",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role)
    .bind(crate::db::now_ms())
    .execute(db)
    .await?;
    crate::readcache::changed();
    Ok(())
}
