//! Shells on nodes through the panel: the SSH and terminal WebSockets (`socket.rs`), the
//! tickets browsers open them with (`tickets.rs`), the one-minute certificate an SSH
//! session logs in with (`mint.rs`), and the sessions' recordings (`recordings.rs`).

mod mint;
pub mod recordings;
mod socket;
pub mod tickets;

use crate::routes::{Access, Routes};
use crate::tunnel::AGENT_ERRORS;

/// The shell routes.
pub fn router() -> Routes {
    Routes::new("nodes")
        .get(
            "/v1/nodes/{id}/ssh",
            Access::Socket,
            "WebSocket SSH (uses CA)",
            socket::ssh,
        )
        .errors(AGENT_ERRORS)
        .get(
            "/v1/nodes/{id}/terminal",
            Access::Socket,
            "WebSocket terminal",
            socket::terminal,
        )
        .errors(AGENT_ERRORS)
        .post(
            "/v1/nodes/{id}/ssh/tickets",
            Access::User,
            "Single-use 30-second ticket for the SSH WebSocket",
            tickets::ssh,
        )
        .post(
            "/v1/nodes/{id}/terminal/tickets",
            Access::User,
            "Single-use 30-second ticket for the terminal WebSocket",
            tickets::terminal,
        )
        .get(
            "/v1/nodes/{id}/recordings",
            Access::User,
            "List SSH and terminal session recordings",
            recordings::list,
        )
        .get(
            "/v1/nodes/{id}/recordings/{rid}",
            Access::User,
            "Get a session recording",
            recordings::get,
        )
        .get(
            "/v1/nodes/{id}/recordings/{rid}/cast",
            Access::User,
            "Download a session recording (asciicast v2)",
            recordings::cast,
        )
}
