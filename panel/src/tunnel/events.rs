//! What the tunnel tells the rest of the panel: an agent connected, sent its heartbeat
//! sample, or went away. The tunnel knows no area (nodes, instances, sftp): each area
//! hands it a [`Listener`] when the state is composed (`server::build_state`), and the
//! tunnel publishes to them in order.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use shardlyn_proto::metrics::NodeSample;
use tokio::task::JoinSet;

use super::AgentConn;
use crate::state::AppState;

/// One message from the tunnel.
#[derive(Clone)]
pub enum TunnelEvent {
    /// A tunnel is up. A listener's future for this event runs for as long as the
    /// connection lives and is dropped when it ends (e.g. pushing specs, then following
    /// state changes).
    Connected(Arc<AgentConn>),
    /// A heartbeat round trip answered with the agent's metrics sample.
    Heartbeat {
        node_id: String,
        version: String,
        sample: Arc<NodeSample>,
    },
    /// A connection ended; `last` when no newer connection of the node replaced it.
    Disconnected {
        node_id: String,
        version: String,
        last: bool,
    },
}

/// A listener's work for one event.
pub type Reaction = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An area's handler of tunnel events.
pub type Listener = Arc<dyn Fn(AppState, TunnelEvent) -> Reaction + Send + Sync>;

/// The listeners, in the order they hear each event.
#[derive(Default)]
pub(super) struct Listeners(Vec<Listener>);

impl Listeners {
    pub(super) fn new(listeners: Vec<Listener>) -> Self {
        Self(listeners)
    }

    /// Runs every listener on `event`, one after the other.
    pub(super) async fn publish(&self, state: &AppState, event: &TunnelEvent) {
        for listener in &self.0 {
            listener(state.clone(), event.clone()).await;
        }
    }

    /// Starts every listener on [`TunnelEvent::Connected`]; the caller aborts the set
    /// when the connection ends.
    pub(super) fn connected(&self, state: &AppState, conn: &Arc<AgentConn>) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        for listener in &self.0 {
            tasks.spawn(listener(
                state.clone(),
                TunnelEvent::Connected(conn.clone()),
            ));
        }
        tasks
    }
}
