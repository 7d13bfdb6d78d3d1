//! The SSH CA routes.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ssh_key::{PrivateKey, PublicKey};

use super::ca;
use super::store::{self, CaKey, Cert};
use super::view::{CaKeyList, CaKeyView, CertList, CertView, Signed};
use crate::auth::extract::{AdminUser, CurrentUser};
use crate::db::{new_id, now_ms};
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::respond::Created;
use crate::state::AppState;

/// The login a certificate is for when none is asked.
const DEFAULT_LOGIN: &str = "shardlyn";
/// Validity when none is asked, in hours (capped by the platform's maximum).
const DEFAULT_HOURS: u32 = 8;
/// Most logins one certificate may name.
const MAX_LOGINS: usize = 8;
/// Most principals (nodes × logins) one certificate may carry.
const MAX_PRINCIPALS: usize = 256;
/// Certificates listed at most.
const LIST_LIMIT: i64 = 500;
/// Extensions a certificate may carry.
const EXTENSIONS: [&str; 5] = [
    "permit-pty",
    "permit-port-forwarding",
    "permit-agent-forwarding",
    "permit-X11-forwarding",
    "permit-user-rc",
];

fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::coded(StatusCode::CONFLICT, code, message)
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}

/// Stores a new CA key; `active` makes it the signing key.
async fn create_key(state: &AppState, algorithm: &str, active: bool) -> AppResult<CaKey> {
    let algorithm = algorithm.to_owned();
    let private =
        tokio::task::spawn_blocking(move || ca::generate(&algorithm).map(|k| (algorithm, k)))
            .await
            .map_err(internal)??;
    let (algorithm, private) = private;
    let public = private.public_key();
    let pem = private
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(internal)?;
    let key = CaKey {
        id: new_id(),
        algorithm,
        public_key: public.to_openssh().map_err(internal)?,
        fingerprint: ca::fingerprint(public),
        sealed_private: crate::sealed::seal(&state.master_key, pem.as_bytes()),
        active,
        created_at: now_ms(),
        retired_at: None,
        trusted_until: None,
    };
    store::insert_key(&state.db.pool, &key).await?;
    Ok(key)
}

/// The signing key, created (Ed25519) on first use.
pub(super) async fn signing_key(state: &AppState) -> AppResult<CaKey> {
    if let Some(k) = store::active_key(&state.db.pool).await? {
        return Ok(k);
    }
    match create_key(state, "ed25519", true).await {
        Ok(k) => Ok(k),
        // Another request created it meanwhile.
        Err(AppError::Conflict(_)) => store::active_key(&state.db.pool)
            .await?
            .ok_or_else(|| internal("no active CA key")),
        Err(e) => Err(e),
    }
}

fn private_of(state: &AppState, key: &CaKey) -> AppResult<PrivateKey> {
    let pem = crate::sealed::open(&state.master_key, &key.sealed_private).map_err(internal)?;
    PrivateKey::from_openssh(&pem).map_err(internal)
}

/// `GET /v1/ssh/ca-public-key`: every CA key nodes should trust, one per line, ready for
/// `TrustedUserCAKeys`.
pub async fn public_keys(State(state): State<AppState>) -> AppResult<Response> {
    signing_key(&state).await?;
    let text = super::trust::trusted_keys(&state).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /v1/ssh/krl`: the OpenSSH KRL of every revoked certificate not yet expired, for
/// `RevokedKeys` (`ssh-keygen -Q -f` reads it).
pub async fn revocation_list(State(state): State<AppState>) -> AppResult<Response> {
    let body = super::trust::krl(&state).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// The body of `POST /v1/ssh/ca/keys` and `.../rotate`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// `ed25519` (default), `ecdsa-p256`, `rsa-3072` or `rsa-4096`.
    #[serde(default)]
    pub algorithm: Option<String>,
}

/// `GET /v1/ssh/ca/keys` (platform admins).
pub async fn list_keys(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<CaKeyList>> {
    let now = now_ms();
    let data = store::keys(&state.db.pool)
        .await?
        .iter()
        .map(|k| CaKeyView::of(k, now))
        .collect();
    Ok(AppJson(CaKeyList { data }))
}

/// `POST /v1/ssh/ca/keys` (platform admins): the CA's first key; 409 `CA_KEY_EXISTS`
/// when there is one (rotate it instead).
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    body: axum::body::Bytes,
) -> AppResult<Created<CaKeyView>> {
    let body: KeyBody = crate::backups::optional_json(&body)?;
    if store::active_key(&state.db.pool).await?.is_some() {
        return Err(conflict(
            "CA_KEY_EXISTS",
            "the CA has a key: rotate it (POST /v1/ssh/ca/keys/rotate) to replace it",
        ));
    }
    let algorithm = body.algorithm.as_deref().unwrap_or("ed25519");
    let key = match create_key(&state, algorithm, true).await {
        Err(AppError::Conflict(_)) => {
            return Err(conflict("CA_KEY_EXISTS", "the CA got a key meanwhile"));
        }
        other => other?,
    };
    Ok(Created(CaKeyView::of(&key, now_ms())))
}

/// `POST /v1/ssh/ca/keys/rotate` (platform admins): a new signing key; the old one stays
/// trusted until the last certificate it signed expires.
pub async fn rotate(
    State(state): State<AppState>,
    _admin: AdminUser,
    body: axum::body::Bytes,
) -> AppResult<Created<CaKeyView>> {
    let body: KeyBody = crate::backups::optional_json(&body)?;
    let algorithm = body.algorithm.as_deref().unwrap_or("ed25519");
    // Refuse a bad algorithm before anything changes.
    ca::known(algorithm)?;
    if let Some(old) = store::active_key(&state.db.pool).await? {
        let until = store::last_expiry(&state.db.pool, &old.id).await?;
        store::retire_active(&state.db.pool, until).await?;
    }
    let key = create_key(&state, algorithm, true).await?;
    Ok(Created(CaKeyView::of(&key, now_ms())))
}

/// The body of `POST /v1/ssh/certificate`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// The user's public key, OpenSSH one-line form (`ssh-ed25519 AAAA...`).
    pub public_key: String,
    /// Logins on the node (default `shardlyn`); each becomes `node:<node id>:<login>`.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Default 8, at most the platform's `ssh_certificate_max_hours`.
    #[serde(default)]
    pub validity_hours: Option<u32>,
    /// One node; omitted, every node the caller may reach with `nodes.ssh` now.
    #[serde(default)]
    pub node_id: Option<String>,
    /// A server to log in to over SFTP instead of nodes (not with `node_id`,
    /// `principals` or `force_command`): the certificate's one principal is the caller's
    /// SFTP username of that server (`<email>.<id prefix>`); needs `instances.sftp` on it.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The only command the certificate may run.
    #[serde(default)]
    pub force_command: Option<String>,
    /// Comma-separated addresses or CIDR blocks the certificate may be used from.
    #[serde(default)]
    pub source_address: Option<String>,
    /// Default `permit-pty` only.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
}

/// A node login name: lowercase letters, digits, `_` and `-`, at most 32.
pub(super) fn valid_login(login: &str) -> bool {
    let mut chars = login.chars();
    login.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn valid_source(list: &str) -> bool {
    !list.is_empty()
        && list.split(',').all(|entry| {
            let (ip, prefix) = entry.split_once('/').unwrap_or((entry, ""));
            let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
                return false;
            };
            let max = if ip.is_ipv4() { 32 } else { 128 };
            prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|p| p <= max)
        })
}

/// The nodes a certificate covers: the one named (404 unknown or another organization's
/// without `nodes.ssh` there), or every node the caller may reach.
async fn nodes_for(
    state: &AppState,
    user: &CurrentUser,
    node_id: Option<&str>,
) -> AppResult<Vec<String>> {
    let pool = &state.db.pool;
    if let Some(id) = node_id.map(str::trim).filter(|s| !s.is_empty()) {
        let org = store::node_org(pool, id)
            .await?
            .ok_or_else(|| AppError::not_found("node"))?;
        if !user.user.is_admin {
            crate::orgs::permissions::authorize(state, user, &org, "nodes.ssh")
                .await
                .map_err(|e| match e {
                    AppError::NotFound(_) => AppError::not_found("node"),
                    other => other,
                })?;
        }
        return Ok(vec![id.to_owned()]);
    }
    let mut nodes = Vec::new();
    for org in crate::orgs::store::list_for_user(pool, &user.user.id).await? {
        if crate::orgs::permissions::authorize(state, user, &org.org.id, "nodes.ssh")
            .await
            .is_ok()
        {
            nodes.extend(
                crate::nodes::store::list(pool, &org.org.id)
                    .await?
                    .into_iter()
                    .map(|n| n.id),
            );
        }
    }
    if nodes.is_empty() {
        return Err(AppError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "NO_NODES",
            "you may reach no node with SSH (the nodes.ssh permission): name a node_id",
        ));
    }
    Ok(nodes)
}

/// `POST /v1/ssh/certificate`: signs the caller's public key (200 with the certificate).
pub async fn sign(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<SignBody>,
) -> AppResult<AppJson<Signed>> {
    let subject = PublicKey::from_openssh(body.public_key.trim()).map_err(|e| {
        AppError::invalid_field("public_key", format!("not an OpenSSH public key: {e}"))
    })?;
    let node_id = body
        .node_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let instance_id = body
        .instance_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if instance_id.is_some() {
        super::sftp::refuse_node_fields(&body, node_id.is_some())?;
    }
    let mut logins = body.principals.clone();
    if logins.is_empty() {
        logins.push(DEFAULT_LOGIN.into());
    }
    if logins.len() > MAX_LOGINS {
        return Err(AppError::invalid_field(
            "principals",
            format!("at most {MAX_LOGINS} logins"),
        ));
    }
    if let Some(bad) = logins.iter().find(|l| !valid_login(l)) {
        return Err(AppError::invalid_field(
            "principals",
            format!("{bad:?} is not a login name (lowercase letters, digits, _ and -)"),
        ));
    }
    let max = crate::settings::platform::current(&state)
        .await?
        .ssh_certificate_max_hours;
    let hours = body.validity_hours.unwrap_or(DEFAULT_HOURS.min(max));
    if hours == 0 || hours > max {
        return Err(AppError::unprocessable(
            "validity_hours",
            format!("validity_hours must be between 1 and {max} (the platform's maximum)"),
        ));
    }
    if let Some(from) = &body.source_address
        && !valid_source(from)
    {
        return Err(AppError::invalid_field(
            "source_address",
            "source_address must be addresses or CIDR blocks, comma separated",
        ));
    }
    if let Some(command) = &body.force_command
        && (command.is_empty() || command.len() > 1024 || command.chars().any(char::is_control))
    {
        return Err(AppError::invalid_field(
            "force_command",
            "force_command must be 1 to 1024 characters without control characters",
        ));
    }
    let extensions = body
        .extensions
        .clone()
        .unwrap_or_else(|| vec!["permit-pty".into()]);
    if let Some(bad) = extensions
        .iter()
        .find(|e| !EXTENSIONS.contains(&e.as_str()))
    {
        return Err(AppError::invalid_field(
            "extensions",
            format!("{bad:?} is not one of {}", EXTENSIONS.join(", ")),
        ));
    }
    let (principals, node_id, scope) = if let Some(instance) = instance_id {
        let sftp = super::sftp::scope(&state, &user, instance).await?;
        let scope = format!("node={} instance={}", sftp.node_id, sftp.instance_id);
        (vec![sftp.principal], Some(sftp.node_id), scope)
    } else {
        let nodes = nodes_for(&state, &user, node_id.as_deref()).await?;
        let principals: Vec<String> = nodes
            .iter()
            .flat_map(|n| logins.iter().map(move |l| format!("node:{n}:{l}")))
            .collect();
        if principals.len() > MAX_PRINCIPALS {
            return Err(AppError::unprocessable(
                "node_id",
                format!(
                    "{} nodes × {} logins is more than {MAX_PRINCIPALS} principals: name a node_id",
                    nodes.len(),
                    logins.len()
                ),
            ));
        }
        let scope = format!("node={}", node_id.as_deref().unwrap_or("any"));
        (principals, node_id, scope)
    };
    let key = signing_key(&state).await?;
    let private = private_of(&state, &key)?;
    let now = now_ms();
    // A minute's slack for clocks that run behind.
    let valid_after = u64::try_from(now / 1000 - 60).unwrap_or(0);
    let valid_before = valid_after + 60 + u64::from(hours) * 3600;
    let id = new_id();
    for _ in 0..4 {
        let serial = rand::random::<u64>() >> 1;
        let key_id = format!(
            "shardlyn user={} uid={} serial={serial} cert={id} {scope}",
            user.user.email, user.user.id,
        );
        // Signing (RSA above all) runs on a blocking thread, with its own copies.
        let (private, subject_now, key_id_now, principals_now, extensions_now, force, from) = (
            private.clone(),
            subject.clone(),
            key_id.clone(),
            principals.clone(),
            extensions.clone(),
            body.force_command.clone(),
            body.source_address.clone(),
        );
        let certificate = tokio::task::spawn_blocking(move || {
            ca::sign(
                &private,
                &ca::Request {
                    subject: &subject_now,
                    serial,
                    key_id: &key_id_now,
                    principals: &principals_now,
                    valid_after,
                    valid_before,
                    force_command: force.as_deref(),
                    source_address: from.as_deref(),
                    extensions: &extensions_now,
                },
            )
        })
        .await
        .map_err(internal)??;
        let row = Cert {
            id: id.clone(),
            serial: i64::try_from(serial).map_err(internal)?,
            ca_key_id: key.id.clone(),
            user_id: user.user.id.clone(),
            node_id: node_id.clone(),
            key_id: key_id.clone(),
            principals: principals.join("\n"),
            public_key_fingerprint: ca::fingerprint(&subject),
            certificate: certificate.clone(),
            force_command: body.force_command.clone(),
            source_address: body.source_address.clone(),
            valid_after: i64::try_from(valid_after).unwrap_or(0) * 1000,
            valid_before: i64::try_from(valid_before).unwrap_or(0) * 1000,
            revoked_at: None,
            revoked_reason: None,
            created_at: now,
        };
        match store::insert_cert(&state.db.pool, &row).await {
            Ok(()) => {
                return Ok(AppJson(Signed {
                    id,
                    certificate,
                    serial_number: serial.to_string(),
                    key_id,
                    valid_after: crate::types::Timestamp(row.valid_after),
                    valid_before: crate::types::Timestamp(row.valid_before),
                    principals,
                }));
            }
            // The serial was taken: draw another.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(internal("no free certificate serial"))
}

/// `?user_id=&node_id=&state=` of the list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    /// Platform admins: one user's (others always see their own).
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub node_id: Option<String>,
    /// `active`, `expired` or `revoked`.
    #[serde(default)]
    pub state: Option<String>,
}

/// `GET /v1/ssh/certificates`: the caller's certificates (a platform admin's: everyone's,
/// or `user_id`'s), newest first.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<ListQuery>,
) -> AppResult<AppJson<CertList>> {
    if let Some(s) = q.state.as_deref()
        && !["active", "expired", "revoked"].contains(&s)
    {
        return Err(AppError::invalid_field(
            "state",
            "state must be active, expired or revoked",
        ));
    }
    let who = if user.user.is_admin {
        q.user_id.as_deref().filter(|s| !s.is_empty())
    } else {
        Some(user.user.id.as_str())
    };
    let now = now_ms();
    let node = q.node_id.as_deref().filter(|s| !s.is_empty());
    let data = store::certs(&state.db.pool, who, node, LIST_LIMIT)
        .await?
        .iter()
        .map(|c| CertView::of(c, now))
        .filter(|v| q.state.as_deref().is_none_or(|s| v.state == s))
        .collect();
    Ok(AppJson(CertList { data }))
}

/// A certificate the caller may see: their own, or any for a platform admin; 404 else.
async fn visible(state: &AppState, user: &CurrentUser, id: &str) -> AppResult<Cert> {
    store::cert(&state.db.pool, id)
        .await?
        .filter(|c| user.user.is_admin || c.user_id == user.user.id)
        .ok_or_else(|| AppError::not_found("certificate"))
}

/// `GET /v1/ssh/certificates/{id}`.
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
) -> AppResult<AppJson<CertView>> {
    let c = visible(&state, &user, &id).await?;
    Ok(AppJson(CertView::of(&c, now_ms())))
}

/// The body of a revoke.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/ssh/certificates/{id}/revoke`: the certificate is refused by every node
/// once the KRL reaches it (a second revoke changes nothing).
pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(id): AppPath<String>,
    body: axum::body::Bytes,
) -> AppResult<AppJson<CertView>> {
    let body: RevokeBody = crate::backups::optional_json(&body)?;
    let c = visible(&state, &user, &id).await?;
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("revoked on request");
    if reason.chars().count() > 200 {
        return Err(AppError::invalid_field(
            "reason",
            "reason must be at most 200 characters",
        ));
    }
    store::revoke(&state.db.pool, &c.id, reason).await?;
    let now = store::cert(&state.db.pool, &c.id)
        .await?
        .ok_or_else(|| AppError::not_found("certificate"))?;
    Ok(AppJson(CertView::of(&now, now_ms())))
}
