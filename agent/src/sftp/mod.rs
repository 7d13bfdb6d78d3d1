//! The SFTP server of the agent (russh + russh-sftp): logins are checked by the panel
//! over the tunnel; files go through the same sandbox as the file API.
//!
//! * Listens on `sftp_bind:sftp_port` (agent settings, default `0.0.0.0:2022`) from
//!   agent start, whether or not the panel is connected.
//! * The host key (Ed25519) is generated once into `DATA_DIR/sftp_host_ed25519_key`
//!   (mode 0600) and reused, so clients' `known_hosts` stay valid.
//! * Username `<email>.<instance id prefix>` (split at the last `.`), password or public
//!   key. The agent does not judge credentials: [`Gate::ask`] sends them to the panel as
//!   an `sftp auth` event on `/v1/events` and waits for `POST /v1/sftp/auth/{id}`
//!   ([`answer`]); no panel or no answer in time means no entry.
//! * A session is rooted at the instance's [`Sandbox`](crate::files::Sandbox) (its
//!   denylist and disk limit); the panel's answer says whether it may read and write.
//! * Connection limits (total and per client address) and failed-login limits
//!   ([`limits`]) apply before the panel is asked.

mod auth;
mod fs;
pub mod limits;
mod server;

pub use auth::{Gate, answer};
pub use server::{Listening, host_key, start};
