//! `GET /v1/support/helpscout/signature`: HelpScout Beacon's secure mode identifies a
//! signed-in user by their email and `HMAC-SHA256(secret, email)` in hex; the secret
//! (`support.helpscout_secret`) stays on the panel.

use axum::extract::State;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppJson, AppResult};
use crate::state::AppState;

/// The hex HMAC-SHA256 of `email` under `secret`.
fn sign(secret: &str, email: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(email.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// What HelpScout Beacon's secure mode needs to identify the caller.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BeaconIdentity {
    pub email: String,
    pub name: String,
    /// Hex HMAC-SHA256 of `email` under the panel's HelpScout secret.
    pub signature: String,
}

/// The caller's email and its signature.
pub async fn signature(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<AppJson<BeaconIdentity>> {
    let secret = state.config.support.helpscout_secret.expose();
    if secret.is_empty() {
        return Err(AppError::coded(
            StatusCode::NOT_FOUND,
            "HELPSCOUT_NOT_CONFIGURED",
            "HelpScout is not configured on this panel: set support.helpscout_secret",
        ));
    }
    Ok(AppJson(BeaconIdentity {
        signature: sign(secret, &user.user.email),
        email: user.user.email.clone(),
        name: user.user.name.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_case_2() {
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
