//! `GET /v1/support/helpscout/signature`: HelpScout Beacon's secure mode identifies a
//! signed-in user by their email and `HMAC-SHA256(secret, email)` in hex; the secret
//! (`support.helpscout_secret`) stays on the panel.

use axum::extract::State;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
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

/// The caller's email and its signature.
pub async fn signature(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<AppJson<Value>> {
    let secret = state.config.support.helpscout_secret.expose();
    if secret.is_empty() {
        return Err(AppError::coded(
            StatusCode::NOT_FOUND,
            "HELPSCOUT_NOT_CONFIGURED",
            "HelpScout is not configured on this panel: set support.helpscout_secret",
        ));
    }
    Ok(AppJson(json!({
        "email": user.user.email,
        "name": user.user.name,
        "signature": sign(secret, &user.user.email),
    })))
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
