//! Checking an SFTP login an agent asks about: the account's password, one of its
//! SSH keys or a certificate the panel's CA issued for the username (`certs.rs`), then
//! `instances.sftp` on the instance named by the username, checked by
//! [`crate::authz::load`] like every API request (read and write rights from
//! `instances.files.read` / `instances.files.write`). The answer goes back to the agent
//! with `POST /v1/sftp/auth/{id}`.
//!
//! Password logins share the login's account lockout. An account with MFA enabled can
//! only log in with a key: a password alone would bypass its second factor.

use std::sync::Arc;

use shardlyn_proto::instance::Event;
use shardlyn_proto::sftp::{AuthAnswer, AuthRequest, SFTP_AUTH, split_username};

use super::{certs, keys};
use crate::auth::crypto::{normalize_email, verify_password};
use crate::auth::lockout;
use crate::authz::{self, perm};
use crate::error::{AppError, AppResult};
use crate::instances::Instance;
use crate::state::AppState;
use crate::tunnel::AgentConn;
use crate::users::store::{self as users, UserAuthRow};

/// Longest password looked at (as the login route).
const MAX_PASSWORD_BYTES: usize = 1024;

/// Handles one line of an agent's `/v1/events` stream if it is an `sftp auth` event
/// (the check runs in the background); `false` for any other line.
pub fn dispatch(state: &AppState, conn: &Arc<AgentConn>, line: &[u8]) -> bool {
    let Ok(event) = serde_json::from_slice::<Event>(line) else {
        return false;
    };
    if event.event != SFTP_AUTH {
        return false;
    }
    let Some(Ok(request)) = event
        .args
        .into_iter()
        .next()
        .map(serde_json::from_value::<AuthRequest>)
    else {
        tracing::debug!(node.id = %conn.node_id, "unreadable sftp auth event");
        return true;
    };
    if request.id.is_empty()
        || request.id.len() > 64
        || !request.id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return true;
    }
    let (state, conn) = (state.clone(), conn.clone());
    tokio::spawn(async move {
        let answer = match check(&state, &conn.node_id, &request).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(node.id = %conn.node_id, error = %e, "checking an SFTP login");
                AuthAnswer::deny("the panel failed to check the login")
            }
        };
        tracing::info!(
            node.id = %conn.node_id,
            sftp.user = %request.username,
            sftp.peer = %request.remote_ip,
            allow = answer.allow,
            reason = answer.reason.as_deref().unwrap_or(""),
            "SFTP login checked"
        );
        let sent = conn
            .request::<shardlyn_proto::agent_api::SftpAnswer>(&request.id.as_str(), &(), &answer)
            .await;
        if let Err(e) = sent {
            tracing::debug!(node.id = %conn.node_id, error = %e, "answering an SFTP login");
        }
    });
    true
}

/// The instance part of a username: 8 to 36 characters of a UUID.
fn instance_prefix(s: &str) -> Option<String> {
    let s = s.to_ascii_lowercase();
    ((8..=36).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then_some(s)
}

/// The shortest prefix (8 characters at least) of `id` that no other id in `others`
/// starts with: the instance part of an SFTP username that always finds one server.
#[must_use]
pub fn unique_prefix<'a>(id: &'a str, others: &[String]) -> &'a str {
    let mut len = 8.min(id.len());
    while len < id.len() && others.iter().any(|o| o != id && o.starts_with(&id[..len])) {
        len += 1;
    }
    &id[..len]
}

/// The instance part of the SFTP username of instance `id` on node `node_id`: its first
/// 8 characters, or more when another instance of the node shares them (ids are
/// UUIDv7, whose first 8 characters change only every 65 s).
///
/// # Errors
/// Database errors.
pub async fn username_suffix(state: &AppState, node_id: &str, id: &str) -> AppResult<String> {
    let Some(head) = id.get(..8) else {
        return Ok(id.to_owned());
    };
    let others: Vec<String> =
        sqlx::query_scalar("SELECT id FROM instances WHERE node_id = $1 AND id LIKE $2")
            .bind(node_id)
            .bind(format!("{head}%"))
            .fetch_all(&state.db.pool)
            .await?;
    Ok(unique_prefix(id, &others).to_owned())
}

/// Decides on one login.
async fn check(state: &AppState, node_id: &str, req: &AuthRequest) -> AppResult<AuthAnswer> {
    let Some((email, instance)) = split_username(&req.username) else {
        return Ok(AuthAnswer::deny("username is not <email>.<instance id>"));
    };
    let Some(prefix) = instance_prefix(instance) else {
        return Ok(AuthAnswer::deny("username does not end in an instance id"));
    };
    let account = match normalize_email(&email) {
        Ok(email) => users::find_auth_by_email(&state.db.pool, &email).await?,
        Err(_) => None,
    };
    let verdict = match (&req.password, &req.public_key, &req.certificate) {
        (Some(password), None, None) => check_password(state, account.as_ref(), password).await?,
        (None, Some(key), None) => check_key(state, account.as_ref(), key).await?,
        (None, None, Some(cert)) => {
            certs::check(state, account.as_ref(), &req.username, cert, &req.remote_ip).await?
        }
        _ => Some("exactly one of password, public key and certificate is required".into()),
    };
    if let Some(reason) = verdict {
        return Ok(AuthAnswer::deny(reason));
    }
    let Some(account) = account else {
        return Ok(AuthAnswer::deny("unknown account"));
    };
    if account.user.suspended {
        return Ok(AuthAnswer::deny("account suspended"));
    }
    grant(state, node_id, &account, &prefix).await
}

/// `None` when the password is right; otherwise why not.
async fn check_password(
    state: &AppState,
    account: Option<&UserAuthRow>,
    password: &str,
) -> AppResult<Option<String>> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(Some("password too long".into()));
    }
    if account.is_some_and(|a| lockout::remaining_secs(a.locked_until).is_some()) {
        return Ok(Some("account locked after failed logins".into()));
    }
    let ok = verify_password(
        password.to_owned(),
        account.map(|a| a.password_hash.clone()),
    )
    .await;
    let Some(account) = account else {
        return Ok(Some("unknown account".into()));
    };
    if !ok {
        lockout::record_failure(&state.db.pool, &state.config.auth, &account.user.id).await?;
        return Ok(Some("wrong password".into()));
    }
    lockout::clear(&state.db.pool, &account.user.id).await?;
    crate::auth::login::upgrade_bcrypt(state, account, password.to_owned()).await?;
    if account.user.mfa_enabled {
        return Ok(Some(
            "the account has MFA enabled: log in with an SSH key".into(),
        ));
    }
    Ok(None)
}

/// `None` when the key is one of the account's; otherwise why not.
async fn check_key(
    state: &AppState,
    account: Option<&UserAuthRow>,
    key: &str,
) -> AppResult<Option<String>> {
    let Some(account) = account else {
        return Ok(Some("unknown account".into()));
    };
    let Ok(parsed) = keys::parse(key) else {
        return Ok(Some("unreadable public key".into()));
    };
    let stored =
        keys::find_by_fingerprint(&state.db.pool, &account.user.id, &parsed.fingerprint).await?;
    match stored {
        Some(stored) if stored.public_key == parsed.public_key => {
            keys::touch(&state.db.pool, &stored.id).await?;
            Ok(None)
        }
        _ => Ok(Some("the key is not on the account".into())),
    }
}

/// The one instance of this node matching `prefix` that the user may reach over SFTP:
/// `instances.sftp` is checked by [`authz::load`], as for every API request.
async fn grant(
    state: &AppState,
    node_id: &str,
    account: &UserAuthRow,
    prefix: &str,
) -> AppResult<AuthAnswer> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM instances WHERE node_id = $1 AND id LIKE $2")
            .bind(node_id)
            .bind(format!("{prefix}%"))
            .fetch_all(&state.db.pool)
            .await?;
    let mut allowed = Vec::new();
    for id in ids {
        match authz::load::<Instance, perm::InstancesSftp>(state, &account.user, &id).await {
            Ok((_, member)) => allowed.push((
                id,
                member.can("instances.files.read"),
                member.can("instances.files.write"),
            )),
            Err(AppError::NotFound(_) | AppError::Forbidden(_)) => {}
            Err(e) => return Err(e),
        }
    }
    match allowed.as_slice() {
        [] => Ok(AuthAnswer::deny(
            "no such instance, or no SFTP permission on it",
        )),
        [(id, read, write)] if *read || *write => Ok(AuthAnswer {
            allow: true,
            instance: Some(id.clone()),
            user_id: Some(account.user.id.clone()),
            read: *read,
            write: *write,
            reason: None,
        }),
        [_] => Ok(AuthAnswer::deny("no file permission on the instance")),
        _ => Ok(AuthAnswer::deny(
            "the instance id prefix is ambiguous: use a longer prefix or the full id",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_prefixes_grow_past_a_shared_head() {
        let a = "0193e0c4-6f1e-7b3a-8000-000000000001";
        let b = "0193e0c4-6f2a-7b3a-8000-000000000002";
        let c = "0193e0c5-0000-7000-8000-000000000003";
        let all = [a.to_owned(), b.to_owned(), c.to_owned()];
        assert_eq!(unique_prefix(c, &all), "0193e0c5");
        assert_eq!(unique_prefix(a, &all), "0193e0c4-6f1");
        assert_eq!(unique_prefix(b, &all), "0193e0c4-6f2");
        assert_eq!(unique_prefix(a, &[a.to_owned()]), "0193e0c4");
        assert_eq!(unique_prefix("short", &[]), "short");
    }

    #[test]
    fn instance_prefixes_are_uuid_pieces() {
        assert_eq!(instance_prefix("0192ABCD").as_deref(), Some("0192abcd"));
        assert!(instance_prefix("0192abc").is_none());
        assert!(instance_prefix("0192abcz").is_none());
        assert!(instance_prefix("0192abcd%").is_none());
        assert!(instance_prefix(&"a".repeat(37)).is_none());
        assert!(instance_prefix("01936b2e-1c2d-7e3f-8a4b-5c6d7e8f9a0b").is_some());
    }
}
