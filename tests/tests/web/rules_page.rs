//! The alert rule pages: over plain HTTP a rule is created through the form and listed,
//! the API's refusal is shown next to the field it names with the typed values kept, the
//! rule is edited, its page shows the node's recent values against the threshold (from
//! history rows written as heartbeats would), it is deleted, and another organization's
//! rule is a 404; in Chromium a rule is created, opened, and its threshold changed.

use std::time::Duration;

use fantoccini::Client;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::json;
use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

const SHORT: Duration = Duration::from_secs(10);

/// The rule form's fields for a CPU rule on `node` with `name` and `threshold`.
fn fields<'a>(
    csrf: &'a str,
    node: &'a str,
    name: &'a str,
    threshold: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("organization_id", ""),
        ("name", name),
        ("target_type", "node"),
        ("target_id", node),
        ("metric", "cpu_usage"),
        ("operator", "gt"),
        ("threshold", threshold),
        ("duration_seconds", "30"),
        ("resolve_after_seconds", "60"),
        ("severity", "critical"),
        ("notify_in_app", "on"),
        ("email_recipients", "ops@example.com"),
        ("cooldown_seconds", "0"),
        ("enabled", "on"),
    ]
}

/// POSTs `form` to `path` with the cookie jar: the status, the `Location` and the HTML.
async fn post(
    app: &TestApp,
    jar: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header(COOKIE, jar)
        .form(form)
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

/// A heartbeat's row of node metrics `ago_ms` before now.
async fn sample(app: &TestApp, node: &str, ago_ms: i64, cpu: f64) {
    sqlx::query(
        "INSERT INTO node_metrics (node_id, at, cpu_percent, memory_used_bytes, memory_total_bytes, \
         disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes) \
         VALUES ($1, $2, $3, 10, 100, 10, 100, 0, 0)",
    )
    .bind(node)
    .bind(shardlyn_panel::db::now_ms() - ago_ms)
    .bind(cpu)
    .execute(&app.state.db.pool)
    .await
    .expect("insert node metrics");
}

#[tokio::test]
async fn a_rule_is_created_refused_edited_shown_and_deleted_on_its_pages() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let node = app.register_node(&admin.access, None, "watched").await;
    let (jar, csrf) = sign_in(&app).await;

    let (status, html) = page(&app, &jar, "/alerts/rules").await;
    assert_eq!(status, 200, "{html}");
    for part in [
        r#"id="rules-empty""#.to_owned(),
        r#"id="rule-form""#.to_owned(),
        format!(r#"<option value="{node}">watched</option>"#),
        r#"<option value="instance_down""#.to_owned(),
        r#"aria-label="Alerts""#.to_owned(),
    ] {
        assert!(html.contains(&part), "{part} in {html}");
    }
    // The alerts page links here.
    let (_, alerts) = page(&app, &jar, "/alerts").await;
    assert!(alerts.contains(r#"href="/alerts/rules""#), "{alerts}");

    // The API's refusal, next to the field it names, the typed values kept.
    let (status, _, html) = post(
        &app,
        &jar,
        "/alerts/rules",
        &fields(&csrf, &node, "Hot CPU", "500"),
    )
    .await;
    assert_eq!(status, 400, "{html}");
    for part in [
        r#"id="rule-threshold-error""#,
        "threshold is a percentage",
        r#"name="threshold" type="number" step="any" value="500" aria-invalid="true""#,
        r#"value="Hot CPU""#,
        r#"value="ops@example.com""#,
        r#"<option value="critical" selected>"#,
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    let (status, _, html) = post(
        &app,
        &jar,
        "/alerts/rules",
        &fields(&csrf, &node, " ", "80"),
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(r#"id="rule-name-error""#), "{html}");
    assert!(!html.contains(r#"id="rule-threshold-error""#), "{html}");
    let rules = app.get("/v1/alerts/rules", t).await.expect(200);
    assert_eq!(rules.body["pagination"]["total"], 0, "{}", rules.body);

    // Created and listed.
    let (status, location, html) = post(
        &app,
        &jar,
        "/alerts/rules",
        &fields(&csrf, &node, "Hot CPU", "80"),
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/alerts/rules?done=rule-created"),
        "{html}"
    );
    let rules = app.get("/v1/alerts/rules", t).await.expect(200);
    let rule = &rules.body["data"][0];
    let id = rule["id"].as_str().expect("a rule").to_owned();
    assert_eq!(rule["email_recipients"], json!(["ops@example.com"]));
    assert_eq!(rule["notify_email"], false);
    let (status, html) = page(&app, &jar, &location).await;
    assert_eq!(status, 200, "{html}");
    for part in [
        r#"id="notice""#.to_owned(),
        format!(r#"id="rule-{id}""#),
        format!(r#"href="/alerts/rules/{id}">Hot CPU</a>"#),
        "cpu_usage &gt; 80% for 30 s".to_owned(),
        "node watched".to_owned(),
        "critical".to_owned(),
        "in-app".to_owned(),
    ] {
        assert!(html.contains(&part), "{part} in {html}");
    }

    // The rule's page: the node's last hour against the threshold.
    for (ago, cpu) in [(30_000, 50.0), (20_000, 95.0), (10_000, 85.0)] {
        sample(&app, &node, ago, cpu).await;
    }
    let path = format!("/alerts/rules/{id}");
    let (status, html) = page(&app, &jar, &path).await;
    assert_eq!(status, 200, "{html}");
    for part in [
        r#"id="rule-chart""#,
        r#"id="rule-threshold-line""#,
        "&gt; 80%",
        r#"<strong id="rule-latest">85.0%</strong>"#,
        r#"<strong id="rule-peak">95.0%</strong>"#,
        "2 of 3 samples beyond the threshold",
        r#"value="Hot CPU""#,
        r#"value="80""#,
        r#"id="rule-delete""#,
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }

    // Edited: the new threshold is the API's, and the page counts against it.
    let (status, location, html) =
        post(&app, &jar, &path, &fields(&csrf, &node, "Hotter CPU", "90")).await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("{path}?done=rule-saved").as_str()),
        "{html}"
    );
    let saved = app
        .get(&format!("/v1/alerts/rules/{id}"), t)
        .await
        .expect(200);
    assert_eq!(
        (
            saved.body["threshold"].as_f64(),
            saved.body["name"].as_str()
        ),
        (Some(90.0), Some("Hotter CPU"))
    );
    let (status, html) = page(&app, &jar, &location).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("1 of 3 samples beyond the threshold"),
        "{html}"
    );
    assert!(html.contains("The alert rule was saved."), "{html}");
    // An edit the API refuses stays on the rule's page with the typed values.
    let (status, _, html) =
        post(&app, &jar, &path, &fields(&csrf, &node, "Hotter CPU", "-5")).await;
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains(r#"id="rule-threshold-error""#) && html.contains(r#"value="-5""#),
        "{html}"
    );

    // A rule on every node shows each node's latest value; a condition rule its alerts.
    let every = app
        .post(
            "/v1/alerts/rules",
            t,
            json!({"name": "Any node", "target_type": "node", "metric": "memory_usage",
                "threshold": 5}),
        )
        .await
        .expect(201);
    let every = every.body["id"].as_str().expect("a rule").to_owned();
    let (status, html) = page(&app, &jar, &format!("/alerts/rules/{every}")).await;
    assert_eq!(status, 200, "{html}");
    for part in [
        r#"id="rule-targets""#.to_owned(),
        format!(r#"data-target="{node}""#),
        "<td>10.0%</td>".to_owned(),
    ] {
        assert!(html.contains(&part), "{part} in {html}");
    }
    let offline = app
        .post(
            "/v1/alerts/rules",
            t,
            json!({"name": "Gone", "target_type": "node", "metric": "node_offline"}),
        )
        .await
        .expect(201);
    let offline = offline.body["id"].as_str().expect("a rule").to_owned();
    let (status, html) = page(&app, &jar, &format!("/alerts/rules/{offline}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"id="rule-no-alerts""#), "{html}");
    assert!(!html.contains(r#"id="rule-chart""#), "{html}");

    // Another organization's rule is not found.
    let carol = app.register("carol@example.com").await;
    let theirs = app
        .post(
            "/v1/alerts/rules",
            Some(&carol.access),
            json!({"name": "Theirs", "target_type": "node", "metric": "node_offline"}),
        )
        .await
        .expect(201);
    let theirs = theirs.body["id"].as_str().expect("their rule").to_owned();
    let (status, html) = page(&app, &jar, &format!("/alerts/rules/{theirs}")).await;
    assert_eq!(status, 404, "{html}");
    let (status, _, _) = post(
        &app,
        &jar,
        &format!("/alerts/rules/{theirs}/delete"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = page(&app, &jar, "/alerts/rules/..%2Fx").await;
    assert_eq!(status, 404);

    // Deleted.
    let (status, location, html) = post(
        &app,
        &jar,
        &format!("{path}/delete"),
        &[("csrf_token", &csrf), ("organization_id", "")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/alerts/rules?done=rule-deleted"),
        "{html}"
    );
    app.get(&format!("/v1/alerts/rules/{id}"), t)
        .await
        .expect_error(404, "NOT_FOUND");
    let (_, html) = page(&app, &jar, &location).await;
    assert!(!html.contains(&format!(r#"id="rule-{id}""#)), "{html}");
    assert!(
        html.contains(r#"id="rule-"#),
        "the other rules stay: {html}"
    );
    // Without the form's token, nothing is created.
    let (status, _, _) = post(
        &app,
        &jar,
        "/alerts/rules",
        &fields("", &node, "Sneaky", "80")[1..],
    )
    .await;
    assert_eq!(status, 403);
}

/// Signs in on the login form as the admin.
async fn browser_sign_in(c: &Client, base: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", "admin@example.com").await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_made_on_the_page_gets_a_new_threshold() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    app.register_node(&admin.access, None, "disks").await;
    let base = app.base.clone();
    Chrome::start(false)
        .await
        .run(
            "a_rule_made_on_the_page_gets_a_new_threshold",
            |c| async move {
                browser_sign_in(&c, &base).await?;
                wait_path(&c, "/").await?;
                c.goto(&format!("{base}/alerts")).await?;
                click(&c, "#subnav-rules").await?;
                wait_path(&c, "/alerts/rules").await?;
                fill(&c, "#rule-name", "Disk <full>").await?;
                find(&c, "#rule-metric option[value='disk_usage']")
                    .await?
                    .click()
                    .await?;
                fill(&c, "#rule-threshold", "85").await?;
                click(&c, "#rule-submit").await?;
                wait_text(&c, "#notice", "created", SHORT).await?;
                wait_text(&c, "#rules", "disk_usage > 85% for 60 s", SHORT).await?;
                click(&c, "#rules a").await?;
                wait_text(&c, "#rule-title", "Disk <full>", SHORT).await?;
                wait_text(&c, "#rule-recent", "Threshold", SHORT).await?;
                fill(&c, "#rule-threshold", "70.5").await?;
                click(&c, "#rule-submit").await?;
                wait_text(&c, "#notice", "saved", SHORT).await?;
                wait_text(&c, "#rule-summary", "disk_usage > 70.5% for 60 s", SHORT).await?;
                let value = find(&c, "#rule-threshold")
                    .await?
                    .prop("value")
                    .await?
                    .unwrap_or_default();
                anyhow::ensure!(
                    value == "70.5",
                    "the form shows the new threshold: {value:?}"
                );
                Ok(())
            },
        )
        .await;
}
