//! `/v1/settings/ssh-keys`: the SSH keys the panel provisions machines with. A key is
//! given as an OpenSSH private key (checked with `ssh-key`) or generated (ed25519); the
//! private half is sealed under the master key and never leaves the panel through the
//! API. At most one key is the default.

use axum::extract::State;
use axum::http::StatusCode;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey, KeypairData};
use ssh_key::public::Ed25519PublicKey;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};
use zeroize::Zeroizing;

use super::store::{self, NewKey, SshKey};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::sealed;
use crate::state::AppState;

/// Longest key name, in bytes.
const NAME_MAX: usize = 64;
/// Largest private key accepted, in bytes (an RSA-16384 key is about 12 KiB).
const KEY_MAX: usize = 16 * 1024;
/// Smallest RSA modulus accepted, in bits.
const RSA_MIN_BITS: u32 = 2048;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    name: String,
    /// An unencrypted OpenSSH private key; left out, an ed25519 key is generated.
    private_key: Option<String>,
}

/// Checks a key name: 1-64 of `[A-Za-z0-9._-]`, starting with a letter or digit.
fn check_name(name: &str) -> AppResult<()> {
    let valid = !name.is_empty()
        && name.len() <= NAME_MAX
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(AppError::invalid_field(
            "name",
            format!(
                "name must be 1 to {NAME_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit"
            ),
        ))
    }
}

/// Parses and checks an OpenSSH private key: unencrypted, ed25519 or RSA of at least
/// 2048 bits, and (ed25519) a public half that matches the private one.
fn parse_private_key(pem: &str) -> AppResult<PrivateKey> {
    let bad = |message: String| AppError::unprocessable("private_key", message);
    if pem.len() > KEY_MAX {
        return Err(bad(format!("private_key must be at most {KEY_MAX} bytes")));
    }
    let key = PrivateKey::from_openssh(pem.trim()).map_err(|e| match algorithm_of(pem) {
        // `ssh-key` refuses some keys of a kind the panel refuses anyway (an ECDSA
        // scalar written shorter than its curve, 1 key in 256): say why for those.
        Some(algorithm) if !matches!(algorithm, Algorithm::Ed25519 | Algorithm::Rsa { .. }) => {
            bad(format!(
                "{algorithm} keys are not supported: use ed25519 or RSA"
            ))
        }
        _ => bad(format!(
            "private_key is not an OpenSSH private key (the file ssh-keygen writes, e.g. ~/.ssh/id_ed25519): {e}"
        )),
    })?;
    if key.is_encrypted() {
        return Err(bad(
            "private_key is encrypted: the panel uses it unattended, remove the passphrase (ssh-keygen -p)".into(),
        ));
    }
    match key.key_data() {
        KeypairData::Ed25519(pair) => {
            if ed25519_public(&pair.private.to_bytes()) != pair.public.0 {
                return Err(bad(
                    "private_key is inconsistent: its public half does not match".into(),
                ));
            }
        }
        KeypairData::Rsa(pair) if pair.key_size() < RSA_MIN_BITS => {
            return Err(bad(format!(
                "RSA keys must have at least {RSA_MIN_BITS} bits (this one has {})",
                pair.key_size()
            )));
        }
        KeypairData::Rsa(_) => {}
        _ => {
            return Err(bad(format!(
                "{} keys are not supported: use ed25519 or RSA",
                key.algorithm()
            )));
        }
    }
    Ok(key)
}

/// The algorithm of an OpenSSH private key file, read from the public key it carries
/// in the clear (`openssh-key-v1`: cipher, KDF and its options, the number of keys, then
/// the first public key), which parses where the private half may not.
fn algorithm_of(pem: &str) -> Option<Algorithm> {
    use base64::Engine as _;
    fn string(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let len = usize::try_from(u32::from_be_bytes(b.get(..4)?.try_into().ok()?)).ok()?;
        let rest = b.get(4..)?;
        Some((rest.get(..len)?, rest.get(len..)?))
    }
    let text: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    let mut at = bytes.strip_prefix(b"openssh-key-v1\0")?;
    for _ in 0..3 {
        at = string(at)?.1;
    }
    let (public, _) = string(at.get(4..)?)?;
    ssh_key::PublicKey::from_bytes(public)
        .ok()
        .map(|k| k.algorithm())
}

/// The ed25519 public key of a 32-byte seed.
fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .expect("any 32-byte seed is an ed25519 private key");
    let mut public = [0u8; 32];
    public.copy_from_slice(ring::signature::KeyPair::public_key(&pair).as_ref());
    public
}

/// A new ed25519 key. `ssh-key` only generates keys with its `ed25519` feature (another
/// curve library); ring, already linked for TLS, derives the public half instead.
fn generate(comment: &str) -> AppResult<PrivateKey> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let pair = Ed25519Keypair {
        public: Ed25519PublicKey(ed25519_public(&seed)),
        private: Ed25519PrivateKey::from_bytes(&seed),
    };
    PrivateKey::new(KeypairData::Ed25519(pair), comment)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("building an ed25519 key: {e}")))
}

/// Adds a key (platform admins): 201 with the public key and fingerprint.
pub async fn add(
    State(state): State<AppState>,
    crate::auth::extract::SessionAdmin(user): crate::auth::extract::SessionAdmin,
    AppJson(body): AppJson<AddKey>,
) -> AppResult<(StatusCode, AppJson<StoredKey>)> {
    check_name(&body.name)?;
    let generated = body.private_key.is_none();
    let mut key = match body.private_key.as_deref() {
        Some(pem) => parse_private_key(pem)?,
        None => generate(&body.name)?,
    };
    key.set_comment(body.name.as_str());
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("encoding the private key: {e}")))?;
    let public_key = key
        .public_key()
        .to_openssh()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("encoding the public key: {e}")))?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let algorithm = key.algorithm().as_str().to_string();
    let sealed_private_key = sealed::seal(&state.master_key, private.as_bytes());

    let mut tx = state.db.begin_write().await?;
    if store::find_key(&mut tx, &body.name).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "an SSH key named {} already exists",
            body.name
        )));
    }
    let is_default = !store::has_default(&mut tx).await?;
    let created_at = store::insert_key(
        &mut tx,
        &NewKey {
            name: &body.name,
            algorithm: &algorithm,
            fingerprint: &fingerprint,
            public_key: &public_key,
            sealed_private_key: &sealed_private_key,
            is_default,
            created_by: &user.user.id,
        },
    )
    .await
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => {
            AppError::Conflict("this SSH key is already stored under another name".into())
        }
        other => other,
    })?;
    tx.commit().await?;
    let view = SshKey {
        name: body.name,
        algorithm,
        fingerprint,
        public_key,
        is_default,
        created_at,
    };
    Ok((
        StatusCode::CREATED,
        AppJson(StoredKey {
            key: view,
            generated,
        }),
    ))
}

/// A key just stored: the key, and whether the panel generated it (no private key was
/// given).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StoredKey {
    #[serde(flatten)]
    pub key: SshKey,
    pub generated: bool,
}

/// Removes a key (platform admins). Removing the default leaves no default.
pub async fn delete(
    State(state): State<AppState>,
    _admin: crate::auth::extract::SessionAdmin,
    AppPath(name): AppPath<String>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.pool.acquire().await?;
    if store::delete_key(&mut conn, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("SSH key"))
    }
}

/// Makes a key the default (platform admins).
pub async fn set_default(
    State(state): State<AppState>,
    _admin: crate::auth::extract::SessionAdmin,
    AppPath(name): AppPath<String>,
) -> AppResult<AppJson<SshKey>> {
    let mut tx = state.db.pool.begin().await?;
    if !store::set_default(&mut tx, &name).await? {
        return Err(AppError::not_found("SSH key"));
    }
    let key = store::find_key(&mut tx, &name)
        .await?
        .ok_or_else(|| AppError::not_found("SSH key"))?;
    tx.commit().await?;
    Ok(AppJson(key))
}

/// The default provisioning key: its public view and the OpenSSH private key, opened.
///
/// # Errors
/// A database failure, or a sealed key that does not open under the master key.
pub async fn default_key(state: &AppState) -> AppResult<Option<(SshKey, Zeroizing<String>)>> {
    let Some((key, sealed_private)) = store::default_key_material(&state.db.pool).await? else {
        return Ok(None);
    };
    let opened = sealed::open(&state.master_key, &sealed_private).map_err(AppError::Internal)?;
    let pem = String::from_utf8(opened)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("stored SSH key is not UTF-8")))?;
    Ok(Some((key, Zeroizing::new(pem))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["deploy", "hetzner-1", "a.b_c", "9"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "has space", "a/b", &"x".repeat(65), "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    /// An ECDSA P-256 key from `ssh-keygen` whose private scalar has a leading zero
    /// byte (1 key in 256; written as 31 bytes), made for this test and used nowhere.
    /// `ssh-key` cannot parse it; it is refused for its kind like every ECDSA key.
    const ECDSA_SHORT_SCALAR: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAaAAAABNlY2RzYS\n\
1zaGEyLW5pc3RwMjU2AAAACG5pc3RwMjU2AAAAQQTAXtLtQ7VG25s0xWvyR9aGRgr8BvqP\n\
EwCqq1Qg9EGHU2ppqVIccSGVf4LrU6EU1Pl7mcXp0d74thMb4rP4uHDmAAAAoDHJDyQxyQ\n\
8kAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMBe0u1DtUbbmzTF\n\
a/JH1oZGCvwG+o8TAKqrVCD0QYdTammpUhxxIZV/gutToRTU+XuZxenR3vi2Exvis/i4cO\n\
YAAAAfN3rSVr93rXjJx8D3UVF4EW50qrX8piENU/kLwMEsoQAAAAdyb290QHZtAQI=\n\
-----END OPENSSH PRIVATE KEY-----";

    #[test]
    fn an_ecdsa_key_ssh_key_cannot_parse_is_refused_for_its_kind() {
        assert!(PrivateKey::from_openssh(ECDSA_SHORT_SCALAR).is_err());
        assert_eq!(
            algorithm_of(ECDSA_SHORT_SCALAR).map(|a| a.to_string()),
            Some("ecdsa-sha2-nistp256".into())
        );
        let Err(e) = parse_private_key(ECDSA_SHORT_SCALAR) else {
            panic!("an ECDSA key is refused");
        };
        assert!(e.to_string().contains("keys are not supported"), "{e}");
        assert_eq!(algorithm_of("not a key"), None);
    }

    #[test]
    fn generated_keys_round_trip_through_openssh() {
        let key = generate("gen").expect("generates");
        let pem = key.to_openssh(LineEnding::LF).expect("encodes");
        let parsed = parse_private_key(&pem).expect("a generated key is valid");
        assert_eq!(
            parsed.fingerprint(HashAlg::Sha256),
            key.fingerprint(HashAlg::Sha256)
        );
        assert_eq!(parsed.algorithm().as_str(), "ssh-ed25519");
    }

    #[test]
    fn tampered_ed25519_public_half_is_refused() {
        let key = generate("t").expect("generates");
        let KeypairData::Ed25519(pair) = key.key_data() else {
            panic!("ed25519");
        };
        let mut public = pair.public.0;
        public[0] ^= 1;
        let forged = PrivateKey::new(
            KeypairData::Ed25519(Ed25519Keypair {
                public: Ed25519PublicKey(public),
                private: pair.private.clone(),
            }),
            "t",
        )
        .expect("builds");
        let pem = forged.to_openssh(LineEnding::LF).expect("encodes");
        assert!(parse_private_key(&pem).is_err());
        assert!(parse_private_key("not a key").is_err());
    }
}
