//! `GET`, `PUT`, `DELETE /v1/instances/{id}/git`: an instance's git settings.
//!
//! `PUT` creates or replaces them. The secrets follow "absent keeps, null or empty
//! removes, a value replaces": `deploy_key` (an unencrypted OpenSSH private key, checked
//! with `ssh-key`, for ssh URLs) and `token` (sent as HTTP basic auth, for https URLs) are
//! sealed and never returned; the key's SHA-256 fingerprint is. The repository's host
//! goes through the outbound guard ([`shardlyn_net::outbound`]) before it is saved.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use shardlyn_proto::git::{UrlKind, check_branch, check_url, repo_key};

use super::store::{self, GitConfig};
use super::{GitConfigView, config_view};
use crate::authz::{Authorized, perm};
use crate::db::now_ms;
use crate::error::{AppError, AppJson, AppResult};
use crate::instances::Instance;
use crate::state::AppState;
use shardlyn_proto::agent_api as api;

/// Largest deploy key accepted (an RSA-4096 key is about 3.4 KiB).
const MAX_KEY_BYTES: usize = 16 * 1024;
/// Largest token accepted.
const MAX_TOKEN_BYTES: usize = 1024;
/// Longest target directory accepted.
const MAX_DIR_BYTES: usize = 1024;

/// The `PUT` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    #[serde(alias = "repo_url", alias = "url")]
    pub repository_url: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default, alias = "target_dir")]
    pub target_directory: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub deploy_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub token: Option<Option<String>>,
    #[serde(default)]
    pub token_username: Option<String>,
    #[serde(default)]
    pub restart_after_sync: bool,
}

/// Tells an absent field (`None`) from an explicit null (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// What a secret field asks for.
enum Secret {
    Keep,
    Remove,
    Set(String),
}

fn secret(field: Option<Option<String>>) -> Secret {
    match field {
        None => Secret::Keep,
        Some(None) => Secret::Remove,
        Some(Some(s)) if s.trim().is_empty() => Secret::Remove,
        Some(Some(s)) => Secret::Set(s),
    }
}

/// A target directory inside the instance, normalized to `/a/b` (`/` = the root).
fn target_dir(raw: &str) -> AppResult<String> {
    let bad = |m: &str| AppError::unprocessable("target_directory", m);
    if raw.len() > MAX_DIR_BYTES {
        return Err(bad("the target directory is too long"));
    }
    if raw.chars().any(|c| c.is_control() || c == '\\') {
        return Err(bad(
            "the target directory contains a control character or a backslash",
        ));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("the target directory cannot contain '..'")),
            p if p.len() > 255 => return Err(bad("a path component is too long")),
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Parses a deploy key; its fingerprint (`SHA256:...`).
fn deploy_key_fingerprint(key: &str) -> AppResult<String> {
    let bad = |m: &str| AppError::unprocessable("deploy_key", m);
    if key.len() > MAX_KEY_BYTES {
        return Err(bad("the deploy key is too large"));
    }
    let parsed = ssh_key::PrivateKey::from_openssh(key.trim()).map_err(|_| {
        bad("the deploy key is not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)")
    })?;
    if parsed.is_encrypted() {
        return Err(bad(
            "the deploy key is protected by a passphrase: give an unencrypted key",
        ));
    }
    Ok(parsed
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string())
}

fn check_token(token: &str, username: Option<&str>) -> AppResult<()> {
    if token.len() > MAX_TOKEN_BYTES || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AppError::unprocessable(
            "token",
            "the token must be at most 1024 characters without spaces or control characters",
        ));
    }
    if let Some(u) = username
        && (u.is_empty()
            || u.len() > 255
            || u.chars()
                .any(|c| c == ':' || c.is_control() || c.is_whitespace()))
    {
        return Err(AppError::unprocessable(
            "token_username",
            "the token user name must be 1-255 characters without ':', spaces or control characters",
        ));
    }
    Ok(())
}

/// Applies `body` over `existing` (if any): the row to store.
fn merge(
    state: &AppState,
    instance: &crate::instances::store::Instance,
    existing: Option<GitConfig>,
    body: PutBody,
) -> AppResult<GitConfig> {
    let url = body.repository_url.trim().to_owned();
    let kind = check_url(&url).map_err(|m| AppError::unprocessable("repository_url", m))?;
    let key = repo_key(&url)
        .ok_or_else(|| AppError::unprocessable("repository_url", "unusable repository URL"))?;
    let branch = body
        .branch
        .map_or_else(|| "main".to_owned(), |b| b.trim().to_owned());
    check_branch(&branch).map_err(|m| AppError::unprocessable("branch", m))?;
    let target = target_dir(body.target_directory.as_deref().unwrap_or("/"))?;
    let now = now_ms();
    let mut row = existing.unwrap_or_else(|| GitConfig {
        instance_id: instance.id.clone(),
        org_id: instance.org_id.clone(),
        repo_url: String::new(),
        repo_key: String::new(),
        branch: String::new(),
        target_dir: String::new(),
        sealed_deploy_key: None,
        deploy_key_fingerprint: None,
        sealed_token: None,
        token_username: None,
        restart_after_sync: false,
        created_at: now,
        updated_at: now,
    });
    match secret(body.deploy_key) {
        Secret::Keep => {}
        Secret::Remove => {
            row.sealed_deploy_key = None;
            row.deploy_key_fingerprint = None;
        }
        Secret::Set(k) => {
            row.deploy_key_fingerprint = Some(deploy_key_fingerprint(&k)?);
            let text = format!("{}\n", k.trim());
            row.sealed_deploy_key = Some(crate::sealed::seal(&state.master_key, text.as_bytes()));
        }
    }
    match secret(body.token) {
        Secret::Keep => {}
        Secret::Remove => row.sealed_token = None,
        Secret::Set(t) => {
            check_token(t.trim(), None)?;
            row.sealed_token = Some(crate::sealed::seal(&state.master_key, t.trim().as_bytes()));
        }
    }
    let username = body.token_username.map(|u| u.trim().to_owned());
    check_token("", username.as_deref())?;
    row.token_username = if row.sealed_token.is_some() {
        username
    } else {
        None
    };
    if row.sealed_deploy_key.is_some() && row.sealed_token.is_some() {
        return Err(AppError::unprocessable(
            "token",
            "give either a deploy key or a token, not both",
        ));
    }
    if row.sealed_deploy_key.is_some() && kind != UrlKind::Ssh {
        return Err(AppError::unprocessable(
            "deploy_key",
            "a deploy key is only used with ssh URLs (git@host:owner/repo.git or ssh://...)",
        ));
    }
    if row.sealed_token.is_some() && kind != UrlKind::Http {
        return Err(AppError::unprocessable(
            "token",
            "a token is only used with http(s) URLs",
        ));
    }
    row.repo_url = url;
    row.repo_key = key;
    row.branch = branch;
    row.target_dir = target;
    row.restart_after_sync = body.restart_after_sync;
    row.updated_at = now;
    Ok(row)
}

fn not_configured() -> AppError {
    AppError::coded(
        StatusCode::NOT_FOUND,
        "GIT_NOT_CONFIGURED",
        "git deploy is not configured for this instance",
    )
}

/// The settings of `instance`, or 404 `GIT_NOT_CONFIGURED`.
pub(crate) async fn configured(state: &AppState, instance_id: &str) -> AppResult<GitConfig> {
    store::find(&state.db.pool, instance_id)
        .await?
        .ok_or_else(not_configured)
}

/// `GET /v1/instances/{id}/git`.
pub async fn get(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesGit>,
) -> AppResult<AppJson<GitConfigView>> {
    let config = configured(&state, &instance.id).await?;
    Ok(AppJson(config_view(&config)))
}

/// `PUT /v1/instances/{id}/git`: 201 when created, 200 when replaced.
pub async fn put(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesGit>,
    request: axum::extract::Request,
) -> AppResult<(StatusCode, AppJson<GitConfigView>)> {
    // Authorized before the body is read: a caller without the permission learns nothing.
    let AppJson(body) =
        <AppJson<PutBody> as axum::extract::FromRequest<AppState>>::from_request(request, &state)
            .await?;
    // The outbound guard, before anything is saved: a remote on a refused address
    // (loopback, private, metadata...) is refused with 422 `OUTBOUND_DENIED`; the agent
    // checks again, and pins the address, at each fetch.
    if let Some(remote) = shardlyn_proto::git::remote(body.repository_url.trim()) {
        state
            .config
            .outbound
            .precheck(&remote.host, remote.port)
            .await?;
    }
    let existing = store::find(&state.db.pool, &instance.id).await?;
    let created = existing.is_none();
    let row = merge(&state, &instance, existing, body)?;
    store::save(&state.db.pool, &row).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, AppJson(config_view(&row))))
}

/// `DELETE /v1/instances/{id}/git`: removes the settings and the history (409 while a
/// sync runs); the node drops its staging copy.
pub async fn delete(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesGit>,
) -> AppResult<StatusCode> {
    configured(&state, &instance.id).await?;
    if super::sync::running(&state, &instance.id).await?.is_some() {
        return Err(super::sync::busy());
    }
    let mut tx = state.db.pool.begin().await?;
    store::delete(&mut *tx, &instance.id).await?;
    sqlx::query("DELETE FROM git_syncs WHERE instance_id = $1")
        .bind(&instance.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if let Some(conn) = state.tunnels.find(&instance.node_id).await {
        let _ = conn
            .request::<api::GitForget>(&instance.id.as_str(), &(), &())
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_directories_stay_inside() {
        assert_eq!(target_dir("").expect("root"), "/");
        assert_eq!(target_dir("/").expect("root"), "/");
        assert_eq!(target_dir("plugins//x/./").expect("dir"), "/plugins/x");
        for bad in [
            "../x",
            "a/../../b",
            "a\\b",
            "a\0b",
            "a/..",
            &"x".repeat(2000),
        ] {
            assert!(target_dir(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deploy_keys_are_checked() {
        assert!(deploy_key_fingerprint("not a key").is_err());
        assert!(
            deploy_key_fingerprint(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
            )
            .is_err()
        );
    }

    #[test]
    fn tokens_cannot_inject_headers() {
        assert!(check_token("ghp_abc", Some("x-access-token")).is_ok());
        assert!(check_token("a\r\nX-Evil: 1", None).is_err());
        assert!(check_token("t", Some("a:b")).is_err());
    }
}
