//! Cloud nodes made with Terraform: `/v1/provision*` (issue 17). A request names a
//! provider, region, type and image; `plan` runs `terraform plan` with the provider's
//! module (`terraform/`, built in: `modules`) and keeps the plan file for approval;
//! `apply` applies exactly that file; the cloud-init of the plan installs and registers
//! an agent with a token bound to the request, and the request is `provisioned` once
//! that agent connects; `DELETE` destroys. Terraform's state lives in the panel
//! (`backend`: its http backend, sealed, locks on leases); runs are `runner`'s.

mod backend;
mod handlers;
pub mod modules;
pub mod runner;
pub mod store;

pub use handlers::{
    CreateBody, LogView, ProviderInfo, ProviderList, RequestList, RequestView, ResizeBody,
};

use crate::error::{AppError, AppResult};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plan,
    Apply,
    Destroy,
    Resize,
}

impl Kind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Apply => "apply",
            Self::Destroy => "destroy",
            Self::Resize => "resize",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "plan" => Self::Plan,
            "apply" => Self::Apply,
            "destroy" => Self::Destroy,
            "resize" => Self::Resize,
            _ => return None,
        })
    }

    /// The request's status while a run of this kind goes.
    #[must_use]
    pub fn running_status(self) -> &'static str {
        match self {
            Self::Plan => "planning",
            Self::Apply => "applying",
            Self::Destroy => "destroying",
            Self::Resize => "resizing",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Plan => "planned",
            Self::Apply => "applied",
            Self::Destroy => "destroyed",
            Self::Resize => "resized",
        }
    }
}

/// Providers with a Terraform module, as `(id, name, default image)`.
pub const PROVIDERS: &[(&str, &str, &str)] = &[
    ("hetzner", "Hetzner Cloud", "debian-12"),
    ("aws", "Amazon Web Services", "debian-12"),
    ("gcp", "Google Cloud", "debian-cloud/debian-12"),
    (
        "oci",
        "Oracle Cloud Infrastructure",
        "Canonical-Ubuntu-22.04",
    ),
];

/// The hourly and monthly price of a type for `org_id`, from the planner's table (the
/// one refreshed from the provider's API when the organization has a credential, as the
/// wizard shows it).
pub async fn price_of(
    state: &AppState,
    org_id: &str,
    provider: &str,
    region: &str,
    instance_type: &str,
) -> Option<(String, String)> {
    crate::planner::price_for(state, org_id, provider, region, instance_type)
        .await
        .map(|p| (p.hourly, p.monthly))
}

/// The provider's credential, as Terraform's provider reads it from the environment
/// (never as a variable: plan files keep variables).
async fn provider_env(
    state: &AppState,
    request: &store::Request,
) -> Result<Vec<(String, String)>, String> {
    let id = request
        .credential_id
        .as_deref()
        .ok_or("the request's credential was deleted: add one and plan again")?;
    let credential = crate::credentials::store::find(&state.db.pool, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the request's credential was deleted: add one and plan again")?;
    let parts = crate::credentials::open_parts(state, &credential).map_err(|e| e.to_string())?;
    let field = |k: &str| {
        parts
            .secrets
            .get(k)
            .or_else(|| parts.public.get(k))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let cloud = &state.config.cloud;
    Ok(match request.provider.as_str() {
        "hetzner" => vec![
            ("HCLOUD_TOKEN".into(), field("token")),
            ("HCLOUD_ENDPOINT".into(), cloud.hetzner_api_url.clone()),
        ],
        "aws" => vec![
            ("AWS_ACCESS_KEY_ID".into(), field("access_key_id")),
            ("AWS_SECRET_ACCESS_KEY".into(), field("secret_access_key")),
            ("AWS_REGION".into(), request.region.clone()),
        ],
        "gcp" => vec![("GOOGLE_CREDENTIALS".into(), field("service_account_json"))],
        "oci" => vec![
            ("OCI_TENANCY_OCID".into(), field("tenancy_ocid")),
            ("OCI_USER_OCID".into(), field("user_ocid")),
            ("OCI_FINGERPRINT".into(), field("fingerprint")),
            ("OCI_PRIVATE_KEY".into(), field("private_key")),
            ("OCI_REGION".into(), request.region.clone()),
        ],
        other => return Err(format!("no Terraform module for {other}")),
    })
}

/// A registration token for the plan's cloud-init, bound to the request, valid for 7
/// days (a plan may wait that long for approval); the previous plan's unused token is
/// revoked. Applying shortens it to an hour (the server's boot).
async fn mint_token(state: &AppState, request: &store::Request) -> AppResult<String> {
    const WEEK_MS: i64 = 7 * 24 * 3_600_000;
    revoke_tokens(state, &request.id).await?;
    let created_by = request.created_by.clone().unwrap_or_default();
    let (token, _) =
        crate::nodes::register::mint(state, &request.org_id, &request.name, &created_by).await?;
    sqlx::query(
        "UPDATE node_registration_tokens SET provision_request_id = $1, expires_at = $2 \
         WHERE token_hash = $3",
    )
    .bind(&request.id)
    .bind(state.clock.now_ms() + WEEK_MS)
    .bind(crate::auth::crypto::sha256_hex(&token))
    .execute(&state.db.pool)
    .await?;
    Ok(token)
}

/// Revokes a request's unused registration tokens (its plan was discarded).
async fn revoke_tokens(state: &AppState, request_id: &str) -> AppResult<()> {
    sqlx::query(
        "DELETE FROM node_registration_tokens WHERE provision_request_id = $1 AND used_at IS NULL",
    )
    .bind(request_id)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// A node registered with a request's token: the request names it.
///
/// # Errors
/// Database failures.
pub async fn on_registered<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    token_id: &str,
    node_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE provision_requests SET node_id = $1 WHERE id = \
         (SELECT provision_request_id FROM node_registration_tokens WHERE id = $2)",
    )
    .bind(node_id)
    .bind(token_id)
    .execute(db)
    .await?;
    Ok(())
}

/// A node came online: the request that made it is `provisioned`, and the node gets
/// the public addresses of the request's Terraform outputs where it has none.
pub async fn on_node_online(state: &AppState, node_id: &str) {
    // The addresses first: whoever sees the request `provisioned` sees them too.
    fill_node_addresses(state, node_id).await;
    let now = state.clock.now_ms();
    if let Err(e) = sqlx::query(
        "UPDATE provision_requests SET status = 'provisioned', status_message = NULL, \
         updated_at = $1 WHERE node_id = $2 AND status = 'applied'",
    )
    .bind(now)
    .bind(node_id)
    .execute(&state.db.pool)
    .await
    {
        tracing::warn!(node.id = %node_id, error = %e, "marking a provisioned node");
    }
}

/// Gives a provisioned node the `ipv4`/`ipv6` outputs of its request as public
/// addresses (see [`fill_addresses`]).
async fn fill_node_addresses(state: &AppState, node_id: &str) {
    let outputs: Option<(Option<String>, Option<String>)> = match sqlx::query_as(
        "SELECT ipv4, ipv6 FROM provision_requests WHERE node_id = $1 \
         AND status IN ('applied', 'provisioned') ORDER BY created_at DESC LIMIT 1",
    )
    .bind(node_id)
    .fetch_optional(&state.db.pool)
    .await
    {
        Ok(outputs) => outputs,
        Err(e) => {
            tracing::warn!(node.id = %node_id, error = %e, "reading a node's provisioned addresses");
            return;
        }
    };
    if let Some((ipv4, ipv6)) = outputs {
        fill_addresses(state, node_id, ipv4.as_deref(), ipv6.as_deref()).await;
    }
}

/// Gives node `node_id` these Terraform outputs as public addresses, each only where the
/// node has none (an address set by hand stays) and only if it is a public one; the DNS
/// records that follow the node are then updated.
pub(crate) async fn fill_addresses(
    state: &AppState,
    node_id: &str,
    ipv4: Option<&str>,
    ipv6: Option<&str>,
) {
    let ipv4 = ipv4.and_then(crate::nodes::public_ipv4);
    let ipv6 = ipv6.and_then(crate::nodes::public_ipv6);
    if ipv4.is_none() && ipv6.is_none() {
        return;
    }
    match crate::nodes::store::fill_public_addresses(
        &state.db.pool,
        node_id,
        ipv4.as_deref(),
        ipv6.as_deref(),
    )
    .await
    {
        Ok(true) => crate::dns::auto::node_changed(state, node_id).await,
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(node.id = %node_id, error = %e, "setting a node's public addresses");
        }
    }
}

/// After a destroy: the node the request made is gone with its server.
async fn forget_node(state: &AppState, request: &store::Request) -> AppResult<()> {
    revoke_tokens(state, &request.id).await?;
    let node: Option<String> =
        sqlx::query_scalar("SELECT node_id FROM provision_requests WHERE id = $1")
            .bind(&request.id)
            .fetch_optional(&state.db.pool)
            .await?
            .flatten();
    if let Some(node_id) = node {
        crate::nodes::store::delete(&state.db.pool, &node_id).await?;
        state.tunnels.disconnect(&node_id);
    }
    Ok(())
}

/// The servers (instances) still on a node, as `name (id)`.
async fn servers_on(state: &AppState, node_id: &str) -> AppResult<Vec<String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM instances WHERE node_id = $1 ORDER BY name LIMIT 50")
            .bind(node_id)
            .fetch_all(&state.db.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| format!("{name} ({id})"))
        .collect())
}

/// 409 listing the servers still on `node_id`, if any.
async fn refuse_while_hosting(state: &AppState, node_id: &str) -> AppResult<()> {
    let servers = servers_on(state, node_id).await?;
    if servers.is_empty() {
        return Ok(());
    }
    Err(AppError::coded(
        axum::http::StatusCode::CONFLICT,
        "NODE_NOT_DRAINED",
        format!(
            "the node still hosts {} server(s): {}; drain it first",
            servers.len(),
            servers.join(", ")
        ),
    ))
}

/// The provisioning routes, the state backend's and the resize of provisioned nodes.
pub fn router() -> Routes {
    Routes::new("provision")
        .get(
            "/v1/provision",
            Access::User,
            "List provision requests",
            handlers::list,
        )
        .post(
            "/v1/provision",
            Access::User,
            "Create request",
            handlers::create,
        )
        .errors(&[(
            402,
            "PLAN_LIMIT: the organization's plan does not allow it (limit, usage, cap)",
        )])
        .get(
            "/v1/provision/providers",
            Access::User,
            "List available providers",
            handlers::providers,
        )
        .get(
            "/v1/provision/{id}",
            Access::User,
            "Get request",
            handlers::get,
        )
        .post(
            "/v1/provision/{id}/plan",
            Access::User,
            "Generate Terraform plan",
            handlers::plan,
        )
        .post(
            "/v1/provision/{id}/apply",
            Access::User,
            "Apply plan",
            handlers::apply,
        )
        .delete(
            "/v1/provision/{id}",
            Access::User,
            "Delete/destroy",
            handlers::delete,
        )
        .get(
            "/v1/provision/{id}/logs",
            Access::User,
            "A run's log, from a position",
            handlers::logs,
        )
        .post(
            "/v1/nodes/{id}/resize",
            Access::User,
            "Resize server",
            handlers::resize,
        )
        .get(
            "/v1/provision/{id}/state",
            Access::Public,
            "Terraform http backend: read state (a run's Basic credential)",
            backend::get_state,
        )
        .errors(&[(401, "Not a running run's credential")])
        .post(
            "/v1/provision/{id}/state",
            Access::Public,
            "Terraform http backend: write state",
            backend::put_state,
        )
        .errors(&[
            (401, "Not a running run's credential"),
            (423, "Locked by another run (the body is its LockInfo)"),
        ])
        .delete(
            "/v1/provision/{id}/state",
            Access::Public,
            "Terraform http backend: delete state",
            backend::delete_state,
        )
        .errors(&[
            (401, "Not a running run's credential"),
            (423, "Locked by another run (the body is its LockInfo)"),
        ])
        .post(
            "/v1/provision/{id}/state/lock",
            Access::Public,
            "Terraform http backend: lock",
            backend::lock,
        )
        .errors(&[
            (401, "Not a running run's credential"),
            (423, "Locked by another run (the body is its LockInfo)"),
        ])
        .delete(
            "/v1/provision/{id}/state/lock",
            Access::Public,
            "Terraform http backend: unlock",
            backend::unlock,
        )
        .errors(&[
            (401, "Not a running run's credential"),
            (423, "Locked by another run (the body is its LockInfo)"),
        ])
}
