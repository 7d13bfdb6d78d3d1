//! The event bus: what changed (an instance's state, a node going on- or offline, a
//! backup's progress),
//! published once by whoever changed it and heard by every subscriber of every replica.
//!
//! Each event gets a place in one log, and its id is that place. Without Redis the log is
//! a ring of the last [`REPLAY_WINDOW`] events in this process. With Redis it is a Redis
//! Stream (`XADD` capped at about [`REPLAY_WINDOW`] entries): every replica reads it with
//! a blocking `XREAD` and hands each entry to its local subscribers, so the stream is
//! both the fan-out and the replay window, and an id means the same event on every
//! replica (a client that resumes elsewhere misses nothing). Pub/sub would fan out too,
//! but it keeps nothing to resume from and its order need not match the stream's.
//!
//! Subscribers are the live streams of `GET /v1/events` ([`stream`]); each filters by
//! what its caller may read.

pub mod stream;

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{StreamId, StreamMaxlen, StreamReadOptions, StreamReadReply};
use serde::{Deserialize, Serialize};
use shardlyn_proto::backup::{BackupOperation, BackupStatus};
use shardlyn_proto::instance::InstanceState;
use tokio::sync::{broadcast, watch};

use crate::types::Timestamp;

/// Events kept for clients that resume (`Last-Event-ID`), cluster-wide.
pub const REPLAY_WINDOW: usize = 10_000;
/// Events a slow subscriber may lag behind before it is told to resync.
const CHANNEL: usize = 4096;
/// How long one blocking read of the stream waits before it asks again.
const READ_BLOCK_MS: usize = 5_000;
/// The stream entry's one field.
const FIELD: &str = "event";

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventData {
    /// An instance's state, as its agent reported it (`installing`, `offline`,
    /// `starting`, `running`, `stopping`, `install_failed`).
    InstanceState {
        instance_id: String,
        node_id: String,
        state: InstanceState,
    },
    /// A node's agent connected (`online: true`) or its last connection ended.
    NodeStatus { node_id: String, online: bool },
    /// How far a backup (`operation: backup`) or a restore from it (`restore`) got, as
    /// its node reported: when it starts, about once a second, and when it ends
    /// (`status` `completed` or `failed`; a backup's row says so by then).
    BackupProgress {
        instance_id: String,
        backup_id: String,
        operation: BackupOperation,
        status: BackupStatus,
        /// Bytes done: a backup counts the server's files archived (before
        /// compression), a restore the archive's bytes read.
        bytes_done: u64,
        /// What `bytes_done` reaches at the end (0: unknown).
        bytes_total: u64,
        /// Why it failed.
        error: Option<String>,
    },
    /// A schedule's run started (`running`), was skipped (the previous one still ran),
    /// or ended (`completed`, `failed`).
    ScheduleRun {
        instance_id: String,
        schedule_id: String,
        run_id: String,
        /// `cron` or `manual`.
        source: String,
        status: String,
        error: Option<String>,
    },
    /// A move of a server to another node changed state (`queued`, `copying`,
    /// `final_sync`, `switching`, `completed`, `failed`, `cancelled`).
    Migration {
        migration_id: String,
        instance_id: String,
        source_node_id: String,
        target_node_id: String,
        state: String,
        reason: Option<String>,
        /// Archive bytes moved so far.
        bytes_copied: u64,
        /// Copies resumed after a cut.
        #[serde(default)]
        resumes: i64,
    },
    /// An alert fired or resolved (sent by the replica whose evaluation won the
    /// transition, once): the web pages' bell reads its unread count again.
    Alert {
        alert_id: String,
        rule_id: String,
        /// `firing` or `resolved`.
        state: String,
        /// `info`, `warn` or `critical`.
        severity: String,
        /// `node` or `instance`.
        target_type: String,
        target_id: String,
    },
    /// A change someone made, as the audit log recorded it (successful writes only).
    /// A platform event: heard by platform administrators, not by organizations.
    Audit { entry: crate::audit::store::Entry },
    /// Between replicas only, never sent to clients: replica `origin` invalidated its
    /// cache of authenticated callers (a credential ended), so must the others.
    #[schemars(skip)]
    CallersInvalidated { origin: String },
    /// Between replicas only: replica `origin` changed a table the read cache holds
    /// (`readcache`), so the others' entries stop counting.
    #[schemars(skip)]
    ReadsInvalidated { origin: String },
}

impl EventData {
    /// The SSE event name (`instance_state`, `node_status`, ...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::InstanceState { .. } => "instance_state",
            Self::NodeStatus { .. } => "node_status",
            Self::BackupProgress { .. } => "backup_progress",
            Self::ScheduleRun { .. } => "schedule_run",
            Self::Migration { .. } => "migration",
            Self::Alert { .. } => "alert",
            Self::Audit { .. } => "audit",
            Self::CallersInvalidated { .. } => "callers_invalidated",
            Self::ReadsInvalidated { .. } => "reads_invalidated",
        }
    }

    /// Whether only replicas hear it (no client does).
    #[must_use]
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::CallersInvalidated { .. } | Self::ReadsInvalidated { .. }
        )
    }

    /// Whether it concerns the platform rather than one organization: platform
    /// administrators hear it, whatever their memberships.
    #[must_use]
    pub fn is_platform(&self) -> bool {
        matches!(self, Self::Audit { .. })
    }

    /// The permission a member needs in the event's organization to hear it.
    #[must_use]
    pub fn permission(&self) -> &'static str {
        match self {
            Self::InstanceState { .. } => "instances.read",
            Self::NodeStatus { .. } => "nodes.read",
            Self::BackupProgress { .. } => "instances.backups.read",
            Self::ScheduleRun { .. } => "instances.schedules",
            Self::Migration { .. } => "instances.read",
            Self::Alert { .. } => "alerts.read",
            // Held by nobody's membership check: platform events go to administrators,
            // `is_internal` events to nobody.
            Self::Audit { .. }
            | Self::CallersInvalidated { .. }
            | Self::ReadsInvalidated { .. } => "org.delete",
        }
    }
}

/// One event of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// The organization it concerns: only its members with the event's permission hear
    /// it. Empty for a platform event (`audit`).
    pub organization_id: String,
    /// When it was published.
    pub at: Timestamp,
    #[serde(flatten)]
    pub data: EventData,
}

impl Event {
    /// `data` of organization `org_id`, now.
    #[must_use]
    pub fn now(org_id: impl Into<String>, data: EventData) -> Self {
        Self {
            organization_id: org_id.into(),
            at: Timestamp(crate::db::now_ms()),
            data,
        }
    }
}

/// A place in the log: `<milliseconds>-<sequence>`, as Redis Streams number entries
/// (without Redis, the process's start time and a counter). Ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub u64, pub u64);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

impl FromStr for EventId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (a, b) = s.split_once('-').ok_or(())?;
        let number = |t: &str| {
            if t.is_empty() || t.len() > 20 || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(());
            }
            t.parse::<u64>().map_err(|_| ())
        };
        Ok(Self(number(a)?, number(b)?))
    }
}

/// An event at its place in the log.
#[derive(Debug, Clone)]
pub struct Logged {
    pub id: EventId,
    pub event: Event,
}

/// What a resuming subscriber missed.
#[derive(Debug)]
pub enum Replay {
    /// Every event after the one it last saw, oldest first.
    Events(Vec<Arc<Logged>>),
    /// The event it last saw is no longer kept (or never was): it must reload.
    Gone,
}

/// The bus of this process.
pub struct Bus {
    tx: broadcast::Sender<Arc<Logged>>,
    log: Log,
    /// Set when the panel stops: open streams end, the reader stops.
    closed: watch::Sender<bool>,
    /// Whether this replica hears the others (always, without Redis; with it, while the
    /// stream reader reads).
    healthy: watch::Sender<bool>,
}

enum Log {
    Local(Mutex<Ring>),
    Redis {
        conn: redis::aio::ConnectionManager,
        key: String,
    },
}

struct Ring {
    boot: u64,
    seq: u64,
    events: VecDeque<Arc<Logged>>,
}

impl Bus {
    /// A bus for this process alone.
    #[must_use]
    pub fn local() -> Arc<Self> {
        let boot = u64::try_from(crate::db::now_ms()).unwrap_or(0);
        Arc::new(Self {
            tx: broadcast::channel(CHANNEL).0,
            log: Log::Local(Mutex::new(Ring {
                boot,
                seq: 0,
                events: VecDeque::new(),
            })),
            closed: watch::channel(false).0,
            healthy: watch::channel(true).0,
        })
    }

    /// A bus shared through the Redis stream `key`, read by a task this starts from the
    /// stream's current end.
    ///
    /// # Errors
    /// Redis cannot be reached for the first read.
    pub async fn redis(
        client: redis::Client,
        conn: redis::aio::ConnectionManager,
        key: String,
    ) -> anyhow::Result<Arc<Self>> {
        let mut probe = conn.clone();
        let last: redis::streams::StreamRangeReply =
            probe.xrevrange_count(&key, "+", "-", 1).await?;
        let from = last
            .ids
            .first()
            .and_then(|e| e.id.parse().ok())
            .unwrap_or(EventId(0, 0));
        let bus = Arc::new(Self {
            tx: broadcast::channel(CHANNEL).0,
            log: Log::Redis {
                conn,
                key: key.clone(),
            },
            closed: watch::channel(false).0,
            healthy: watch::channel(true).0,
        });
        tokio::spawn(read_stream(
            client,
            key,
            from,
            bus.tx.clone(),
            bus.closed.subscribe(),
            bus.healthy.clone(),
        ));
        Ok(bus)
    }

    /// Publishes `event` to every subscriber of every replica. A failure (Redis down) is
    /// logged: events are news about state that is stored elsewhere, and clients that
    /// missed one reload on the next.
    pub async fn publish(&self, event: Event) {
        match &self.log {
            Log::Local(ring) => {
                let Ok(mut ring) = ring.lock() else { return };
                ring.seq += 1;
                let logged = Arc::new(Logged {
                    id: EventId(ring.boot, ring.seq),
                    event,
                });
                if ring.events.len() >= REPLAY_WINDOW {
                    ring.events.pop_front();
                }
                ring.events.push_back(logged.clone());
                // Sent under the lock, so the ring and the channel agree on the order.
                let _ = self.tx.send(logged);
            }
            Log::Redis { conn, key } => {
                let Ok(text) = serde_json::to_string(&event) else {
                    return;
                };
                let mut conn = conn.clone();
                let added: Result<Option<String>, _> = conn
                    .xadd_maxlen(
                        key,
                        StreamMaxlen::Approx(REPLAY_WINDOW),
                        "*",
                        &[(FIELD, text)],
                    )
                    .await;
                if let Err(e) = added {
                    tracing::warn!(error = %e, event = event.data.name(), "publishing an event to redis");
                }
            }
        }
    }

    /// Live events from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Logged>> {
        self.tx.subscribe()
    }

    /// The events after `after`, or [`Replay::Gone`] when `after` is no longer kept.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn replay(&self, after: EventId) -> anyhow::Result<Replay> {
        match &self.log {
            Log::Local(ring) => {
                let ring = ring
                    .lock()
                    .map_err(|_| anyhow::anyhow!("event ring poisoned"))?;
                // Kept events are in order; the one last seen must still be among them.
                let Some(at) = ring.events.iter().position(|e| e.id == after) else {
                    return Ok(Replay::Gone);
                };
                Ok(Replay::Events(
                    ring.events.iter().skip(at + 1).cloned().collect(),
                ))
            }
            Log::Redis { conn, key } => {
                let mut conn = conn.clone();
                let id = after.to_string();
                // The stream is trimmed oldest first: while the entry last seen is still
                // there, nothing after it was trimmed.
                let seen: redis::streams::StreamRangeReply =
                    conn.xrange_count(key, &id, &id, 1).await?;
                if seen.ids.is_empty() {
                    return Ok(Replay::Gone);
                }
                let mut events = Vec::new();
                let mut from = format!("({id}");
                loop {
                    let page: redis::streams::StreamRangeReply =
                        conn.xrange_count(key, &from, "+", 1000).await?;
                    let Some(last) = page.ids.last() else { break };
                    from = format!("({}", last.id);
                    let full = page.ids.len() == 1000;
                    events.extend(page.ids.iter().filter_map(parse_entry).map(Arc::new));
                    if !full || events.len() > REPLAY_WINDOW * 2 {
                        break;
                    }
                }
                Ok(Replay::Events(events))
            }
        }
    }

    /// Resolves when the panel is stopping.
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Whether this replica hears the others' events, as it changes.
    #[must_use]
    pub fn healthy(&self) -> watch::Receiver<bool> {
        self.healthy.subscribe()
    }

    /// Ends every open stream and the stream reader (the panel is stopping).
    pub fn close(&self) {
        let _ = self.closed.send(true);
    }
}

fn parse_entry(entry: &StreamId) -> Option<Logged> {
    let id = entry.id.parse().ok()?;
    let text: String = entry.get(FIELD)?;
    match serde_json::from_str(&text) {
        Ok(event) => Some(Logged { id, event }),
        Err(e) => {
            // Another version's event: skipped, not fatal.
            tracing::debug!(error = %e, id = %entry.id, "skipping an unreadable event");
            None
        }
    }
}

/// Reads the stream from `from` on, handing each entry to this replica's subscribers,
/// until the bus closes. A lost connection is retried (1 s, then up to 10 s apart),
/// resuming after the last entry read.
async fn read_stream(
    client: redis::Client,
    key: String,
    mut from: EventId,
    tx: broadcast::Sender<Arc<Logged>>,
    mut closed: watch::Receiver<bool>,
    healthy: watch::Sender<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    'connect: loop {
        let conn = tokio::select! {
            c = client.get_multiplexed_async_connection() => c,
            _ = closed.wait_for(|c| *c) => return,
        };
        let mut conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                healthy.send_if_modified(|h| std::mem::replace(h, false));
                tracing::warn!(error = %e, "event stream: cannot reach redis");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = closed.wait_for(|c| *c) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        healthy.send_if_modified(|h| !std::mem::replace(h, true));
        let options = StreamReadOptions::default().block(READ_BLOCK_MS).count(500);
        loop {
            let ids = [from.to_string()];
            let keys = [key.as_str()];
            let read = tokio::select! {
                r = conn.xread_options::<_, _, Option<StreamReadReply>>(&keys, &ids, &options) => r,
                _ = closed.wait_for(|c| *c) => return,
            };
            match read {
                Ok(reply) => {
                    backoff = Duration::from_secs(1);
                    healthy.send_if_modified(|h| !std::mem::replace(h, true));
                    for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                        if let Ok(id) = entry.id.parse() {
                            from = id;
                        }
                        if let Some(logged) = parse_entry(&entry) {
                            let _ = tx.send(Arc::new(logged));
                        }
                    }
                }
                Err(e) => {
                    healthy.send_if_modified(|h| std::mem::replace(h, false));
                    tracing::warn!(error = %e, "event stream: read failed, reconnecting");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = closed.wait_for(|c| *c) => return,
                    }
                    continue 'connect;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(online: bool) -> Event {
        Event::now(
            "o",
            EventData::NodeStatus {
                node_id: "n".into(),
                online,
            },
        )
    }

    #[test]
    fn ids_round_trip_and_order() {
        let id: EventId = "1700000000000-3".parse().expect("id");
        assert_eq!(id, EventId(1_700_000_000_000, 3));
        assert_eq!(id.to_string(), "1700000000000-3");
        assert!(EventId(1, 9) < EventId(2, 0));
        for bad in [
            "",
            "1",
            "-1",
            "1-",
            "a-1",
            "1-1-1",
            "99999999999999999999999-1",
            " 1-1",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events_serialize_flat_with_their_type() {
        let e = node(true);
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["type"], "node_status");
        assert_eq!(v["organization_id"], "o");
        assert_eq!(v["online"], true);
        // Through Redis an event is this JSON and back (times are whole seconds on the
        // wire, as everywhere in the API).
        let back: Event = serde_json::from_value(v.clone()).expect("back");
        assert_eq!(back.data, e.data);
        assert_eq!(serde_json::to_value(&back).expect("json"), v);
    }

    #[tokio::test]
    async fn a_local_bus_replays_after_a_kept_id_and_refuses_a_lost_one() {
        let bus = Bus::local();
        let mut rx = bus.subscribe();
        for n in 0..3 {
            bus.publish(node(n % 2 == 0)).await;
        }
        let first = rx.recv().await.expect("first");
        let Replay::Events(after) = bus.replay(first.id).await.expect("replay") else {
            panic!("the first id is kept");
        };
        assert_eq!(after.len(), 2);
        assert!(after[0].id > first.id && after[1].id > after[0].id);
        let Replay::Events(none) = bus.replay(after[1].id).await.expect("replay") else {
            panic!("the last id is kept");
        };
        assert!(none.is_empty());
        // An id from before a restart (another boot time) is not in the ring.
        assert!(matches!(
            bus.replay(EventId(1, 1)).await.expect("replay"),
            Replay::Gone
        ));
    }

    #[tokio::test]
    async fn the_ring_keeps_the_last_window_only() {
        let bus = Bus::local();
        let mut rx = bus.subscribe();
        bus.publish(node(true)).await;
        let oldest = rx.recv().await.expect("oldest").id;
        for _ in 0..REPLAY_WINDOW {
            bus.publish(node(false)).await;
        }
        assert!(matches!(
            bus.replay(oldest).await.expect("replay"),
            Replay::Gone
        ));
    }
}
