//! Selling servers (issue 19): plans, Stripe subscriptions, limits, dunning and cloud
//! costs. `/v1/billing/*`, `/v1/admin/plans*`, `/v1/admin/subscriptions*`; Stripe's
//! webhook deliveries arrive at `POST /v1/webhooks/stripe` (`webhooks::receive`) and
//! are acted on here.
//!
//! - `plans`: plans (limits, prices, node pools), admin CRUD, the public list.
//! - `limits`: caps checked in the transaction of the change, under a lock on the
//!   organization (402 `PLAN_LIMIT`).
//! - `stripe`: the Stripe client (async-stripe), its base URL configurable.
//! - `subscriptions`: one row per organization; what Stripe says lands there.
//! - `events`: Stripe events acted on once; the retry worker and the reconciliation.
//! - `org`: an organization's subscription, usage, limits, subscribe, change, cancel,
//!   the billing portal and invoices.
//! - `admin`: every subscription, changed or ended by a platform admin.
//! - `dunning`: the grace period, suspension for non-payment, termination, restore.
//! - `costs`: what an organization's cloud nodes cost (a ledger that outlives nodes).
//!
//! Billing is on when `stripe.secret_key` is set. Off, every organization is unlimited,
//! the read routes say `billing_enabled: false` and the others answer 409
//! `BILLING_DISABLED`.

pub mod admin;
pub mod costs;
pub mod dunning;
pub mod events;
pub mod limits;
pub mod org;
pub mod plans;
pub mod stripe;
pub mod subscriptions;

use crate::state::AppState;

/// Whether this panel sells plans (a Stripe secret key is configured).
#[must_use]
pub fn enabled(state: &AppState) -> bool {
    !state.config.stripe.secret_key.expose().is_empty()
}

/// The Stripe client, while billing is on.
#[must_use]
pub fn client(state: &AppState) -> Option<stripe::Stripe> {
    stripe::Stripe::from_config(&state.config.stripe)
}

/// The billing routes (cloud costs are `costs::router`).
pub fn router() -> crate::routes::Routes {
    use crate::routes::{Access, Routes};
    const OFF: (u16, &str) = (409, "BILLING_DISABLED: billing is off on this panel");
    const STRIPE: (u16, &str) = (
        502,
        "STRIPE_ERROR: Stripe refused; STRIPE_UNREACHABLE: Stripe could not be reached",
    );
    Routes::new("billing")
        .get(
            "/v1/billing/plans",
            Access::User,
            "List plans",
            plans::public_list,
        )
        .get(
            "/v1/billing/org/subscription",
            Access::User,
            "Current subscription",
            org::subscription,
        )
        .get(
            "/v1/billing/org/usage",
            Access::User,
            "Resource usage",
            org::usage,
        )
        .get(
            "/v1/billing/org/limits",
            Access::User,
            "Plan limits",
            org::limits,
        )
        .post(
            "/v1/billing/org/subscribe",
            Access::User,
            "Subscribe to plan",
            org::subscribe,
        )
        .errors(&[(404, "No such plan"), OFF, STRIPE])
        .post(
            "/v1/billing/org/cancel",
            Access::User,
            "Cancel subscription",
            org::cancel,
        )
        .errors(&[
            (409, "BILLING_DISABLED; NO_SUBSCRIPTION: nothing to cancel"),
            STRIPE,
        ])
        .post(
            "/v1/billing/org/portal",
            Access::User,
            "Stripe billing portal",
            org::portal,
        )
        .errors(&[OFF, STRIPE])
        .get(
            "/v1/billing/org/invoices",
            Access::User,
            "List invoices",
            org::invoices,
        )
        .errors(&[STRIPE])
        .get(
            "/v1/admin/plans",
            Access::Admin,
            "List plans",
            plans::admin_list,
        )
        .post(
            "/v1/admin/plans",
            Access::Admin,
            "Create plan",
            plans::create,
        )
        .errors(&[(409, "PLAN_NAME_TAKEN"), STRIPE])
        .put(
            "/v1/admin/plans/{id}",
            Access::Admin,
            "Update plan",
            plans::update,
        )
        .errors(&[(404, "No such plan"), (409, "PLAN_NAME_TAKEN"), STRIPE])
        .delete(
            "/v1/admin/plans/{id}",
            Access::Admin,
            "Delete plan",
            plans::delete,
        )
        .errors(&[
            (404, "No such plan"),
            (
                409,
                "PLAN_HAS_SUBSCRIBERS: archive it instead; PLAN_IS_DEFAULT",
            ),
        ])
        .get(
            "/v1/admin/subscriptions",
            Access::Admin,
            "List subscriptions",
            admin::list,
        )
        .put(
            "/v1/admin/subscriptions/{id}",
            Access::Admin,
            "Update subscription",
            admin::update,
        )
        .errors(&[(404, "No such subscription or plan"), STRIPE])
}
