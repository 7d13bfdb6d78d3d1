//! A private PowerDNS Authoritative server for the DNS tests (`pdns-server` and
//! `pdns-backend-sqlite3`, installed by `scripts/dev-services`): its HTTP API, DNS on
//! UDP and TCP, RFC 2136 updates and zone transfers, all on loopback with free ports,
//! over a fresh SQLite database in a temporary directory. Stopped on drop.
//!
//! The server answers from its database without caches, so what a test wrote is what
//! the next `dig` sees.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const SERVER: &str = "/usr/sbin/pdns_server";
const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

/// `pdns_server` on loopback, killed on drop.
pub struct Pdns {
    /// The HTTP API's base, `http://127.0.0.1:PORT` (a credential's `api_url`).
    pub api_url: String,
    /// The `X-API-Key` the API wants.
    pub api_key: String,
    /// Where it answers DNS (UDP and TCP): queries, updates, zone transfers.
    pub dns_addr: SocketAddr,
    child: Option<Child>,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Drop for Pdns {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 right now (the DNS servers of the
/// tests listen on both).
///
/// # Panics
/// When none is found in 100 tries.
#[must_use]
pub fn free_dns_port() -> u16 {
    for _ in 0..100 {
        let port = crate::agent::free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A zone's canonical name: lower case with the trailing dot.
fn canonical(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

impl Pdns {
    /// Starts a server and waits until its API answers.
    ///
    /// # Panics
    /// When `pdns_server` is not installed ("run scripts/dev-services"), or it does not
    /// answer within 15 s (its log is in the message).
    pub async fn start() -> Self {
        assert!(
            Path::new(SERVER).exists() && Path::new(SCHEMA).exists(),
            "pdns_server not found: run scripts/dev-services"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("pdns.sqlite3");
        let schema = std::fs::File::open(SCHEMA).expect("schema");
        let out = Command::new("sqlite3")
            .arg(&db)
            .stdin(schema)
            .output()
            .expect("sqlite3 (scripts/dev-services installs it)");
        assert!(
            out.status.success(),
            "loading the PowerDNS schema: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let api_key = format!("pdns-{}", uuid::Uuid::new_v4().simple());
        let dns_port = free_dns_port();
        let web_port = crate::agent::free_port();
        let conf = format!(
            "launch=gsqlite3\n\
             gsqlite3-database={db}\n\
             gsqlite3-dnssec=yes\n\
             local-address=127.0.0.1\n\
             local-port={dns_port}\n\
             api=yes\n\
             api-key={api_key}\n\
             webserver=yes\n\
             webserver-address=127.0.0.1\n\
             webserver-port={web_port}\n\
             webserver-allow-from=127.0.0.0/8\n\
             dnsupdate=yes\n\
             allow-dnsupdate-from=127.0.0.0/8\n\
             disable-axfr=no\n\
             allow-axfr-ips=127.0.0.0/8\n\
             guardian=no\n\
             daemon=no\n\
             socket-dir={dir}\n\
             cache-ttl=0\n\
             query-cache-ttl=0\n\
             negquery-cache-ttl=0\n\
             zone-cache-refresh-interval=0\n\
             disable-syslog=yes\n\
             security-poll-suffix=\n\
             loglevel=4\n",
            db = db.display(),
            dir = dir.path().display(),
        );
        std::fs::write(dir.path().join("pdns.conf"), conf).expect("pdns.conf");
        let log = std::fs::File::create(dir.path().join("pdns.log")).expect("log");
        let child = Command::new(SERVER)
            .arg(format!("--config-dir={}", dir.path().display()))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("pdns_server starts");
        let mut pdns = Self {
            api_url: format!("http://127.0.0.1:{web_port}"),
            api_key,
            dns_addr: SocketAddr::from(([127, 0, 0, 1], dns_port)),
            child: Some(child),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let answered = pdns
                .http
                .get(pdns.server_url())
                .header("X-API-Key", &pdns.api_key)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            // DNS must answer too (it binds before the API, but be sure).
            if answered && tokio::net::TcpStream::connect(pdns.dns_addr).await.is_ok() {
                return pdns;
            }
            if let Some(Ok(Some(status))) = pdns.child.as_mut().map(Child::try_wait) {
                panic!("pdns_server exited ({status}): {}", pdns.log());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pdns_server did not answer within 15 s: {}",
                pdns.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `{api_url}/api/v1/servers/localhost`.
    #[must_use]
    pub fn server_url(&self) -> String {
        format!("{}/api/v1/servers/localhost", self.api_url)
    }

    /// The server's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default()
    }

    /// Kills the server (done on drop; a test of an unreachable server calls it early).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends an API request; returns the status and the body (JSON, or `Null`).
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.server_url()))
            .header("X-API-Key", &self.api_key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("PowerDNS API {method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a Native zone `name` (with or without the trailing dot) with an SOA and
    /// an NS record (`ns1.<name>`, with an A record `127.0.0.1`).
    ///
    /// # Panics
    /// When PowerDNS refuses.
    pub async fn create_zone(&self, name: &str) {
        let zone = canonical(name);
        let body = json!({
            "name": zone,
            "kind": "Native",
            "nameservers": [],
            "soa_edit_api": "DEFAULT",
            "rrsets": [
                {"name": zone, "type": "SOA", "ttl": 3600, "records": [{
                    "content": format!("ns1.{zone} hostmaster.{zone} 1 10800 3600 604800 3600"),
                    "disabled": false}]},
                {"name": zone, "type": "NS", "ttl": 3600,
                 "records": [{"content": format!("ns1.{zone}"), "disabled": false}]},
                {"name": format!("ns1.{zone}"), "type": "A", "ttl": 3600,
                 "records": [{"content": "127.0.0.1", "disabled": false}]},
            ],
        });
        let (status, resp) = self.api(reqwest::Method::POST, "/zones", Some(&body)).await;
        assert_eq!(status, 201, "creating zone {zone}: {resp}");
    }

    /// Creates a TSIG key `name` (hmac-sha256); returns its secret, base64.
    ///
    /// # Panics
    /// When PowerDNS refuses.
    pub async fn add_tsig_key(&self, name: &str) -> String {
        let (status, resp) = self
            .api(
                reqwest::Method::POST,
                "/tsigkeys",
                Some(&json!({"name": name, "algorithm": "hmac-sha256"})),
            )
            .await;
        assert_eq!(status, 201, "creating TSIG key {name}: {resp}");
        resp["key"].as_str().expect("key in the answer").to_string()
    }

    /// Lets key `key` update `zone` (RFC 2136) and transfer it: zone metadata
    /// `TSIG-ALLOW-DNSUPDATE` (through the API) and `TSIG-ALLOW-AXFR` (the API refuses
    /// that kind, so through `pdnsutil set-meta`).
    ///
    /// # Panics
    /// When either is refused.
    pub async fn allow_tsig(&self, zone: &str, key: &str) {
        let id = canonical(zone);
        let (status, resp) = self
            .api(
                reqwest::Method::PUT,
                &format!("/zones/{id}/metadata/TSIG-ALLOW-DNSUPDATE"),
                Some(&json!({"metadata": [key]})),
            )
            .await;
        assert_eq!(status, 200, "TSIG-ALLOW-DNSUPDATE on {id}: {resp}");
        run(Command::new("pdnsutil")
            .arg(format!("--config-dir={}", self.dir.path().display()))
            .args(["set-meta", id.trim_end_matches('.'), "TSIG-ALLOW-AXFR", key]));
    }

    /// `dig @127.0.0.1 -p PORT +short NAME TYPE`: the answer's lines, sorted (empty
    /// when there is none).
    ///
    /// # Panics
    /// When `dig` cannot run or fails.
    #[must_use]
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = run(Command::new("dig")
            .arg(format!("@{}", self.dns_addr.ip()))
            .args(["-p", &self.dns_addr.port().to_string()])
            .args(["+short", "+time=2", "+tries=2", name, rtype]));
        let mut lines: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    /// The API's view of `zone`: its `rrsets` array.
    ///
    /// # Panics
    /// When PowerDNS refuses.
    pub async fn rrsets(&self, zone: &str) -> Value {
        let id = canonical(zone);
        let (status, resp) = self
            .api(reqwest::Method::GET, &format!("/zones/{id}"), None)
            .await;
        assert_eq!(status, 200, "reading zone {id}: {resp}");
        resp["rrsets"].clone()
    }

    /// Writes record sets straight into PowerDNS (not through the panel): one PATCH
    /// with `REPLACE` of each `(name, type, ttl, contents)`, names and contents as
    /// PowerDNS wants them (trailing dots, quoted TXT).
    ///
    /// # Panics
    /// When PowerDNS refuses.
    pub async fn replace(&self, zone: &str, sets: &[(&str, &str, u32, Vec<String>)]) {
        let rrsets: Vec<Value> = sets
            .iter()
            .map(|(name, rtype, ttl, contents)| {
                json!({
                    "name": canonical(name),
                    "type": rtype,
                    "ttl": ttl,
                    "changetype": "REPLACE",
                    "records": contents.iter()
                        .map(|c| json!({"content": c, "disabled": false}))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        self.patch(zone, &json!({ "rrsets": rrsets })).await;
    }

    /// Sends a PATCH of `zone` with `body` as is.
    ///
    /// # Panics
    /// When PowerDNS refuses.
    pub async fn patch(&self, zone: &str, body: &Value) {
        let id = canonical(zone);
        let (status, resp) = self
            .api(reqwest::Method::PATCH, &format!("/zones/{id}"), Some(body))
            .await;
        assert_eq!(status, 204, "patching zone {id}: {resp}");
    }
}
