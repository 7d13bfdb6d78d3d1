//! SQL for organizations, their members and per-member permission overrides.

use serde::{Deserialize, Serialize};
use sqlx::AnyExecutor;

use crate::db::row::Flag;

use crate::db::{now_ms, ts};

/// An organization.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub slug: String,
    #[sqlx(try_from = "Flag")]
    pub personal: bool,
    /// Members without MFA may only see the organization.
    #[sqlx(try_from = "Flag")]
    pub require_mfa: bool,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

/// An organization together with the caller's role in it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct OrgWithRole {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub org: Org,
    pub role: String,
}

/// A member as listed.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    #[sqlx(rename = "created_at")]
    pub joined_at: i64,
    /// Limited to named servers (see `GET /v1/instances/{id}/access`).
    #[sqlx(try_from = "Flag")]
    #[serde(default)]
    pub scoped: bool,
    /// How many servers a scoped member holds access to (0 for a full member).
    #[serde(default)]
    pub servers: i64,
}

/// The organization columns [`Org`] reads.
macro_rules! org_columns {
    () => {
        "o.id, o.name, o.slug, o.personal, o.require_mfa, o.created_at, o.updated_at"
    };
}

/// Inserts an organization.
pub async fn insert<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    name: &str,
    slug: &str,
    personal: bool,
    created_by: &str,
) -> Result<Org, sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO organizations (id, name, slug, personal, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(id)
    .bind(name)
    .bind(slug)
    .bind(i64::from(personal))
    .bind(created_by)
    .bind(now)
    .execute(db)
    .await?;
    Ok(Org {
        id: id.into(),
        name: name.into(),
        slug: slug.into(),
        personal,
        require_mfa: false,
        created_at: now,
        updated_at: now,
    })
}

/// Adds (or re-roles) a member. A member limited to named servers who is given a role
/// becomes a full member (their per-server grants stop counting; [`drop_grants`]).
pub async fn upsert_member<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    user_id: &str,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = $3, scoped = 0",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role)
    .bind(now_ms())
    .execute(db)
    .await?;
    crate::readcache::changed();
    Ok(())
}

/// An organization by id, with `user_id`'s role when they are a member.
pub async fn find_for_member<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    user_id: &str,
) -> Result<Option<OrgWithRole>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        org_columns!(),
        ", m.role FROM organizations o \
         JOIN org_members m ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1"
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// The organizations `user_id` belongs to.
pub async fn list_for_user<'e>(
    db: impl AnyExecutor<'e>,
    user_id: &str,
) -> Result<Vec<OrgWithRole>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        org_columns!(),
        ", m.role FROM organizations o JOIN org_members m ON m.org_id = o.id \
         WHERE m.user_id = $1 ORDER BY o.personal DESC, o.created_at, o.id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// An organization by id, regardless of membership (platform admins).
pub async fn find<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<Option<Org>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        org_columns!(),
        " FROM organizations o WHERE o.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Every organization, newest first (platform admins).
pub async fn list_all<'e>(
    db: impl AnyExecutor<'e>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Org>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        org_columns!(),
        " FROM organizations o ORDER BY o.created_at DESC, o.id DESC LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// Sets whether members need MFA.
pub async fn set_require_mfa<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    on: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organizations SET require_mfa = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(on))
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    crate::readcache::changed();
    Ok(())
}

/// Renames an organization.
pub async fn update_name<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organizations SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes an organization (members and overrides cascade).
pub async fn delete<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    crate::readcache::changed();
    Ok(())
}

/// Removes a member's per-server grants (they became a full member, or left).
pub async fn drop_grants<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM server_grants WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(db)
        .await?;
    crate::readcache::changed();
    Ok(())
}

/// Members of an organization, owners first.
pub async fn members<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
) -> Result<Vec<Member>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.user_id, u.email, u.name, m.role, m.created_at, m.scoped, \
         (SELECT COUNT(*) FROM server_grants g WHERE g.org_id = m.org_id AND g.user_id = m.user_id) AS servers \
         FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 \
         ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'operator' THEN 2 ELSE 3 END, u.email",
    )
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// A member's role, if they belong to the organization.
pub async fn member_role<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    user_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(db)
        .await
}

/// How many owners an organization has.
pub async fn owner_count<'e>(db: impl AnyExecutor<'e>, org_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM org_members WHERE org_id = $1 AND role = 'owner'",
    )
    .bind(org_id)
    .fetch_one(db)
    .await
}

/// Removes a member.
pub async fn remove_member<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(db)
        .await?;
    crate::readcache::changed();
    Ok(())
}

/// A member's standing ([`MemberRow`]), if they are a member.
pub async fn membership<'e>(
    db: impl AnyExecutor<'e> + Copy,
    org_id: &str,
    user_id: &str,
) -> Result<Option<MemberRow>, sqlx::Error> {
    let Some((role, require_mfa, scoped)) = sqlx::query_as::<_, (String, Flag, Flag)>(
        "SELECT m.role, o.require_mfa, m.scoped FROM org_members m \
         JOIN organizations o ON o.id = m.org_id WHERE m.org_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let overrides = sqlx::query_as::<_, (String, Flag)>(
        "SELECT perm_key, allowed FROM member_permissions WHERE org_id = $1 AND user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|(key, allowed)| (key, allowed.0))
    .collect();
    let grants = if scoped.0 {
        sqlx::query_as::<_, (String, String)>(
            "SELECT instance_id, permissions FROM server_grants \
             WHERE org_id = $1 AND user_id = $2 ORDER BY instance_id",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_all(db)
        .await?
        .into_iter()
        .map(|(id, keys)| (id, serde_json::from_str(&keys).unwrap_or_default()))
        .collect()
    } else {
        Vec::new()
    };
    Ok(Some(MemberRow {
        role,
        require_mfa: require_mfa.0,
        overrides,
        scoped: scoped.0,
        grants,
    }))
}

/// A membership as stored: the role, the organization's MFA rule, permission overrides
/// and, for a member limited to named servers, each server's keys.
#[derive(Debug)]
pub struct MemberRow {
    pub role: String,
    pub require_mfa: bool,
    pub overrides: Vec<(String, bool)>,
    pub scoped: bool,
    pub grants: Vec<(String, Vec<String>)>,
}

/// Grants (`allowed = true`) or denies a permission key to a member, overriding the role.
pub async fn set_override<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    user_id: &str,
    key: &str,
    allowed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member_permissions (org_id, user_id, perm_key, allowed) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id, perm_key) DO UPDATE SET allowed = $4",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(key)
    .bind(i64::from(allowed))
    .execute(db)
    .await?;
    crate::readcache::changed();
    Ok(())
}

/// Drops a member's override of a permission key; `false` when there was none.
pub async fn remove_override<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    user_id: &str,
    key: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM member_permissions WHERE org_id = $1 AND user_id = $2 AND perm_key = $3",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(key)
    .execute(db)
    .await?;
    crate::readcache::changed();
    Ok(done.rows_affected() == 1)
}
