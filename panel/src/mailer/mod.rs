//! Outgoing mail: the messages the panel sends ([`Template`], rendered from
//! `templates/email/`), the [`Mailer`] that delivers them, and its transports: SMTP with a
//! retrying queue ([`smtp::SmtpMailer`]), the log (no SMTP configured), and memory (tests).
//!
//! Sending never fails nor blocks the request that caused it: [`Mailer::send`] only
//! queues, and delivery failures are logged.

pub mod smtp;
mod templates;

use std::sync::{Arc, Mutex};

pub use templates::{RenderError, Template};

use crate::config::SmtpConfig;

/// One message to send: a text part and (when not empty) an HTML alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Email {
    /// Renders `template` into a message to `to`.
    ///
    /// # Errors
    /// The template failed to render (a bug: every template is rendered by a unit test).
    pub fn render(to: &str, template: &Template) -> Result<Self, RenderError> {
        let (html, text) = template.render()?;
        Ok(Self {
            to: to.to_string(),
            subject: template.subject(),
            text,
            html,
        })
    }
}

/// Something that delivers mail. Sending must not fail the request that caused it, so
/// implementations log their own failures.
pub trait Mailer: Send + Sync {
    /// Queues `email` for delivery.
    fn send(&self, email: Email);

    /// Renders `template` for `to` and queues it; a rendering failure is logged.
    fn send_template(&self, to: &str, template: &Template) {
        match Email::render(to, template) {
            Ok(email) => self.send(email),
            Err(e) => tracing::error!(mail.template = template.name(), "mail not sent: {e}"),
        }
    }
}

/// The mailer `config` asks for: SMTP when `smtp.host` is set, else the log. Starts the
/// SMTP delivery task, so call it inside the tokio runtime.
///
/// # Errors
/// An invalid SMTP configuration (see [`smtp::validate`]).
pub fn from_config(config: &SmtpConfig) -> anyhow::Result<Arc<dyn Mailer>> {
    if config.host.is_empty() {
        return Ok(Arc::new(LogMailer));
    }
    Ok(Arc::new(smtp::SmtpMailer::start(config)?))
}

/// Writes every message to the log.
#[derive(Debug, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send(&self, email: Email) {
        tracing::info!(mail.to = %email.to, mail.subject = %email.subject, "mail (log transport; set smtp.host to send):\n{}", email.text);
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
