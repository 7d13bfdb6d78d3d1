//! The integrations page: over plain HTTP (a generic webhook created through the form
//! shows its `whsec_` signing secret once, a Discord integration's Test shows what the
//! receiver answered, rotate, disable, delete, a foreign integration is a 404) and in a
//! real headless Chromium (choose a type, fill its fields, create, press Test).
//!
//! Discord cannot be reached from the test machines: its receiver here is a **local
//! fake**, a small axum server on 127.0.0.1 that records each request and answers 200
//! (loopback is allowed through the test configuration's `[outbound] allow`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Uri;
use fantoccini::Locator;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};
use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

/// A local fake of a Discord channel webhook: records the paths it was asked and
/// answers 200 with a message id, as Discord does for `?wait=true`.
struct FakeDiscord {
    base: String,
    paths: Arc<Mutex<Vec<String>>>,
}

impl FakeDiscord {
    async fn start() -> Self {
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(uri.path().to_owned());
                r#"{"id":"fake-discord-message"}"#
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://127.0.0.1:{port}"),
            paths,
        }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().expect("lock").clone()
    }
}

/// `POST path` with the session's cookies and `fields` (the CSRF token added): the
/// status, the `Location` and the HTML.
async fn post_form(
    app: &TestApp,
    (jar, csrf): (&str, &str),
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let mut form = vec![("csrf_token", csrf)];
    form.extend_from_slice(fields);
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header(COOKIE, jar)
        .form(&form)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, r.text().await.expect("html"))
}

/// The caller's integrations as the API lists them.
async fn listed(app: &TestApp, token: &str) -> Vec<Value> {
    app.get("/v1/integrations", Some(token))
        .await
        .expect(200)
        .body["data"]
        .as_array()
        .expect("data")
        .clone()
}

fn id_of(list: &[Value], name: &str) -> String {
    list.iter()
        .find(|i| i["name"] == name)
        .and_then(|i| i["id"].as_str())
        .unwrap_or_else(|| panic!("{name} in {list:?}"))
        .to_owned()
}

#[tokio::test]
async fn the_integrations_page_shows_a_secret_once_and_a_test_answer() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let discord = FakeDiscord::start().await;
    let (jar, csrf) = sign_in(&app).await;
    let session = (jar.as_str(), csrf.as_str());

    let (status, html) = page(&app, &jar, "/integrations").await;
    assert_eq!(status, 200, "{html}");
    for part in [
        r#"id="integrations-empty""#,
        r#"id="fields-discord""#,
        r#"name="config.discord.webhook_url" type="password""#,
        r#"name="config.webhook.url" type="url""#,
        r#"id="subnav-integrations""#,
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    let (_, alerts) = page(&app, &jar, "/alerts").await;
    assert!(alerts.contains(r#"href="/integrations""#), "{alerts}");

    // A generic webhook: its signing secret is in this answer (not in an address), once.
    // Another type's field filled in as well is ignored.
    let hook_url = format!("{}/hook", discord.base);
    let (status, location, html) = post_form(
        &app,
        session,
        "/integrations",
        &[
            ("organization_id", ""),
            ("name", "Signed hook"),
            ("type", "webhook"),
            ("config.webhook.url", &hook_url),
            ("config.discord.webhook_url", "not a URL, and ignored"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(location.is_empty());
    assert!(html.contains(r#"id="new-secret""#), "{html}");
    assert!(html.contains(r#"value="whsec_"#), "{html}");
    assert!(html.contains("shown once"), "{html}");
    let (status, html) = page(&app, &jar, "/integrations").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Signed hook"), "{html}");
    assert!(
        !html.contains(r#"value="whsec_"#),
        "the secret is shown once: {html}"
    );
    assert!(!html.contains(r#"id="new-secret""#), "{html}");
    let hook = id_of(&listed(&app, &admin.access).await, "Signed hook");
    assert!(html.contains(&format!(r#"id="rotate-{hook}""#)), "{html}");

    // A refused create keeps the name and says why.
    let (status, _, html) = post_form(
        &app,
        session,
        "/integrations",
        &[("name", "No URL"), ("type", "discord")],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(r#"id="form-error""#), "{html}");
    assert!(html.contains(r#"value="No URL""#), "{html}");

    // Discord (the local fake): created with a redirect, then tested.
    let webhook_url = format!("{}/api/webhooks/1/fake-token", discord.base);
    let (status, location, html) = post_form(
        &app,
        session,
        "/integrations",
        &[
            ("name", "Ops channel"),
            ("type", "discord"),
            ("config.discord.webhook_url", &webhook_url),
        ],
    )
    .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(location, "/integrations?done=integration-created");
    let (_, html) = page(&app, &jar, &location).await;
    assert!(html.contains("The integration was created."), "{html}");
    assert!(
        !html.contains("fake-token"),
        "the secret URL is never shown: {html}"
    );
    let ops = id_of(&listed(&app, &admin.access).await, "Ops channel");
    assert!(!html.contains(&format!(r#"id="rotate-{ops}""#)), "{html}");

    let (status, _, html) =
        post_form(&app, session, &format!("/integrations/{ops}/test"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"id="test-result""#), "{html}");
    assert!(html.contains(">delivered<"), "{html}");
    assert!(html.contains("HTTP 200"), "{html}");
    assert!(html.contains("fake-discord-message"), "{html}");
    assert!(
        discord
            .paths()
            .iter()
            .any(|p| p == "/api/webhooks/1/fake-token"),
        "{:?}",
        discord.paths()
    );

    // Rotating the webhook's secret shows the new one once; a Discord one has none.
    let (status, _, html) = post_form(
        &app,
        session,
        &format!("/integrations/{hook}/rotate-secret"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"value="whsec_"#), "{html}");
    let (status, _, html) = post_form(
        &app,
        session,
        &format!("/integrations/{ops}/rotate-secret"),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(r#"id="form-error""#), "{html}");

    // Disable, enable, delete.
    let (status, location, _) =
        post_form(&app, session, &format!("/integrations/{ops}/disable"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/integrations?done=integration-disabled")
    );
    let one = app
        .get(&format!("/v1/integrations/{ops}"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(one.body["enabled"], false);
    let (_, html) = page(&app, &jar, "/integrations").await;
    assert!(html.contains(&format!(r#"id="enable-{ops}""#)), "{html}");
    let (status, location, _) =
        post_form(&app, session, &format!("/integrations/{ops}/enable"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/integrations?done=integration-enabled")
    );
    let (status, location, _) =
        post_form(&app, session, &format!("/integrations/{hook}/delete"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/integrations?done=integration-deleted")
    );
    let left = listed(&app, &admin.access).await;
    assert_eq!(left.len(), 1, "{left:?}");

    // Another organization's integration: 404 on every form route.
    let other = app.register("other@example.com").await;
    let theirs = app
        .post(
            "/v1/integrations",
            Some(&other.access),
            json!({"name": "Theirs", "type": "webhook",
                "config": {"url": format!("{}/theirs", discord.base)}}),
        )
        .await
        .expect(201);
    let theirs = theirs.body["id"].as_str().expect("id").to_owned();
    for action in ["test", "rotate-secret", "enable", "disable", "delete"] {
        let (status, _, html) = post_form(
            &app,
            session,
            &format!("/integrations/{theirs}/{action}"),
            &[],
        )
        .await;
        assert_eq!(status, 404, "{action}: {html}");
    }
    let still = listed(&app, &other.access).await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0]["enabled"], true);

    // Without the CSRF token, nothing is created.
    let r = app
        .client
        .post(format!("{}/integrations", app.base))
        .header(COOKIE, &jar)
        .form(&[("name", "x"), ("type", "webhook")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_in_the_browser_create_and_test() {
    let app = spawn_app(Engine::Sqlite).await;
    app.bootstrap_admin().await;
    let discord = FakeDiscord::start().await;
    let base = app.base.clone();
    let webhook_url = format!("{}/api/webhooks/2/browser-token", discord.base);
    Chrome::start(false)
        .await
        .run(
            "integrations_in_the_browser_create_and_test",
            |c| async move {
                c.goto(&format!("{base}/login")).await?;
                fill(&c, "#email", "admin@example.com").await?;
                fill(&c, "#password", PASSWORD).await?;
                click(&c, "#login-submit").await?;
                wait_path(&c, "/").await?;
                c.goto(&format!("{base}/integrations")).await?;
                // The script shows only the chosen type's fields.
                find(&c, "#f-type")
                    .await?
                    .select_by_value("discord")
                    .await?;
                anyhow::ensure!(
                    !find(&c, "#fields-webhook").await?.is_displayed().await?,
                    "the webhook fields are hidden while Discord is chosen"
                );
                fill(&c, "#f-name", "Browser channel").await?;
                fill(&c, "#f-discord-webhook_url", &webhook_url).await?;
                click(&c, "#integration-create").await?;
                wait_text(&c, "#notice", "created", Duration::from_secs(10)).await?;
                click(
                    &c,
                    "#integrations tr[data-name='Browser channel'] button.test",
                )
                .await?;
                let shown =
                    wait_text(&c, "#test-result", "HTTP 200", Duration::from_secs(15)).await?;
                anyhow::ensure!(shown.contains("delivered"), "{shown}");
                anyhow::ensure!(
                    c.find(Locator::Css("#new-secret")).await.is_err(),
                    "no signing secret for Discord"
                );
                Ok(())
            },
        )
        .await;
    assert!(
        discord
            .paths()
            .iter()
            .any(|p| p == "/api/webhooks/2/browser-token"),
        "{:?}",
        discord.paths()
    );
}
