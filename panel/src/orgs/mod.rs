//! Organizations: the tenancy of everything. CRUD, members, invitations, permission
//! overrides and the permission list.

pub mod handlers;
pub mod invite_store;
pub mod invites;
pub mod members;
pub mod permissions;
pub mod scope;
pub mod store;

use crate::auth::crypto::random_hex;
use crate::error::{AppError, AppResult};
use crate::routes::{Access, Routes};

/// `/v1/organizations/*`, `/v1/invites/*` and `/v1/permissions`.
pub fn router() -> Routes {
    Routes::new("organizations")
        .get(
            "/v1/organizations",
            Access::User,
            "List organizations",
            handlers::list,
        )
        .post(
            "/v1/organizations",
            Access::User,
            "Create organization",
            handlers::create,
        )
        .get(
            "/v1/organizations/{orgId}",
            Access::User,
            "Get organization",
            handlers::get,
        )
        .put(
            "/v1/organizations/{orgId}",
            Access::User,
            "Update organization",
            handlers::update,
        )
        .delete(
            "/v1/organizations/{orgId}",
            Access::User,
            "Delete organization",
            handlers::delete,
        )
        .get(
            "/v1/organizations/{orgId}/members",
            Access::User,
            "List members",
            members::list,
        )
        .post(
            "/v1/organizations/{orgId}/members/invite",
            Access::User,
            "Invite member",
            invites::invite,
        )
        .errors(&[(
            402,
            "PLAN_LIMIT: the organization's plan does not allow it (limit, usage, cap)",
        )])
        .delete(
            "/v1/organizations/{orgId}/members/{userId}",
            Access::User,
            "Remove member",
            members::remove,
        )
        .put(
            "/v1/organizations/{orgId}/members/{userId}/role",
            Access::User,
            "Update role",
            members::update_role,
        )
        .get(
            "/v1/organizations/{orgId}/members/{userId}/permissions",
            Access::User,
            "Get permissions",
            members::permissions,
        )
        .post(
            "/v1/organizations/{orgId}/members/{userId}/permissions",
            Access::User,
            "Set permission",
            members::set_permission,
        )
        .delete(
            "/v1/organizations/{orgId}/members/{userId}/permissions/{key}",
            Access::User,
            "Remove permission",
            members::remove_permission,
        )
        .get(
            "/v1/organizations/{orgId}/invites",
            Access::User,
            "List invites",
            invites::list,
        )
        .delete(
            "/v1/organizations/{orgId}/invites/{inviteId}",
            Access::User,
            "Delete invite",
            invites::delete,
        )
        .post(
            "/v1/invites/{token}/accept",
            Access::User,
            "Accept invite",
            invites::accept,
        )
        .errors(&[(
            402,
            "PLAN_LIMIT: the organization's plan does not allow it (limit, usage, cap)",
        )])
        .get(
            "/v1/permissions",
            Access::User,
            "List all available permissions",
            handlers::permission_list,
        )
}

/// Checks an organization name: 1-100 characters after trimming, no control characters.
///
/// # Errors
/// 400 naming the problem.
pub fn validate_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::Validation(
            "name must be 1 to 100 characters".into(),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::Validation(
            "name must not contain control characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// A URL-safe, unique-enough slug for `name`.
#[must_use]
pub fn slug_for(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let base = if slug.is_empty() { "org" } else { slug };
    format!("{base}-{}", random_hex(3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_are_url_safe() {
        let slug = super::slug_for("Ünïcode & <Friends>!");
        assert!(
            slug.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{slug}"
        );
        assert!(super::slug_for("").starts_with("org-"));
    }
}
