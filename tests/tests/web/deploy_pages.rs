//! The one-click deploy pages in a real browser against a real panel, a real agent and
//! Docker: an admin shows the `testing` templates with the gallery's switch, opens
//! busybox-test's card, deploys it with a variable, lands on the deployment's page,
//! which refreshes itself until every step is done, and follows its link to the
//! running server. A refused form (an empty name) comes back on the gallery with the
//! API's error.

use std::time::Duration;

use anyhow::{Context, ensure};
use fantoccini::{Client, Locator};
use shardlyn_tests::agent::{LocalAgent, own_ports, register_node, wait_node};
use shardlyn_tests::{Engine, PASSWORD, spawn_app_with};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};

const WAIT: Duration = Duration::from_secs(120);
const EMAIL: &str = "admin@example.com";

async fn sign_in(c: &Client, base: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", EMAIL).await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    wait_path(c, "/").await?;
    Ok(())
}

/// Waits until the browser is on a deployment's page; its id.
async fn deployment_id(c: &Client) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let url = c.current_url().await?;
        if let Some(id) = url.path().strip_prefix("/deploy/")
            && id != "testing"
        {
            return Ok(id.to_owned());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "never reached a deployment page: {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_deploys_from_the_gallery() {
    shardlyn_tests::docker::ensure_test_image();
    let app = spawn_app_with(Engine::Sqlite, own_ports).await;
    let session = app.bootstrap_admin().await;
    let (config, dir) = register_node(&app, &session.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &session.access, &config.node_id, "online").await;
    let base = app.base.clone();
    Chrome::start(false)
        .await
        .run("busybox_deploys_from_the_gallery", |c| async move {
            sign_in(&c, &base).await?;
            click(&c, "#nav-deploy").await?;
            wait_path(&c, "/deploy").await?;
            find(&c, "#template-minecraft-paper").await?;
            ensure!(
                c.find(Locator::Css("#template-busybox-test"))
                    .await
                    .is_err(),
                "testing templates are hidden by default"
            );
            click(&c, "#testing-toggle").await?;
            wait_path(&c, "/deploy").await?;
            find(&c, "#template-busybox-test").await?;

            // An empty name is refused by the API and shown on the gallery.
            click(&c, "#deploy-open-busybox-test").await?;
            c.execute(
                "document.getElementById('deploy-name-busybox-test').removeAttribute('required')",
                vec![],
            )
            .await?;
            click(&c, "#deploy-submit-busybox-test").await?;
            wait_text(&c, "#form-error", "name", Duration::from_secs(20)).await?;

            // The form is open again after the refusal.
            fill(&c, "#deploy-name-busybox-test", "gallery-server").await?;
            fill(
                &c,
                "#deploy-var-busybox-test-GREETING",
                "hello from the gallery",
            )
            .await?;
            click(&c, "#deploy-submit-busybox-test").await?;
            let id = deployment_id(&c).await?;
            find(&c, "#step-workload").await?;
            wait_text(&c, "#deployment-status", "succeeded", WAIT)
                .await
                .context("the deployment page refreshes itself until it is done")?;
            for step in ["workload", "limits", "place", "create", "install", "start"] {
                let status = find(&c, &format!("#step-{step}"))
                    .await?
                    .attr("data-status")
                    .await?
                    .unwrap_or_default();
                ensure!(status == "succeeded", "step {step} is {status} ({id})");
            }
            let dns = find(&c, "#step-dns").await?.attr("data-status").await?;
            ensure!(
                dns.as_deref() == Some("skipped"),
                "no subdomain: dns {dns:?}"
            );
            click(&c, "#server-link").await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let url = c.current_url().await?;
                if url.path().starts_with("/instances/") {
                    break;
                }
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "never left for the server: {url}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            c.goto(&format!("{base}/deploy")).await?;
            find(&c, &format!("#recent-deployments a[href='/deploy/{id}']")).await?;
            Ok(())
        })
        .await;
    agent.stop().await;
}
