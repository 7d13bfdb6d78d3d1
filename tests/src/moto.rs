//! A real S3-compatible server for tests: `moto_server` (installed by
//! `scripts/dev-services` into `~/.cache/shardlyn/venv`), one per test.

use std::time::Duration;

use crate::agent::free_port;

/// A `moto_server` on a free port, stopped on drop.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Moto {
    pub async fn start() -> Self {
        let port = free_port();
        let bin = std::env::var("HOME")
            .map(|h| format!("{h}/.cache/shardlyn/venv/bin/moto_server"))
            .expect("HOME");
        let child = std::process::Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server starts (scripts/dev-services installs it)");
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/moto-api/", moto.url))
                .await
                .is_ok()
            {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
