//! Outgoing mail. The SMTP transport arrives with the identity issue; until then the
//! panel logs each message (recipient, subject and body) at `info`.

use std::sync::Mutex;

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Something that delivers mail. Sending must not fail the request that caused it, so
/// implementations log their own failures.
pub trait Mailer: Send + Sync {
    /// Queues `email` for delivery.
    fn send(&self, email: Email);
}

/// Writes every message to the log.
#[derive(Debug, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send(&self, email: Email) {
        tracing::info!(mail.to = %email.to, mail.subject = %email.subject, "mail (log transport):\n{}", email.text);
    }
}

/// Keeps messages in memory; the test harness reads them back.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Email>>,
}

impl MemoryMailer {
    /// Every message sent so far.
    #[must_use]
    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Mailer for MemoryMailer {
    fn send(&self, email: Email) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(email);
        }
    }
}
