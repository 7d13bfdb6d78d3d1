//! The time as the panel's jobs see it. Production reads the system clock; a test may
//! pin it and move it on, so a schedule that fires "at the next minute" fires, and an
//! upload expires, when the test says, not after a wall-clock wait. Only code that decides *when* something
//! happens reads this clock; timestamps of records keep using `db::now_ms`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The system clock's marker in [`Clock::pinned`].
const SYSTEM: i64 = i64::MIN;

/// Unix milliseconds now, from the system or pinned by a test. Clones share the time.
#[derive(Clone, Debug)]
pub struct Clock {
    /// [`SYSTEM`], or the pinned time.
    pinned: Arc<AtomicI64>,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            pinned: Arc::new(AtomicI64::new(SYSTEM)),
        }
    }
}

impl Clock {
    /// Now, as unix milliseconds.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        match self.pinned.load(Ordering::Acquire) {
            SYSTEM => crate::db::now_ms(),
            pinned => pinned,
        }
    }

    /// Pins the time at `ms` (tests).
    pub fn set_ms(&self, ms: i64) {
        self.pinned.store(ms, Ordering::Release);
    }

    /// Moves a pinned time on by `by`; pins the system time first if it was not pinned.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let now = self.now_ms();
        self.set_ms(now.saturating_add(by));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_system_until_pinned_then_moves_only_when_told() {
        let clock = Clock::default();
        let before = crate::db::now_ms();
        let now = clock.now_ms();
        assert!(now >= before && now - before < 60_000);
        let shared = clock.clone();
        clock.set_ms(1_000);
        assert_eq!(shared.now_ms(), 1_000, "clones share the pinned time");
        shared.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
    }
}
