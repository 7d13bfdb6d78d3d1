//! Outgoing mail settings (`[smtp]`) and their check: the mailer reads them, the
//! configuration refuses a set that could not work at start-up.

use std::net::IpAddr;
use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use super::Secret;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpMode {
    /// Plain connection upgraded with STARTTLS (refused if the server cannot); port 587.
    Starttls,
    /// TLS from the first byte (SMTPS); port 465.
    Tls,
    /// No encryption; only to a loopback host unless `allow_plain_remote`; port 25.
    Plain,
}

/// Outgoing mail. Without `host` the panel writes each message to its log instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP server; empty disables SMTP (messages are logged).
    pub host: String,
    /// Server port; unset means the mode's usual port (587, 465 or 25).
    pub port: Option<u16>,
    pub mode: SmtpMode,
    /// Login for SMTP AUTH; empty sends without authenticating.
    pub username: String,
    pub password: Secret,
    /// Sender, e.g. `Shardlyn <noreply@example.com>`.
    pub from: String,
    /// Allow mode `plain` to a host that is not loopback (credentials and mail in clear).
    pub allow_plain_remote: bool,
    /// PEM CA certificate trusted for the server, besides the public roots (private CAs).
    pub ca_cert_path: Option<PathBuf>,
    /// Delivery attempts per message before it is logged as failed (backoff 1 s, 2 s, 4 s...).
    pub max_attempts: u32,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: None,
            mode: SmtpMode::Starttls,
            username: String::new(),
            password: Secret::default(),
            from: "Shardlyn <noreply@localhost>".into(),
            allow_plain_remote: false,
            ca_cert_path: None,
            max_attempts: 5,
        }
    }
}

impl SmtpConfig {
    /// Checks an SMTP configuration (nothing to check when `host` is empty).
    ///
    /// # Errors
    /// A sender that is not an address, `plain` to a remote host without
    /// `allow_plain_remote`, or zero attempts.
    pub fn validate(&self) -> Result<(), String> {
        if self.host.is_empty() {
            return Ok(());
        }
        self.from
            .parse::<Mailbox>()
            .map_err(|e| format!("from {:?} is not an email address: {e}", self.from))?;
        if self.mode == SmtpMode::Plain && !self.allow_plain_remote && !is_loopback(&self.host) {
            return Err(format!(
                "mode \"plain\" sends mail and password in clear: refused to {} (not loopback); \
                 use \"starttls\" or \"tls\", or set allow_plain_remote = true",
                self.host
            ));
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

/// Whether `host` names this machine (plain SMTP is allowed there by default).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

    #[test]
    fn plain_is_refused_to_remote_hosts_unless_allowed() {
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.53"] {
            assert!(
                SmtpConfig::validate(&config(host, SmtpMode::Plain)).is_ok(),
                "{host}"
            );
        }
        let mut remote = config("smtp.example.com", SmtpMode::Plain);
        assert!(
            SmtpConfig::validate(&remote)
                .unwrap_err()
                .contains("allow_plain_remote")
        );
        remote.allow_plain_remote = true;
        assert!(SmtpConfig::validate(&remote).is_ok());
        assert!(SmtpConfig::validate(&config("smtp.example.com", SmtpMode::Starttls)).is_ok());
        assert!(SmtpConfig::validate(&config("10.0.0.1", SmtpMode::Tls)).is_ok());
    }

    #[test]
    fn sender_must_be_an_address_and_attempts_positive() {
        let mut c = config("127.0.0.1", SmtpMode::Plain);
        c.from = "not an address".into();
        assert!(SmtpConfig::validate(&c).unwrap_err().contains("from"));
        c.from = "Ops <ops@example.com>".into();
        c.max_attempts = 0;
        assert!(SmtpConfig::validate(&c).is_err());
        // Nothing is checked while SMTP is off.
        assert!(
            SmtpConfig::validate(&SmtpConfig {
                from: "x".into(),
                ..SmtpConfig::default()
            })
            .is_ok()
        );
    }
}
