//! TLS toward the panel: either the panel's self-signed CA pinned at registration, or the
//! public web PKI. Also the fingerprint format of `GET /v1/ca` (`ab:cd:...`).

use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use sha2::{Digest, Sha256};

/// DER bytes of the first certificate in a PEM text.
///
/// # Errors
/// Text that holds no certificate.
pub fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    anyhow::ensure!(!body.is_empty(), "no certificate in PEM");
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .context("decoding PEM")
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

/// A rustls client configuration trusting `ca_pem` only, or the web PKI without it.
///
/// # Errors
/// A CA that rustls cannot use.
pub fn client_config(ca_pem: Option<&str>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => roots
            .add(pem_to_der(pem)?.into())
            .context("adding the pinned CA")?,
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An HTTP client for the panel that trusts what [`client_config`] trusts.
///
/// # Errors
/// As [`client_config`].
pub fn http_client(ca_pem: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("shardlyn-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = ca_pem {
        builder = builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    Ok(builder.build()?)
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
}
