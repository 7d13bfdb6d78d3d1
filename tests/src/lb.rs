//! HAProxy (Debian's `haproxy`) in front of panel replicas, configured as
//! `docs/operations/scale-out.md` says: round robin, WebSocket upgrades (agent tunnels,
//! consoles) and event streams passed through, `/health/live` as the health check, and
//! a request refused by a draining or stopped replica retried on another.

use std::process::Stdio;

use crate::agent::free_port;

/// A running HAProxy; stopped when dropped.
pub struct LoadBalancer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// HAProxy's stats socket (`show stat`).
    socket: std::path::PathBuf,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

/// The configuration for `port` in front of `backends` (`http://host:port` each).
#[must_use]
pub fn config(port: u16, backends: &[&str]) -> String {
    let mut text = format!(
        "global\n    maxconn 4096\n\n\
         defaults\n    mode http\n    option forwardfor\n    timeout connect 5s\n    \
         timeout client 60s\n    timeout server 60s\n    timeout tunnel 1h\n    \
         retries 3\n    option redispatch 1\n    retry-on conn-failure empty-response 503\n\n\
         frontend panel\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /health/live\n"
    );
    for (n, backend) in backends.iter().enumerate() {
        let address = backend.trim_start_matches("http://").trim_end_matches('/');
        text.push_str(&format!(
            "    server replica{n} {address} check inter 1s fall 2 rise 1\n"
        ));
    }
    text
}

impl LoadBalancer {
    /// Starts HAProxy in front of `backends` and waits until it accepts connections.
    ///
    /// # Panics
    /// When `haproxy` is missing (scripts/dev-services installs it) or does not listen
    /// within 10 s.
    pub async fn start(backends: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let path = dir.path().join("haproxy.cfg");
        let socket = dir.path().join("stats.sock");
        let text = config(port, backends).replacen(
            "global\n",
            &format!("global\n    stats socket {}\n", socket.display()),
            1,
        );
        std::fs::write(&path, text).expect("write haproxy.cfg");
        let check = std::process::Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("haproxy runs (scripts/dev-services installs it)");
        assert!(
            check.status.success(),
            "haproxy refuses the configuration: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = tokio::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts");
        crate::agent::wait_listening(port, "haproxy").await;
        Self {
            base: format!("http://127.0.0.1:{port}"),
            socket,
            _child: child,
            _dir: dir,
        }
    }

    /// Waits until HAProxy's health checks count every backend up (a replica restarted
    /// in a rolling upgrade must be before the next one drains).
    ///
    /// # Panics
    /// Not within 20 s.
    pub async fn wait_all_up(&self) {
        self.wait_counted_up(None).await;
    }

    /// Waits until HAProxy's health checks count backend `n` (its place in the list
    /// given to [`LoadBalancer::start`]) up. A backend that was not listening when the
    /// balancer started is counted down until a later check finds it; a request sent
    /// through the balancer meanwhile is answered 503.
    ///
    /// # Panics
    /// Not within 20 s.
    pub async fn wait_up(&self, n: usize) {
        self.wait_counted_up(Some(n)).await;
    }

    async fn wait_counted_up(&self, only: Option<usize>) {
        let prefix = only.map_or_else(
            || "replicas,replica".to_owned(),
            |n| format!("replicas,replica{n},"),
        );
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            if let Some(out) = self.show_stat().await {
                // CSV: pxname,svname,...,status (the 18th column).
                let servers: Vec<&str> = out
                    .lines()
                    .filter(|l| l.starts_with(&prefix))
                    .filter_map(|l| l.split(',').nth(17))
                    .collect();
                if !servers.is_empty() && servers.iter().all(|s| s.starts_with("UP")) {
                    return;
                }
                last = out;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("haproxy never counted {prefix}* up: {last}");
    }

    /// A counter of the balancer's front end from HAProxy's `show stat`, by its column
    /// name: `req_tot` (the requests it took), `hrsp_5xx` (the answers it gave 5xx: its
    /// own 503 when no backend is up, or a backend's).
    ///
    /// # Panics
    /// When the stats socket does not answer or has no such column.
    pub async fn frontend_counter(&self, column: &str) -> u64 {
        let out = self
            .show_stat()
            .await
            .expect("haproxy's stats socket answers");
        let header: Vec<&str> = out
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# "))
            .expect("show stat starts with its header")
            .split(',')
            .collect();
        let at = header
            .iter()
            .position(|c| *c == column)
            .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
        let row = out
            .lines()
            .find(|l| l.starts_with("panel,FRONTEND,"))
            .expect("the front end's row");
        row.split(',')
            .nth(at)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{column} in {row}"))
    }

    async fn show_stat(&self) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::UnixStream::connect(&self.socket).await.ok()?;
        sock.write_all(b"show stat\n").await.ok()?;
        let mut out = String::new();
        sock.read_to_string(&mut out).await.ok()?;
        Some(out)
    }
}
