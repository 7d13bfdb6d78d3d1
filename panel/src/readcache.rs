//! A cache of the hot reads that many requests repeat: organization memberships, users'
//! personal organizations and rendered pages of the instance list.
//!
//! Correctness rests on one rule: every write to a table these reads come from
//! (`instances`, `allocations`, `workloads`, `organizations`, `org_members`, member
//! permission overrides, and the deletion of users and nodes, which cascades) calls
//! [`changed`] once it took effect, which is after the commit when the write is part of
//! a transaction. A reader takes a [`Stamp`] before it reads the database and stores
//! its result under that stamp; an entry counts only while no change has happened since,
//! so a write is never hidden by a read that began before it.
//!
//! [`changed`] counts for the whole process (a process is one replica). With several
//! replicas (Redis configured) each replica tells the others over the event bus
//! (`server::share_invalidations`), which apply it with [`ReadCache::invalidate_from_peer`];
//! while the bus cannot hear them (Redis down), the cache is off. An entry also expires
//! after [`TTL_MS`], which bounds what a missed invalidation could cost.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, RwLock};

use axum::body::Bytes;

use crate::db::now_ms;
use crate::orgs::permissions::Membership;

/// How long an entry is trusted without a change.
pub const TTL_MS: i64 = 30_000;
/// Entries one table keeps before it starts over.
const MAX_ENTRIES: usize = 10_000;

/// Changes made by this process.
static LOCAL: AtomicU64 = AtomicU64::new(0);
/// The same count, for the task that tells the other replicas.
static ANNOUNCED: LazyLock<tokio::sync::watch::Sender<u64>> =
    LazyLock::new(|| tokio::sync::watch::channel(0).0);

/// Records that a write to a cached table took effect: every entry read before it stops
/// counting.
pub fn changed() {
    LOCAL.fetch_add(1, Ordering::AcqRel);
    ANNOUNCED.send_modify(|n| *n = n.wrapping_add(1));
}

/// Fires after each [`changed`] of this process (bursts may be announced once).
#[must_use]
pub fn watch_local() -> tokio::sync::watch::Receiver<u64> {
    ANNOUNCED.subscribe()
}

/// When a read began: the changes known at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    local: u64,
    peer: u64,
}

struct Entry<V> {
    value: V,
    stamp: Stamp,
    at: i64,
}

struct Table<K, V>(RwLock<HashMap<K, Entry<V>>>);

impl<K: Eq + Hash, V: Clone> Table<K, V> {
    fn new() -> Self {
        Self(RwLock::new(HashMap::new()))
    }

    fn get(&self, key: &K, now: Stamp) -> Option<V> {
        let entries = self.0.read().ok()?;
        let entry = entries.get(key)?;
        (entry.stamp == now && now_ms() - entry.at < TTL_MS).then(|| entry.value.clone())
    }

    fn put(&self, key: K, value: V, stamp: Stamp) {
        let Ok(mut entries) = self.0.write() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                value,
                stamp,
                at: now_ms(),
            },
        );
    }
}

/// The key of one rendered page of instances: organization, node filter, limit, offset
/// and whether hidden variables are shown.
pub type InstancePageKey = (String, String, i64, i64, bool);

/// The panel's read cache (see the module documentation).
pub struct ReadCache {
    enabled: AtomicBool,
    peer: AtomicU64,
    memberships: Table<(String, String), Membership>,
    personal: Table<String, String>,
    instance_pages: Table<InstancePageKey, Bytes>,
}

impl ReadCache {
    /// A cache; `enabled = false` makes every lookup miss.
    #[must_use]
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            peer: AtomicU64::new(0),
            memberships: Table::new(),
            personal: Table::new(),
            instance_pages: Table::new(),
        }
    }

    /// What a read that begins now stores its result under; `None` while the cache is off.
    #[must_use]
    pub fn stamp(&self) -> Option<Stamp> {
        self.enabled.load(Ordering::Acquire).then(|| Stamp {
            local: LOCAL.load(Ordering::Acquire),
            peer: self.peer.load(Ordering::Acquire),
        })
    }

    /// Turns the cache on or off (off while the replicas cannot hear each other).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
    }

    /// Another replica changed a cached table.
    pub fn invalidate_from_peer(&self) {
        self.peer.fetch_add(1, Ordering::AcqRel);
    }

    /// The membership of `user_id` in `org_id`, if cached.
    #[must_use]
    pub fn membership(&self, org_id: &str, user_id: &str) -> Option<Membership> {
        let now = self.stamp()?;
        self.memberships
            .get(&(org_id.to_owned(), user_id.to_owned()), now)
    }

    /// Keeps a membership read under `stamp`.
    pub fn put_membership(&self, membership: &Membership, stamp: Stamp) {
        let key = (membership.org_id.clone(), membership.user_id.clone());
        self.memberships.put(key, membership.clone(), stamp);
    }

    /// The personal organization of `user_id`, if cached.
    #[must_use]
    pub fn personal_org(&self, user_id: &str) -> Option<String> {
        let now = self.stamp()?;
        self.personal.get(&user_id.to_owned(), now)
    }

    /// Keeps a personal organization read under `stamp`.
    pub fn put_personal_org(&self, user_id: &str, org_id: &str, stamp: Stamp) {
        self.personal
            .put(user_id.to_owned(), org_id.to_owned(), stamp);
    }

    /// A rendered page of the instance list, if cached.
    #[must_use]
    pub fn instance_page(&self, key: &InstancePageKey) -> Option<Bytes> {
        let now = self.stamp()?;
        self.instance_pages.get(key, now)
    }

    /// Keeps a rendered page of the instance list read under `stamp`.
    pub fn put_instance_page(&self, key: InstancePageKey, body: Bytes, stamp: Stamp) {
        self.instance_pages.put(key, body, stamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> InstancePageKey {
        ("org".into(), String::new(), 100, 0, false)
    }

    // One test: `changed` counts for the whole process, and tests of one binary may run
    // side by side.
    #[test]
    fn entries_count_until_a_change_here_or_at_a_peer() {
        let cache = ReadCache::new(true);
        let stamp = cache.stamp().expect("on");
        cache.put_instance_page(key(), Bytes::from_static(b"[]"), stamp);
        assert_eq!(cache.instance_page(&key()).as_deref(), Some(&b"[]"[..]));
        changed();
        assert!(cache.instance_page(&key()).is_none());

        // A read that began before a change is not kept.
        let before = cache.stamp().expect("on");
        changed();
        cache.put_personal_org("u", "o", before);
        assert!(cache.personal_org("u").is_none());
        cache.put_personal_org("u", "o", cache.stamp().expect("on"));
        assert_eq!(cache.personal_org("u").as_deref(), Some("o"));

        cache.invalidate_from_peer();
        assert!(cache.personal_org("u").is_none());
        cache.put_personal_org("u", "o", cache.stamp().expect("on"));
        cache.set_enabled(false);
        assert!(cache.stamp().is_none());
        assert!(cache.personal_org("u").is_none());
    }
}
