//! `/v1/users/me/ssh-keys`: the public keys a user may log in to SFTP with. A key is
//! validated and fingerprinted (SHA256) with the `ssh-key` crate, stored without its
//! comment, and unique per user by fingerprint.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::AnyExecutor;
use ssh_key::{Algorithm, HashAlg, PublicKey};

use crate::auth::extract::{CurrentUser, SessionUser};
use crate::db::{new_id, now_ms, ts};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::state::AppState;

/// Keys one user may hold.
const MAX_KEYS_PER_USER: i64 = 50;
/// Longest public key text accepted (an RSA-16384 key is about 2.8 kB).
const MAX_KEY_BYTES: usize = 8 * 1024;

/// A key as listed.
#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct SshKey {
    pub id: String,
    pub name: String,
    /// `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`...
    pub algorithm: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// OpenSSH form without the comment.
    pub public_key: String,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub last_used_at: Option<i64>,
}

/// The columns [`SshKey`] reads.
macro_rules! columns {
    () => {
        "id, name, algorithm, fingerprint, public_key, created_at, last_used_at"
    };
}

/// A public key parsed from OpenSSH text: its algorithm, fingerprint and comment-less
/// form.
pub(super) struct Parsed {
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
}

/// Parses and checks an OpenSSH public key (`ssh-ed25519 AAAA... comment`).
pub(super) fn parse(text: &str) -> Result<Parsed, String> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_KEY_BYTES {
        return Err(format!(
            "public_key must be an OpenSSH public key of at most {MAX_KEY_BYTES} bytes"
        ));
    }
    let mut key = PublicKey::from_openssh(text)
        .map_err(|e| format!("public_key is not a valid OpenSSH public key: {e}"))?;
    let algorithm = key.algorithm();
    match &algorithm {
        Algorithm::Dsa => return Err("DSA keys are not accepted".into()),
        Algorithm::Rsa { .. }
            if key
                .key_data()
                .rsa()
                .map_or(0, ssh_key::public::RsaPublicKey::key_size)
                < 2048 =>
        {
            return Err("RSA keys must have at least 2048 bits".into());
        }
        Algorithm::Other(_) => return Err("this key type is not supported".into()),
        _ => {}
    }
    key.set_comment("");
    let public_key = key
        .to_openssh()
        .map_err(|e| format!("public_key cannot be encoded: {e}"))?;
    Ok(Parsed {
        algorithm: algorithm.as_str().to_string(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        public_key: public_key.trim().to_string(),
    })
}

/// The key of `user_id` with `fingerprint`, if any.
pub(super) async fn find_by_fingerprint<'e>(
    db: impl AnyExecutor<'e>,
    user_id: &str,
    fingerprint: &str,
) -> Result<Option<SshKey>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM user_ssh_keys WHERE user_id = $1 AND fingerprint = $2"
    ))
    .bind(user_id)
    .bind(fingerprint)
    .fetch_optional(db)
    .await
}

/// Records a login with key `id`.
pub(super) async fn touch<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_ssh_keys SET last_used_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// `GET /v1/users/me/ssh-keys`: the caller's keys, newest first.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<AppJson<Vec<SshKey>>> {
    let keys = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM user_ssh_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(&user.user.id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(AppJson(keys))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CreateKey {
    name: String,
    public_key: String,
}

/// `POST /v1/users/me/ssh-keys`: adds a key. 422 for a bad name or key, 409 when the
/// caller already has it (or has too many).
pub async fn create(
    State(state): State<AppState>,
    SessionUser(user): SessionUser,
    AppJson(body): AppJson<CreateKey>,
) -> AppResult<(StatusCode, AppJson<SshKey>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Validation(
            "name must be 1 to 100 characters without control characters".into(),
        ));
    }
    let parsed = parse(&body.public_key).map_err(AppError::Validation)?;
    let mut tx = state.db.begin_write().await?;
    let count: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM user_ssh_keys WHERE user_id = $1")
            .bind(&user.user.id)
            .fetch_one(&mut *tx)
            .await?;
    if count >= MAX_KEYS_PER_USER {
        return Err(AppError::Conflict(format!(
            "at most {MAX_KEYS_PER_USER} SSH keys per account"
        )));
    }
    if find_by_fingerprint(&mut *tx, &user.user.id, &parsed.fingerprint)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(format!(
            "this key ({}) is already on your account",
            parsed.fingerprint
        )));
    }
    let key = SshKey {
        id: new_id(),
        name: name.to_string(),
        algorithm: parsed.algorithm,
        fingerprint: parsed.fingerprint,
        public_key: parsed.public_key,
        created_at: now_ms(),
        last_used_at: None,
    };
    sqlx::query(
        "INSERT INTO user_ssh_keys (id, user_id, name, algorithm, fingerprint, public_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.id)
    .bind(&user.user.id)
    .bind(&key.name)
    .bind(&key.algorithm)
    .bind(&key.fingerprint)
    .bind(&key.public_key)
    .bind(key.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, AppJson(key)))
}

/// `DELETE /v1/users/me/ssh-keys/{id}`: removes one of the caller's keys (404 for any
/// other id).
pub async fn delete(
    State(state): State<AppState>,
    SessionUser(user): SessionUser,
    AppPath(id): AppPath<String>,
) -> AppResult<StatusCode> {
    let done = sqlx::query("DELETE FROM user_ssh_keys WHERE id = $1 AND user_id = $2")
        .bind(&id)
        .bind(&user.user.id)
        .execute(&state.db.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found("SSH key"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@host";

    #[test]
    fn parses_fingerprints_and_drops_the_comment() {
        let p = parse(ED).unwrap();
        assert_eq!(p.algorithm, "ssh-ed25519");
        assert!(p.fingerprint.starts_with("SHA256:"), "{}", p.fingerprint);
        assert!(!p.public_key.contains("alice"));
        assert_eq!(parse(&p.public_key).unwrap().fingerprint, p.fingerprint);
    }

    #[test]
    fn refuses_junk() {
        assert!(parse("").is_err());
        assert!(parse("ssh-ed25519 notbase64!!").is_err());
        assert!(parse("hello world").is_err());
        assert!(parse(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
    }
}
