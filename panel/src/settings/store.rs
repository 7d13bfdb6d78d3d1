//! SQL of the settings area: the `platform_settings` documents (one JSON value per group)
//! and the `platform_ssh_keys` rows, mapped in one place each.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{AnyConnection, AnyPool};

use crate::db::row::Flag;
use crate::db::{now_ms, ts};

/// Reads the settings group `name`; `None` while it was never saved or no longer parses
/// (the caller falls back to the defaults).
///
/// # Errors
/// A database failure.
pub async fn load<T: DeserializeOwned>(
    pool: &AnyPool,
    name: &str,
) -> Result<Option<T>, sqlx::Error> {
    let value: Option<String> =
        sqlx::query_scalar("SELECT value FROM platform_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(value.and_then(|v| match serde_json::from_str(&v) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            tracing::warn!(
                settings.group = name,
                "stored settings do not parse, using defaults: {e}"
            );
            None
        }
    }))
}

/// The id of this panel's cluster (every replica on one database reads the same),
/// made on first use: the `cluster` group holds it.
///
/// # Errors
/// A database failure.
pub async fn cluster_id(pool: &AnyPool) -> Result<String, sqlx::Error> {
    let fresh = serde_json::json!({ "id": uuid::Uuid::new_v4().simple().to_string() });
    sqlx::query(
        "INSERT INTO platform_settings (name, value, updated_at) VALUES ('cluster', $1, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(fresh.to_string())
    .bind(now_ms())
    .execute(pool)
    .await?;
    let stored: Option<serde_json::Value> = load(pool, "cluster").await?;
    stored
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| sqlx::Error::Protocol("the stored cluster id is unreadable".into()))
}

/// Writes the settings group `name`.
///
/// # Errors
/// A database failure.
pub async fn save<T: Serialize>(
    conn: &mut AnyConnection,
    name: &str,
    value: &T,
    by: &str,
) -> Result<(), sqlx::Error> {
    let json = serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO platform_settings (name, value, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET value = $2, updated_by = $3, updated_at = $4",
    )
    .bind(name)
    .bind(json)
    .bind(by)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// A provisioning SSH key as the API shows it: never the private half.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct SshKey {
    pub name: String,
    /// `ssh-ed25519`, `ssh-rsa`...
    pub algorithm: String,
    /// `SHA256:...`
    pub fingerprint: String,
    /// The OpenSSH public key line (`algorithm base64 name`), for `authorized_keys`.
    pub public_key: String,
    #[sqlx(try_from = "Flag")]
    pub is_default: bool,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
}

/// The key columns [`SshKey`] reads.
macro_rules! key_columns {
    () => {
        "name, algorithm, fingerprint, public_key, is_default, created_at"
    };
}

/// Every key, oldest first.
///
/// # Errors
/// A database failure.
pub async fn list_keys(pool: &AnyPool) -> Result<Vec<SshKey>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM platform_ssh_keys ORDER BY created_at, name"
    ))
    .fetch_all(pool)
    .await
}

/// One key by name.
///
/// # Errors
/// A database failure.
pub async fn find_key(conn: &mut AnyConnection, name: &str) -> Result<Option<SshKey>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM platform_ssh_keys WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// A key to insert; `sealed_private_key` is already sealed under the master key.
pub struct NewKey<'a> {
    pub name: &'a str,
    pub algorithm: &'a str,
    pub fingerprint: &'a str,
    pub public_key: &'a str,
    pub sealed_private_key: &'a str,
    pub is_default: bool,
    pub created_by: &'a str,
}

/// Inserts a key (a taken name or fingerprint is a unique violation: 409).
///
/// # Errors
/// A database failure or a unique violation.
pub async fn insert_key(conn: &mut AnyConnection, key: &NewKey<'_>) -> Result<i64, sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO platform_ssh_keys \
         (name, algorithm, fingerprint, public_key, sealed_private_key, is_default, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(key.name)
    .bind(key.algorithm)
    .bind(key.fingerprint)
    .bind(key.public_key)
    .bind(key.sealed_private_key)
    .bind(i64::from(key.is_default))
    .bind(key.created_by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(now)
}

/// Whether some key is the default.
///
/// # Errors
/// A database failure.
pub async fn has_default(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM platform_ssh_keys WHERE is_default = 1",
    )
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Deletes a key; false when there was none of that name.
///
/// # Errors
/// A database failure.
pub async fn delete_key(conn: &mut AnyConnection, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM platform_ssh_keys WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Makes `name` the one default key; false when there is no such key.
///
/// # Errors
/// A database failure.
pub async fn set_default(conn: &mut AnyConnection, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE platform_ssh_keys SET is_default = CASE WHEN name = $1 THEN 1 ELSE 0 END \
         WHERE EXISTS (SELECT 1 FROM platform_ssh_keys WHERE name = $1)",
    )
    .bind(name)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A key with its sealed private half.
#[derive(sqlx::FromRow)]
struct KeyMaterial {
    #[sqlx(flatten)]
    key: SshKey,
    sealed_private_key: String,
}

/// The default key's public line and sealed private key, for provisioning.
///
/// # Errors
/// A database failure.
pub async fn default_key_material(pool: &AnyPool) -> Result<Option<(SshKey, String)>, sqlx::Error> {
    let row: Option<KeyMaterial> = sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        ", sealed_private_key FROM platform_ssh_keys WHERE is_default = 1"
    ))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.key, r.sealed_private_key)))
}
