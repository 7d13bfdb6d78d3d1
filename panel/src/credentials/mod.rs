//! Cloud credentials: `/v1/credentials*` (issue 17). An organization's accounts at
//! `aws`, `gcp`, `hetzner`, `oci`, `cloudflare` and `steam` (`providers.rs`: their fields,
//! checks and verify calls), their secrets sealed with the master key and never answered
//! (`handlers.rs`), one default per provider. Provisioning and DNS use them; each
//! provider's API base URL is a setting (`[cloud]`), so tests reach local fakes.

mod handlers;
pub mod providers;
pub mod store;

pub use handlers::{
    CreateBody, CredentialList, CredentialView, ProviderList, UpdateBody, VerifyResult, open_parts,
};

use crate::routes::{Access, Routes};

/// The credentials routes.
pub fn router() -> Routes {
    Routes::new("credentials")
        .get(
            "/v1/credentials",
            Access::User,
            "List credentials",
            handlers::list,
        )
        .get(
            "/v1/credentials/providers",
            Access::User,
            "Providers and their fields",
            handlers::providers,
        )
        .post(
            "/v1/credentials",
            Access::User,
            "Create credential",
            handlers::create,
        )
        .get(
            "/v1/credentials/{id}",
            Access::User,
            "Get credential",
            handlers::get,
        )
        .put(
            "/v1/credentials/{id}",
            Access::User,
            "Update credential",
            handlers::update,
        )
        .delete(
            "/v1/credentials/{id}",
            Access::User,
            "Delete credential",
            handlers::delete,
        )
        .post(
            "/v1/credentials/{id}/default",
            Access::User,
            "Set as default",
            handlers::make_default,
        )
        .post(
            "/v1/credentials/{id}/verify",
            Access::User,
            "Verify connectivity",
            handlers::verify,
        )
}
