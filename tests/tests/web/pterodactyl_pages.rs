//! The "Import from Pterodactyl" pages (issue 20 §2), against our fake of the
//! Application API (`shardlyn_tests::fake_pterodactyl::FakePterodactyl`, checked against
//! PyPI's `py-dactyl` by its own test), in API mode:
//!
//! - over plain HTTP on both engines: only platform admins get the page (a user gets the
//!   API's 403); the admin menu links it; a wrong key is refused on the page with
//!   `SOURCE_CREDENTIALS`; Check connection shows the source's counts, List servers its
//!   servers; a bad database port is refused beside its field; a dry run of one ticked
//!   server starts an import whose page reports that server alone; and no secret typed
//!   (the key, passwords, `APP_KEY`) ever comes back in a page;
//! - in a real headless Chromium: the admin checks the connection, lists the servers,
//!   runs a dry run (its page refreshes itself until it is done and says nothing was
//!   created), then the import, whose report links the new servers; the key field is
//!   empty again after every step.

use std::time::Duration;

use anyhow::{Context, ensure};
use fantoccini::{Client, Locator};
use reqwest::header::COOKIE;
use serde_json::json;
use shardlyn_tests::fake_pterodactyl::dataset::uuid;
use shardlyn_tests::fake_pterodactyl::{API_KEY, Dataset, FakePterodactyl};
use shardlyn_tests::{Engine, PASSWORD, TestApp, both_engines, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::security::{set_cookie, value as cookie_value};
use crate::typed_pages::{page, sign_in};

const GIB: i64 = 1024 * 1024 * 1024;
/// How long an import of the sample may take (a bound: every check polls).
const IMPORT: Duration = Duration::from_secs(90);
const SHORT: Duration = Duration::from_secs(20);
/// Secrets typed in the tests; none may come back in a page.
const WRONG_KEY: &str = "ptla_wrongKeyThatMustNeverBeShown0123456789abcdef";
const DB_PASSWORD: &str = "db-password-never-shown";
const APP_KEY: &str = "base64:bmV2ZXItc2hvd24tYXBwLWtleS0wMTIzNDU2Nzg5YWI=";

/// The value of cookie `name` set by `r`.
fn cookie(r: &reqwest::Response, name: &str) -> String {
    cookie_value(&set_cookie(r, name).unwrap_or_else(|| panic!("no {name} cookie")))
}

fn has(html: &str, parts: &[&str]) {
    for part in parts {
        assert!(html.contains(part), "{part} in {html}");
    }
}

fn no_secrets(html: &str) {
    for secret in [API_KEY, WRONG_KEY, DB_PASSWORD, APP_KEY] {
        assert!(!html.contains(secret), "a secret came back in the page");
    }
}

/// A platform node with room for the sample's servers.
async fn platform_node(app: &TestApp, access: &str) {
    let node = app.register_node(access, None, "platform-1").await;
    app.mark_node_online(&node, 64 * GIB, 500 * GIB).await;
    app.put(
        &format!("/v1/admin/nodes/{node}/platform"),
        Some(access),
        json!({"platform": true, "public_name": "Frankfurt 1", "location": "Frankfurt"}),
    )
    .await
    .expect(200);
}

/// `POST /admin/pterodactyl` with `fields` as the signed-in browser: status, the
/// `Location` header and the HTML.
async fn submit(
    app: &TestApp,
    (jar, csrf): (&str, &str),
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let mut form = vec![("csrf_token", csrf)];
    form.extend_from_slice(fields);
    let r = app
        .client
        .post(format!("{}/admin/pterodactyl", app.base))
        .header(COOKIE, jar)
        .form(&form)
        .send()
        .await
        .expect("POST /admin/pterodactyl");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, r.text().await.expect("html"))
}

/// Opens `path` until the import it shows is no longer pending or running; its HTML.
async fn finished(app: &TestApp, jar: &str, path: &str) -> String {
    let deadline = tokio::time::Instant::now() + IMPORT;
    loop {
        let (status, html) = page(app, jar, path).await;
        assert_eq!(status, 200, "{html}");
        let running = ["pending", "running"]
            .iter()
            .any(|s| html.contains(&format!(r#"id="ptero-import" data-status="{s}""#)));
        if !running {
            return html;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import never finished: {html}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

both_engines! {
    async fn the_import_page_checks_lists_and_dry_runs_without_echoing_secrets(engine) {
        let fake = FakePterodactyl::start(Dataset::sample()).await;
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        platform_node(&app, &admin.access).await;
        let (jar, csrf) = sign_in(&app).await;
        let me = (jar.as_str(), csrf.as_str());

        // The admin menu links it; the page shows the form and no imports yet.
        let (_, html) = page(&app, &jar, "/admin/users").await;
        has(&html, &[r#"href="/admin/pterodactyl" id="admin-nav-pterodactyl""#]);
        let (status, html) = page(&app, &jar, "/admin/pterodactyl").await;
        assert_eq!(status, 200, "{html}");
        has(&html, &[r#"id="ptero-form""#, r#"id="ptero-imports-empty""#, r#"data-choice="database""#]);

        // A wrong key: the source's refusal on the page, the key not shown again.
        let (status, _, html) = submit(&app, me, &[("action", "check"), ("mode", "api"),
            ("url", &fake.url), ("api_key", WRONG_KEY)]).await;
        assert_eq!(status, 422, "{html}");
        // The address (not a secret) stays in the form, escaped as every value is.
        has(&html, &["SOURCE_CREDENTIALS", r#"id="form-error""#, &fake.url.replace('/', "&#x2F;")]);
        no_secrets(&html);

        // Check connection: the counts.
        let (status, _, html) = submit(&app, me, &[("action", "check"), ("mode", "api"),
            ("url", &fake.url), ("api_key", API_KEY)]).await;
        assert_eq!(status, 200, "{html}");
        has(&html, &[
            r#"id="ptero-check-result""#,
            r#"<dd id="count-servers">4</dd>"#,
            r#"<dd id="count-users">3</dd>"#,
            r#"<dd id="count-eggs">3</dd>"#,
        ]);
        no_secrets(&html);

        // List servers: every server of the sample, by UUID.
        let (status, _, html) = submit(&app, me, &[("action", "servers"), ("mode", "api"),
            ("url", &fake.url), ("api_key", API_KEY)]).await;
        assert_eq!(status, 200, "{html}");
        for id in 1..=4 {
            has(&html, &[&format!(r#"data-uuid="{}""#, uuid(0xc, id))]);
        }
        has(&html, &[r#"name="servers_listed""#, r#"data-name="Lobby""#]);
        no_secrets(&html);

        // Database mode: a port that is not one is refused beside its field, nothing
        // sent; the password and APP_KEY are not shown again.
        let (status, _, html) = submit(&app, me, &[("action", "check"), ("mode", "database"),
            ("host", "127.0.0.1"), ("port", "99999"), ("database", "panel"),
            ("username", "reader"), ("password", DB_PASSWORD), ("app_key", APP_KEY)]).await;
        assert_eq!(status, 400, "{html}");
        has(&html, &[r#"id="ptero-port-error""#, r#"value="reader""#]);
        no_secrets(&html);

        // A list shown with nothing ticked is refused on the page.
        let (status, _, html) = submit(&app, me, &[("action", "dry_run"), ("mode", "api"),
            ("url", &fake.url), ("api_key", API_KEY), ("servers_listed", "1")]).await;
        assert_eq!(status, 400, "{html}");
        has(&html, &[r#"id="ptero-servers-error""#]);
        no_secrets(&html);

        // A dry run of one server: its page reports that server alone, nothing made.
        let lobby = uuid(0xc, 1);
        let tick = format!("server.{lobby}");
        let (status, location, html) = submit(&app, me, &[("action", "dry_run"), ("mode", "api"),
            ("url", &fake.url), ("api_key", API_KEY), ("servers_listed", "1"),
            (&tick, "on")]).await;
        assert_eq!(status, 303, "{html}");
        assert!(location.starts_with("/admin/pterodactyl/imports/"), "{location}");
        let html = finished(&app, &jar, &location).await;
        has(&html, &[
            r#"data-status="succeeded""#,
            r#"data-dry-run="true""#,
            r#"id="ptero-dry-run-done""#,
            &format!(r#"data-kind="server" data-uuid="{lobby}""#),
        ]);
        let servers = html.matches(r#"class="ptero-item" data-kind="server""#).count();
        assert_eq!(servers, 1, "the ticked server alone: {html}");
        no_secrets(&html);
        // Imported servers land in their owners' organizations: count them all.
        let made: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instances")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(made, 0, "a dry run makes nothing");

        // The imports list links it.
        let (_, html) = page(&app, &jar, "/admin/pterodactyl").await;
        has(&html, &[&format!(r#"href="{location}""#)]);

    }
}

#[tokio::test]
async fn a_user_who_is_not_a_platform_admin_is_refused() {
    let app = spawn_app(Engine::Sqlite).await;
    app.bootstrap_admin().await;
    app.register("user@example.com").await;
    // Sign in as the user through the form.
    let r = app
        .client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .expect("GET /login");
    let csrf = cookie(&r, "shardlyn_csrf");
    let r = app
        .client
        .post(format!("{}/login", app.base))
        .header(COOKIE, format!("shardlyn_csrf={csrf}"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "user@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(r.status(), 303);
    let csrf = cookie(&r, "shardlyn_csrf");
    let session = cookie(&r, "shardlyn_session");
    let jar = format!("shardlyn_csrf={csrf}; shardlyn_session={session}");
    for path in [
        "/admin/pterodactyl",
        "/admin/pterodactyl/imports/0193e0c4-6f1e-7b3a",
    ] {
        let (status, html) = page(&app, &jar, path).await;
        assert_eq!(status, 403, "{path}: {html}");
        assert!(!html.contains(r#"id="ptero-form""#), "{html}");
    }
    let r = app
        .client
        .post(format!("{}/admin/pterodactyl", app.base))
        .header(COOKIE, &jar)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("action", "check"),
            ("mode", "api"),
            ("url", "http://127.0.0.1:9"),
            ("api_key", WRONG_KEY),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);
    no_secrets(&r.text().await.expect("html"));
}

async fn browser_sign_in(c: &Client, base: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", "admin@example.com").await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    wait_path(c, "/").await?;
    Ok(())
}

/// The value of the input `css`.
async fn value(c: &Client, css: &str) -> anyhow::Result<String> {
    Ok(find(c, css).await?.prop("value").await?.unwrap_or_default())
}

/// Types the key (never filled back in) and presses `button`.
async fn with_key(c: &Client, button: &str) -> anyhow::Result<()> {
    ensure!(
        value(c, "#ptero-api-key").await?.is_empty(),
        "the key field starts empty"
    );
    fill(c, "#ptero-api-key", API_KEY).await?;
    click(c, button).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_imports_from_pterodactyl_in_a_browser() {
    let fake = FakePterodactyl::start(Dataset::sample()).await;
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    platform_node(&app, &admin.access).await;
    let base = app.base.clone();
    let url = fake.url.clone();
    let app_ref = &app;
    Chrome::start(false)
        .await
        .run("pterodactyl_import_pages", |c| async move {
            browser_sign_in(&c, &base).await?;
            c.goto(&format!("{base}/admin/users")).await?;
            click(&c, "#admin-nav-pterodactyl").await?;
            wait_path(&c, "/admin/pterodactyl").await?;

            // The database fields are hidden while API mode is chosen.
            ensure!(
                !find(&c, "#ptero-host").await?.is_displayed().await?,
                "database fields hidden in API mode"
            );
            fill(&c, "#ptero-url", &url).await?;
            with_key(&c, "#ptero-check").await?;
            wait_text(&c, "#ptero-check-ok", "Connected", SHORT).await?;
            wait_text(&c, "#count-servers", "4", SHORT).await?;
            ensure!(value(&c, "#ptero-url").await? == url, "the URL is kept");

            with_key(&c, "#ptero-list").await?;
            let rows = wait_rows(&c, "#ptero-server-table tr.ptero-server", 4).await?;
            ensure!(rows == 4, "four servers listed");

            // A dry run of what is ticked: its page refreshes itself until done.
            with_key(&c, "#ptero-dry-run").await?;
            let dry = wait_path_prefix(&c, "/admin/pterodactyl/imports/").await?;
            wait_text(&c, "#ptero-import-status", "succeeded", IMPORT).await?;
            find(&c, "#ptero-dry-run-done").await?;
            find(&c, r#"tr.ptero-item[data-kind="server"]"#).await?;
            // Imported servers land in their owners' organizations: count them all.
            let made: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instances")
                .fetch_one(&app_ref.state.db.pool)
                .await?;
            ensure!(made == 0, "the dry run made nothing");

            // The import for real: its report links the servers it made.
            click(&c, "#ptero-back").await?;
            wait_path(&c, "/admin/pterodactyl").await?;
            find(&c, &format!(r#"a[href="{dry}"]"#)).await?;
            fill(&c, "#ptero-url", &url).await?;
            with_key(&c, "#ptero-import").await?;
            wait_path_prefix(&c, "/admin/pterodactyl/imports/").await?;
            wait_text(&c, "#ptero-import-status", "succeeded", IMPORT).await?;
            let link = find(
                &c,
                r#"tr.ptero-item[data-kind="server"][data-status="imported"] a"#,
            )
            .await?
            .attr("href")
            .await?
            .context("a link to the new server")?;
            // The server belongs to its owner's organization (the admin is no member
            // there): it exists, on the platform node.
            let id = link.trim_start_matches("/instances/");
            let found: Option<String> =
                sqlx::query_scalar("SELECT node_id FROM instances WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&app_ref.state.db.pool)
                    .await?;
            ensure!(found.is_some(), "the linked server {id} exists");
            ensure!(
                c.find(Locator::Css("#ptero-import-running")).await.is_err(),
                "no longer says it runs"
            );
            Ok(())
        })
        .await;
}

/// Waits until `css` matches `want` elements; how many it matched last.
async fn wait_rows(c: &Client, css: &str, want: usize) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        let n = c.find_all(Locator::Css(css)).await?.len();
        if n == want || tokio::time::Instant::now() >= deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Waits until the page's path starts with `prefix`; the path.
async fn wait_path_prefix(c: &Client, prefix: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        let url = c.current_url().await?;
        if url.path().starts_with(prefix) {
            return Ok(url.path().to_owned());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "never reached {prefix}…; at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
