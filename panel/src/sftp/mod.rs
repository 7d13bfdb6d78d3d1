//! SFTP on the panel's side: the SSH public keys users log in with
//! (`/v1/users/me/ssh-keys`, Pterodactyl's account SSH keys) and the login checks agents
//! ask for over their tunnel ([`dispatch`]).
//!
//! An agent's SFTP server sends each login as an `sftp auth` event on its `/v1/events`
//! stream; [`dispatch`] checks the credentials and the user's `instances.sftp`
//! permission on the instance, then posts the answer to the agent's
//! `/v1/sftp/auth/{id}`.

pub mod auth;
mod certs;
mod keys;

pub use auth::dispatch;

use crate::routes::{Access, Routes};

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("sftp")
        .get(
            "/v1/users/me/ssh-keys",
            Access::User,
            "List my SSH keys (SFTP)",
            keys::list,
        )
        .post(
            "/v1/users/me/ssh-keys",
            Access::Session,
            "Add an SSH key (SFTP)",
            keys::create,
        )
        .delete(
            "/v1/users/me/ssh-keys/{id}",
            Access::Session,
            "Remove an SSH key",
            keys::delete,
        )
}
