//! Resumable uploads into an instance's files over tus 1.0.0 (core, creation,
//! creation-with-upload, termination, checksum with sha1/sha256, expiration).
//!
//! The panel speaks tus to clients (`handlers.rs`, protocol details in `tus.rs`) and
//! keeps one record per upload (`store.rs`, table `uploads`) so uploads survive a panel
//! restart. The bytes stream through the tunnel to the agent, which appends them to
//! partial data outside the server's files and decides offsets (see
//! `shardlyn_proto::upload`); the file appears at its path only once complete. Bodies
//! are streamed, so the global body limit does not apply to them.

mod handlers;
pub(crate) mod store;
pub mod tus;

use crate::routes::{Access, Routes};

/// The uploads routes.
pub fn router() -> Routes {
    Routes::new("uploads")
        .post(
            "/v1/instances/{id}/files/tus",
            Access::User,
            "Upload (TUS resumable)",
            handlers::create,
        )
        .options(
            "/v1/instances/{id}/files/tus",
            Access::Public,
            "TUS discovery: version, extensions, max size",
            handlers::options,
        )
        .head(
            "/v1/instances/{id}/files/tus/{upload}",
            Access::User,
            "TUS upload offset",
            handlers::head,
        )
        .patch(
            "/v1/instances/{id}/files/tus/{upload}",
            Access::User,
            "TUS append at Upload-Offset",
            handlers::patch,
        )
        .delete(
            "/v1/instances/{id}/files/tus/{upload}",
            Access::User,
            "TUS termination",
            handlers::terminate,
        )
        .options(
            "/v1/instances/{id}/files/tus/{upload}",
            Access::Public,
            "TUS discovery on an upload URL",
            handlers::options,
        )
}
