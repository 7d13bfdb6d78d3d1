//! A real SMTP server for the mail tests: `tests/support/smtp_sink.py` (aiosmtpd) on
//! loopback, one per test with its own port and directory, so tests run in parallel.
//! Each received message is parsed by Python's `email` package and read back here as a
//! [`ReceivedMail`]. `scripts/dev-services` installs aiosmtpd into
//! `~/.cache/shardlyn/venv` (override the interpreter with `SHARDLYN_TEST_SMTP_PYTHON`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One message as the sink received it.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedMail {
    /// Envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// Envelope recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// The SMTP AUTH login, when the client authenticated.
    pub login: Option<String>,
    /// Whether the message came over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// Headers.
    pub from: String,
    pub to: String,
    pub subject: String,
    /// Top-level MIME type, e.g. `multipart/alternative`.
    pub content_type: String,
    /// Decoded `text/plain` part.
    pub text: Option<String>,
    /// Decoded `text/html` part.
    pub html: Option<String>,
}

/// A running aiosmtpd; killed on drop.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SHARDLYN_TEST_SMTP_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/shardlyn/venv/bin/python")
}

/// A loopback port nothing listens on right now.
///
/// # Panics
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl SmtpSink {
    /// Starts a sink on a free port.
    pub async fn start() -> Self {
        Self::start_on(0, None).await
    }

    /// Starts a sink on `port` (0: any); with `auth` (`user:password`) it refuses mail
    /// from clients that did not authenticate with those credentials.
    ///
    /// # Panics
    /// When the sink cannot start: run `scripts/dev-services`.
    pub async fn start_on(port: u16, auth: Option<&str>) -> Self {
        let args = auth.map(|a| vec!["--auth".to_string(), a.to_string()]);
        Self::spawn(port, args.unwrap_or_default()).await
    }

    /// Starts a sink that speaks TLS: `mode` is `starttls` (refusing mail before it) or
    /// `tls` (implicit), with the PEM certificate chain and key at `cert` and `key`.
    pub async fn start_tls(mode: &str, cert: &Path, key: &Path) -> Self {
        let args = vec![
            "--tls".to_string(),
            mode.to_string(),
            "--tls-cert".to_string(),
            cert.display().to_string(),
            "--tls-key".to_string(),
            key.display().to_string(),
        ];
        Self::spawn(0, args).await
    }

    async fn spawn(port: u16, extra: Vec<String>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = crate::crate_path("support/smtp_sink.py");
        let python = python();
        let mut cmd = Command::new(&python);
        cmd.args(["-W", "ignore"])
            .arg(script)
            .args(["--port", port.to_string().as_str(), "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        cmd.args(extra);
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/dev-services to install aiosmtpd",
                python.display()
            )
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP sink starts within 30 s")
            .expect("read the SMTP sink's output")
            .unwrap_or_else(|| {
                panic!("the SMTP sink exited early: is aiosmtpd installed (scripts/dev-services)?")
            });
        let port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected SMTP sink output: {ready}"));
        Self { port, dir, child }
    }

    /// Every message received so far, in arrival order.
    ///
    /// # Panics
    /// On an unreadable message file.
    #[must_use]
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read the sink's directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("read message");
                serde_json::from_str(&text).expect("message JSON")
            })
            .collect()
    }

    /// Waits up to `timeout` for a message matching `pred`.
    ///
    /// # Panics
    /// When none arrives in time.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&ReceivedMail) -> bool,
    ) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(mail) = self.received().into_iter().find(&pred) {
                return mail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no matching mail within {timeout:?}; received: {:#?}",
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to 20 s for a message to `to` whose subject contains `subject`.
    pub async fn wait_for_subject(&self, to: &str, subject: &str) -> ReceivedMail {
        self.wait_for(Duration::from_secs(20), |m| {
            m.rcpt_tos.iter().any(|r| r == to) && m.subject.contains(subject)
        })
        .await
    }

    /// Stops the server (the messages already stored stay readable).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
