//! Connection and failed-login limits of the SFTP server, kept in memory (one agent
//! process owns its port).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed password logins per client address and username within [`WINDOW`] before
/// further attempts are refused without asking the panel.
pub const MAX_FAILURES_PER_USER: usize = 5;
/// Failed logins (any username, any method) per client address within [`WINDOW`].
pub const MAX_FAILURES_PER_IP: usize = 30;
/// The sliding window of the failure limits.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Open connections, in total and per client address.
pub struct Connections {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its slot.
pub struct Slot {
    owner: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// Limits of `max_total` connections, `max_per_ip` from one address.
    #[must_use]
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            open: Mutex::default(),
        })
    }

    /// A slot for a connection from `ip`, or `None` when a limit is reached.
    #[must_use]
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let from_ip = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.max_total || from_ip >= self.max_per_ip {
            return None;
        }
        open.0 += 1;
        open.1.insert(ip, from_ip + 1);
        Some(Slot {
            owner: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .owner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// Recent failed logins.
#[derive(Default)]
pub struct Failures {
    by_user: Mutex<HashMap<(IpAddr, String), VecDeque<Instant>>>,
    by_ip: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) > WINDOW)
    {
        times.pop_front();
    }
}

impl Failures {
    /// Whether logins as `user` from `ip` are refused for now.
    #[must_use]
    pub fn blocked(&self, ip: IpAddr, user: &str) -> bool {
        let now = Instant::now();
        let mut by_ip = self.by_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let ip_blocked = by_ip.get_mut(&ip).is_some_and(|t| {
            prune(t, now);
            t.len() >= MAX_FAILURES_PER_IP
        });
        drop(by_ip);
        let mut by_user = self.by_user.lock().unwrap_or_else(PoisonError::into_inner);
        let user_blocked = by_user
            .get_mut(&(ip, user.to_lowercase()))
            .is_some_and(|t| {
                prune(t, now);
                t.len() >= MAX_FAILURES_PER_USER
            });
        ip_blocked || user_blocked
    }

    /// Records a failed login; `per_user` for password failures (a client offering
    /// several keys fails once per key and only counts against the address).
    pub fn record(&self, ip: IpAddr, user: &str, per_user: bool) {
        let now = Instant::now();
        {
            let mut by_ip = self.by_ip.lock().unwrap_or_else(PoisonError::into_inner);
            if by_ip.len() > 100_000 {
                by_ip.retain(|_, t| {
                    prune(t, now);
                    !t.is_empty()
                });
            }
            let t = by_ip.entry(ip).or_default();
            prune(t, now);
            t.push_back(now);
        }
        if per_user {
            let mut by_user = self.by_user.lock().unwrap_or_else(PoisonError::into_inner);
            if by_user.len() > 100_000 {
                by_user.retain(|_, t| {
                    prune(t, now);
                    !t.is_empty()
                });
            }
            let t = by_user.entry((ip, user.to_lowercase())).or_default();
            prune(t, now);
            t.push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_ip_and_in_total() {
        let c = Connections::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = c.admit(a).unwrap();
        let _s2 = c.admit(a).unwrap();
        assert!(c.admit(a).is_none(), "per-ip cap");
        let _s3 = c.admit(b).unwrap();
        assert!(c.admit(b).is_none(), "total cap");
        drop(s1);
        assert!(c.admit(a).is_some(), "a freed slot is reusable");
    }

    #[test]
    fn five_password_failures_block_that_user_from_that_address() {
        let f = Failures::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_USER {
            assert!(!f.blocked(ip, "A@b.c.1234"));
            f.record(ip, "a@b.c.1234", true);
        }
        assert!(f.blocked(ip, "a@B.c.1234"));
        assert!(!f.blocked(ip, "other@b.c.1234"));
        assert!(!f.blocked("10.0.0.9".parse().unwrap(), "a@b.c.1234"));
        for _ in 0..MAX_FAILURES_PER_IP {
            f.record(ip, "x", false);
        }
        assert!(f.blocked(ip, "other@b.c.1234"));
    }
}
