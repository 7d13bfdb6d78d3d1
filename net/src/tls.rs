//! CA pinning helpers shared by the panel (which serves its CA and fingerprint at
//! `GET /v1/ca`) and the agent (which pins it at registration): PEM to DER and the
//! `ab:cd:...` SHA-256 fingerprint format.

use base64::Engine;
use sha2::{Digest, Sha256};

/// A PEM text without a certificate, or one whose base64 does not decode.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("no certificate in PEM")]
    Empty,
    #[error("decoding PEM: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// DER bytes of the first certificate in a PEM text.
///
/// # Errors
/// Text that holds no certificate.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, PemError> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if body.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

/// `ab:cd:...` SHA-256 of DER bytes.
#[must_use]
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether two fingerprints name the same certificate (case and separators ignored).
#[must_use]
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(char::is_ascii_hexdigit)
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    let (a, b) = (norm(a), norm(b));
    a.len() == 64 && a == b
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_compare_loosely_but_completely() {
        let fp = super::fingerprint(b"x");
        assert!(super::same_fingerprint(
            &fp,
            &fp.to_uppercase().replace(':', "")
        ));
        assert!(!super::same_fingerprint(&fp, &fp[..60]));
        assert!(!super::same_fingerprint("", ""));
    }

    #[test]
    fn pem_without_a_certificate_is_refused() {
        assert!(super::pem_to_der("hello").is_err());
        let der =
            super::pem_to_der("-----BEGIN CERTIFICATE-----\naGk=\n-----END CERTIFICATE-----\n");
        assert_eq!(der.unwrap(), b"hi");
    }
}
