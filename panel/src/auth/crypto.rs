//! Password hashing (argon2id), high-entropy secrets and their SHA-256 digests.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AppError, AppResult};

/// Hashes a password with argon2id off the async runtime.
///
/// # Errors
/// Only if the hasher fails, which it does not for valid parameters.
pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing password: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
}

/// A valid argon2id hash of a random password, verified against when the account does not
/// exist so that a login takes as long whether or not the email is known.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2hhcmRseW5kdW1teXNhbHQ$Vq8Q8k7m9b0dJm0o5d7f2tXxg1mXWJ0n1r8yVbq1c2o";

/// Whether `hash` is a bcrypt hash (`$2y$` as PHP writes it, `$2a$`, `$2b$`): a password
/// carried over from another panel (`pterodactyl::users`), verified with bcrypt and then
/// re-hashed with argon2id ([`hash_password`]) at the first successful login.
#[must_use]
pub fn is_bcrypt(hash: &str) -> bool {
    ["$2y$", "$2a$", "$2b$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

/// Checks a password against a stored hash (or the dummy hash when `hash` is `None`):
/// argon2id, or bcrypt for a hash [`is_bcrypt`] (`$2y$` is the same algorithm as `$2b$`;
/// like PHP's `password_verify`, bcrypt reads the first 72 bytes of the password).
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        if is_bcrypt(&hash) {
            return bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false) && known;
        }
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known
    })
    .await
    .unwrap_or(false)
}

/// `n` random bytes, hex-encoded.
#[must_use]
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Hex SHA-256 of a secret, the form secrets are stored in.
#[must_use]
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two digests.
#[must_use]
pub fn digest_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Checks a new password against the policy.
///
/// # Errors
/// A password shorter than `min_len` characters or longer than 1024 bytes.
pub fn check_password_policy(password: &str, min_len: usize) -> AppResult<()> {
    if password.chars().count() < min_len {
        return Err(AppError::Validation(format!(
            "password must be at least {min_len} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(AppError::Validation(
            "password must be at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Normalizes and checks an email address (trimmed, lower-cased, one `@`, a dotted domain).
///
/// # Errors
/// Anything that is not shaped like an address.
pub fn normalize_email(email: &str) -> AppResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split('@').count() == 2
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if valid {
        Ok(email)
    } else {
        Err(AppError::Validation("email is not a valid address".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_the_dummy_never_matches() {
        let hash = hash_password("correct horse battery".into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse battery".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
        // The dummy must parse, or unknown emails would answer faster than known ones.
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn bcrypt_hashes_of_every_prefix_verify() {
        // One bcrypt hash under each version prefix (PHP writes `$2y$`).
        let php =
            bcrypt::hash_with_salt("correct horse battery", 4, *b"shardlyn-bcrypt!").expect("hash");
        for version in [
            bcrypt::Version::TwoY,
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
        ] {
            let hash = php.format_for_version(version);
            assert!(is_bcrypt(&hash), "{hash}");
            assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await);
            assert!(!verify_password("wrong horse battery".into(), Some(hash)).await);
        }
        assert!(!is_bcrypt(DUMMY_HASH));
        assert!(!verify_password("x".into(), Some("$2y$10$short".into())).await);
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").expect("ok"),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a@b@c.com",
            "ada@localhost",
            "a b@x.io",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn password_policy_counts_characters() {
        assert!(check_password_policy("short", 10).is_err());
        assert!(check_password_policy("ééééééééééé", 10).is_ok());
        assert!(check_password_policy(&"x".repeat(2000), 10).is_err());
    }
}
