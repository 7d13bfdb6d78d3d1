//! Users: the caller's own account (`/v1/users/me`), platform-admin user management
//! (`/v1/users`, `/v1/admin/users`), and account creation shared by every sign-up path.

mod admin;
mod me;
pub mod store;

use sqlx::AnyConnection;

use crate::auth::crypto::{check_password_policy, hash_password, normalize_email};
use crate::config::AuthConfig;
use crate::db::new_id;
use crate::error::{AppError, AppResult};
use crate::orgs::permissions::Role;
use crate::orgs::{self, store as org_store};
use crate::routes::{Access, Routes};
use store::User;

/// `/v1/users/*` and `/v1/admin/users/*`.
pub fn router() -> Routes {
    Routes::new("users")
        .get("/v1/users/me", Access::User, "Get current user", me::get)
        .post(
            "/v1/users/me/password",
            Access::Session,
            "Update password",
            me::change_password,
        )
        .get(
            "/v1/users/me/sessions",
            Access::Session,
            "List active sessions",
            me::sessions,
        )
        .delete(
            "/v1/users/me/sessions/{id}",
            Access::Session,
            "Revoke a session",
            me::revoke_session,
        )
        .get("/v1/users", Access::Admin, "List users", admin::list)
        .post("/v1/users", Access::Admin, "Create user", admin::create)
        .get("/v1/users/{id}", Access::Admin, "Get user", admin::get)
        .delete(
            "/v1/users/{id}",
            Access::Admin,
            "Delete user",
            admin::delete,
        )
        .get("/v1/admin/users", Access::Admin, "List users", admin::list)
        .post(
            "/v1/admin/users/{id}/suspend",
            Access::Admin,
            "Suspend user",
            admin::suspend,
        )
        .post(
            "/v1/admin/users/{id}/unsuspend",
            Access::Admin,
            "Unsuspend user",
            admin::unsuspend,
        )
        .get(
            "/v1/admin/organizations",
            Access::Admin,
            "List all organizations",
            admin::organizations,
        )
        .get(
            "/v1/admin/organizations/{id}",
            Access::Admin,
            "Get organization",
            admin::organization,
        )
}

/// What a new account is made of.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password: &'a str,
    pub is_admin: bool,
    /// Whether the address counts as verified: everything but open registration, whose
    /// accounts verify it through a mailed link (`auth::verify_email`).
    pub email_verified: bool,
}

/// Validates and hashes, then creates a user and their personal organization (owner)
/// inside the caller's transaction.
///
/// # Errors
/// 400 for an invalid email, name or password; 409 when the email is taken.
pub async fn create_account(
    conn: &mut AnyConnection,
    policy: &AuthConfig,
    new: NewUser<'_>,
) -> AppResult<User> {
    let email = normalize_email(new.email)?;
    check_password_policy(new.password, policy.password_min_length)?;
    let name = match new.name.map(str::trim) {
        Some(n) if n.chars().count() > 100 || n.chars().any(char::is_control) => {
            return Err(AppError::Validation(
                "name must be at most 100 characters without control characters".into(),
            ));
        }
        Some(n) => n.to_string(),
        None => String::new(),
    };
    let hash = hash_password(new.password.to_string()).await?;
    let (user, _) =
        insert_account(conn, &email, &name, &hash, new.is_admin, new.email_verified).await?;
    Ok(user)
}

/// Creates a user whose email is normalized, name checked and password already hashed
/// (an import keeps the hash it carried over), and their personal organization (owner),
/// inside the caller's transaction; returns the user and the organization's id.
///
/// # Errors
/// 409 when the email is taken.
pub async fn insert_account(
    conn: &mut AnyConnection,
    email: &str,
    name: &str,
    password_hash: &str,
    is_admin: bool,
    email_verified: bool,
) -> AppResult<(User, String)> {
    let user = store::insert(
        &mut *conn,
        &new_id(),
        email,
        name,
        password_hash,
        is_admin,
        email_verified,
    )
    .await
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => {
            AppError::Conflict("an account with this email already exists".into())
        }
        other => other,
    })?;
    let label = if name.is_empty() {
        email.split('@').next().unwrap_or("personal").to_string()
    } else {
        name.to_string()
    };
    let org_name: String = format!("{label}'s organization")
        .chars()
        .take(100)
        .collect();
    let org = org_store::insert(
        &mut *conn,
        &new_id(),
        &org_name,
        &orgs::slug_for(&label),
        true,
        &user.id,
    )
    .await?;
    org_store::upsert_member(&mut *conn, &org.id, &user.id, Role::Owner.as_str()).await?;
    Ok((user, org.id))
}

/// Creates an account (and its personal organization) in its own transaction.
///
/// # Errors
/// As [`create_account`].
pub async fn create_user(state: &crate::state::AppState, new: NewUser<'_>) -> AppResult<User> {
    let mut tx = state.db.pool.begin().await?;
    let user = create_account(&mut tx, &state.config.auth, new).await?;
    tx.commit().await?;
    crate::readcache::changed();
    Ok(user)
}

/// Creates a platform admin from the command line: the first user bootstraps the
/// platform, later ones are added as admins.
///
/// # Errors
/// 400 for invalid input, 409 for a taken email.
pub async fn create_admin(
    state: &crate::state::AppState,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> AppResult<User> {
    if store::count(&state.db.pool).await? == 0 {
        return crate::auth::create_first_admin(state, email, password, name).await;
    }
    create_user(
        state,
        NewUser {
            email,
            name,
            password,
            is_admin: true,
            email_verified: true,
        },
    )
    .await
}
