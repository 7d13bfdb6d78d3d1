//! Cloud providers' APIs for provisioned nodes (issue 17 item 5): what the panel does to
//! a node's server directly rather than through Terraform, namely its power and its
//! second, panel-owned firewall (game ports). Terraform owns the server itself and its
//! base firewall; this module owns only those two things, so a later plan never reverts
//! them.
//!
//! Domain layer over the providers' HTTP APIs: `hetzner` is the client; [`Cloud`] is
//! the provider a node was provisioned at, answering 501 `not_implemented` for the
//! providers whose API is not written yet. [`Provisioned`] is a node's provision
//! request as far as this module needs it.

pub mod hetzner;

use axum::http::StatusCode;
use sqlx::{AnyExecutor, AnyPool};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A node's provision request (`provision_requests`, status `applied` or
/// `provisioned`): the server the panel may power and firewall.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Provisioned {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub provider: String,
    pub credential_id: Option<String>,
    pub server_id: Option<String>,
    pub firewall_id: Option<String>,
    pub node_id: String,
    pub firewall_error: Option<String>,
    pub firewall_synced_at: Option<i64>,
}

/// The provision request that made node `node_id`, if the node was provisioned and its
/// server exists.
///
/// # Errors
/// Database failures.
pub async fn provisioned<'e>(
    db: impl AnyExecutor<'e>,
    node_id: &str,
) -> sqlx::Result<Option<Provisioned>> {
    sqlx::query_as(
        "SELECT id, org_id, name, provider, credential_id, server_id, firewall_id, node_id, \
         firewall_error, firewall_synced_at FROM provision_requests WHERE node_id = $1 \
         AND status IN ('applied', 'provisioned') ORDER BY created_at DESC LIMIT 1",
    )
    .bind(node_id)
    .fetch_optional(db)
    .await
}

/// [`provisioned`], or 409 `not_provisioned`.
///
/// # Errors
/// 409 for a node the panel did not provision; database failures.
pub async fn require_provisioned(pool: &AnyPool, node_id: &str) -> AppResult<Provisioned> {
    provisioned(pool, node_id).await?.ok_or_else(|| {
        AppError::coded(
            StatusCode::CONFLICT,
            "NOT_PROVISIONED",
            "this node was not provisioned by the panel, so it has no cloud server to \
             power or firewall",
        )
    })
}

/// The provider API a provisioned node's server is reached through.
pub enum Cloud<'a> {
    Hetzner {
        api: hetzner::Hetzner<'a>,
        server_id: i64,
    },
}

/// What is being done, for the 501 of providers not written yet.
#[derive(Debug, Clone, Copy)]
pub enum Feature {
    Power,
    Firewall,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Self::Power => "power control",
            Self::Firewall => "firewall control",
        }
    }
}

impl<'a> Cloud<'a> {
    /// The API of `p`'s provider, with its credential's token.
    ///
    /// # Errors
    /// 501 `not_implemented` for aws, gcp and oci ("power control for aws nodes is not
    /// available yet"); 409 when the request has no server id or its credential is gone;
    /// 500 when the credential does not open.
    pub async fn of(state: &'a AppState, p: &Provisioned, feature: Feature) -> AppResult<Self> {
        match p.provider.as_str() {
            "hetzner" => {}
            other => {
                return Err(AppError::coded(
                    StatusCode::NOT_IMPLEMENTED,
                    "NOT_IMPLEMENTED",
                    format!("{} for {other} nodes is not available yet", feature.name()),
                ));
            }
        }
        let server_id = p
            .server_id
            .as_deref()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                AppError::Conflict("the node's provision request names no Hetzner server".into())
            })?;
        let token = token_of(state, p, "token").await?;
        Ok(Self::Hetzner {
            api: hetzner::Hetzner::new(state, token),
            server_id,
        })
    }
}

/// Secret `field` of the request's credential (or, when that credential was deleted, of
/// the organization's default one for the provider).
async fn token_of(state: &AppState, p: &Provisioned, field: &str) -> AppResult<String> {
    use crate::credentials::store;
    let pool = &state.db.pool;
    let mut credential = match &p.credential_id {
        Some(id) => store::find(pool, id)
            .await?
            .filter(|c| c.org_id == p.org_id && c.provider == p.provider),
        None => None,
    };
    if credential.is_none() {
        credential = store::list(pool, &p.org_id, Some(&p.provider))
            .await?
            .into_iter()
            .find(|c| c.is_default);
    }
    let credential = credential.ok_or_else(|| {
        AppError::Conflict(format!(
            "the organization has no {} credential for this node any more: add one",
            p.provider
        ))
    })?;
    let parts = crate::credentials::open_parts(state, &credential)?;
    parts
        .secrets
        .get(field)
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| AppError::Conflict(format!("the {} credential has no {field}", p.provider)))
}

/// Deletes the panel-owned firewall of provision request `request_id` (taken off its
/// server first) and forgets its id: for the provisioning code, when the request's
/// server is destroyed (Hetzner keeps a firewall after its server goes). A request
/// without one, or a firewall already gone, is fine.
///
/// # Errors
/// What the provider said; database failures.
pub async fn release_firewall(state: &AppState, request_id: &str) -> AppResult<()> {
    let row: Option<Provisioned> = sqlx::query_as(
        "SELECT id, org_id, name, provider, credential_id, server_id, firewall_id, \
         COALESCE(node_id, '') AS node_id, firewall_error, firewall_synced_at \
         FROM provision_requests WHERE id = $1",
    )
    .bind(request_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(p) = row else { return Ok(()) };
    let Some(firewall_id) = p.firewall_id.as_deref().and_then(|f| f.parse::<i64>().ok()) else {
        return Ok(());
    };
    if p.provider != "hetzner" {
        return Ok(());
    }
    let token = token_of(state, &p, "token").await?;
    let server_id = p
        .server_id
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok());
    hetzner::Hetzner::new(state, token)
        .delete_firewall(firewall_id, server_id)
        .await?;
    sqlx::query("UPDATE provision_requests SET firewall_id = NULL WHERE id = $1")
        .bind(&p.id)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

/// The error statuses of the routes that act on a provisioned node's cloud server.
pub const CLOUD_ERRORS: &[(u16, &str)] = &[
    (409, "The node was not provisioned by the panel"),
    (501, "Not available for the node's provider yet"),
    (
        502,
        "The cloud provider refused the call or could not be reached",
    ),
];
