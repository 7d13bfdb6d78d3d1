//! The cloud credentials page: over plain HTTP (a Hetzner credential created through the
//! form, its token never shown again but its hint, a refusal shown beside the field it
//! names, Verify showing the provider's answer, Make default, Delete, a foreign
//! credential is a 404, no CSRF token is a 403) and in a real headless Chromium (choose
//! Hetzner, fill its token, add, press Verify).
//!
//! Hetzner Cloud cannot be reached from the test machines: its API here is a **local
//! fake**, a small axum server on 127.0.0.1 answering `GET /servers` as Hetzner does
//! (200 for the right bearer token, 401 with `{"error": {"message": ...}}` otherwise).

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};
use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app_with};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

const TOKEN: &str = "hcloud-web-token-0123456789abcdef";
const WRONG: &str = "hcloud-wrong-token-000000009876";

/// Hetzner Cloud API v1 (a local fake): `GET /servers` with the bearer token.
async fn hetzner(headers: HeaderMap) -> impl IntoResponse {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bearer == TOKEN {
        (
            StatusCode::OK,
            Json(
                json!({"servers": [], "meta": {"pagination": {"page": 1, "per_page": 1,
                "previous_page": null, "next_page": null, "last_page": 1, "total_entries": 0}}}),
            ),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "unauthorized",
                "message": "unable to authenticate", "details": {}}})),
        )
    }
}

/// The local fake on a loopback port; its base URL.
async fn fake_hetzner() -> String {
    let app = axum::Router::new().route("/hetzner/servers", get(hetzner));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// The panel with Hetzner's API base at the local fake.
async fn app_with_fake() -> TestApp {
    let fake = fake_hetzner().await;
    spawn_app_with(Engine::Sqlite, |c| {
        c.cloud.hetzner_api_url = format!("{fake}/hetzner");
    })
    .await
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
    let html = r.text().await.expect("html");
    assert!(!html.contains(TOKEN), "the token is never shown: {html}");
    (status, location, html)
}

/// The caller's credentials as the API lists them.
async fn listed(app: &TestApp, token: &str) -> Vec<Value> {
    app.get("/v1/credentials", Some(token))
        .await
        .expect(200)
        .body["data"]
        .as_array()
        .expect("data")
        .clone()
}

fn by_name<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list:?}"))
}

fn id_of(list: &[Value], name: &str) -> String {
    by_name(list, name)["id"].as_str().expect("id").to_owned()
}

/// `GET path`, checked to answer 200 without the token in it.
async fn shown(app: &TestApp, jar: &str, path: &str) -> String {
    let (status, html) = page(app, jar, path).await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains(TOKEN), "the token is never shown: {html}");
    html
}

#[tokio::test]
async fn the_credentials_page_adds_verifies_defaults_and_deletes() {
    let app = app_with_fake().await;
    let admin = app.bootstrap_admin().await;
    let (jar, csrf) = sign_in(&app).await;
    let session = (jar.as_str(), csrf.as_str());

    let html = shown(&app, &jar, "/credentials").await;
    for part in [
        r#"id="credentials-empty""#,
        r#"id="fields-hetzner""#,
        r#"name="config.hetzner.token" type="password""#,
        r#"name="config.aws.access_key_id" type="text""#,
        r#"<textarea id="f-gcp-service_account_json""#,
        r#"src="/static/choice.js"#,
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    // The organization page links here.
    let orgs = app
        .get("/v1/organizations", Some(&admin.access))
        .await
        .expect(200);
    let org = orgs.body[0]["id"].as_str().expect("org id").to_owned();
    let org_page = shown(&app, &jar, &format!("/orgs/{org}")).await;
    assert!(
        org_page.contains(&format!(r#"href="/credentials?organization_id={org}""#)),
        "{org_page}"
    );

    // A missing token: the API's message beside that field, the name kept.
    let (status, _, html) = post_form(
        &app,
        session,
        "/credentials",
        &[("name", "No token"), ("provider", "hetzner")],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(r#"id="f-hetzner-token-error""#), "{html}");
    assert!(html.contains("<code>config.token</code>"), "{html}");
    assert!(html.contains(r#"value="No token""#), "{html}");
    // A missing AWS secret: the public access key id is kept, the secret never.
    let (status, _, html) = post_form(
        &app,
        session,
        "/credentials",
        &[
            ("name", "Half AWS"),
            ("provider", "aws"),
            ("config.aws.access_key_id", "AKIAWEBTEST000001"),
            ("config.aws.region", "eu-west-1"),
            ("config.hetzner.token", TOKEN),
        ],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains(r#"id="f-aws-secret_access_key-error""#),
        "{html}"
    );
    assert!(html.contains(r#"value="AKIAWEBTEST000001""#), "{html}");
    assert!(html.contains(r#"value="eu-west-1""#), "{html}");
    assert!(listed(&app, &admin.access).await.is_empty());

    // Two Hetzner credentials: the first is the default.
    let (status, location, html) = post_form(
        &app,
        session,
        "/credentials",
        &[
            ("organization_id", ""),
            ("name", "Main project"),
            ("provider", "hetzner"),
            ("config.hetzner.token", TOKEN),
            ("config.aws.access_key_id", "ignored"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(location, "/credentials?done=credential-created");
    let html = shown(&app, &jar, &location).await;
    assert!(html.contains("The credential was added"), "{html}");
    assert!(html.contains("Main project"), "{html}");
    assert!(html.contains("••••cdef"), "the hint is shown: {html}");
    assert!(html.contains("Hetzner Cloud"), "{html}");
    let (status, location, _) = post_form(
        &app,
        session,
        "/credentials",
        &[
            ("name", "Wrong project"),
            ("provider", "hetzner"),
            ("config.hetzner.token", WRONG),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/credentials?done=credential-created")
    );
    let list = listed(&app, &admin.access).await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(by_name(&list, "Main project")["is_default"], true);
    assert_eq!(by_name(&list, "Wrong project")["is_default"], false);
    let main = id_of(&list, "Main project");
    let wrong = id_of(&list, "Wrong project");
    let html = shown(&app, &jar, "/credentials").await;
    assert!(!html.contains(&format!(r#"id="default-{main}""#)), "{html}");
    assert!(html.contains(&format!(r#"id="default-{wrong}""#)), "{html}");

    // Verify: the local fake accepts the right token...
    let (status, _, html) =
        post_form(&app, session, &format!("/credentials/{main}/verify"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"id="verify-result""#), "{html}");
    assert!(html.contains(r#"id="verify-outcome">ok<"#), "{html}");
    assert!(html.contains("HTTP 200"), "{html}");
    // ...and refuses the wrong one: its message is on the page.
    let (status, _, html) =
        post_form(&app, session, &format!("/credentials/{wrong}/verify"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"id="verify-outcome">failed<"#), "{html}");
    assert!(html.contains("HTTP 401"), "{html}");
    assert!(html.contains("unable to authenticate"), "{html}");
    // The table keeps each one's last verify.
    let html = shown(&app, &jar, "/credentials").await;
    assert!(
        html.contains(r#"class="badge result-success verified">ok<"#),
        "{html}"
    );
    assert!(
        html.contains(r#"class="badge result-failure verified">failed<"#),
        "{html}"
    );

    // Make default moves the badge.
    let (status, location, _) =
        post_form(&app, session, &format!("/credentials/{wrong}/default"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/credentials?done=credential-default")
    );
    let html = shown(&app, &jar, &location).await;
    assert!(html.contains("now the default"), "{html}");
    assert!(html.contains(&format!(r#"id="default-{main}""#)), "{html}");
    assert!(
        !html.contains(&format!(r#"id="default-{wrong}""#)),
        "{html}"
    );
    let list = listed(&app, &admin.access).await;
    assert_eq!(by_name(&list, "Main project")["is_default"], false);
    assert_eq!(by_name(&list, "Wrong project")["is_default"], true);

    // Delete (behind a confirmation in the browser).
    assert!(
        html.contains("data-confirm=\"Delete the credential"),
        "{html}"
    );
    let (status, location, _) =
        post_form(&app, session, &format!("/credentials/{wrong}/delete"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/credentials?done=credential-deleted")
    );
    let html = shown(&app, &jar, &location).await;
    assert!(html.contains("The credential was deleted."), "{html}");
    assert!(!html.contains("Wrong project"), "{html}");
    assert_eq!(listed(&app, &admin.access).await.len(), 1);

    // "Make it the default" on the form takes the default from the first one.
    let (status, location, _) = post_form(
        &app,
        session,
        "/credentials",
        &[
            ("name", "Second project"),
            ("provider", "hetzner"),
            ("config.hetzner.token", WRONG),
            ("is_default", "on"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/credentials?done=credential-created")
    );
    let list = listed(&app, &admin.access).await;
    assert_eq!(by_name(&list, "Second project")["is_default"], true);
    assert_eq!(by_name(&list, "Main project")["is_default"], false);

    // Another organization's credential: 404 on every form route, and left alone.
    let other = app.register("other@example.com").await;
    let theirs = app
        .post(
            "/v1/credentials",
            Some(&other.access),
            json!({"name": "Theirs", "provider": "hetzner", "config": {"token": WRONG}}),
        )
        .await
        .expect(201);
    let theirs = theirs.body["id"].as_str().expect("id").to_owned();
    for action in ["verify", "default", "delete"] {
        let (status, _, html) = post_form(
            &app,
            session,
            &format!("/credentials/{theirs}/{action}"),
            &[],
        )
        .await;
        assert_eq!(status, 404, "{action}: {html}");
    }
    let still = listed(&app, &other.access).await;
    assert_eq!(still.len(), 1);
    assert!(still[0]["verified_at"].is_null(), "{still:?}");

    // Without the CSRF token, nothing is created.
    let r = app
        .client
        .post(format!("{}/credentials", app.base))
        .header(COOKIE, &jar)
        .form(&[
            ("name", "x"),
            ("provider", "hetzner"),
            ("config.hetzner.token", TOKEN),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);
    assert_eq!(listed(&app, &admin.access).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_browser_add_and_verify() {
    let app = app_with_fake().await;
    app.bootstrap_admin().await;
    let base = app.base.clone();
    Chrome::start(false)
        .await
        .run(
            "credentials_in_the_browser_add_and_verify",
            |c| async move {
                c.goto(&format!("{base}/login")).await?;
                fill(&c, "#email", "admin@example.com").await?;
                fill(&c, "#password", PASSWORD).await?;
                click(&c, "#login-submit").await?;
                wait_path(&c, "/").await?;
                c.goto(&format!("{base}/credentials")).await?;
                // The script shows only the chosen provider's fields.
                find(&c, "#f-provider")
                    .await?
                    .select_by_value("aws")
                    .await?;
                anyhow::ensure!(
                    !find(&c, "#fields-hetzner").await?.is_displayed().await?,
                    "the Hetzner fields are hidden while AWS is chosen"
                );
                find(&c, "#f-provider")
                    .await?
                    .select_by_value("hetzner")
                    .await?;
                anyhow::ensure!(
                    !find(&c, "#fields-aws").await?.is_displayed().await?,
                    "the AWS fields are hidden while Hetzner is chosen"
                );
                fill(&c, "#f-name", "Browser project").await?;
                fill(&c, "#f-hetzner-token", TOKEN).await?;
                click(&c, "#credential-create").await?;
                let added = wait_text(&c, "#notice", "added", Duration::from_secs(10)).await?;
                anyhow::ensure!(!added.contains(TOKEN), "{added}");
                click(
                    &c,
                    "#credentials tr[data-name='Browser project'] button.verify",
                )
                .await?;
                let shown =
                    wait_text(&c, "#verify-result", "HTTP 200", Duration::from_secs(15)).await?;
                anyhow::ensure!(shown.contains("ok"), "{shown}");
                let source = c.source().await?;
                anyhow::ensure!(!source.contains(TOKEN), "the token is never shown");
                Ok(())
            },
        )
        .await;
}
