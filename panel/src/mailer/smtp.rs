//! SMTP delivery with lettre (rustls; STARTTLS, implicit TLS, or plain on loopback).
//!
//! [`SmtpMailer::send`] puts the message on a bounded queue and returns at once; a
//! background task ([`run_until_stopped`]) delivers each message, retrying transient
//! failures with exponential backoff (1 s, 2 s, 4 s ...) up to `smtp.max_attempts`, then
//! logs it as failed. The queue lives in memory: messages still queued when the panel
//! stops are lost (the log says which were sent).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::{Email, Mailer};
use crate::config::{SmtpConfig, SmtpMode};

/// Messages waiting for delivery before `send` starts dropping (and logging) them.
const QUEUE_CAPACITY: usize = 1024;
/// Messages delivered (or waiting to retry) at the same time.
const MAX_IN_FLIGHT: usize = 8;
/// Wait before the second attempt; doubles after each failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Connect and command timeout of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends mail over SMTP through a background queue.
#[derive(Debug)]
pub struct SmtpMailer {
    queue: mpsc::Sender<Email>,
    /// Messages queued and not yet delivered or given up.
    outstanding: Arc<AtomicUsize>,
}

impl SmtpMailer {
    /// Builds the transport and starts the delivery task (inside the tokio runtime).
    /// Nothing connects yet: an unreachable server shows up as retried deliveries.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn start(config: &SmtpConfig) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("smtp: {e}"))?;
        let delivery = Delivery {
            transport: transport(config)?,
            from: config.from.parse()?,
            max_attempts: config.max_attempts,
            first_backoff: FIRST_BACKOFF,
        };
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        let outstanding = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run_until_stopped(
            rx,
            Arc::new(delivery),
            outstanding.clone(),
        ));
        tracing::info!(smtp.host = %config.host, smtp.mode = ?config.mode, "sending mail over SMTP");
        Ok(Self { queue, outstanding })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, email: Email) {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.queue.try_send(email) {
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
            let (reason, email) = match e {
                mpsc::error::TrySendError::Full(m) => ("the queue is full", m),
                mpsc::error::TrySendError::Closed(m) => ("the delivery task stopped", m),
            };
            tracing::error!(mail.to = %email.to, mail.subject = %email.subject, "mail dropped: {reason}");
        }
    }

    fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }
}

/// TLS towards `config.host`: the public roots, plus `ca_cert_path` when set.
fn tls_parameters(config: &SmtpConfig) -> anyhow::Result<TlsParameters> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_cert_path {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("smtp.ca_cert_path {}: {e}", path.display()))?;
        builder = builder.add_root_certificate(Certificate::from_pem(&pem)?);
    }
    Ok(builder.build_rustls()?)
}

fn transport(config: &SmtpConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    // `Required` refuses to go on when STARTTLS fails: no downgrade to plain text.
    let (tls, port) = match config.mode {
        SmtpMode::Starttls => (Tls::Required(tls_parameters(config)?), 587),
        SmtpMode::Tls => (Tls::Wrapper(tls_parameters(config)?), 465),
        SmtpMode::Plain => (Tls::None, 25),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
        .port(config.port.unwrap_or(port))
        .tls(tls)
        .timeout(Some(ATTEMPT_TIMEOUT));
    if !config.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            config.username.clone(),
            config.password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

/// Takes messages off the queue and delivers them, several at a time, until every
/// sender is gone; then finishes the deliveries in flight. `outstanding` counts the
/// messages queued and not yet delivered or given up.
pub async fn run_until_stopped(
    mut queue: mpsc::Receiver<Email>,
    delivery: Arc<Delivery>,
    outstanding: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut in_flight = JoinSet::new();
    while let Some(email) = queue.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let delivery = delivery.clone();
        let outstanding = outstanding.clone();
        in_flight.spawn(async move {
            delivery.deliver(&email).await;
            outstanding.fetch_sub(1, Ordering::SeqCst);
            drop(slot);
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

/// How messages leave: the transport, the sender and the retry policy.
pub struct Delivery {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    max_attempts: u32,
    first_backoff: Duration,
}

impl Delivery {
    fn message(&self, email: &Email) -> anyhow::Result<Message> {
        let builder = Message::builder()
            .from(self.from.clone())
            .to(email.to.parse()?)
            .subject(email.subject.as_str());
        let message = if email.html.is_empty() {
            builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.text.clone()),
            )?
        } else {
            builder.multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))?
        };
        Ok(message)
    }

    /// Delivers one message: retries transient failures with exponential backoff, and
    /// logs the outcome (never the body: it may hold a reset or invite token).
    async fn deliver(&self, email: &Email) {
        let message = match self.message(email) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(mail.to = %email.to, mail.subject = %email.subject, "mail dropped: {e}");
                return;
            }
        };
        let mut backoff = self.first_backoff;
        for attempt in 1..=self.max_attempts {
            let Err(error) = self.transport.send(message.clone()).await else {
                tracing::info!(mail.to = %email.to, mail.subject = %email.subject, mail.attempt = attempt, "mail sent");
                return;
            };
            if error.is_permanent() {
                tracing::error!(mail.to = %email.to, mail.subject = %email.subject, mail.attempt = attempt, "mail refused by the SMTP server: {error}");
                return;
            }
            if attempt == self.max_attempts {
                tracing::error!(mail.to = %email.to, mail.subject = %email.subject, mail.attempts = attempt, "mail failed, giving up: {error}");
                return;
            }
            tracing::warn!(
                mail.to = %email.to,
                mail.attempt = attempt,
                retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                "mail delivery failed, will retry: {error}"
            );
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str, mode: SmtpMode) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            mode,
            ..SmtpConfig::default()
        }
    }

    #[tokio::test]
    async fn messages_have_a_text_and_an_html_part() {
        let c = config("127.0.0.1", SmtpMode::Plain);
        let delivery = Delivery {
            transport: transport(&c).expect("transport"),
            from: c.from.parse().expect("from"),
            max_attempts: 1,
            first_backoff: Duration::from_millis(1),
        };
        let email = Email::render(
            "ada@example.com",
            &super::super::Template::MfaEnabled {
                time: "2030-01-01T00:00:00Z".into(),
                ip: None,
            },
        )
        .expect("renders");
        let raw = String::from_utf8(delivery.message(&email).expect("message").formatted())
            .expect("utf-8");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain") && raw.contains("text/html"),
            "{raw}"
        );
        assert!(raw.contains("To: ada@example.com"), "{raw}");
        assert!(
            delivery
                .message(&Email {
                    to: "not an address".into(),
                    ..email
                })
                .is_err()
        );
    }
}
