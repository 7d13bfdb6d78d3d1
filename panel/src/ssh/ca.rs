//! The platform's SSH certificate authority: its keys (generated here, the private half
//! sealed with the master key and never answered) and the signing of user certificates.

use ssh_key::certificate::{Builder, CertType};
use ssh_key::private::{KeypairData, RsaKeypair};
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, PrivateKey, PublicKey};

use crate::error::{AppError, AppResult};

/// The key algorithms a CA key may use.
pub const ALGORITHMS: [&str; 4] = ["ed25519", "ecdsa-p256", "rsa-3072", "rsa-4096"];

fn rng() -> ssh_key::rand_core::UnwrapErr<ssh_key::getrandom::SysRng> {
    ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng)
}

/// `Ok` for one of [`ALGORITHMS`].
///
/// # Errors
/// 422 otherwise.
pub fn known(algorithm: &str) -> AppResult<()> {
    if ALGORITHMS.contains(&algorithm) {
        Ok(())
    } else {
        Err(AppError::unprocessable(
            "algorithm",
            format!("algorithm must be one of {}", ALGORITHMS.join(", ")),
        ))
    }
}

/// A new CA key pair of `algorithm` (one of [`ALGORITHMS`]).
///
/// # Errors
/// 422 for an unknown algorithm.
pub fn generate(algorithm: &str) -> AppResult<PrivateKey> {
    known(algorithm)?;
    let mut rng = rng();
    let made = match algorithm {
        "ecdsa-p256" => PrivateKey::random(
            &mut rng,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
        ),
        "rsa-3072" | "rsa-4096" => {
            let bits = if algorithm == "rsa-3072" { 3072 } else { 4096 };
            RsaKeypair::random(&mut rng, bits)
                .and_then(|k| PrivateKey::new(KeypairData::from(k), "shardlyn-ca"))
        }
        _ => PrivateKey::random(&mut rng, Algorithm::Ed25519),
    };
    made.map_err(|e| AppError::Internal(anyhow::anyhow!("generating a CA key: {e}")))
}

/// What a certificate is signed for.
pub struct Request<'a> {
    pub subject: &'a PublicKey,
    pub serial: u64,
    pub key_id: &'a str,
    pub principals: &'a [String],
    pub valid_after: u64,
    pub valid_before: u64,
    pub force_command: Option<&'a str>,
    pub source_address: Option<&'a str>,
    /// Extensions (`permit-pty`...), with empty values.
    pub extensions: &'a [String],
}

/// Signs a user certificate with `ca`: its OpenSSH one-line form.
///
/// # Errors
/// 422 when a field is refused by the encoder (too long, say).
pub fn sign(ca: &PrivateKey, r: &Request<'_>) -> AppResult<String> {
    let refused = |e: ssh_key::Error| AppError::unprocessable("public_key", e.to_string());
    let mut b = Builder::new_with_random_nonce(
        &mut rng(),
        r.subject.key_data().clone(),
        r.valid_after,
        r.valid_before,
    )
    .map_err(refused)?;
    b.serial(r.serial).map_err(refused)?;
    b.key_id(r.key_id).map_err(refused)?;
    b.cert_type(CertType::User).map_err(refused)?;
    for p in r.principals {
        b.valid_principal(p.clone()).map_err(refused)?;
    }
    if let Some(command) = r.force_command {
        b.critical_option("force-command", command)
            .map_err(refused)?;
    }
    if let Some(from) = r.source_address {
        b.critical_option("source-address", from).map_err(refused)?;
    }
    for e in r.extensions {
        b.extension(e.clone(), "").map_err(refused)?;
    }
    let cert = b.sign(ca).map_err(refused)?;
    cert.to_openssh()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("encoding a certificate: {e}")))
}

/// The SSH wire encoding of a public key (what a KRL names a CA by).
#[must_use]
pub fn wire(key: &PublicKey) -> Vec<u8> {
    key.to_bytes().unwrap_or_default()
}

/// SHA-256 fingerprint, as `ssh-keygen -l` shows it.
#[must_use]
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}
