//! Support: messages from users to the platform's support address
//! (`POST /v1/support/messages`) and the HelpScout Beacon signature of the caller's email
//! (`GET /v1/support/helpscout/signature`).

mod helpscout;
mod messages;

use crate::routes::{Access, Routes};

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("support")
        .post(
            "/v1/support/messages",
            Access::User,
            "Send support message",
            messages::send,
        )
        .get(
            "/v1/support/helpscout/signature",
            Access::User,
            "HelpScout widget signature",
            helpscout::signature,
        )
}
