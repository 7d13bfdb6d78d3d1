//! TLS of the listener. Mode `auto` on a non-loopback bind generates a self-signed CA on
//! first start (kept in `<data_dir>/tls/`, key mode 0600) and a server certificate
//! signed by it; `GET /v1/ca` publishes the CA and its SHA-256 fingerprint for pinning.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use shardlyn_net::tls::{fingerprint, pem_to_der};

use crate::config::{Config, TlsMode};
use crate::secrets::write_private;

/// The self-signed CA as published by `GET /v1/ca`.
#[derive(Debug, Clone)]
pub struct CaInfo {
    pub pem: String,
    /// `ab:cd:...` SHA-256 of the DER certificate.
    pub sha256: String,
}

/// What the listener serves with.
pub struct TlsSetup {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub ca: Option<CaInfo>,
}

/// Prepares TLS for `config`; `None` when the listener speaks plain HTTP.
///
/// # Errors
/// Unreadable certificate files or an unwritable data dir.
pub fn prepare(config: &Config) -> anyhow::Result<Option<TlsSetup>> {
    if !config.serves_tls() {
        return Ok(None);
    }
    if config.tls.mode == TlsMode::File {
        let (Some(cert), Some(key)) = (&config.tls.cert_path, &config.tls.key_path) else {
            anyhow::bail!("tls.mode = \"file\" needs tls.cert_path and tls.key_path");
        };
        return Ok(Some(TlsSetup {
            cert_pem: std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?,
            key_pem: std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
            ca: None,
        }));
    }
    let dir = config.data_dir.join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = load_or_create_ca(&dir)?;
    let ca_pem = std::fs::read_to_string(dir.join("ca.pem"))?;
    // Signing needs only the issuer name and key; the stored PEM stays the CA clients pin.
    let ca_cert = ca_params().self_signed(&ca_key)?;

    let mut names = vec!["localhost".to_string()];
    if let Some(host) = public_host(&config.public_url) {
        names.push(host);
    }
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = dn("Shardlyn panel");
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    if !config.listen.ip().is_unspecified() {
        ips.push(config.listen.ip());
    }
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    let server_key = KeyPair::generate()?;
    let server_cert = params.signed_by(&server_key, &ca_cert, &ca_key)?;
    let mut chain = server_cert.pem();
    chain.push_str(&ca_pem);
    Ok(Some(TlsSetup {
        cert_pem: chain.into_bytes(),
        key_pem: server_key.serialize_pem().into_bytes(),
        ca: Some(CaInfo {
            sha256: fingerprint(&pem_to_der(&ca_pem)?),
            pem: ca_pem,
        }),
    }))
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Shardlyn");
    dn
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn("Shardlyn panel CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time_now();
    params.not_before = now;
    params.not_after = now + std::time::Duration::from_secs(10 * 365 * 24 * 3600);
    params
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn load_or_create_ca(dir: &Path) -> anyhow::Result<KeyPair> {
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca-key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok(KeyPair::from_pem(&std::fs::read_to_string(&key_path)?)?);
    }
    let key = KeyPair::generate()?;
    let cert = ca_params().self_signed(&key)?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem())?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed CA");
    Ok(key)
}

fn public_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', ':']).next()?;
    (!host.is_empty()).then(|| host.to_string())
}
