//! The Power and Firewall boxes of a provisioned node's page: over plain HTTP (the
//! server's status, stop through the form, a rule added and removed through the forms,
//! a refusal shown beside the form, a node the panel did not provision shows neither
//! box) and in a real headless Chromium (the status shown, a rule added through the
//! form appears in the table).
//!
//! Hetzner Cloud cannot be reached from the test machines: its API here is
//! `shardlyn_tests::hetzner::FakeHetzner`, a local FAKE speaking Hetzner's documented
//! wire format.

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};
use shardlyn_tests::hetzner::FakeHetzner;
use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app_with};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

const TOKEN: &str = "hcloud-web-power-0123456789abcdef";

/// A panel pointed at the fake, the admin's Hetzner credential, and a provisioned node
/// (its server created at the fake); the node's id and the server's.
async fn provisioned() -> (TestApp, FakeHetzner, String, u64) {
    let fake = FakeHetzner::start(TOKEN).await;
    let url = fake.url.clone();
    let app = spawn_app_with(Engine::Sqlite, move |c| c.cloud.hetzner_api_url = url).await;
    let admin = app.bootstrap_admin().await;
    let orgs = app
        .get("/v1/organizations", Some(&admin.access))
        .await
        .expect(200);
    let org = orgs.body[0]["id"].as_str().expect("org id").to_owned();
    let r = app
        .post(
            "/v1/credentials",
            Some(&admin.access),
            json!({"organization_id": org, "name": "Hetzner", "provider": "hetzner",
                   "config": {"token": TOKEN}}),
        )
        .await
        .expect(201);
    let credential = r.body["id"].as_str().expect("credential").to_owned();
    let node = app
        .register_node(&admin.access, Some(&org), "cloud-web")
        .await;
    let r = reqwest::Client::new()
        .post(format!("{}/servers", fake.url))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "cloud-web", "server_type": "cx22", "image": "ubuntu-24.04"}))
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(r.status().as_u16(), 201);
    let server: Value = r.json().await.expect("json");
    let server_id = server["server"]["id"].as_u64().expect("server id");
    let now = shardlyn_panel::db::now_ms();
    sqlx::query(
        "INSERT INTO provision_requests (id, org_id, name, provider, region, instance_type, image, \
         credential_id, status, server_id, node_id, created_at, updated_at) \
         VALUES ($1, $2, 'cloud-web', 'hetzner', 'fsn1', 'cx22', 'ubuntu-24.04', $3, \
         'provisioned', $4, $5, $6, $6)",
    )
    .bind(shardlyn_panel::db::new_id())
    .bind(&org)
    .bind(&credential)
    .bind(server_id.to_string())
    .bind(&node)
    .bind(now)
    .execute(&app.state.db.pool)
    .await
    .expect("insert provision request");
    (app, fake, node, server_id)
}

/// `POST path` with the session and `fields` (the CSRF token added): status, `Location`
/// and HTML.
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

fn cloud_ports(fake: &FakeHetzner) -> Vec<String> {
    fake.firewalls()
        .first()
        .and_then(|f| f["rules"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["protocol"].as_str().unwrap_or(""),
                r["port"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn the_node_page_powers_and_firewalls_a_provisioned_node() {
    let (app, fake, node, server_id) = provisioned().await;
    let (jar, csrf) = sign_in(&app).await;
    let session = (jar.as_str(), csrf.as_str());
    let path = format!("/nodes/{node}");

    let (status, html) = page(&app, &jar, &path).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(r#"id="power-status" role="status">running<"#),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"id="power-server">{server_id}<"#)),
        "{html}"
    );
    assert!(html.contains(r#"id="firewall-none""#), "{html}");
    assert!(html.contains(r#"id="firewall-form""#), "{html}");
    // The request that made the node (its runs, resize and destroy) is a click away.
    assert!(
        html.contains(r#"<a href="/provision/"#) && html.contains(r#"id="provision-request-link""#),
        "{html}"
    );

    // Stop through the form: the fake's server is off, the page says so.
    let (status, location, html) =
        post_form(&app, session, &format!("/nodes/{node}/power/stop"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("/nodes/{node}?done=power-stop").as_str()),
        "{html}"
    );
    let (_, html) = page(&app, &jar, &location).await;
    assert!(html.contains("The server is shutting down."), "{html}");
    assert!(
        html.contains(r#"id="power-status" role="status">off<"#),
        "{html}"
    );

    // A rule through the form: at the fake and in the table.
    let (status, location, html) = post_form(
        &app,
        session,
        &format!("/nodes/{node}/firewall"),
        &[
            ("protocol", "udp"),
            ("port_start", "27015"),
            ("port_end", "27020"),
            ("source", "203.0.113.0/24, 198.51.100.0/24"),
            ("description", "Query ports"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("/nodes/{node}?done=firewall-added").as_str()),
        "{html}"
    );
    assert_eq!(cloud_ports(&fake), ["udp/27015-27020"]);
    let (_, html) = page(&app, &jar, &location).await;
    assert!(html.contains(r#"id="firewall-rules""#), "{html}");
    assert!(
        html.contains("27015–27020") && html.contains("Query ports"),
        "{html}"
    );
    assert!(html.contains("<code>198.51.100.0&#x2F;24</code>"), "{html}");

    // A refusal is shown on the page, naming the field; nothing changes.
    let (status, _, html) = post_form(
        &app,
        session,
        &format!("/nodes/{node}/firewall"),
        &[
            ("protocol", "tcp"),
            ("port_start", "80"),
            ("source", "10.0.0.1/8"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains(r#"id="form-error""#) && html.contains("source[0]"),
        "{html}"
    );
    assert_eq!(cloud_ports(&fake).len(), 1);

    // Remove through the form.
    let rule = html
        .split(r#"data-rule=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a rule row")
        .to_owned();
    let (status, location, _) = post_form(
        &app,
        session,
        &format!("/nodes/{node}/firewall/remove"),
        &[("id", &rule)],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("/nodes/{node}?done=firewall-removed").as_str())
    );
    assert!(cloud_ports(&fake).is_empty());

    // A node the panel did not provision has neither box.
    let admin = app.login("admin@example.com", PASSWORD).await;
    let plain = app.register_node(&admin.access, None, "bare").await;
    let (status, html) = page(&app, &jar, &format!("/nodes/{plain}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains(r#"id="power""#) && !html.contains(r#"id="firewall""#),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_firewall_form_in_the_browser_adds_a_rule() {
    let (app, fake, node, _) = provisioned().await;
    let base = app.base.clone();
    Chrome::start(false)
        .await
        .run(
            "the_firewall_form_in_the_browser_adds_a_rule",
            |c| async move {
                c.goto(&format!("{base}/login")).await?;
                fill(&c, "#email", "admin@example.com").await?;
                fill(&c, "#password", PASSWORD).await?;
                click(&c, "#login-submit").await?;
                wait_path(&c, "/").await?;
                c.goto(&format!("{base}/nodes/{node}")).await?;
                let status = find(&c, "#power-status").await?.text().await?;
                anyhow::ensure!(status == "running", "power status {status}");
                find(&c, "#rule-protocol")
                    .await?
                    .select_by_value("tcp")
                    .await?;
                fill(&c, "#rule-start", "25565").await?;
                fill(&c, "#rule-description", "Minecraft").await?;
                click(&c, "#firewall-add").await?;
                wait_text(
                    &c,
                    "#notice",
                    "open on the node's cloud firewall",
                    Duration::from_secs(10),
                )
                .await?;
                let table =
                    wait_text(&c, "#firewall-rules", "Minecraft", Duration::from_secs(10)).await?;
                anyhow::ensure!(
                    table.contains("25565") && table.contains("0.0.0.0/0"),
                    "{table}"
                );
                Ok(())
            },
        )
        .await;
    assert_eq!(cloud_ports(&fake), ["tcp/25565"]);
}
