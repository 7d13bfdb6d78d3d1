//! `shardlyn-agent register`: trades a single-use registration token for a node id and an
//! agent token, pinning the panel's CA first when a fingerprint is given.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
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

/// What [`register`] waits before each new attempt when a request never reached a
/// panel: the connection failed, or the answer was `503` (a balancer with no panel up, or
/// a panel draining before it restarts; both answer before the panel reads the token).
/// About 15 s in all, the time a restarted panel takes to be counted up again. An answer
/// that may come after a panel took the single-use token (`502`, `504`, a cut answer) is
/// never retried: a second attempt would be refused for a token already used.
pub const RETRY_DELAYS: &[Duration] = &[
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Sends the request `build` makes, again after each of `delays` while it did not reach
/// a panel (see [`RETRY_DELAYS`]).
async fn send(
    build: impl Fn() -> reqwest::RequestBuilder,
    delays: &[Duration],
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    let mut waits = delays.iter();
    loop {
        let outcome = build().send().await;
        let unreached = match &outcome {
            Ok(response) => response.status() == StatusCode::SERVICE_UNAVAILABLE,
            Err(e) => e.is_connect(),
        };
        match waits.next() {
            Some(wait) if unreached => {
                let why = match &outcome {
                    Ok(response) => response.status().to_string(),
                    Err(e) => format!("{e:#}"),
                };
                tracing::warn!("{what}: {why}; trying again in {} s", wait.as_secs_f32());
                tokio::time::sleep(*wait).await;
            }
            _ => return outcome.with_context(|| what.to_owned()),
        }
    }
}

/// Fetches the panel's CA and checks it against the fingerprint the operator was given.
async fn pin_ca(panel: &str, expected: &str, delays: &[Duration]) -> anyhow::Result<String> {
    // The certificate is not trusted yet: it is fetched unverified and then judged by its
    // fingerprint, the value the operator copied from the panel out of band.
    let probe = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let url = format!("{panel}/v1/ca");
    let ca: CaResponse = send(|| probe.get(&url), delays, "fetching the panel CA")
        .await?
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

/// Registers this machine as a node and saves the result in `data_dir`, trying again
/// while no panel is reached (see [`RETRY_DELAYS`]).
///
/// # Errors
/// An unreachable panel, a wrong fingerprint, or a token the panel refuses.
pub async fn register(
    panel: &str,
    token: &str,
    ca_fingerprint: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<AgentConfig> {
    register_retrying(panel, token, ca_fingerprint, data_dir, RETRY_DELAYS).await
}

/// [`register`], waiting `delays` between attempts instead of [`RETRY_DELAYS`].
///
/// # Errors
/// As [`register`].
pub async fn register_retrying(
    panel: &str,
    token: &str,
    ca_fingerprint: Option<&str>,
    data_dir: &Path,
    delays: &[Duration],
) -> anyhow::Result<AgentConfig> {
    let panel = panel.trim_end_matches('/').to_string();
    let ca_pem = match ca_fingerprint {
        Some(fp) => Some(pin_ca(&panel, fp, delays).await?),
        None => None,
    };
    let client = tls::http_client(ca_pem.as_deref())?;
    let hostname = sysinfo::System::host_name().unwrap_or_else(|| "node".into());
    let registration = AgentRegistration {
        token: token.to_owned(),
        hostname: Some(hostname),
        version: Some(crate::VERSION.to_owned()),
        protocol: Some(shardlyn_proto::PROTOCOL_VERSION),
    };
    let url = format!("{panel}/v1/agent/register");
    let response = send(
        || client.post(&url).json(&registration),
        delays,
        &format!("reaching the panel at {panel}"),
    )
    .await?;
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
