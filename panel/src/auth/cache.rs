//! A short-lived cache of authenticated callers, so a hot API token or access token does
//! not cost a database round trip on every request.
//!
//! Correctness rests on one rule: every change that can end a credential (logout,
//! session revocation, refresh-token reuse, password change or reset, suspension,
//! deletion of a user or an API token) calls [`AuthCache::invalidate_all`] before it
//! answers, so the next request of that credential goes to the database again.
//!
//! With several replicas (Redis configured) each invalidation also goes to the others
//! over the event bus (`server::share_invalidations`), which apply it with
//! [`AuthCache::invalidate_from_peer`]; while the bus cannot hear the others (Redis
//! down), the cache is off ([`AuthCache::set_enabled`]).
//!
//! Every invalidation, local or from a peer, is announced on [`AuthCache::watch`]: open
//! event streams check their caller again when it fires.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::extract::CurrentUser;
use crate::db::now_ms;

/// How long an entry is trusted without asking the database again.
const TTL_MS: i64 = 30_000;
/// Entries kept before the cache starts over.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    user: CurrentUser,
    /// When the credential itself expires (API tokens), if ever.
    expires_at: Option<i64>,
    cached_at: i64,
    epoch: u64,
}

/// Caller cache keyed by the SHA-256 of the presented token.
pub struct AuthCache {
    enabled: AtomicBool,
    epoch: AtomicU64,
    entries: RwLock<HashMap<String, Entry>>,
    /// Counts invalidations for those who wait on one.
    announced: tokio::sync::watch::Sender<u64>,
    /// Counts the invalidations made here (for the other replicas to hear of).
    local: tokio::sync::watch::Sender<u64>,
}

impl AuthCache {
    /// A cache; `enabled = false` makes every lookup miss.
    #[must_use]
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            epoch: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
            announced: tokio::sync::watch::channel(0).0,
            local: tokio::sync::watch::channel(0).0,
        }
    }

    /// The cached caller for `key`, if fresh and not invalidated since.
    pub fn get(&self, key: &str) -> Option<CurrentUser> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let now = now_ms();
        let epoch = self.epoch.load(Ordering::Acquire);
        let entries = self.entries.read().ok()?;
        let entry = entries.get(key)?;
        let fresh = entry.epoch == epoch
            && now - entry.cached_at < TTL_MS
            && entry.expires_at.is_none_or(|at| at > now);
        fresh.then(|| entry.user.clone())
    }

    /// Remembers `user` for `key`; `epoch` is the value of [`Self::epoch`] read before the
    /// database lookup, so a lookup racing an invalidation is not cached as fresh.
    pub fn put(&self, key: String, user: CurrentUser, expires_at: Option<i64>, epoch: u64) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    user,
                    expires_at,
                    cached_at: now_ms(),
                    epoch,
                },
            );
        }
    }

    /// The current invalidation epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Forgets every entry: call after any change that can end a credential.
    pub fn invalidate_all(&self) {
        let epoch = self.forget();
        self.local.send_replace(epoch);
    }

    /// Forgets every entry because another replica invalidated its cache.
    pub fn invalidate_from_peer(&self) {
        self.forget();
    }

    fn forget(&self) -> u64 {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
        self.announced.send_replace(epoch);
        epoch
    }

    /// Turns the cache on or off; either way it starts empty.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes after every [`Self::invalidate_all`] made in this process.
    #[must_use]
    pub fn watch_local(&self) -> tokio::sync::watch::Receiver<u64> {
        self.local.subscribe()
    }

    /// Changes after every [`Self::invalidate_all`] (whether or not the cache is on).
    #[must_use]
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.announced.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::extract::Credential;
    use crate::users::store::User;

    fn caller() -> CurrentUser {
        CurrentUser {
            user: User {
                id: "u".into(),
                email: "u@example.com".into(),
                name: String::new(),
                is_admin: false,
                suspended: false,
                mfa_enabled: false,
                created_at: 0,
                updated_at: 0,
            },
            credential: Credential::ApiToken("t".into()),
        }
    }

    #[test]
    fn hits_until_invalidated_or_expired() {
        let cache = AuthCache::new(true);
        let epoch = cache.epoch();
        cache.put("k".into(), caller(), None, epoch);
        assert!(cache.get("k").is_some());
        cache.invalidate_all();
        assert!(cache.get("k").is_none());

        // A lookup that raced an invalidation is stored under the old epoch: a miss.
        cache.put("k".into(), caller(), None, epoch);
        assert!(cache.get("k").is_none());

        // A credential past its own expiry misses even while the entry is fresh.
        cache.put("e".into(), caller(), Some(now_ms() - 1), cache.epoch());
        assert!(cache.get("e").is_none());
        cache.put("f".into(), caller(), Some(now_ms() + 60_000), cache.epoch());
        assert!(cache.get("f").is_some());
    }

    #[test]
    fn disabled_cache_always_misses() {
        let cache = AuthCache::new(false);
        cache.put("k".into(), caller(), None, cache.epoch());
        assert!(cache.get("k").is_none());
    }
}
