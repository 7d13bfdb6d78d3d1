//! Notification integrations: `/v1/integrations*`. An organization's channels (Discord,
//! Slack, Telegram, email, Microsoft Teams, ntfy and a generic webhook signed per
//! Standard Webhooks, `kinds.rs`), their secrets sealed with the master key and never
//! answered, CRUD and a synchronous test send (`handlers.rs`); the durable delivery queue
//! other areas (alerts) notify through, [`deliver::enqueue`], and its job (`deliver.rs`);
//! the wire formats of each service (`send.rs`). Domain layer: it uses the outbound guard
//! and the mailer, and knows nothing of what it is told.

pub mod deliver;
mod handlers;
pub mod kinds;
pub mod send;
pub mod store;

pub use handlers::{
    CreateBody, CreatedIntegration, IntegrationList, IntegrationView, RotatedSecret, TestResult,
    UpdateBody,
};

use serde_json::{Map, Value};

use crate::error::{AppError, AppResult};
use crate::routes::{Access, Routes};
use crate::state::AppState;
use kinds::Parts;
use store::Integration;

/// The secret entry holding a generic webhook's `whsec_` signing secret.
pub const SIGNING_SECRET: &str = "signing_secret";

/// Opens an integration's configuration: its public fields and its secrets.
///
/// # Errors
/// 500 when the stored values do not parse or open under the master key.
pub fn open_parts(state: &AppState, i: &Integration) -> AppResult<Parts> {
    let public: Map<String, Value> =
        serde_json::from_str(&i.config).map_err(|e| AppError::Internal(e.into()))?;
    let secrets = crate::sealed::open_json(&state.master_key, &i.sealed_secrets)
        .map_err(AppError::Internal)?;
    Ok(Parts { public, secrets })
}

/// Stores `parts` into `i`: the public fields as JSON, the secrets sealed.
pub fn store_parts(state: &AppState, i: &mut Integration, parts: &Parts) {
    i.config = Value::Object(parts.public.clone()).to_string();
    i.sealed_secrets = crate::sealed::seal_json(&state.master_key, &parts.secrets);
}

/// The integrations routes.
pub fn router() -> Routes {
    Routes::new("integrations")
        .get(
            "/v1/integrations",
            Access::User,
            "List integrations",
            handlers::list,
        )
        .get(
            "/v1/integrations/types",
            Access::User,
            "Available types",
            handlers::types,
        )
        .post(
            "/v1/integrations",
            Access::User,
            "Create integration",
            handlers::create,
        )
        .errors(&[(422, "A URL on a refused (private) address")])
        .get(
            "/v1/integrations/{id}",
            Access::User,
            "Get integration",
            handlers::get,
        )
        .put(
            "/v1/integrations/{id}",
            Access::User,
            "Update integration",
            handlers::update,
        )
        .errors(&[(422, "A URL on a refused (private) address")])
        .delete(
            "/v1/integrations/{id}",
            Access::User,
            "Delete integration",
            handlers::delete,
        )
        .post(
            "/v1/integrations/{id}/test",
            Access::User,
            "Test integration",
            handlers::test,
        )
        .post(
            "/v1/integrations/{id}/rotate-secret",
            Access::User,
            "Rotate a webhook's signing secret",
            handlers::rotate_secret,
        )
}
