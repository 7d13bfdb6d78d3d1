//! The per-server access page (issue 20 §1), `/instances/{id}/access`:
//!
//! - over plain HTTP on both engines: the instance page links to it; an owner grants a
//!   registered account access to one server with a key ticked (the account then reads
//!   that server through the API, and only it), changes its keys, sees the API's
//!   refusals beside the add form (`USER_NOT_FOUND` for an unknown email, `ALREADY_MEMBER`
//!   for a full member, the email kept as typed), and removes the access (the account
//!   no longer sees the server);
//! - in a real headless Chromium: the same steps clicked through, the Remove button
//!   asking for confirmation first.

use std::time::Duration;

use anyhow::ensure;
use fantoccini::{Client, Locator};
use reqwest::header::COOKIE;
use serde_json::json;
use shardlyn_tests::{Engine, PASSWORD, TestApp, both_engines, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

const GIB: i64 = 1024 * 1024 * 1024;
const SHORT: Duration = Duration::from_secs(20);

/// An organization of the admin's with an online node and one server on it; the
/// organization and server ids.
async fn server(app: &TestApp, access: &str) -> (String, String) {
    let org = app.create_org(access, "Hosting").await;
    let node = app.register_node(access, Some(&org), "node-a").await;
    app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
    let workload = app
        .post(
            "/v1/workloads/from-template",
            Some(access),
            json!({"template": "minecraft-paper", "organization_id": org}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("workload id")
        .to_owned();
    let id = app
        .post(
            "/v1/instances",
            Some(access),
            json!({"name": "lobby", "workload_id": workload, "node_id": node,
                   "limits": {"memory_mb": 1024, "disk_mb": 1024}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("instance id")
        .to_owned();
    (org, id)
}

/// `POST path` with the form `fields` (and the CSRF token) as the signed-in browser.
async fn post_form(
    app: &TestApp,
    (jar, csrf): (&str, &str),
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
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
    (r.status().as_u16(), r.text().await.expect("html"))
}

fn has(html: &str, parts: &[&str]) {
    for part in parts {
        assert!(html.contains(part), "{part} in {html}");
    }
}

both_engines! {
    async fn an_owner_grants_changes_and_removes_access_to_one_server(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let helper = app.register("helper@example.com").await;
        let member = app.register("member@example.com").await;
        let (org, id) = server(&app, &admin.access).await;
        app.add_member(&org, &member.user_id, "viewer").await;
        let (jar, csrf) = sign_in(&app).await;
        let access = format!("/instances/{id}/access");

        // The instance page links to it; nobody has access yet.
        let (status, html) = page(&app, &jar, &format!("/instances/{id}")).await;
        assert_eq!(status, 200, "{html}");
        has(&html, &[&format!(r#"href="{access}" id="tab-access""#)]);
        let (status, html) = page(&app, &jar, &access).await;
        assert_eq!(status, 200, "{html}");
        has(&html, &[
            r#"id="grants-empty""#,
            r#"id="grant-add-form""#,
            r#"name="perm.instances.console""#,
        ]);
        assert!(!html.contains(r#"name="perm.instances.create""#), "only grantable keys: {html}");
        app.get(&format!("/v1/instances/{id}"), Some(&helper.access)).await.expect(404);

        // Refusals beside the email, the email kept.
        let (status, html) = post_form(&app, (&jar, &csrf), &access,
            &[("email", "nobody@example.com"), ("perm.instances.console", "on")]).await;
        assert_eq!(status, 404, "{html}");
        has(&html, &[r#"id="grant-email-error""#, "USER_NOT_FOUND", r#"value="nobody@example.com""#]);
        let (status, html) = post_form(&app, (&jar, &csrf), &access,
            &[("email", "member@example.com"), ("perm.instances.console", "on")]).await;
        assert_eq!(status, 409, "{html}");
        has(&html, &[r#"id="grant-email-error""#, "ALREADY_MEMBER"]);

        // Granted: listed with the key ticked; the helper reads this server.
        let (status, html) = post_form(&app, (&jar, &csrf), &access,
            &[("email", "helper@example.com"), ("perm.instances.console", "on")]).await;
        assert_eq!(status, 303, "{html}");
        let (status, html) = page(&app, &jar, &format!("{access}?done=access-added")).await;
        assert_eq!(status, 200, "{html}");
        has(&html, &[
            r#"id="notice""#,
            &format!(r#"id="grant-{}""#, helper.user_id),
            r#"data-email="helper@example.com""#,
            r#"name="perm.instances.console" value="on" data-key="instances.console" checked"#,
        ]);
        let seen = app.get(&format!("/v1/instances/{id}"), Some(&helper.access)).await.expect(200);
        assert_eq!(seen.body["id"], id.as_str());
        let listed = app.get(&format!("/v1/instances/{id}/access"), Some(&admin.access)).await.expect(200);
        let keys = &listed.body["data"][0]["permissions"];
        assert!(keys.as_array().is_some_and(|k| k.iter().any(|k| k == "instances.console")), "{keys}");

        // Keys changed: power instead of the console.
        let (status, html) = post_form(&app, (&jar, &csrf), &format!("{access}/{}", helper.user_id),
            &[("perm.instances.power", "on")]).await;
        assert_eq!(status, 303, "{html}");
        let listed = app.get(&format!("/v1/instances/{id}/access"), Some(&admin.access)).await.expect(200);
        let keys = listed.body["data"][0]["permissions"].as_array().cloned().unwrap_or_default();
        assert!(keys.iter().any(|k| k == "instances.power"), "{keys:?}");
        assert!(!keys.iter().any(|k| k == "instances.console"), "{keys:?}");
        let (_, html) = page(&app, &jar, &access).await;
        has(&html, &[r#"data-key="instances.power" checked"#]);
        assert!(!html.contains(r#"data-key="instances.console" checked"#), "{html}");

        // Removed: gone from the list, and the helper no longer sees the server.
        let (status, html) = post_form(&app, (&jar, &csrf), &format!("{access}/{}/remove", helper.user_id), &[]).await;
        assert_eq!(status, 303, "{html}");
        let (_, html) = page(&app, &jar, &access).await;
        has(&html, &[r#"id="grants-empty""#]);
        app.get(&format!("/v1/instances/{id}"), Some(&helper.access)).await.expect(404);
    }
}

async fn browser_sign_in(c: &Client, base: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", "admin@example.com").await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    wait_path(c, "/").await?;
    Ok(())
}

/// Accepts the confirmation a `data-confirm` form asks for.
async fn confirm(c: &Client) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c.accept_alert().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("no confirmation dialog: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Whether the checkbox `css` is ticked.
async fn ticked(c: &Client, css: &str) -> anyhow::Result<bool> {
    Ok(find(c, css).await?.prop("checked").await?.as_deref() == Some("true"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_is_managed_on_the_page_in_a_browser() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let helper = app.register("helper@example.com").await;
    let (_, id) = server(&app, &admin.access).await;
    let base = app.base.clone();
    let helper_id = helper.user_id.clone();
    Chrome::start(false)
        .await
        .run("per_server_access_page", |c| async move {
            browser_sign_in(&c, &base).await?;
            c.goto(&format!("{base}/instances/{id}")).await?;
            click(&c, "#tab-access").await?;
            wait_path(&c, &format!("/instances/{id}/access")).await?;
            find(&c, "#grants-empty").await?;

            // An unknown email: refused beside the field, what was typed kept.
            fill(&c, "#grant-email", "nobody@example.com").await?;
            click(&c, r#"#grant-add-form input[data-key="instances.console"]"#).await?;
            click(&c, "#grant-add").await?;
            wait_text(&c, "#grant-email-error", "USER_NOT_FOUND", SHORT).await?;
            let typed = find(&c, "#grant-email").await?.prop("value").await?;
            ensure!(
                typed.as_deref() == Some("nobody@example.com"),
                "kept: {typed:?}"
            );
            ensure!(
                ticked(&c, r#"#grant-add-form input[data-key="instances.console"]"#).await?,
                "the ticked key stays ticked"
            );

            // Granted to the helper.
            fill(&c, "#grant-email", "helper@example.com").await?;
            click(&c, "#grant-add").await?;
            wait_text(&c, "#notice", "Access granted", SHORT).await?;
            let row = format!("#grant-{helper_id}");
            wait_text(
                &c,
                &format!("{row} .grant-email"),
                "helper@example.com",
                SHORT,
            )
            .await?;
            ensure!(
                ticked(&c, &format!(r#"{row} input[data-key="instances.console"]"#)).await?,
                "the console key is held"
            );

            // Its keys changed: power ticked, console unticked, saved.
            click(&c, &format!(r#"{row} input[data-key="instances.power"]"#)).await?;
            click(&c, &format!(r#"{row} input[data-key="instances.console"]"#)).await?;
            click(&c, &format!("#save-{helper_id}")).await?;
            wait_text(&c, "#notice", "The keys were saved.", SHORT).await?;
            ensure!(
                ticked(&c, &format!(r#"{row} input[data-key="instances.power"]"#)).await?,
                "power saved"
            );
            ensure!(
                !ticked(&c, &format!(r#"{row} input[data-key="instances.console"]"#)).await?,
                "console taken away"
            );

            // Removed, after the confirmation.
            click(&c, &format!("#remove-{helper_id}")).await?;
            confirm(&c).await?;
            wait_text(&c, "#notice", "Access removed", SHORT).await?;
            ensure!(c.find(Locator::Css(&row)).await.is_err(), "the row is gone");
            find(&c, "#grants-empty").await?;
            Ok(())
        })
        .await;
}
