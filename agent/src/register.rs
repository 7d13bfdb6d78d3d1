//! `shardlyn-agent register`: trades a single-use registration token for a node id and an
//! agent token, pinning the panel's CA first when a fingerprint is given.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use shardlyn_proto::ErrorBody;
use shardlyn_proto::register::{AgentRegistration, Registered};

use crate::config::AgentConfig;
use crate::tls;

#[derive(Deserialize)]
struct CaResponse {
    pem: String,
    sha256: String,
}

/// Fetches the panel's CA and checks it against the fingerprint the operator was given.
async fn pin_ca(panel: &str, expected: &str) -> anyhow::Result<String> {
    // The certificate is not trusted yet: it is fetched unverified and then judged by its
    // fingerprint, the value the operator copied from the panel out of band.
    let probe = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let ca: CaResponse = probe
        .get(format!("{panel}/v1/ca"))
        .send()
        .await
        .context("fetching the panel CA")?
        .error_for_status()
        .context("the panel has no self-signed CA to pin")?
        .json()
        .await?;
    let actual = tls::fingerprint(&tls::pem_to_der(&ca.pem)?);
    anyhow::ensure!(
        tls::same_fingerprint(&actual, expected) && tls::same_fingerprint(&ca.sha256, expected),
        "the panel's CA fingerprint is {actual}, not the expected {expected}: refusing to register"
    );
    Ok(ca.pem)
}

/// Registers this machine as a node and saves the result in `data_dir`.
///
/// # Errors
/// An unreachable panel, a wrong fingerprint, or a token the panel refuses.
pub async fn register(
    panel: &str,
    token: &str,
    ca_fingerprint: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<AgentConfig> {
    let panel = panel.trim_end_matches('/').to_string();
    let ca_pem = match ca_fingerprint {
        Some(fp) => Some(pin_ca(&panel, fp).await?),
        None => None,
    };
    let client = tls::http_client(ca_pem.as_deref())?;
    let hostname = sysinfo::System::host_name().unwrap_or_else(|| "node".into());
    let response = client
        .post(format!("{panel}/v1/agent/register"))
        .json(&AgentRegistration {
            token: token.to_owned(),
            hostname: Some(hostname),
            version: Some(crate::VERSION.to_owned()),
            protocol: Some(shardlyn_proto::PROTOCOL_VERSION),
        })
        .send()
        .await
        .with_context(|| format!("reaching the panel at {panel}"))?;
    let status = response.status();
    if !status.is_success() {
        let detail = response
            .json::<ErrorBody>()
            .await
            .map_or_else(|_| "no detail".to_owned(), |e| e.error);
        anyhow::bail!("the panel refused the registration ({status}): {detail}");
    }
    let registered: Registered = response.json().await?;
    let config = AgentConfig {
        panel_url: panel,
        node_id: registered.node_id,
        agent_token: registered.agent_token,
        ca_pem,
    };
    config.save(data_dir)?;
    Ok(config)
}
