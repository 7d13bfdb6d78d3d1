//! Authentication: login, refresh, logout, registration (and email verification),
//! first-admin bootstrap and password reset, MFA (TOTP), GitHub login; plus the token primitives and caller extractors the rest use.

pub mod bootstrap;
pub mod cache;
pub use bootstrap::create_first_admin;
pub mod crypto;
pub mod extract;
pub mod github;
pub mod guard;
pub mod jwt;
pub mod lockout;
pub mod login;
pub mod mfa;
pub mod password_reset;
mod register;
pub mod sessions;
pub mod verify_email;

use crate::routes::{Access, Routes};

/// `/v1/auth/*`.
pub fn router() -> Routes {
    Routes::new("auth")
        .post(
            "/v1/auth/login",
            Access::Public,
            "Authenticate user",
            login::login,
        )
        .errors(&[(401, "Wrong email or password"), (403, "Account suspended")])
        .post(
            "/v1/auth/refresh",
            Access::Public,
            "Refresh access token",
            login::refresh,
        )
        .post(
            "/v1/auth/logout",
            Access::Session,
            "Revoke the current session",
            login::logout,
        )
        .post(
            "/v1/auth/register",
            Access::Public,
            "Register new user",
            register::register,
        )
        .errors(&[(
            402,
            "PLAN_LIMIT: the organization's plan does not allow it (limit, usage, cap)",
        )])
        .post(
            "/v1/auth/verify-email",
            Access::Public,
            "Verify an email address with the mailed token",
            verify_email::verify,
        )
        .post(
            "/v1/auth/verify-email/resend",
            Access::Public,
            "Mail a new email verification link",
            verify_email::resend,
        )
        .post(
            "/v1/auth/forgot-password",
            Access::Public,
            "Request password reset",
            password_reset::forgot,
        )
        .post(
            "/v1/auth/reset-password",
            Access::Public,
            "Reset password with token",
            password_reset::reset,
        )
        .get(
            "/v1/auth/bootstrap/status",
            Access::Public,
            "Check if bootstrap needed",
            bootstrap::status,
        )
        .post(
            "/v1/auth/bootstrap",
            Access::Public,
            "Create initial admin user",
            bootstrap::bootstrap,
        )
        .get(
            "/v1/auth/github",
            Access::Public,
            "Redirect to GitHub OAuth",
            github::start,
        )
        .errors(&[(404, "GitHub login is not configured")])
        .get(
            "/v1/auth/github/callback",
            Access::Public,
            "GitHub OAuth callback",
            github::callback,
        )
        .errors(&[
            (
                403,
                "Declined on GitHub, account suspended, or no account may be made",
            ),
            (404, "GitHub login is not configured"),
            (409, "The GitHub account is linked to another user"),
            (502, "GitHub could not be reached"),
        ])
        .post(
            "/v1/auth/github/exchange",
            Access::Public,
            "Trade a GitHub login code for tokens",
            github::exchange,
        )
        .errors(&[
            (401, "Unknown, used or expired code"),
            (403, "Account suspended"),
            (404, "GitHub login is not configured"),
        ])
        .get(
            "/v1/auth/mfa/status",
            Access::Session,
            "Check MFA status",
            mfa::status,
        )
        .post(
            "/v1/auth/mfa/enroll",
            Access::Session,
            "Start MFA enrollment",
            mfa::enroll,
        )
        .post(
            "/v1/auth/mfa/verify",
            Access::Session,
            "Verify TOTP enrollment",
            mfa::verify,
        )
        .post(
            "/v1/auth/mfa/disable",
            Access::Session,
            "Disable MFA",
            mfa::disable,
        )
        .post(
            "/v1/auth/mfa/challenge",
            Access::Public,
            "Submit TOTP during login",
            mfa::challenge,
        )
        .errors(&[(401, "Unknown or expired challenge, or a wrong code")])
}
