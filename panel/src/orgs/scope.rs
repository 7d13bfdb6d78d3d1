//! Which organization a request acts in. Collection routes take `?organization_id=`
//! (or an `organization_id` field when creating); without it, the caller's personal
//! organization. Routes on one resource use the organization the resource belongs to.

use serde::Deserialize;

use super::permissions::{Membership, authorize};
use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// `?organization_id=...` on collection routes.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct OrgQuery {
    pub organization_id: Option<String>,
}

/// The organization a create names in its body or in `?organization_id=`; both must
/// agree when both are given.
///
/// # Errors
/// 400 naming `organization_id` when they differ.
pub fn requested_org(body: Option<String>, query: Option<String>) -> AppResult<Option<String>> {
    match (body, query) {
        (Some(b), Some(q)) if b != q => Err(AppError::invalid_field(
            "organization_id",
            "organization_id in the body and in the query differ",
        )),
        (Some(b), _) => Ok(Some(b)),
        (None, q) => Ok(q),
    }
}

/// The caller's personal organization.
///
/// # Errors
/// 404 when the user has none (only possible after manual database edits).
pub async fn personal_org(state: &AppState, user_id: &str) -> AppResult<String> {
    if let Some(org_id) = state.reads.personal_org(user_id) {
        return Ok(org_id);
    }
    let stamp = state.reads.stamp();
    let org_id: String = sqlx::query_scalar(
        "SELECT o.id FROM organizations o JOIN org_members m ON m.org_id = o.id \
         WHERE m.user_id = $1 AND o.personal = 1 ORDER BY o.created_at LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found("personal organization"))?;
    if let Some(stamp) = stamp {
        state.reads.put_personal_org(user_id, &org_id, stamp);
    }
    Ok(org_id)
}

/// Resolves the organization a collection request acts in and checks `permission` there.
///
/// # Errors
/// 404 for an organization the caller is not a member of; 403 without the permission.
pub async fn scoped(
    state: &AppState,
    user: &CurrentUser,
    requested: Option<&str>,
    permission: &str,
) -> AppResult<Membership> {
    let org_id = match requested.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => personal_org(state, &user.user.id).await?,
    };
    authorize(state, user, &org_id, permission).await
}
