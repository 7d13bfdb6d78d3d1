//! How far a backup or restore got, told to the panel on the agent's `/v1/events`
//! stream ([`BACKUP_PROGRESS`](shardlyn_proto::backup::BACKUP_PROGRESS)).
//!
//! A [`Reporter`] counts the bytes of one operation from whichever thread moves them
//! ([`Counted`] wraps the writer or reader) and sends a report when it starts, at most
//! once per [`EVERY`] while it runs, and once when it ends. Reports go to a broadcast
//! channel; nobody listening (no panel connected) loses nothing that matters: the
//! record on disk still says how the backup ended.

use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shardlyn_proto::backup::{BackupInfo, BackupOperation, BackupProgress, BackupStatus};
use tokio::sync::broadcast;

use crate::instances::lock;

/// The shortest time between two running reports of one operation.
pub const EVERY: Duration = Duration::from_secs(1);
/// Bytes counted between two looks at the clock.
const CHECK_BYTES: u64 = 1 << 20;

/// Counts one operation's bytes and reports them.
pub struct Reporter {
    tx: broadcast::Sender<BackupProgress>,
    instance: String,
    backup: String,
    operation: BackupOperation,
    every: Duration,
    done: AtomicU64,
    total: AtomicU64,
    /// When the last running report went out.
    last: Mutex<Option<Instant>>,
}

impl Reporter {
    #[must_use]
    pub fn new(
        tx: broadcast::Sender<BackupProgress>,
        instance: &str,
        backup: &str,
        operation: BackupOperation,
        every: Duration,
    ) -> Self {
        Self {
            tx,
            instance: instance.to_owned(),
            backup: backup.to_owned(),
            operation,
            every,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// Sets what the count reaches at the end, and reports the start.
    pub fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        *lock(&self.last) = Some(Instant::now());
        self.send(BackupStatus::Running, None, None);
    }

    /// Counts `n` more bytes; reports when [`EVERY`] passed since the last report. The
    /// clock is read once per [`CHECK_BYTES`] (tar writes in small pieces).
    pub fn add(&self, n: u64) {
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        if before / CHECK_BYTES == (before + n) / CHECK_BYTES && !self.every.is_zero() {
            return;
        }
        let due = {
            let mut last = lock(&self.last);
            let due = last.is_none_or(|t| t.elapsed() >= self.every);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            self.send(BackupStatus::Running, None, None);
        }
    }

    /// Bytes counted so far.
    #[must_use]
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Reports the end: `record` for a backup, `error` when it failed.
    pub fn finish(&self, status: BackupStatus, record: Option<BackupInfo>, error: Option<String>) {
        if status == BackupStatus::Completed {
            // The estimate of a backup's total (file sizes walked before the archive)
            // misses files that grew or appeared since: the end is the end.
            let done = self.done.load(Ordering::Relaxed);
            self.total.fetch_max(done, Ordering::Relaxed);
            let total = self.total.load(Ordering::Relaxed);
            self.done.store(total, Ordering::Relaxed);
        }
        self.send(status, record, error);
    }

    fn send(&self, status: BackupStatus, record: Option<BackupInfo>, error: Option<String>) {
        let total = self.total.load(Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed);
        let _ = self.tx.send(BackupProgress {
            instance: self.instance.clone(),
            backup: self.backup.clone(),
            operation: self.operation,
            status,
            // A file that grew while it was archived can carry the count past the
            // estimate; the report never says more than 100 %.
            bytes_done: if total > 0 { done.min(total) } else { done },
            bytes_total: total,
            record,
            error,
        });
    }
}

/// A writer or reader whose bytes a [`Reporter`] counts.
pub struct Counted<'a, T> {
    pub inner: T,
    pub reporter: &'a Reporter,
}

impl<T: Write> Write for Counted<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.reporter.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Counted<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.reporter.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter(every: Duration) -> (Reporter, broadcast::Receiver<BackupProgress>) {
        let (tx, rx) = broadcast::channel(64);
        let r = Reporter::new(tx, "i1", "b1", BackupOperation::Backup, every);
        (r, rx)
    }

    #[test]
    fn reports_start_counts_and_end() {
        let (r, mut rx) = reporter(Duration::ZERO);
        r.start(10);
        let mut out = Vec::new();
        Counted {
            inner: &mut out,
            reporter: &r,
        }
        .write_all(b"hello")
        .expect("write");
        r.finish(BackupStatus::Completed, None, None);
        let seen: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let done: Vec<u64> = seen.iter().map(|p| p.bytes_done).collect();
        assert_eq!(done, vec![0, 5, 10], "{seen:?}");
        assert_eq!(seen[2].status, BackupStatus::Completed);
        assert!(seen.iter().all(|p| p.bytes_total == 10));
    }

    #[test]
    fn running_reports_wait_their_turn_and_never_pass_the_total() {
        let (r, mut rx) = reporter(Duration::from_secs(3600));
        r.start(4);
        let mut buf = [0u8; 3];
        let mut reader = Counted {
            inner: &b"abcdefgh"[..],
            reporter: &r,
        };
        while reader.read(&mut buf).expect("read") > 0 {}
        r.finish(BackupStatus::Failed, None, Some("disk full".into()));
        let seen: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(seen.len(), 2, "start and end only: {seen:?}");
        assert_eq!(seen[1].bytes_done, 4);
        assert_eq!(seen[1].error.as_deref(), Some("disk full"));
    }

    #[test]
    fn a_completed_backup_ends_at_what_it_wrote() {
        let (r, mut rx) = reporter(Duration::from_secs(3600));
        r.start(100);
        r.add(40);
        r.finish(BackupStatus::Completed, None, None);
        let last = std::iter::from_fn(|| rx.try_recv().ok())
            .last()
            .expect("end");
        assert_eq!((last.bytes_done, last.bytes_total), (100, 100));
        let (r, mut rx) = reporter(Duration::from_secs(3600));
        r.start(100);
        r.add(150);
        r.finish(BackupStatus::Completed, None, None);
        let last = std::iter::from_fn(|| rx.try_recv().ok())
            .last()
            .expect("end");
        assert_eq!((last.bytes_done, last.bytes_total), (150, 150));
    }
}
