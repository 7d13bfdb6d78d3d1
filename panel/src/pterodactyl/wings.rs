//! The switch-over's one write to the old side: Wings' HTTP API stops the old server
//! (`POST /api/servers/{uuid}/power {"action":"stop"}` with the node's daemon token),
//! then its state is polled until `offline`. Database-mode imports have the token (the
//! panel stores it encrypted); API mode does not, so it cannot switch over.

use std::time::Duration;

use serde::Deserialize;
use shardlyn_net::outbound::Outbound;

use super::files::CopyError;
use super::model;

/// How long the old server may take to stop.
pub const STOP_WAIT: Duration = Duration::from_secs(120);

/// Between two looks at the old server's state.
const POLL: Duration = Duration::from_millis(250);

#[derive(Deserialize)]
struct ServerState {
    state: String,
}

/// A client of one node's Wings API.
struct Wings {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Wings {
    async fn new(outbound: &Outbound, node: &model::Node) -> Result<Self, CopyError> {
        let token = node
            .daemon_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(CopyError::NoDaemonToken)?;
        let scheme = if node.scheme == "https" {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}:{}", node.fqdn, node.daemon_listen);
        let checked = outbound
            .resolve_url(&base)
            .await
            .map_err(|e| CopyError::Unreachable(e.to_string()))?;
        let client = checked
            .pin(reqwest::Client::builder())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| CopyError::Wings(e.to_string()))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    async fn state(&self, uuid: &str) -> Result<String, CopyError> {
        let r = self
            .client
            .get(format!("{}/api/servers/{uuid}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| CopyError::Unreachable(format!("Wings: {e}")))?;
        let status = r.status();
        if !status.is_success() {
            return Err(CopyError::Wings(refusal(
                status,
                "reading the server's state",
            )));
        }
        r.json::<ServerState>()
            .await
            .map(|s| s.state)
            .map_err(|e| CopyError::Wings(format!("an unreadable server state: {e}")))
    }

    async fn stop(&self, uuid: &str) -> Result<(), CopyError> {
        let r = self
            .client
            .post(format!("{}/api/servers/{uuid}/power", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"action": "stop"}))
            .send()
            .await
            .map_err(|e| CopyError::Unreachable(format!("Wings: {e}")))?;
        let status = r.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(CopyError::Wings(refusal(status, "stopping the server")))
        }
    }
}

fn refusal(status: reqwest::StatusCode, what: &str) -> String {
    match status.as_u16() {
        401 | 403 => format!("Wings refused the daemon token {what} ({status})"),
        404 => format!("Wings does not know the server ({status}) {what}"),
        _ => format!("Wings answered {status} {what}"),
    }
}

/// Stops the old server `server_uuid` on `node` and waits until Wings says it is
/// offline (at most [`STOP_WAIT`]). An already stopped server is left as it is.
///
/// # Errors
/// [`CopyError::NoDaemonToken`] without the node's token (API mode),
/// [`CopyError::Unreachable`], [`CopyError::Wings`], [`CopyError::StopTimeout`].
pub async fn stop_old(
    outbound: &Outbound,
    node: &model::Node,
    server_uuid: &str,
) -> Result<(), CopyError> {
    stop_within(outbound, node, server_uuid, STOP_WAIT).await
}

/// [`stop_old`] with another deadline.
///
/// # Errors
/// As [`stop_old`].
pub async fn stop_within(
    outbound: &Outbound,
    node: &model::Node,
    server_uuid: &str,
    wait: Duration,
) -> Result<(), CopyError> {
    if server_uuid.is_empty()
        || !server_uuid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        return Err(CopyError::Wings(format!(
            "{server_uuid:?} is not a server UUID"
        )));
    }
    let wings = Wings::new(outbound, node).await?;
    if wings.state(server_uuid).await? == "offline" {
        return Ok(());
    }
    wings.stop(server_uuid).await?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if wings.state(server_uuid).await? == "offline" {
            tracing::info!(server.uuid = %server_uuid, node = %node.fqdn, "the old server stopped");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CopyError::StopTimeout(wait.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    }
}
