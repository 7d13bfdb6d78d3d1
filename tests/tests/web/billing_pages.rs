//! The billing pages (issue 19 §8):
//!
//! - over plain HTTP on both engines, billing off (no Stripe key, no fake): `/billing`
//!   says organizations are unlimited, the navigation links to it, the admin pages
//!   (`/admin/plans` with the seeded free plan, `/admin/subscriptions`,
//!   `/admin/platform-nodes`) render and link each other, and Subscribe answers the API's
//!   `BILLING_DISABLED` on the page;
//! - in a real headless Chromium against our own fake Stripe
//!   (`shardlyn_tests::fake_stripe::FakeStripe`: Checkout pages, the billing portal,
//!   signed webhooks to the panel's `/v1/webhooks/stripe`): an admin creates a plan on
//!   `/admin/plans`; a user picks it on `/billing`, is sent to the fake's Checkout, pays,
//!   lands on `/billing/success`, which shows the plan active once Stripe's events
//!   arrive; `/billing` then shows the plan, its caps and the paid invoice; a failed
//!   renewal (`fail_payment`) puts the past-due banner on every page; "Manage billing"
//!   leads to the fake's portal; the admin cannot delete the plan while it has a
//!   subscriber and is told to archive it.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use fantoccini::{Client, Locator};
use reqwest::header::COOKIE;
use shardlyn_panel::config::Secret;
use shardlyn_tests::fake_stripe::{FakeStripe, SECRET_KEY};
use shardlyn_tests::{Engine, PASSWORD, TestApp, both_engines, spawn_app, spawn_app_with};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

/// The webhook endpoint's signing secret shared by the panel and the fake.
const WEBHOOK_SECRET: &str = "whsec_shardlyn_web_billing";
/// How long Stripe's events may take to reach the panel and be applied (a bound, not a
/// wait: every check polls).
const EVENTS: Duration = Duration::from_secs(60);

fn has(html: &str, parts: &[&str]) {
    for part in parts {
        assert!(html.contains(part), "{part} in {html}");
    }
}

/// `GET path` answering 200; its HTML.
async fn shown(app: &TestApp, jar: &str, path: &str) -> String {
    let (status, html) = page(app, jar, path).await;
    assert_eq!(status, 200, "{path}: {html}");
    html
}

both_engines! {
    async fn with_billing_off_the_pages_say_organizations_are_unlimited(engine) {
        let app = spawn_app(engine).await;
        app.bootstrap_admin().await;
        let (jar, csrf) = sign_in(&app).await;

        let home = shown(&app, &jar, "/").await;
        has(&home, &[r#"href="/billing" id="nav-billing""#]);
        assert!(!home.contains("billing-banner"), "no banner with billing off");
        let html = shown(&app, &jar, "/billing").await;
        has(&html, &[
            r#"id="billing-off""#,
            "Billing is off on this panel: organizations are unlimited.",
            r#"aria-current="page">Billing<"#,
            r#"id="billing-costs""#,
        ]);
        assert!(!html.contains(r#"id="billing-plans""#), "no plans offered: {html}");

        let html = shown(&app, &jar, "/admin/plans").await;
        has(&html, &[
            r#"data-plan="plan-free""#,
            r#"id="plans-billing-off""#,
            r#"id="plan-form""#,
            r#"name="limit_servers""#,
            r#"id="p-pool-platform""#,
            r#"href="/admin/subscriptions" id="admin-nav-subscriptions""#,
            r#"href="/admin/platform-nodes" id="admin-nav-platform-nodes""#,
        ]);
        let html = shown(&app, &jar, "/admin/subscriptions").await;
        has(&html, &[r#"id="admin-nav-plans""#, "<h1>Subscriptions</h1>"]);
        let html = shown(&app, &jar, "/admin/platform-nodes").await;
        has(&html, &["<h1>Platform nodes</h1>"]);
        let html = shown(&app, &jar, "/admin/users").await;
        has(&html, &[r#"href="/admin/plans" id="admin-nav-plans""#]);

        // Subscribing is refused by the API with its code, shown on the page.
        let r = app
            .client
            .post(format!("{}/billing/subscribe", app.base))
            .header(COOKIE, &jar)
            .form(&[("csrf_token", csrf.as_str()), ("plan_id", "plan-free"), ("interval", "month")])
            .send()
            .await
            .expect("POST /billing/subscribe");
        assert_eq!(r.status(), 409);
        let html = r.text().await.expect("html");
        has(&html, &["BILLING_DISABLED", r#"id="billing-off""#]);

    }
}

/// The panel with billing on against the fake Stripe, its webhooks wired both ways.
async fn app_with_stripe(fake: &FakeStripe) -> TestApp {
    let api = fake.url.clone();
    let app = spawn_app_with(Engine::Sqlite, move |c| {
        c.stripe.secret_key = Secret(SECRET_KEY.into());
        c.stripe.api_base = api;
        c.stripe.webhook_secret = Secret(WEBHOOK_SECRET.into());
    })
    .await;
    fake.webhook(&format!("{}/v1/webhooks/stripe", app.base), WEBHOOK_SECRET);
    app
}

async fn browser_sign_in(c: &Client, base: &str, email: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", email).await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    wait_path(c, "/").await?;
    Ok(())
}

/// Waits until the page's path starts with `prefix` (another site's page).
async fn wait_path_prefix(c: &Client, prefix: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let url = c.current_url().await?;
        if url.path().starts_with(prefix) {
            return Ok(url.to_string());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("never reached {prefix}…; at {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `path` again until `css` shows `needle` (the page is rendered from what the
/// panel knows at each load).
async fn reload_until(
    c: &Client,
    url: &str,
    css: &str,
    needle: &str,
    wait: Duration,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut last = String::new();
    loop {
        c.goto(url).await?;
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(needle) {
                return Ok(last);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{url}: {css} never showed {needle:?}; it shows {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Accepts the confirmation a `data-confirm` form asks for.
async fn confirm(c: &Client) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c.accept_alert().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                bail!("no confirmation dialog: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Uses our own fake Stripe (`FakeStripe`): Checkout, the portal and signed webhooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_subscribes_through_checkout_and_sees_the_plan_invoices_and_dunning() {
    let fake = FakeStripe::start().await;
    let app = app_with_stripe(&fake).await;
    app.bootstrap_admin().await;
    app.register("buyer@example.com").await;
    let base = app.base.clone();
    let fake = &fake;
    Chrome::start(false)
        .await
        .run("billing_checkout_on_the_fake", |c| async move {
            // The admin makes a plan: prices typed in major units, a cap of 3 servers.
            browser_sign_in(&c, &base, "admin@example.com").await?;
            c.goto(&format!("{base}/admin/plans")).await?;
            fill(&c, "#p-name", "Pro").await?;
            fill(&c, "#p-description", "For growing communities").await?;
            fill(&c, "#p-price-month", "9.99").await?;
            fill(&c, "#p-price-year", "99").await?;
            fill(&c, "#p-limit-servers", "3").await?;
            fill(&c, "#p-limit-memory_mb", "8192").await?;
            click(&c, "#plan-save").await?;
            wait_text(
                &c,
                "#notice",
                "The plan was created.",
                Duration::from_secs(20),
            )
            .await?;
            let row = wait_text(
                &c,
                r#"tr[data-name="Pro"]"#,
                "USD 9.99",
                Duration::from_secs(5),
            )
            .await?;
            ensure!(
                row.contains("USD 99.00"),
                "the yearly price in minor units: {row}"
            );
            click(&c, "#signout").await?;
            wait_path(&c, "/login").await?;

            // A user picks it and is sent to Checkout.
            browser_sign_in(&c, &base, "buyer@example.com").await?;
            c.goto(&format!("{base}/billing")).await?;
            wait_text(&c, "#billing-plan-name", "Free", Duration::from_secs(5)).await?;
            wait_text(
                &c,
                r#"tr[data-name="Pro"] .plan-price"#,
                "USD 9.99 / month",
                Duration::from_secs(5),
            )
            .await?;
            click(&c, r#"tr[data-name="Pro"] button.subscribe"#).await?;
            let checkout = wait_path_prefix(&c, "/checkout/").await?;
            ensure!(
                checkout.starts_with(&fake.url),
                "the fake's Checkout: {checkout}"
            );

            // Paying there brings the browser back; the page waits for Stripe's word.
            click(&c, "#pay").await?;
            wait_path(&c, "/billing/success").await?;
            wait_text(
                &c,
                "#billing-success",
                "your plan becomes active as soon as Stripe confirms it",
                Duration::from_secs(5),
            )
            .await?;
            wait_text(&c, "#billing-confirmed", "the plan is active", EVENTS).await?;

            // The billing page: the plan, its caps, the paid invoice.
            c.goto(&format!("{base}/billing")).await?;
            wait_text(&c, "#billing-plan-name", "Pro", Duration::from_secs(5)).await?;
            wait_text(&c, "#billing-status", "active", Duration::from_secs(5)).await?;
            wait_text(&c, "#usage-servers .usage-cap", "3", Duration::from_secs(5)).await?;
            wait_text(
                &c,
                "#usage-memory_mb .usage-cap",
                "8192",
                Duration::from_secs(5),
            )
            .await?;
            let invoice = reload_until(
                &c,
                &format!("{base}/billing"),
                r#"#invoices tr[data-status="paid"]"#,
                "USD 9.99",
                EVENTS,
            )
            .await?;
            ensure!(invoice.contains("paid"), "{invoice}");
            find(&c, r#"#invoices tr[data-status="paid"] a.invoice-link"#).await?;

            // A renewal that fails: the banner on every page, with the grace period.
            let sub = fake
                .subscriptions()
                .first()
                .and_then(|s| s["id"].as_str().map(str::to_owned))
                .context("the fake's subscription")?;
            fake.fail_payment(&sub);
            fake.flush_deliveries().await;
            let banner = reload_until(
                &c,
                &format!("{base}/"),
                ".billing-banner",
                "Payment overdue",
                EVENTS,
            )
            .await?;
            ensure!(banner.contains("servers will be suspended"), "{banner}");
            c.goto(&format!("{base}/instances")).await?;
            wait_text(
                &c,
                ".billing-banner",
                "Payment overdue",
                Duration::from_secs(5),
            )
            .await?;
            c.goto(&format!("{base}/billing")).await?;
            wait_text(
                &c,
                "#billing-past-due",
                "Payment overdue since",
                Duration::from_secs(5),
            )
            .await?;

            // "Manage billing" leads to the fake's portal.
            click(&c, "#billing-portal").await?;
            let portal = wait_path_prefix(&c, "/portal/").await?;
            ensure!(portal.starts_with(&fake.url), "the fake's portal: {portal}");
            find(&c, "#return").await?;

            // The admin cannot delete a plan with a subscriber: archive it instead.
            c.goto(&format!("{base}/")).await?;
            click(&c, "#signout").await?;
            wait_path(&c, "/login").await?;
            browser_sign_in(&c, &base, "admin@example.com").await?;
            c.goto(&format!("{base}/admin/plans")).await?;
            wait_text(
                &c,
                r#"tr[data-name="Pro"] .plan-subscribers"#,
                "1",
                Duration::from_secs(5),
            )
            .await?;
            click(&c, r#"tr[data-name="Pro"] button.delete-plan"#).await?;
            confirm(&c).await?;
            wait_text(
                &c,
                "#form-error",
                "archive it instead",
                Duration::from_secs(20),
            )
            .await?;
            wait_text(
                &c,
                "#form-error",
                "PLAN_HAS_SUBSCRIBERS",
                Duration::from_secs(1),
            )
            .await?;
            Ok(())
        })
        .await;
}
