//! The planner's advice on the create-server form: when no node of the organization has
//! room for the size asked (`?memory_mb=&cpu_percent=&disk_mb=`, the form's "Check room"),
//! the form shows the cheapest instance type that fits with its price and a link to the
//! provisioning page (`/provision/new?provider=&region=&instance_type=`); when a node
//! fits, no advice. Over plain HTTP and in a real headless Chromium (fill the size, press
//! Check room, read the advice, follow nothing).

use std::time::Duration;

use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

const GIB: i64 = 1024 * 1024 * 1024;

/// A panel whose admin's organization has one online node with 2 GiB of memory.
async fn small_fleet() -> TestApp {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let node = app.register_node(&admin.access, None, "small").await;
    app.mark_node_online(&node, 2 * GIB, 100 * GIB).await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_create_form_advises_a_type_when_no_node_fits() {
    let app = small_fleet().await;
    let (jar, _csrf) = sign_in(&app).await;
    // 1 GiB fits the node: no advice, the size prefilled.
    let (status, html) = page(&app, &jar, "/instances/new").await;
    assert_eq!(status, 200);
    assert!(!html.contains("id=\"planner-advice\""), "{html}");
    assert!(html.contains("id=\"ps-check\""));
    // 4 GiB does not: the cheapest Hetzner type that would (8 GB: 4 GB plus the system's
    // share do not fit the 4 GB types), its price, the provisioning link.
    let (status, html) = page(
        &app,
        &jar,
        "/instances/new?memory_mb=4096&cpu_percent=200&disk_mb=20480",
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"planner-advice\""), "{html}");
    assert!(
        html.contains("<strong id=\"planner-advice-type\">cx33</strong>"),
        "{html}"
    );
    assert!(html.contains("6.49 EUR a month"), "{html}");
    assert!(
        // Tera escapes the slashes of attributes.
        html.contains("&#x2F;provision&#x2F;new?provider=hetzner&amp;region=fsn1&amp;"),
        "{html}"
    );
    assert!(html.contains("instance_type=cx33"), "{html}");
    // The limits of the create form take the size checked.
    assert!(
        html.contains("value=\"4096\" data-limit=\"memory_mb\""),
        "{html}"
    );
    assert!(
        html.contains("value=\"200\" data-limit=\"cpu_percent\""),
        "{html}"
    );
    // Nonsense sizes fall back to the defaults, never an error page.
    let (status, html) = page(
        &app,
        &jar,
        "/instances/new?memory_mb=-5&disk_mb=99999999999999",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("value=\"1024\" data-limit=\"memory_mb\""),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advice_in_the_browser() {
    let app = small_fleet().await;
    let base = app.base.clone();
    Chrome::start(false)
        .await
        .run("planner_advice_in_the_browser", |c| async move {
            c.goto(&format!("{base}/login")).await?;
            fill(&c, "#email", "admin@example.com").await?;
            fill(&c, "#password", PASSWORD).await?;
            click(&c, "#login-submit").await?;
            wait_path(&c, "/").await?;
            c.goto(&format!("{base}/instances/new")).await?;
            anyhow::ensure!(
                c.find(fantoccini::Locator::Css("#planner-advice"))
                    .await
                    .is_err(),
                "no advice while the node has room"
            );
            fill(&c, "#ps-memory", "4096").await?;
            click(&c, "#ps-check").await?;
            let shown =
                wait_text(&c, "#planner-advice-type", "cx33", Duration::from_secs(10)).await?;
            anyhow::ensure!(shown.contains("cx33"), "{shown}");
            let price = find(&c, "#planner-advice-price").await?.text().await?;
            anyhow::ensure!(price.contains("6.49 EUR a month"), "{price}");
            let link = find(&c, "#planner-advice-provision")
                .await?
                .attr("href")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(
                link.starts_with("/provision/new?provider=hetzner")
                    && link.contains("instance_type=cx33"),
                "{link}"
            );
            let memory = find(&c, "#ni-memory")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(memory == "4096", "the create form takes the size: {memory}");
            Ok(())
        })
        .await;
}
