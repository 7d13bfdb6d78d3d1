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

    /// Messages queued and not yet delivered or given up (0 for mailers that deliver
    /// at once).
    fn outstanding(&self) -> usize {
        0
    }

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
/// An invalid SMTP configuration (see [`crate::config::SmtpConfig::validate`]).
pub fn from_config(config: &SmtpConfig) -> anyhow::Result<Arc<dyn Mailer>> {
    if config.host.is_empty() {
        return Ok(Arc::new(LogMailer));
    }
    Ok(Arc::new(smtp::SmtpMailer::start(config)?))
}

/// Notes every message in the log without sending it: the recipient and the subject
/// only, never the body, whose links carry tokens (password reset, invitation, email
/// verification) that anyone reading the log could otherwise use.
#[derive(Debug, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send(&self, email: Email) {
        tracing::info!(
            mail.to = %email.to,
            mail.subject = %email.subject,
            "mail not sent: no SMTP configured (set smtp.host to deliver mail)"
        );
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A tracing writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut out) = self.0.lock() {
                out.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn logged_mail_names_recipient_and_subject_but_no_token() {
        let token = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";
        let link = |path: &str| format!("https://panel.test/{path}{token}");
        let messages = [
            Template::PasswordReset {
                link: link("reset-password?token="),
                token: token.into(),
                valid_minutes: 60,
            },
            Template::OrgInvite {
                org_name: "Acme".into(),
                inviter: "Ada (ada@example.com)".into(),
                role: "viewer".into(),
                link: link("invites/"),
                token: token.into(),
                expires_at: "2030-01-01T00:00:00Z".into(),
            },
            Template::VerifyEmail {
                link: link("verify-email?token="),
                token: token.into(),
                valid_hours: 24,
            },
            Template::AccountMoved {
                from: "Pterodactyl".into(),
                email: "bob@example.com".into(),
                link: link("reset-password?token="),
                token: token.into(),
                valid_days: 14,
            },
        ];
        for template in messages {
            let out = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(out.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                LogMailer.send_template("bob@example.com", &template);
            });
            let logged = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8");
            assert!(logged.contains("bob@example.com"), "{logged}");
            assert!(logged.contains(&template.subject()), "{logged}");
            assert!(!logged.contains(token), "{}: {logged}", template.name());
            assert!(
                !logged.contains("panel.test"),
                "{}: {logged}",
                template.name()
            );
        }
    }
}
