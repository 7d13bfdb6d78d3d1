//! A private BIND 9 (`named`, Debian's bind9, installed by `scripts/dev-services`) for
//! the RFC 2136 tests: loopback, a free port, a working directory in a tempdir, a TSIG
//! key made by `tsig-keygen` (hmac-sha256), and three primary zones:
//!
//! - [`Bind::zones`]`[0]` and `[1]` (`shardlyn.test`, `second.test`): updates and
//!   transfers allowed to the key;
//! - [`Bind::locked`] (`locked.test`): transfers allowed to the key, updates to nobody
//!   (the "zone we may not write" case: BIND answers REFUSED).
//!
//! Every zone starts with its SOA, NS `ns1.<zone>`, `ns1` A 127.0.0.1 and `www` A
//! 192.0.2.1. Killed on drop. Queries (`dig`) need no key.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NAMED: &str = "/usr/sbin/named";
const KEYGEN: &str = "/usr/sbin/tsig-keygen";

/// `named -g` on loopback, killed on drop.
pub struct Bind {
    /// Where it answers DNS (UDP and TCP).
    pub addr: SocketAddr,
    /// The TSIG key's name (`shardlyn-test-key`).
    pub key_name: String,
    /// The key's secret, base64 (as in its `secret "..."`).
    pub secret: String,
    /// The zones the key may update and transfer.
    pub zones: Vec<String>,
    /// A zone the key may transfer but not update.
    pub locked: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Drop for Bind {
    fn drop(&mut self) {
        self.stop();
    }
}

fn zone_file(zone: &str) -> String {
    format!(
        "$TTL 300\n\
         @ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n\
         @ IN NS ns1.{zone}.\n\
         ns1 IN A 127.0.0.1\n\
         www IN A 192.0.2.1\n"
    )
}

impl Bind {
    /// Starts `named` and waits until it answers the first zone's SOA.
    ///
    /// # Panics
    /// When `named` is not installed ("run scripts/dev-services"), or it does not
    /// answer within 20 s (its log is in the message).
    pub async fn start() -> Self {
        assert!(
            Path::new(NAMED).exists() && Path::new(KEYGEN).exists(),
            "named not found: run scripts/dev-services"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let key_name = "shardlyn-test-key".to_owned();
        let out = Command::new(KEYGEN)
            .args(["-a", "hmac-sha256", &key_name])
            .output()
            .expect("tsig-keygen runs");
        assert!(out.status.success(), "tsig-keygen failed");
        let key_text = String::from_utf8_lossy(&out.stdout).into_owned();
        let secret = key_text
            .split("secret \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("tsig-keygen printed a secret")
            .to_owned();
        let zones = vec!["shardlyn.test".to_owned(), "second.test".to_owned()];
        let locked = "locked.test".to_owned();
        let port = crate::pdns::free_dns_port();
        let d = dir.path().display().to_string();
        let mut conf = format!(
            "options {{\n\
               directory \"{d}\";\n\
               pid-file \"{d}/named.pid\";\n\
               session-keyfile \"{d}/session.key\";\n\
               managed-keys-directory \"{d}\";\n\
               listen-on port {port} {{ 127.0.0.1; }};\n\
               listen-on-v6 {{ none; }};\n\
               recursion no;\n\
               dnssec-validation no;\n\
               notify no;\n\
               allow-query {{ any; }};\n\
             }};\n\
             controls {{ }};\n\
             {key_text}\n"
        );
        for zone in zones.iter().chain(std::iter::once(&locked)) {
            std::fs::write(dir.path().join(format!("{zone}.db")), zone_file(zone))
                .expect("zone file");
            let update = if *zone == locked {
                String::new()
            } else {
                format!("allow-update {{ key \"{key_name}\"; }};")
            };
            conf.push_str(&format!(
                "zone \"{zone}\" {{ type primary; file \"{d}/{zone}.db\"; {update} \
                 allow-transfer {{ key \"{key_name}\"; }}; }};\n"
            ));
        }
        let conf_path = dir.path().join("named.conf");
        std::fs::write(&conf_path, conf).expect("named.conf");
        let log = std::fs::File::create(dir.path().join("named.log")).expect("log");
        let child = Command::new(NAMED)
            .arg("-g")
            .args(["-n", "1"])
            .arg("-c")
            .arg(&conf_path)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("named starts");
        let mut bind = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            key_name,
            secret,
            zones,
            locked,
            child: Some(child),
            dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let answered = tokio::process::Command::new("dig")
                .arg(format!("@{}", bind.addr.ip()))
                .args(["-p", &port.to_string()])
                .args([
                    "+short",
                    "+tcp",
                    "+time=1",
                    "+tries=1",
                    &bind.zones[0],
                    "SOA",
                ])
                .output()
                .await
                .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty());
            if answered {
                return bind;
            }
            if let Some(Ok(Some(status))) = bind.child.as_mut().map(Child::try_wait) {
                panic!("named exited ({status}): {}", bind.log());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "named did not answer within 20 s: {}",
                bind.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    /// Kills the server (done on drop; a test of an unreachable server calls it early).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn try_dig(&self, name: &str, rtype: &str) -> Option<Vec<String>> {
        let out = Command::new("dig")
            .arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string()])
            .args(["+short", "+tcp", "+time=2", "+tries=1", name, rtype])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .map(str::to_string)
            .collect();
        lines.sort();
        Some(lines)
    }

    /// `dig +short name rtype` against the server (over TCP), lines sorted.
    ///
    /// # Panics
    /// When `dig` cannot run or fails.
    #[must_use]
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        self.try_dig(name, rtype)
            .unwrap_or_else(|| panic!("dig {name} {rtype} failed: {}", self.log()))
    }

    /// The credential fields of an `rfc2136` credential for this server (`zones`: the
    /// writable zones and the locked one).
    #[must_use]
    pub fn credential_config(&self) -> serde_json::Value {
        serde_json::json!({
            "server": self.addr.to_string(),
            "zones": format!("{},{}", self.zones.join(","), self.locked),
            "tsig_key_name": self.key_name,
            "tsig_algorithm": "hmac-sha256",
            "tsig_secret": self.secret,
        })
    }
}
