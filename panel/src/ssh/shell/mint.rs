//! The one-minute certificate an SSH session through the panel logs in with: a fresh
//! Ed25519 key made here for the session, a certificate for `node:<node>:<login>` usable
//! only from the node's loopback (where the agent connects from), stored like every
//! certificate so it is listed and can be revoked (which ends the session).

use ssh_key::PrivateKey;

use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppResult};
use crate::ssh::ca;
use crate::ssh::store::{self, Cert};
use crate::state::AppState;
use crate::users::store::User;

/// How long the certificate is good for, in seconds.
pub const VALID_SECS: u64 = 60;
/// The addresses the agent reaches its node's sshd from.
const LOOPBACK: &str = "127.0.0.1/32,::1/128";

/// A session's key and certificate.
pub struct Minted {
    pub cert_id: String,
    /// OpenSSH private key text.
    pub private_key: String,
    /// One OpenSSH certificate line.
    pub certificate: String,
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}

/// Makes the key and signs its certificate for `user` on `node_id` as `login`.
///
/// # Errors
/// Database failures; a CA key that cannot be opened (a bug or a changed master key).
pub async fn mint(
    state: &AppState,
    user: &User,
    node_id: &str,
    login: &str,
    session_id: &str,
) -> AppResult<Minted> {
    let key = crate::ssh::handlers::signing_key(state).await?;
    let pem = crate::sealed::open(&state.master_key, &key.sealed_private).map_err(internal)?;
    let ca_key = PrivateKey::from_openssh(&pem).map_err(internal)?;
    let now = now_ms();
    let valid_after = u64::try_from(now / 1000).unwrap_or(0).saturating_sub(30);
    let valid_before = valid_after + 30 + VALID_SECS;
    let id = new_id();
    let principals = vec![format!("node:{node_id}:{login}")];
    let extensions = vec!["permit-pty".to_owned()];
    for _ in 0..4 {
        let serial = rand::random::<u64>() >> 1;
        let key_id = format!(
            "shardlyn user={} uid={} serial={serial} cert={id} node={node_id} session={session_id}",
            user.email, user.id
        );
        let (ca_key, key_id_now, principals_now, extensions_now) = (
            ca_key.clone(),
            key_id.clone(),
            principals.clone(),
            extensions.clone(),
        );
        let (session_key, certificate) = tokio::task::spawn_blocking(move || {
            let session_key = ca::generate("ed25519")?;
            let certificate = ca::sign(
                &ca_key,
                &ca::Request {
                    subject: session_key.public_key(),
                    serial,
                    key_id: &key_id_now,
                    principals: &principals_now,
                    valid_after,
                    valid_before,
                    force_command: None,
                    source_address: Some(LOOPBACK),
                    extensions: &extensions_now,
                },
            )?;
            Ok::<_, AppError>((session_key, certificate))
        })
        .await
        .map_err(internal)??;
        let row = Cert {
            id: id.clone(),
            serial: i64::try_from(serial).map_err(internal)?,
            ca_key_id: key.id.clone(),
            user_id: user.id.clone(),
            node_id: Some(node_id.to_owned()),
            key_id,
            principals: principals.join("\n"),
            public_key_fingerprint: ca::fingerprint(session_key.public_key()),
            certificate: certificate.clone(),
            force_command: None,
            source_address: Some(LOOPBACK.to_owned()),
            valid_after: i64::try_from(valid_after).unwrap_or(0) * 1000,
            valid_before: i64::try_from(valid_before).unwrap_or(0) * 1000,
            revoked_at: None,
            revoked_reason: None,
            created_at: now,
        };
        match store::insert_cert(&state.db.pool, &row).await {
            Ok(()) => {
                let private_key = session_key
                    .to_openssh(ssh_key::LineEnding::LF)
                    .map_err(internal)?
                    .to_string();
                return Ok(Minted {
                    cert_id: id,
                    private_key,
                    certificate,
                });
            }
            // A serial already taken: draw another.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(internal("no free certificate serial after 4 draws"))
}

/// Whether the certificate `id` was revoked (or is gone).
///
/// # Errors
/// Database failures.
pub async fn revoked(state: &AppState, id: &str) -> AppResult<bool> {
    Ok(store::cert(&state.db.pool, id)
        .await?
        .is_none_or(|c| c.revoked_at.is_some()))
}
