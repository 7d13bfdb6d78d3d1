//! A node's presence as the tunnel reports it: seen (with its agent version) at every
//! heartbeat, its usage sample recorded, and offline once its last connection ends.

use std::sync::Arc;

use crate::state::AppState;
use crate::tunnel::{Listener, Reaction, TunnelEvent};

/// The nodes area's listener of tunnel events.
#[must_use]
pub fn tunnel_listener() -> Listener {
    Arc::new(|state: AppState, event: TunnelEvent| -> Reaction {
        Box::pin(async move {
            let pool = &state.db.pool;
            match event {
                TunnelEvent::Connected(_) => {}
                TunnelEvent::Heartbeat {
                    node_id,
                    version,
                    sample,
                } => {
                    if let Err(e) = super::store::mark_seen(pool, &node_id, &version, true).await {
                        tracing::warn!(error = %e, "recording heartbeat");
                    }
                    if let Err(e) = super::metrics::record(pool, &node_id, &sample).await {
                        tracing::warn!(error = %e, "recording node metrics");
                    }
                }
                TunnelEvent::Disconnected {
                    node_id,
                    version,
                    last: true,
                } => {
                    if let Err(e) = super::store::mark_seen(pool, &node_id, &version, false).await {
                        tracing::warn!(error = %e, "recording disconnect");
                    }
                }
                TunnelEvent::Disconnected { last: false, .. } => {}
            }
        })
    })
}
