//! Webhooks: the tokens organizations give GitHub and GitLab (`/v1/webhook-tokens`), and
//! the receivers of GitHub, GitLab and Stripe deliveries (`/v1/webhooks/*`), which verify
//! signatures over the raw body, record each delivery once, and hand pushes to
//! [`push::on_push`] (the hook git deploys build on).

pub mod push;
mod receive;
pub mod store;
pub mod tokens;
pub mod verify;

use crate::routes::{Access, Routes};

/// The webhooks routes.
pub fn router() -> Routes {
    Routes::new("webhooks")
        .post(
            "/v1/webhooks/github",
            Access::Public,
            "GitHub push events",
            receive::github,
        )
        .errors(&[(401, "Unsigned, forged or stale delivery")])
        .post(
            "/v1/webhooks/gitlab",
            Access::Public,
            "GitLab push events",
            receive::gitlab,
        )
        .errors(&[(401, "Missing or wrong X-Gitlab-Token")])
        .post(
            "/v1/webhooks/stripe",
            Access::Public,
            "Stripe events",
            receive::stripe,
        )
        .errors(&[
            (401, "Unsigned, forged or stale delivery"),
            (404, "Stripe webhooks are not configured on this panel"),
        ])
        .get(
            "/v1/webhook-tokens",
            Access::User,
            "List tokens",
            tokens::list,
        )
        .post(
            "/v1/webhook-tokens",
            Access::User,
            "Create token",
            tokens::create,
        )
        .delete(
            "/v1/webhook-tokens/{id}",
            Access::User,
            "Delete token",
            tokens::delete,
        )
}
