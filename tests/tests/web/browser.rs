//! A headless Chromium per test: `chromedriver` started on a free port as a child
//! process, a WebDriver session through `fantoccini`, step helpers with timeouts, and a
//! screenshot (plus the page's HTML) saved when a test fails.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use shardlyn_tests::agent::free_port;

/// How long a step may wait for the page.
pub const STEP: Duration = Duration::from_secs(20);

/// Where failure screenshots go: `target/web-test-failures/`.
fn failures_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("web-test-failures")
}

fn chromium_binary() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
}

/// A browser session and the driver process behind it.
pub struct Chrome {
    driver: tokio::process::Child,
    pub client: Client,
}

impl Chrome {
    /// Starts `chromedriver` and a headless Chromium session (phone-sized when `phone`).
    ///
    /// # Panics
    /// When chromedriver is missing or no session starts within 30 s.
    pub async fn start(phone: bool) -> Self {
        let port = free_port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver; scripts/dev-services does)");
        let size = if phone { "390,844" } else { "1280,900" };
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", format!("--window-size={size}")],
        });
        if let Some(binary) = chromium_binary() {
            options["binary"] = json!(binary);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "no WebDriver session: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Self { driver, client }
    }

    /// Runs `steps`; on an error or a panic saves a screenshot and the page's HTML to
    /// `target/web-test-failures/{name}.{png,html}` and fails the test naming them.
    pub async fn run<F, Fut>(mut self, name: &str, steps: F)
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let outcome = AssertUnwindSafe(steps(self.client.clone()))
            .catch_unwind()
            .await;
        let failure = match &outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(panic) => Some(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panic".into()),
            ),
        };
        let saved = match &failure {
            Some(_) => Some(self.save_evidence(name).await),
            None => None,
        };
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        if let (Some(failure), Some(saved)) = (failure, saved) {
            panic!("web test {name} failed: {failure}\n{saved}");
        }
    }

    async fn save_evidence(&self, name: &str) -> String {
        let dir = failures_dir();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return format!("(could not create {}: {e})", dir.display());
        }
        let url = self
            .client
            .current_url()
            .await
            .map_or_else(|e| format!("unknown ({e})"), |u| u.to_string());
        let png = dir.join(format!("{name}.png"));
        let shot = match self.client.screenshot().await {
            Ok(bytes) => std::fs::write(&png, bytes).map_or_else(
                |e| format!("screenshot not written: {e}"),
                |()| format!("screenshot: {}", png.display()),
            ),
            Err(e) => format!("no screenshot: {e}"),
        };
        let html = dir.join(format!("{name}.html"));
        if let Ok(source) = self.client.source().await {
            let _ = std::fs::write(&html, source);
        }
        format!("page: {url}\n{shot}\nhtml: {}", html.display())
    }
}

/// Loads the page again when Chromium showed its own error page instead of ours. Tests
/// that start containers make Docker add and remove network interfaces, and Chromium
/// then aborts a page load under way with `ERR_NETWORK_CHANGED`; the panel never saw a
/// problem, the browser's network did. Other errors are left on screen for the test to
/// fail on.
async fn reload_if_network_changed(c: &Client) {
    let changed = c
        .execute(
            "const e = document.getElementById('main-frame-error'); \
             return !!e && document.documentElement.innerHTML.includes('ERR_NETWORK_CHANGED');",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if changed {
        eprintln!("the browser's network changed during a page load (Docker); loading it again");
        let _ = c.refresh().await;
    }
}

/// The element `css`, waiting for it to appear.
pub async fn find(c: &Client, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        match c.find(Locator::Css(css)).await {
            Ok(e) => return Ok(e),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(anyhow!("{css} never appeared: {e}"));
            }
            Err(_) => {
                reload_if_network_changed(c).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Types `value` into the field `css`.
pub async fn fill(c: &Client, css: &str, value: &str) -> anyhow::Result<()> {
    let field = find(c, css).await?;
    field
        .clear()
        .await
        .with_context(|| format!("clearing {css}"))?;
    field
        .send_keys(value)
        .await
        .with_context(|| format!("typing into {css}"))
}

/// Clicks `css` once it is shown and enabled (a button of a dialog a script is still
/// opening is in the page but not yet clickable).
pub async fn click(c: &Client, css: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let e = find(c, css).await?;
        let ready =
            e.is_displayed().await.unwrap_or(false) && e.is_enabled().await.unwrap_or(false);
        if ready {
            match e.click().await {
                Ok(()) => return Ok(()),
                // Covered or moved between the check and the click: try again.
                Err(err) if tokio::time::Instant::now() < deadline => {
                    eprintln!("clicking {css} again: {err}");
                }
                Err(err) => return Err(err).with_context(|| format!("clicking {css}")),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{css} never became shown and enabled");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the text of `css` contains `needle`.
pub async fn wait_text(
    c: &Client,
    css: &str,
    needle: &str,
    wait: Duration,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(needle) {
                return Ok(last);
            }
        } else {
            reload_if_network_changed(c).await;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{css} never showed {needle:?}; it shows {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Waits until the page's path is `path`.
pub async fn wait_path(c: &Client, path: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let url = c.current_url().await?;
        if url.path() == path {
            return Ok(url.to_string());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("never reached {path}; at {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
