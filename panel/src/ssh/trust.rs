//! What nodes trust, and getting it to them: the CA keys still trusted, the KRL of
//! revoked certificates, and the `ssh_trust` job, which sends both to every agent
//! connected to this replica when they change (checked every 2 s, so a revocation
//! reaches every connected node within seconds) and to each agent as it connects.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use shardlyn_proto::agent_api as api;
use shardlyn_proto::ssh::SshTrust;
use ssh_key::PublicKey;

use super::{ca, krl, store};
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// How often the job looks for a change.
const EVERY: Duration = Duration::from_secs(2);

/// Every CA key nodes should trust now, one per line.
///
/// # Errors
/// Database failure.
pub async fn trusted_keys(state: &AppState) -> AppResult<String> {
    let now = now_ms();
    let mut text = String::new();
    for k in store::keys(&state.db.pool).await? {
        if k.trusted_at(now) {
            text.push_str(&k.public_key);
            text.push('\n');
        }
    }
    Ok(text)
}

/// The KRL of every revoked certificate not yet expired.
///
/// # Errors
/// Database failure, or a stored key that does not parse.
pub async fn krl(state: &AppState) -> AppResult<Vec<u8>> {
    let now = now_ms();
    let keys = store::keys(&state.db.pool).await?;
    let revoked = store::revoked_unexpired(&state.db.pool, now).await?;
    let mut sections = Vec::new();
    for k in &keys {
        let mine: Vec<&(String, i64, String)> =
            revoked.iter().filter(|(ca, _, _)| *ca == k.id).collect();
        if mine.is_empty() {
            continue;
        }
        let public = PublicKey::from_openssh(&k.public_key)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored CA key: {e}")))?;
        sections.push(krl::Revoked {
            ca_key: ca::wire(&public),
            serials: mine
                .iter()
                .filter_map(|(_, s, _)| u64::try_from(*s).ok())
                .collect(),
            key_ids: mine.iter().map(|(_, _, id)| id.clone()).collect(),
        });
    }
    let version = u64::try_from(store::krl_version(&state.db.pool).await?).unwrap_or(0);
    let generated = u64::try_from(now / 1000).unwrap_or(0);
    Ok(krl::write(version, generated, "shardlyn", &sections))
}

/// What agents get now. The KRL's generation time is left out of the comparison (it
/// changes every second).
async fn current(state: &AppState) -> AppResult<(SshTrust, String)> {
    let ca_keys = trusted_keys(state).await?;
    let version = store::krl_version(&state.db.pool).await?;
    let krl = krl(state).await?;
    let stamp = format!("{version}/{ca_keys}");
    Ok((
        SshTrust {
            ca_keys,
            krl_base64: base64::engine::general_purpose::STANDARD.encode(krl),
        },
        stamp,
    ))
}

/// The `ssh_trust` job of this replica (not under the lease: each replica serves the
/// agents it holds).
pub async fn run_until_stopped(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    // Per connection (node, connected at): the stamp it last got.
    let mut sent: HashMap<(String, i64), String> = HashMap::new();
    loop {
        if store::keys(&state.db.pool)
            .await
            .is_ok_and(|k| !k.is_empty())
        {
            match current(&state).await {
                Ok((trust, stamp)) => {
                    let conns = state.tunnels.list();
                    sent.retain(|(node, at), _| {
                        conns
                            .iter()
                            .any(|c| c.node_id == *node && c.connected_at == *at)
                    });
                    for conn in conns {
                        let key = (conn.node_id.clone(), conn.connected_at);
                        if sent.get(&key) == Some(&stamp) {
                            continue;
                        }
                        // Tried once per change and connection: an agent that refuses it
                        // (an older one, a bad directory) is not asked every 2 s.
                        if let Err(e) = conn.request::<api::SshTrustPut>(&(), &(), &trust).await {
                            tracing::warn!(node.id = %conn.node_id, error = %e, "sending SSH trust");
                        }
                        sent.insert(key, stamp.clone());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the SSH trust"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
