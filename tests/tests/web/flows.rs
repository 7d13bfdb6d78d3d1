//! What a user does in the browser: set up the first admin, sign out and in, watch a
//! server's console come alive after Start, type a command and see its echo. A real
//! panel, a real agent, real Docker.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::{Engine, PASSWORD, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};

const WAIT: Duration = Duration::from_secs(60);
const EMAIL: &str = "first@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_login_and_a_live_console() {
    let app = spawn_app(Engine::Sqlite).await;
    let base = app.base.clone();
    let chrome = Chrome::start(false).await;
    chrome
        .run("first_run_login_and_a_live_console", |c| async move {
            // A new panel sends every page to the first-run form.
            c.goto(&format!("{base}/instances")).await?;
            wait_path(&c, "/setup").await?;
            fill(&c, "#name", "First Admin").await?;
            fill(&c, "#email", EMAIL).await?;
            fill(&c, "#password", PASSWORD).await?;
            click(&c, "#setup-submit").await?;
            wait_path(&c, "/").await?;
            wait_text(&c, "h1", "Dashboard", Duration::from_secs(10)).await?;
            wait_text(&c, ".who", "First Admin", Duration::from_secs(5)).await?;
            // The first run happened once: the form now sends to the login.
            c.goto(&format!("{base}/setup")).await?;
            wait_path(&c, "/").await?;

            // Sign out, then a wrong password, then the right one.
            click(&c, "#signout").await?;
            wait_path(&c, "/login").await?;
            wait_text(&c, ".notice", "signed out", Duration::from_secs(5)).await?;
            c.goto(&format!("{base}/")).await?;
            wait_path(&c, "/login").await?;
            fill(&c, "#email", EMAIL).await?;
            fill(&c, "#password", "not the password").await?;
            click(&c, "#login-submit").await?;
            wait_text(&c, ".error", "INVALID_CREDENTIALS", Duration::from_secs(10)).await?;
            fill(&c, "#password", PASSWORD).await?;
            click(&c, "#login-submit").await?;
            wait_path(&c, "/").await?;
            wait_text(&c, "h1", "Dashboard", Duration::from_secs(10)).await?;

            // A node with a real agent and a busybox server, set up through the API.
            let session = app.login(EMAIL, PASSWORD).await;
            let (config, dir) = register_node(&app, &session.access).await;
            let agent = LocalAgent::start(config.clone(), dir.path());
            wait_node(&app, &session.access, &config.node_id, "online").await;
            let workload = busybox_workload(&app, &session.access).await;
            let instance = app
                .post(
                    "/v1/instances",
                    Some(&session.access),
                    json!({
                        "name": "web <test>",
                        "workload_id": workload,
                        "node_id": config.node_id,
                        "ports": [free_port()],
                        "variables": {"GREETING": "\u{1b}[32mhi from the browser\u{1b}[0m"},
                        "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500},
                    }),
                )
                .await
                .expect(201)
                .body;
            let id = instance["id"].as_str().expect("id").to_owned();
            wait_instance(&app, &session.access, &id, "offline", WAIT).await;

            // The dashboard and the lists show them.
            c.goto(&format!("{base}/")).await?;
            wait_text(&c, "#nodes-online", "1", Duration::from_secs(10)).await?;
            c.goto(&format!("{base}/nodes")).await?;
            wait_text(&c, "#nodes", "online", Duration::from_secs(10)).await?;
            c.goto(&format!("{base}/instances")).await?;
            // The name is shown as text, not markup.
            wait_text(&c, "#instances", "web <test>", Duration::from_secs(10)).await?;
            c.find(Locator::Css("#instances a")).await?.click().await?;
            wait_path(&c, &format!("/instances/{id}")).await?;

            // The console connects; Start brings the greeting (in green) and the state.
            wait_text(&c, "#console-status", "Connected", WAIT).await?;
            click(&c, "#power-start").await?;
            wait_text(&c, "#console", "hi from the browser", WAIT).await?;
            let green = find(&c, "#console .ansi-32").await?.text().await?;
            anyhow::ensure!(green.contains("hi from the browser"), "ANSI colour span: {green:?}");
            anyhow::ensure!(
                !c.find(Locator::Css("#console")).await?.text().await?.contains("[32m"),
                "escape sequences are not shown"
            );
            wait_text(&c, "#state", "running", WAIT).await?;
            // Live stats: network and disk figures arrive with the stats events.
            wait_text(&c, "#stat-network", "MiB", WAIT).await?;
            wait_text(&c, "#stat-disk", "MiB", WAIT).await?;
            // Power buttons follow the state.
            anyhow::ensure!(
                !find(&c, "#power-start").await?.is_enabled().await?,
                "Start is disabled while running"
            );
            anyhow::ensure!(find(&c, "#power-stop").await?.is_enabled().await?, "Stop is enabled");

            // A command and its echo; the history brings it back.
            fill(&c, "#command", "hello from chromium").await?;
            find(&c, "#command").await?.send_keys("\u{e007}").await?; // Enter
            wait_text(&c, "#console", "echo: hello from chromium", WAIT).await?;
            find(&c, "#command").await?.send_keys("\u{e013}").await?; // Arrow up
            let recalled = find(&c, "#command").await?.prop("value").await?;
            anyhow::ensure!(
                recalled.as_deref() == Some("hello from chromium"),
                "history recalls the last command: {recalled:?}"
            );
            // Live numbers arrive.
            wait_text(&c, "#stat-memory", "MiB", WAIT).await?;

            // Stop through the button.
            click(&c, "#power-stop").await?;
            wait_text(&c, "#console", "stopping", WAIT).await?;
            wait_text(&c, "#state", "offline", WAIT).await?;

            // An unknown instance is a friendly 404 with the API's code.
            c.goto(&format!("{base}/instances/00000000-0000-0000-0000-000000000000")).await?;
            wait_text(&c, "#error-code", "NOT_FOUND", Duration::from_secs(10)).await?;

            agent.stop().await;
            Ok(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_fit_a_phone() {
    let app = spawn_app(Engine::Sqlite).await;
    app.bootstrap_admin().await;
    let base = app.base.clone();
    let chrome = Chrome::start(true).await;
    chrome
        .run("pages_fit_a_phone", |c| async move {
            c.goto(&format!("{base}/login")).await?;
            fill(&c, "#email", "admin@example.com").await?;
            fill(&c, "#password", PASSWORD).await?;
            click(&c, "#login-submit").await?;
            wait_path(&c, "/").await?;
            for path in ["/", "/nodes", "/instances", "/login"] {
                c.goto(&format!("{base}{path}")).await?;
                let overflow = c
                    .execute(
                        "return document.documentElement.scrollWidth - window.innerWidth;",
                        vec![],
                    )
                    .await?;
                anyhow::ensure!(
                    overflow.as_i64().unwrap_or(0) <= 0,
                    "{path} scrolls sideways at phone width by {overflow}px"
                );
            }
            // Every form control has a label.
            c.goto(&format!("{base}/forgot-password")).await?;
            let unlabeled = c
                .execute(
                    "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
                     .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).length;",
                    vec![],
                )
                .await?;
            anyhow::ensure!(unlabeled == 0, "controls without a label: {unlabeled}");
            Ok(())
        })
        .await;
}
