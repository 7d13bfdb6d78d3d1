//! Certificates for SFTP (`POST /v1/ssh/certificate` with `instance_id`): the one
//! principal is the caller's SFTP username of the server, `<email>.<id prefix>`, the same
//! string they type for SFTP (`crate::sftp::auth::username_suffix`). The agent's SFTP
//! server hands such a certificate to the panel, which checks it
//! (`crate::sftp::certs`) before the usual `instances.sftp` grant.

use super::handlers::SignBody;
use crate::auth::extract::CurrentUser;
use crate::authz::{self, perm};
use crate::error::{AppError, AppResult};
use crate::instances::Instance;
use crate::state::AppState;

/// What an SFTP certificate is signed for.
pub struct Scope {
    /// `<email>.<id prefix>`.
    pub principal: String,
    /// The server's node (stored as the certificate's node, so the node filter lists it).
    pub node_id: String,
    pub instance_id: String,
}

/// 400 for the fields that only make sense for node logins.
///
/// # Errors
/// `node_id`, `principals` or `force_command` given with `instance_id`.
pub fn refuse_node_fields(body: &SignBody, has_node: bool) -> AppResult<()> {
    if has_node {
        return Err(AppError::invalid_field(
            "instance_id",
            "give node_id or instance_id, not both",
        ));
    }
    if !body.principals.is_empty() {
        return Err(AppError::invalid_field(
            "principals",
            "principals are node logins: an SFTP certificate's principal is its SFTP username",
        ));
    }
    if body.force_command.is_some() {
        return Err(AppError::invalid_field(
            "force_command",
            "an SFTP session runs no command",
        ));
    }
    Ok(())
}

/// The caller's SFTP principal for server `instance_id`; 404 for an unknown server or
/// another organization's, 403 without `instances.sftp` (as every API request).
///
/// # Errors
/// As said, and database failure.
pub async fn scope(state: &AppState, user: &CurrentUser, instance_id: &str) -> AppResult<Scope> {
    let (instance, _) =
        authz::load::<Instance, perm::InstancesSftp>(state, &user.user, instance_id).await?;
    let suffix = crate::sftp::auth::username_suffix(state, &instance.node_id, &instance.id).await?;
    Ok(Scope {
        principal: format!("{}.{suffix}", user.user.email),
        node_id: instance.node_id,
        instance_id: instance.id,
    })
}
