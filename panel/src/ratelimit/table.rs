//! The in-process counter table of the rate limiter: one fixed-window counter per key,
//! bounded. Expired windows are swept when the table is full (at most once a second);
//! if it is still full, a new key is counted in its class's shared overflow bucket
//! instead of growing the table, so no stream of distinct callers can exhaust memory
//! or reset its own counter by pushing others out.

use std::collections::HashMap;
use std::sync::Mutex;

/// Keys kept before new callers share their class's overflow bucket.
pub const MAX_KEYS: usize = 100_000;

struct Inner {
    /// key -> (unix second at which its window ends, hits in that window).
    counts: HashMap<String, (u64, u32)>,
    /// The unix second of the last sweep of expired windows.
    swept_at: u64,
}

/// Fixed-window counters per key, at most `cap` keys (plus one overflow key per class).
pub struct Table {
    cap: usize,
    inner: Mutex<Inner>,
}

impl Table {
    /// An empty table holding at most `cap` ordinary keys.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Mutex::new(Inner {
                counts: HashMap::new(),
                swept_at: 0,
            }),
        }
    }

    /// Counts one hit of `key` in the window ending at `reset`; returns the hits of the
    /// window so far, or `None` if the table's lock is poisoned.
    pub fn hit(&self, key: &str, reset: u64, now: u64) -> Option<u32> {
        let mut inner = self.inner.lock().ok()?;
        let mut key = key;
        let overflow;
        if !inner.counts.contains_key(key) && inner.counts.len() >= self.cap {
            if inner.swept_at != now {
                inner.counts.retain(|_, (ends, _)| *ends > now);
                inner.swept_at = now;
            }
            if inner.counts.len() >= self.cap {
                // `api:ip:...` -> `api:overflow`: callers of one class share the rest.
                overflow = format!("{}:overflow", key.split(':').next().unwrap_or_default());
                key = &overflow;
            }
        }
        if !inner.counts.contains_key(key) {
            inner.counts.insert(key.to_string(), (reset, 0));
        }
        let entry = inner.counts.get_mut(key)?;
        if entry.0 != reset {
            *entry = (reset, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        Some(entry.1)
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.counts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_window() {
        let t = Table::new(10);
        assert_eq!(t.hit("api:a", 60, 1), Some(1));
        assert_eq!(t.hit("api:a", 60, 2), Some(2));
        assert_eq!(t.hit("api:b", 60, 2), Some(1));
        // A new window starts over.
        assert_eq!(t.hit("api:a", 120, 61), Some(1));
    }

    #[test]
    fn a_full_table_sweeps_expired_windows_then_shares_an_overflow_bucket() {
        let t = Table::new(100);
        for i in 0..100 {
            t.hit(&format!("api:old{i}"), 60, 1);
        }
        // The old windows ended: they make room.
        for i in 0..100 {
            assert_eq!(t.hit(&format!("api:new{i}"), 120, 61), Some(1));
        }
        assert_eq!(t.len(), 100);
        // Full of live windows: new keys count together, the table stays bounded.
        for i in 0..1000 {
            assert_eq!(t.hit(&format!("api:x{i}"), 120, 62), Some(i + 1));
        }
        assert_eq!(t.len(), 101);
        assert_eq!(t.hit("ws:y", 120, 62), Some(1));
        assert_eq!(t.len(), 102);
        // Keys already known keep their own counter.
        assert_eq!(t.hit("api:new0", 120, 62), Some(2));
    }
}
