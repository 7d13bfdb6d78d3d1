//! Laravel's `encrypt()` payloads, as a Pterodactyl panel stores node daemon tokens and
//! users' TOTP secrets, opened with the panel's `APP_KEY`.
//!
//! Domain helper of the Pterodactyl import (no I/O). The payload is base64 of a JSON
//! object `{iv, value, mac, tag}`: `iv` and `value` are base64 (AES-256-CBC, PKCS#7), `mac`
//! is hex HMAC-SHA256 with the key over the base64 texts of `iv` then `value`, `tag` is
//! empty (AEAD ciphers only). This is Laravel 8's `Illuminate\Encryption\Encrypter`; the
//! integration tests check it against that class itself. `encrypt()` serializes its
//! value first, so a string comes back as PHP's `s:N:"...";`, which
//! [`decrypt_string`] undoes.
//!
//! Written by hand because no maintained crate reads Laravel payloads; the primitives are
//! RustCrypto's (`aes`, `cbc`, `hmac`, `sha2`).

use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a payload could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LaravelError {
    /// The `APP_KEY` is not `base64:` of 32 bytes nor 32 raw bytes.
    #[error("APP_KEY must be `base64:` followed by 32 bytes in base64 (or 32 raw bytes)")]
    Key,
    /// The payload is not base64 JSON with `iv`, `value` and `mac`.
    #[error("not a Laravel encrypted payload: {0}")]
    Payload(&'static str),
    /// The MAC does not match: another `APP_KEY` encrypted it (or it was altered).
    #[error("the MAC does not match (wrong APP_KEY)")]
    Mac,
    /// The MAC matched but the ciphertext does not decrypt (padding).
    #[error("the value does not decrypt")]
    Decrypt,
    /// The plaintext is not the UTF-8 string expected.
    #[error("the decrypted value is not a string: {0}")]
    NotAString(&'static str),
}

/// The payload's JSON fields Laravel writes.
#[derive(serde::Deserialize)]
struct Payload {
    iv: String,
    value: String,
    mac: String,
    #[serde(default)]
    tag: Option<String>,
}

/// The 32-byte key of an `APP_KEY` (`base64:...`, or the raw 32 bytes).
///
/// # Errors
/// [`LaravelError::Key`] for anything else.
pub fn key_bytes(app_key: &str) -> Result<[u8; 32], LaravelError> {
    let app_key = app_key.trim();
    let bytes = match app_key.strip_prefix("base64:") {
        Some(b64) => STANDARD.decode(b64).map_err(|_| LaravelError::Key)?,
        None => app_key.as_bytes().to_vec(),
    };
    bytes.try_into().map_err(|_| LaravelError::Key)
}

/// Opens a payload made by Laravel's `encrypt()`/`encryptString()` under `app_key`,
/// giving the plaintext bytes (still serialized for `encrypt()`).
///
/// # Errors
/// [`LaravelError::Mac`] when the key is not the one that encrypted it; the other
/// variants for malformed keys or payloads.
pub fn decrypt(app_key: &str, payload: &str) -> Result<Vec<u8>, LaravelError> {
    let key = key_bytes(app_key)?;
    let json = STANDARD
        .decode(payload.trim())
        .map_err(|_| LaravelError::Payload("not base64"))?;
    let p: Payload = serde_json::from_slice(&json)
        .map_err(|_| LaravelError::Payload("not the JSON expected"))?;
    if p.tag.as_deref().is_some_and(|t| !t.is_empty()) {
        return Err(LaravelError::Payload(
            "an AEAD (GCM) payload; AES-256-CBC expected",
        ));
    }
    let iv = STANDARD
        .decode(&p.iv)
        .map_err(|_| LaravelError::Payload("iv is not base64"))?;
    if iv.len() != 16 {
        return Err(LaravelError::Payload("iv is not 16 bytes"));
    }
    let mac = hex::decode(&p.mac).map_err(|_| LaravelError::Payload("mac is not hex"))?;
    let mut hmac = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| LaravelError::Key)?;
    hmac.update(p.iv.as_bytes());
    hmac.update(p.value.as_bytes());
    // `verify_slice` compares in constant time.
    hmac.verify_slice(&mac).map_err(|_| LaravelError::Mac)?;
    let mut buf = STANDARD
        .decode(&p.value)
        .map_err(|_| LaravelError::Payload("value is not base64"))?;
    let plain = cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
        .map_err(|_| LaravelError::Key)?
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| LaravelError::Decrypt)?;
    Ok(plain.to_vec())
}

/// Opens a payload and gives the string inside: PHP's serialized `s:N:"...";` (what
/// `encrypt()` stores) is unserialized; any other plaintext (`encryptString()`) is taken
/// as is.
///
/// # Errors
/// As [`decrypt`], and [`LaravelError::NotAString`] for a serialized value other than a
/// string or a plaintext that is not UTF-8.
pub fn decrypt_string(app_key: &str, payload: &str) -> Result<String, LaravelError> {
    let plain = decrypt(app_key, payload)?;
    let bytes = match unserialize_string(&plain)? {
        Some(inner) => inner,
        None => &plain,
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| LaravelError::NotAString("not UTF-8"))
}

/// The bytes of a PHP serialized string `s:N:"...";` (N counts bytes); `None` when the
/// plaintext is not serialized at all.
fn unserialize_string(plain: &[u8]) -> Result<Option<&[u8]>, LaravelError> {
    let Some(rest) = plain.strip_prefix(b"s:") else {
        if serialized_other(plain) {
            return Err(LaravelError::NotAString(
                "a serialized value other than a string",
            ));
        }
        return Ok(None);
    };
    let Some(colon) = rest.iter().position(|&b| b == b':') else {
        return Ok(None);
    };
    let Some(len) = std::str::from_utf8(&rest[..colon])
        .ok()
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return Ok(None);
    };
    let body = &rest[colon + 1..];
    // `"` + N bytes + `";`
    if body.len() == len + 3 && body[0] == b'"' && body[len + 1] == b'"' && body[len + 2] == b';' {
        Ok(Some(&body[1..=len]))
    } else {
        Err(LaravelError::NotAString("a malformed serialized string"))
    }
}

/// PHP's serialized null, boolean, integer, float, array or object.
fn serialized_other(p: &[u8]) -> bool {
    matches!(
        p,
        b"N;" | [b'i' | b'b' | b'd', b':', .., b';'] | [b'a' | b'O' | b'C', b':', .., b'}']
    )
}

#[cfg(test)]
mod tests {
    use aes::cipher::BlockModeEncrypt;

    use super::*;

    const KEY: &str = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    /// Encrypts as Laravel's `Encrypter::encrypt` does, for round trips with chosen ivs
    /// (the integration test checks against PHP itself).
    fn encrypt(app_key: &str, iv: [u8; 16], plain: &[u8]) -> String {
        let key = key_bytes(app_key).unwrap();
        let mut buf = vec![0u8; plain.len() + 16];
        buf[..plain.len()].copy_from_slice(plain);
        let ct = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
            .encrypt_padded::<Pkcs7>(&mut buf, plain.len())
            .unwrap()
            .to_vec();
        let iv = STANDARD.encode(iv);
        let value = STANDARD.encode(ct);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        mac.update(iv.as_bytes());
        mac.update(value.as_bytes());
        let mac = hex::encode(mac.finalize().into_bytes());
        let json = serde_json::json!({"iv": iv, "value": value, "mac": mac, "tag": ""});
        STANDARD.encode(json.to_string())
    }

    /// Made by PHP 8.2 with Laravel 8.83's `Encrypter` (Debian php-laravel-framework):
    /// `(new Encrypter(base64_decode(KEY), 'AES-256-CBC'))->encrypt('JBSWY3DPEHPK3PXP')`.
    const PHP_TOTP: &str = include_str!("testdata/laravel_totp.txt");

    #[test]
    fn opens_a_payload_made_by_laravel() {
        assert_eq!(
            decrypt_string(KEY, PHP_TOTP.trim()).unwrap(),
            "JBSWY3DPEHPK3PXP"
        );
        assert_eq!(
            decrypt(KEY, PHP_TOTP.trim()).unwrap(),
            b"s:16:\"JBSWY3DPEHPK3PXP\";"
        );
    }

    #[test]
    fn round_trips_serialized_and_plain_strings() {
        let p = encrypt(KEY, [7; 16], b"s:6:\"h\xc3\xa9llo\";".as_slice());
        assert_eq!(decrypt_string(KEY, &p).unwrap(), "héllo");
        let p = encrypt(KEY, [9; 16], b"plain token");
        assert_eq!(decrypt_string(KEY, &p).unwrap(), "plain token");
        let p = encrypt(KEY, [1; 16], b"");
        assert_eq!(decrypt_string(KEY, &p).unwrap(), "");
    }

    #[test]
    fn a_raw_32_byte_key_works() {
        let raw = "0123456789abcdef0123456789abcdef";
        let p = encrypt(raw, [3; 16], b"s:3:\"abc\";");
        assert_eq!(decrypt_string(raw, &p).unwrap(), "abc");
    }

    #[test]
    fn another_key_is_a_mac_error() {
        let other = "base64:Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";
        assert_eq!(key_bytes(other).map(|_| ()), Ok(()));
        assert_eq!(decrypt(other, PHP_TOTP.trim()), Err(LaravelError::Mac));
    }

    #[test]
    fn an_altered_value_is_a_mac_error() {
        let p = encrypt(KEY, [7; 16], b"s:3:\"abc\";");
        let json = STANDARD.decode(&p).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        v["iv"] = STANDARD.encode([8u8; 16]).into();
        let altered = STANDARD.encode(v.to_string());
        assert_eq!(decrypt(KEY, &altered), Err(LaravelError::Mac));
    }

    #[test]
    fn malformed_keys_and_payloads_are_refused() {
        assert_eq!(
            decrypt("base64:AAEC", PHP_TOTP.trim()),
            Err(LaravelError::Key)
        );
        assert_eq!(decrypt("short", PHP_TOTP.trim()), Err(LaravelError::Key));
        assert!(matches!(
            decrypt(KEY, "not base64!"),
            Err(LaravelError::Payload(_))
        ));
        assert!(matches!(
            decrypt(KEY, &STANDARD.encode("{\"iv\":1}")),
            Err(LaravelError::Payload(_))
        ));
    }

    #[test]
    fn serialized_values_other_than_strings_are_refused() {
        for plain in [&b"i:5;"[..], b"b:1;", b"N;", b"a:0:{}", b"s:9:\"abc\";"] {
            let p = encrypt(KEY, [5; 16], plain);
            assert!(
                matches!(decrypt_string(KEY, &p), Err(LaravelError::NotAString(_))),
                "{}",
                String::from_utf8_lossy(plain)
            );
        }
    }
}
