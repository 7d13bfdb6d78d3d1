//! SQL for `ssh_ca_keys` and `ssh_certificates`; the only place their rows are mapped.

use sqlx::AnyExecutor;

use crate::db::now_ms;
use crate::db::row::Flag;

/// A CA key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaKey {
    pub id: String,
    pub algorithm: String,
    /// OpenSSH one-line form.
    pub public_key: String,
    pub fingerprint: String,
    pub sealed_private: String,
    /// The key new certificates are signed with (one at a time).
    #[sqlx(try_from = "Flag")]
    pub active: bool,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// A retired key is trusted until what it signed expired.
    pub trusted_until: Option<i64>,
}

impl CaKey {
    /// Whether nodes should still trust it at `now`.
    #[must_use]
    pub fn trusted_at(&self, now: i64) -> bool {
        self.active || self.trusted_until.is_some_and(|t| t > now)
    }
}

/// A signed certificate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Cert {
    pub id: String,
    pub serial: i64,
    pub ca_key_id: String,
    pub user_id: String,
    pub node_id: Option<String>,
    pub key_id: String,
    /// One per line.
    pub principals: String,
    pub public_key_fingerprint: String,
    pub certificate: String,
    pub force_command: Option<String>,
    pub source_address: Option<String>,
    pub valid_after: i64,
    pub valid_before: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub created_at: i64,
}

macro_rules! key_columns {
    () => {
        "id, algorithm, public_key, fingerprint, sealed_private, active, created_at, \
         retired_at, trusted_until"
    };
}

macro_rules! cert_columns {
    () => {
        "id, serial, ca_key_id, user_id, node_id, key_id, principals, public_key_fingerprint, \
         certificate, force_command, source_address, valid_after, valid_before, revoked_at, \
         revoked_reason, created_at"
    };
}

/// Every CA key, newest first.
///
/// # Errors
/// Database failure.
pub async fn keys(db: impl AnyExecutor<'_>) -> Result<Vec<CaKey>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM ssh_ca_keys ORDER BY created_at DESC, id DESC"
    ))
    .fetch_all(db)
    .await
}

/// The active key, if any.
///
/// # Errors
/// Database failure.
pub async fn active_key(db: impl AnyExecutor<'_>) -> Result<Option<CaKey>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM ssh_ca_keys WHERE active = 1"
    ))
    .fetch_optional(db)
    .await
}

/// Inserts a key.
///
/// # Errors
/// Database failure.
pub async fn insert_key(db: impl AnyExecutor<'_>, k: &CaKey) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO ssh_ca_keys (",
        key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&k.id)
    .bind(&k.algorithm)
    .bind(&k.public_key)
    .bind(&k.fingerprint)
    .bind(&k.sealed_private)
    .bind(i64::from(k.active))
    .bind(k.created_at)
    .bind(k.retired_at)
    .bind(k.trusted_until)
    .execute(db)
    .await?;
    Ok(())
}

/// Retires the active key: trusted until `trusted_until`.
///
/// # Errors
/// Database failure.
pub async fn retire_active(
    db: impl AnyExecutor<'_>,
    trusted_until: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE ssh_ca_keys SET active = 0, retired_at = $1, trusted_until = $2 WHERE active = 1",
    )
    .bind(now_ms())
    .bind(trusted_until)
    .execute(db)
    .await?;
    Ok(())
}

/// The latest expiry of what key `ca_key_id` signed (0 when nothing).
///
/// # Errors
/// Database failure.
pub async fn last_expiry(db: impl AnyExecutor<'_>, ca_key_id: &str) -> Result<i64, sqlx::Error> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT MAX(valid_before) FROM ssh_certificates WHERE ca_key_id = $1")
            .bind(ca_key_id)
            .fetch_one(db)
            .await?;
    Ok(last.unwrap_or(0))
}

/// Inserts a certificate; a unique violation when its serial was taken.
///
/// # Errors
/// Database failure.
pub async fn insert_cert(db: impl AnyExecutor<'_>, c: &Cert) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO ssh_certificates (",
        cert_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&c.id)
    .bind(c.serial)
    .bind(&c.ca_key_id)
    .bind(&c.user_id)
    .bind(c.node_id.as_deref())
    .bind(&c.key_id)
    .bind(&c.principals)
    .bind(&c.public_key_fingerprint)
    .bind(&c.certificate)
    .bind(c.force_command.as_deref())
    .bind(c.source_address.as_deref())
    .bind(c.valid_after)
    .bind(c.valid_before)
    .bind(c.revoked_at)
    .bind(c.revoked_reason.as_deref())
    .bind(c.created_at)
    .execute(db)
    .await?;
    Ok(())
}

/// One certificate.
///
/// # Errors
/// Database failure.
pub async fn cert(db: impl AnyExecutor<'_>, id: &str) -> Result<Option<Cert>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        cert_columns!(),
        " FROM ssh_certificates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The certificate with `serial` (serials are unique across CA keys).
///
/// # Errors
/// Database failure.
pub async fn cert_by_serial(
    db: impl AnyExecutor<'_>,
    serial: i64,
) -> Result<Option<Cert>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        cert_columns!(),
        " FROM ssh_certificates WHERE serial = $1"
    ))
    .bind(serial)
    .fetch_optional(db)
    .await
}

/// Certificates, newest first, of `user_id` when given, of `node_id` when given.
///
/// # Errors
/// Database failure.
pub async fn certs(
    db: impl AnyExecutor<'_>,
    user_id: Option<&str>,
    node_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Cert>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        cert_columns!(),
        " FROM ssh_certificates WHERE ($1 IS NULL OR user_id = $1) \
         AND ($2 IS NULL OR node_id = $2) ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(user_id)
    .bind(node_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Revokes a certificate; false when it already was.
///
/// # Errors
/// Database failure.
pub async fn revoke(db: impl AnyExecutor<'_>, id: &str, reason: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE ssh_certificates SET revoked_at = $2, revoked_reason = $3 \
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now_ms())
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes every unexpired certificate of a user; how many.
///
/// # Errors
/// Database failure.
pub async fn revoke_all_of(
    db: impl AnyExecutor<'_>,
    user_id: &str,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE ssh_certificates SET revoked_at = $2, revoked_reason = $3 \
         WHERE user_id = $1 AND revoked_at IS NULL AND valid_before > $2",
    )
    .bind(user_id)
    .bind(now)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Revoked certificates not yet expired at `now` (what a KRL must list): (CA key id,
/// serial, key id).
///
/// # Errors
/// Database failure.
pub async fn revoked_unexpired(
    db: impl AnyExecutor<'_>,
    now: i64,
) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ca_key_id, serial, key_id FROM ssh_certificates \
         WHERE revoked_at IS NOT NULL AND valid_before > $1 ORDER BY serial",
    )
    .bind(now)
    .fetch_all(db)
    .await
}

/// The KRL's version: it grows with every revocation.
///
/// # Errors
/// Database failure.
pub async fn krl_version(db: impl AnyExecutor<'_>) -> Result<i64, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(revoked_at) FROM ssh_certificates")
        .fetch_one(db)
        .await?;
    Ok(v.unwrap_or(0))
}

/// The organization of node `id`, if it exists.
///
/// # Errors
/// Database failure.
pub async fn node_org(db: impl AnyExecutor<'_>, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT org_id FROM nodes WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}
