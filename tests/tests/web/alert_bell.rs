//! Browser test of the bell and the maintenance page, in a real headless Chromium
//! against a real panel: an alert that fires while a page is open shows up in the bell
//! without a reload (through the event stream), the bell leads to the alerts page where
//! it is acknowledged, and a maintenance window is opened and ended on its page.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;
use shardlyn_panel::alerts::evaluate;
use shardlyn_proto::metrics::NodeSample;
use shardlyn_tests::{Engine, PASSWORD, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};

const SHORT: Duration = Duration::from_secs(10);

async fn sign_in(c: &Client, base: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", "admin@example.com").await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    wait_path(c, "/").await?;
    Ok(())
}

/// Waits until the page's event stream is open (`live.js` marks the document).
async fn wait_live(c: &Client) -> anyhow::Result<()> {
    find(c, r#"html[data-live="on"]"#).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bell_counts_a_new_alert_live_and_maintenance_is_set_on_its_page() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let org = app.get("/v1/organizations", t).await.expect(200).body[0]["id"]
        .as_str()
        .expect("org id")
        .to_owned();
    let node = app.register_node(&admin.access, None, "rack-7").await;
    app.post(
        "/v1/alerts/rules",
        t,
        json!({"organization_id": org, "name": "Hot CPU", "target_type": "node",
            "metric": "cpu_usage", "operator": "gt", "threshold": 90,
            "duration_seconds": 0, "severity": "critical"}),
    )
    .await
    .expect(201);
    let base = app.base.clone();
    let state = app.state.clone();
    Chrome::start(false)
        .await
        .run("the_bell_counts_a_new_alert_live", |c| async move {
            sign_in(&c, &base).await?;
            c.goto(&format!("{base}/nodes")).await?;
            wait_live(&c).await?;
            anyhow::ensure!(
                !find(&c, "#bell-count").await?.is_displayed().await?,
                "no count while nothing is unread"
            );
            // The node runs hot: the rule fires at once, and the open page hears it.
            let sample = NodeSample {
                cpu_percent: 97.0,
                memory_total_bytes: 100,
                memory_used_bytes: 10,
                disk_total_bytes: 100,
                disk_used_bytes: 10,
                ..NodeSample::default()
            };
            evaluate::on_sample(&state, &node, &sample).await;
            wait_text(&c, "#bell-count", "1", SHORT).await?;
            anyhow::ensure!(c.current_url().await?.path() == "/nodes", "no reload");

            // The bell leads to the alerts page, which marks it seen.
            click(&c, "#bell").await?;
            wait_path(&c, "/alerts").await?;
            wait_text(&c, "#alerts", "Hot CPU", SHORT).await?;
            anyhow::ensure!(
                !find(&c, "#bell-count").await?.is_displayed().await?,
                "seen: no count"
            );
            let ack = c.find(Locator::Css("#alerts button[id^='ack-']")).await?;
            ack.click().await?;
            wait_text(&c, "#notice", "acknowledged", SHORT).await?;
            wait_text(&c, "#alerts", "acknowledged by admin@example.com", SHORT).await?;

            // A maintenance window on the node, then ended.
            c.goto(&format!("{base}/alerts/maintenance")).await?;
            find(&c, "#windows-empty").await?;
            let target = find(&c, "#w-target").await?;
            target.select_by_value(&format!("node:{node}")).await?;
            find(&c, "#w-duration")
                .await?
                .select_by_value("120")
                .await?;
            fill(&c, "#w-reason", "Disk swap").await?;
            click(&c, "#open-window").await?;
            wait_text(&c, "#notice", "maintenance window is open", SHORT).await?;
            wait_text(&c, "#windows", "node rack-7", SHORT).await?;
            wait_text(&c, "#windows", "Disk swap", SHORT).await?;
            click(&c, "#windows button[id^='end-']").await?;
            wait_text(&c, "#notice", "is over", SHORT).await?;
            find(&c, "#windows-empty").await?;
            Ok(())
        })
        .await;
}
