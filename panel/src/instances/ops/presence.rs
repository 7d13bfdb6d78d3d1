//! What the instances area does with tunnel events: on connect, push every spec and
//! follow the agent's state changes (for the connection's life); at each heartbeat,
//! record the servers' usage from the sample.

use std::sync::Arc;

use crate::state::AppState;
use crate::tunnel::{Listener, Reaction, TunnelEvent};

/// The instances area's listener of tunnel events.
#[must_use]
pub fn tunnel_listener() -> Listener {
    Arc::new(|state: AppState, event: TunnelEvent| -> Reaction {
        Box::pin(async move {
            match event {
                TunnelEvent::Connected(conn) => super::sync::on_connect(state, conn).await,
                TunnelEvent::Heartbeat {
                    node_id, sample, ..
                } => {
                    if let Err(e) = super::logs::record(&state.db.pool, &node_id, &sample).await {
                        tracing::warn!(error = %e, "recording instance metrics");
                    }
                }
                TunnelEvent::Disconnected { .. } => {}
            }
        })
    })
}
