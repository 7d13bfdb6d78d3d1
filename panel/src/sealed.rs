//! Secrets sealed for storage (decision 7): AES-256-GCM under the master key, a random
//! 96-bit nonce per seal, stored as `base64(nonce || ciphertext)`.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

const NONCE_LEN: usize = 12;

/// Seals `plaintext` under `key`.
#[must_use]
pub fn seal(key: &[u8; 32], plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    // Encryption only fails for inputs beyond GCM's limit (64 GiB), never for our secrets.
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    STANDARD.encode(out)
}

/// Opens a value made by [`seal`].
///
/// # Errors
/// Malformed input, a different key, or any tampering.
pub fn open(key: &[u8; 32], sealed: &str) -> anyhow::Result<Vec<u8>> {
    let raw = STANDARD
        .decode(sealed.trim())
        .context("sealed value is not base64")?;
    if raw.len() < NONCE_LEN + 16 {
        return Err(anyhow!("sealed value is too short"));
    }
    let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .map_err(|_| anyhow!("sealed value does not open under this key (tampered or wrong key)"))
}

/// Seals a JSON object (the secret fields of an integration or a credential).
#[must_use]
pub fn seal_json(key: &[u8; 32], object: &serde_json::Map<String, serde_json::Value>) -> String {
    seal(
        key,
        serde_json::Value::Object(object.clone())
            .to_string()
            .as_bytes(),
    )
}

/// Opens a JSON object made by [`seal_json`]; an empty value is an empty object.
///
/// # Errors
/// As [`open`], or when what it holds is not a JSON object.
pub fn open_json(
    key: &[u8; 32],
    sealed: &str,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    if sealed.is_empty() {
        return Ok(serde_json::Map::new());
    }
    serde_json::from_slice(&open(key, sealed)?).context("sealed value is not a JSON object")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trip_with_fresh_nonces() {
        let a = seal(&KEY, b"totp seed bytes");
        let b = seal(&KEY, b"totp seed bytes");
        assert_ne!(a, b, "each seal uses a new nonce");
        assert_eq!(open(&KEY, &a).expect("opens"), b"totp seed bytes");
        assert_eq!(open(&KEY, &b).expect("opens"), b"totp seed bytes");
        assert_eq!(open(&KEY, &seal(&KEY, b"")).expect("opens"), b"");
    }

    #[test]
    fn tampering_is_detected() {
        let sealed = seal(&KEY, b"secret");
        let mut raw = STANDARD.decode(&sealed).expect("base64");
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            assert!(open(&KEY, &STANDARD.encode(&raw)).is_err(), "flip at {i}");
            raw[i] ^= 1;
        }
        assert!(open(&KEY, &STANDARD.encode(&raw[..raw.len() - 1])).is_err());
        assert!(open(&KEY, "not base64!").is_err());
        assert!(open(&KEY, "AAAA").is_err());
    }

    #[test]
    fn wrong_key_is_refused() {
        let sealed = seal(&KEY, b"secret");
        assert!(open(&[8; 32], &sealed).is_err());
    }
}
