//! Which Shardlyn user a GitHub account signs in as:
//!
//! 1. the user already linked to that GitHub account id;
//! 2. else the user whose email is one GitHub marks `verified` (primary first), which
//!    links the two: an unverified address is never trusted to prove ownership, on
//!    either side (an account whose address is not verified yet is not linked);
//! 3. else a new user (registration `open` only) with the primary verified address and
//!    a personal organization, as `POST /v1/auth/register` makes. Its password is random
//!    and unknown; "forgot password" sets one.

use axum::http::StatusCode;

use super::client::GithubUser;
use super::store;
use crate::auth::crypto::{normalize_email, random_hex};
use crate::config::Registration;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::users::store::{self as users, User};
use crate::users::{NewUser, create_account};

/// How the GitHub account was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Already linked.
    Login,
    /// Linked now to the account with the same verified email.
    Linked,
    /// A new account.
    Created,
}

impl Outcome {
    /// The audit action.
    #[must_use]
    pub fn action(self) -> &'static str {
        match self {
            Self::Login => "auth.github.login",
            Self::Linked => "auth.github.link",
            Self::Created => "auth.github.signup",
        }
    }
}

/// The verified addresses of `gh`, normalized, primary first, without duplicates.
fn verified_emails(gh: &GithubUser) -> Vec<String> {
    let mut entries: Vec<_> = gh.emails.iter().filter(|e| e.verified).collect();
    entries.sort_by_key(|e| !e.primary);
    let mut out: Vec<String> = Vec::new();
    for entry in entries {
        if let Ok(email) = normalize_email(&entry.email)
            && !out.contains(&email)
        {
            out.push(email);
        }
    }
    out
}

/// A display name for a new account: GitHub's name, else the login.
fn display_name(gh: &GithubUser) -> String {
    gh.name
        .as_deref()
        .unwrap_or(&gh.login)
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Finds, links or creates the user `gh` signs in as.
///
/// # Errors
/// 403 for a suspended account to link, an account to link whose address is not
/// verified (`EMAIL_NOT_VERIFIED`), or when no verified email is available for a new account or registration does not
/// allow one; 409 when the matching account is linked to another GitHub account.
pub async fn resolve(state: &AppState, gh: &GithubUser) -> AppResult<(User, Outcome)> {
    let pool = &state.db.pool;
    if let Some(identity) = store::find_identity(pool, &gh.id).await? {
        store::touch_identity(pool, &identity.id, &gh.login).await?;
        let user = users::find(pool, &identity.user_id)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("identity without user")))?;
        return Ok((user, Outcome::Login));
    }
    let verified = verified_emails(gh);
    for email in &verified {
        let Some(account) = users::find_auth_by_email(pool, email).await? else {
            continue;
        };
        if account.user.suspended {
            return Err(AppError::Forbidden("account suspended".into()));
        }
        if !account.email_verified {
            // Whoever registered this address has not proven it is theirs: linking would
            // hand the GitHub user an account someone else may hold the password of.
            return Err(crate::auth::verify_email::not_verified(
                "an account with this email exists but its address is not verified: open the \
                 link mailed at registration (or reset the password), then sign in with \
                 GitHub again",
            ));
        }
        if store::user_has_identity(pool, &account.user.id).await? {
            return Err(AppError::Conflict(
                "the account with this email is already linked to another GitHub account".into(),
            ));
        }
        store::insert_identity(pool, &account.user.id, &gh.id, &gh.login, Some(email)).await?;
        return Ok((account.user, Outcome::Linked));
    }
    match state.config.auth.registration {
        Registration::Open => {}
        Registration::Closed | Registration::InviteOnly => {
            return Err(AppError::coded(
                StatusCode::FORBIDDEN,
                "REGISTRATION_CLOSED",
                "no account matches a verified email of this GitHub account, and this panel \
                 does not allow new accounts through GitHub",
            ));
        }
    }
    let Some(email) = verified.first() else {
        return Err(AppError::coded(
            StatusCode::FORBIDDEN,
            "GITHUB_EMAIL_UNVERIFIED",
            "this GitHub account has no verified email address: verify one on GitHub and try again",
        ));
    };
    let name = display_name(gh);
    let password = random_hex(32);
    let mut tx = pool.begin().await?;
    let user = create_account(
        &mut tx,
        &state.config.auth,
        NewUser {
            email,
            name: (!name.is_empty()).then_some(name.as_str()),
            password: &password,
            is_admin: false,
            // GitHub marks this address verified.
            email_verified: true,
        },
    )
    .await?;
    store::insert_identity(&mut *tx, &user.id, &gh.id, &gh.login, Some(email)).await?;
    tx.commit().await?;
    Ok((user, Outcome::Created))
}

#[cfg(test)]
mod tests {
    use super::super::client::GithubEmail;
    use super::*;

    fn email(email: &str, verified: bool, primary: bool) -> GithubEmail {
        GithubEmail {
            email: email.into(),
            verified,
            primary,
        }
    }

    #[test]
    fn only_verified_emails_count_primary_first() {
        let gh = GithubUser {
            id: "1".into(),
            login: "octo".into(),
            name: None,
            emails: vec![
                email("Second@Example.com", true, false),
                email("unverified@example.com", false, false),
                email("primary@example.com", true, true),
                email("second@example.com", true, false),
            ],
        };
        assert_eq!(
            verified_emails(&gh),
            vec!["primary@example.com", "second@example.com"]
        );
        assert_eq!(display_name(&gh), "octo");
    }
}
