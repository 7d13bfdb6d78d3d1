//! The platform's SSH certificate authority: `/v1/ssh/*`. The panel signs short-lived
//! OpenSSH user certificates whose principals name a node and a login
//! (`node:<node id>:<login>`), so a certificate opens only the nodes its holder may reach;
//! it keeps every certificate, and publishes the CA keys nodes trust
//! (`GET /v1/ssh/ca-public-key`) and an OpenSSH KRL of the revoked ones
//! (`GET /v1/ssh/krl`, `krl.rs`). A certificate may instead name one server's SFTP
//! username (`sftp.rs`), which the agents' SFTP servers accept once the panel checked it.
//! CA keys are generated here and their private halves sealed with the master key
//! (`ca.rs`, `store.rs`). The `ssh_trust` job sends the keys and the KRL to every
//! connected agent when they change (`trust.rs`).

pub mod ca;
mod handlers;
pub mod krl;
mod sftp;
pub mod shell;
pub mod store;
pub mod trust;
pub mod view;

use crate::routes::{Access, Routes};

/// The SSH CA routes.
pub fn router() -> Routes {
    Routes::new("ssh")
        .get(
            "/v1/ssh/ca-public-key",
            Access::Public,
            "Get CA public key",
            handlers::public_keys,
        )
        .get(
            "/v1/ssh/krl",
            Access::Public,
            "Revoked certificates (OpenSSH KRL)",
            handlers::revocation_list,
        )
        .post(
            "/v1/ssh/certificate",
            Access::User,
            "Generate signed certificate",
            handlers::sign,
        )
        .get(
            "/v1/ssh/certificates",
            Access::User,
            "List certificates",
            handlers::list,
        )
        .get(
            "/v1/ssh/certificates/{id}",
            Access::User,
            "Get certificate",
            handlers::get,
        )
        .post(
            "/v1/ssh/certificates/{id}/revoke",
            Access::User,
            "Revoke certificate",
            handlers::revoke,
        )
        .get(
            "/v1/ssh/ca/keys",
            Access::Admin,
            "List CA keys",
            handlers::list_keys,
        )
        .post(
            "/v1/ssh/ca/keys",
            Access::Admin,
            "Generate CA key",
            handlers::create,
        )
        .post(
            "/v1/ssh/ca/keys/rotate",
            Access::Admin,
            "Rotate CA key",
            handlers::rotate,
        )
}
