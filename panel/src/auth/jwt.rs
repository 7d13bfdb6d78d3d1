//! Access tokens: HS256 JWTs that name a user and the session (refresh-token family)
//! they were issued for, valid for 15 minutes.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// Lifetime of an access token, in seconds.
pub const ACCESS_TTL_SECS: i64 = 900;

/// What an access token carries.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    /// Token use: `access`.
    pub typ: String,
}

/// Signing and verifying keys.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(***)")
    }
}

impl JwtKeys {
    /// Keys from a shared secret.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs an access token for `user_id` in session `session_id`, issued at `now` (seconds).
    ///
    /// # Errors
    /// Signing failure (not expected with HS256).
    pub fn issue_at(&self, user_id: &str, session_id: &str, now: i64) -> AppResult<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            iat: now,
            exp: now + ACCESS_TTL_SECS,
            typ: "access".into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(e.into()))
    }

    /// Signs an access token valid from now.
    ///
    /// # Errors
    /// As [`Self::issue_at`].
    pub fn issue(&self, user_id: &str, session_id: &str) -> AppResult<String> {
        self.issue_at(user_id, session_id, chrono::Utc::now().timestamp())
    }

    /// Verifies signature, algorithm and expiry.
    ///
    /// # Errors
    /// 401 for an expired, forged or malformed token.
    pub fn verify(&self, token: &str) -> AppResult<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    AppError::unauthorized("access token expired")
                }
                _ => AppError::unauthorized("invalid access token"),
            })?;
        if data.claims.typ != "access" {
            return Err(AppError::unauthorized("invalid access token"));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_expired_or_foreign_tokens() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys.issue("u1", "s1").expect("issue");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));
        assert_eq!(claims.exp - claims.iat, 900);

        let old = keys
            .issue_at("u1", "s1", chrono::Utc::now().timestamp() - 901)
            .expect("issue");
        assert_eq!(
            keys.verify(&old).expect_err("expired").to_string(),
            "access token expired"
        );

        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&token).is_err());
        assert!(keys.verify("not.a.jwt").is_err());
    }
}
