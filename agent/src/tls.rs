//! TLS toward the panel: either the panel's self-signed CA pinned at registration, or the
//! public web PKI. The fingerprint format of `GET /v1/ca` (`ab:cd:...`) lives in
//! `shardlyn_net::tls`, shared with the panel.

use std::sync::Arc;

use anyhow::Context;

pub use shardlyn_net::tls::{fingerprint, pem_to_der, same_fingerprint};

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
