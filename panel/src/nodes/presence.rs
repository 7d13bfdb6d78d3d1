//! A node's presence as the tunnel reports it: seen (with its agent version) at every
//! heartbeat, its usage sample recorded, and offline once its last connection ends.
//! Each change of online/offline is published on the event bus.

use std::sync::Arc;

use crate::events::{Event, EventData};
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
                    match super::store::mark_seen(pool, &node_id, &version, true).await {
                        Ok(Some(org)) => {
                            crate::provision::on_node_online(&state, &node_id).await;
                            announce(&state, org, node_id.clone(), true).await;
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "recording heartbeat"),
                    }
                    if let Err(e) = super::metrics::record(pool, &node_id, &sample).await {
                        tracing::warn!(error = %e, "recording node metrics");
                    }
                    crate::alerts::evaluate::on_sample(&state, &node_id, &sample).await;
                }
                TunnelEvent::Disconnected {
                    node_id,
                    version,
                    last: true,
                } => match super::store::mark_seen(pool, &node_id, &version, false).await {
                    Ok(Some(org)) => announce(&state, org, node_id, false).await,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "recording disconnect"),
                },
                TunnelEvent::Disconnected { last: false, .. } => {}
            }
        })
    })
}

async fn announce(state: &AppState, org_id: String, node_id: String, online: bool) {
    crate::alerts::evaluate::on_node_status(state, &org_id, &node_id, online).await;
    state
        .events
        .publish(Event::now(
            org_id,
            EventData::NodeStatus { node_id, online },
        ))
        .await;
}
