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
    Ok(trusted_of(&store::keys(&state.db.pool).await?, now_ms()))
}

fn trusted_of(keys: &[store::CaKey], now: i64) -> String {
    keys.iter()
        .filter(|k| k.trusted_at(now))
        .map(|k| format!("{}\n", k.public_key))
        .collect()
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

/// What decides whether agents need the trust again (the trusted keys and the KRL's
/// version; not its generation time, which changes every second); `None` before the CA
/// has a key.
async fn stamp(state: &AppState) -> AppResult<Option<(String, String)>> {
    let keys = store::keys(&state.db.pool).await?;
    if keys.is_empty() {
        return Ok(None);
    }
    let ca_keys = trusted_of(&keys, now_ms());
    let version = store::krl_version(&state.db.pool).await?;
    Ok(Some((format!("{version}/{ca_keys}"), ca_keys)))
}

/// The `ssh_trust` job of this replica (not under the lease: each replica serves the
/// agents it holds). The KRL is built only when a connection needs it.
pub async fn run_until_stopped(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    // Per connection (node, connected at): the stamp it last got.
    let mut sent: HashMap<(String, i64), String> = HashMap::new();
    loop {
        match stamp(&state).await {
            Ok(Some((stamp, ca_keys))) => {
                let conns = state.tunnels.list();
                sent.retain(|(node, at), _| {
                    conns
                        .iter()
                        .any(|c| c.node_id == *node && c.connected_at == *at)
                });
                let due: Vec<_> = conns
                    .into_iter()
                    .filter(|c| sent.get(&(c.node_id.clone(), c.connected_at)) != Some(&stamp))
                    .collect();
                if !due.is_empty() {
                    match krl(&state).await {
                        Ok(krl) => {
                            let trust = SshTrust {
                                ca_keys,
                                krl_base64: base64::engine::general_purpose::STANDARD.encode(krl),
                            };
                            for conn in due {
                                // Tried once per change and connection: an agent that
                                // refuses it (an older one, a bad directory) is not asked
                                // every 2 s.
                                if let Err(e) =
                                    conn.request::<api::SshTrustPut>(&(), &(), &trust).await
                                {
                                    tracing::warn!(node.id = %conn.node_id, error = %e, "sending SSH trust");
                                }
                                sent.insert(
                                    (conn.node_id.clone(), conn.connected_at),
                                    stamp.clone(),
                                );
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "building the KRL"),
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading the SSH trust"),
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
