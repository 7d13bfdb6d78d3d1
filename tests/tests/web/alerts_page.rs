//! The alerts page over plain HTTP: an alert fired with a pinned clock (a node above its
//! CPU threshold for the rule's duration) is listed with its rule, opening the page
//! marks it seen (the bell of every page counts it until then), and its Ack form
//! acknowledges it as the signed-in user. The maintenance page opens and ends a window.

use reqwest::header::COOKIE;
use serde_json::json;
use shardlyn_panel::alerts::evaluate;
use shardlyn_proto::metrics::NodeSample;
use shardlyn_tests::{Engine, spawn_app};

use crate::typed_pages::{page, sign_in};

#[tokio::test]
async fn the_alerts_page_lists_a_firing_alert_and_acks_it() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let orgs = app.get("/v1/organizations", t).await.expect(200);
    let org = orgs.body[0]["id"].as_str().expect("org id").to_owned();
    let node = app.register_node(&admin.access, None, "alerting").await;
    app.post(
        "/v1/alerts/rules",
        t,
        json!({"organization_id": org, "name": "Hot CPU", "target_type": "node",
            "metric": "cpu_usage", "operator": "gt", "threshold": 90,
            "duration_seconds": 20, "severity": "critical", "notify_in_app": true,
            "notify_email": false, "cooldown_seconds": 0}),
    )
    .await
    .expect(201);

    // Above the threshold for the duration, on a pinned clock: firing.
    let clock = app.state.clock.clone();
    let start = shardlyn_panel::db::now_ms();
    for secs in [0, 10, 21] {
        clock.set_ms(start + secs * 1000);
        let sample = NodeSample {
            cpu_percent: 95.0,
            memory_total_bytes: 100,
            memory_used_bytes: 10,
            disk_total_bytes: 100,
            disk_used_bytes: 10,
            ..NodeSample::default()
        };
        evaluate::on_sample(&app.state, &node, &sample).await;
        evaluate::tick(&app.state).await.expect("tick");
    }
    let firing = app
        .get(&format!("/v1/alerts?organization_id={org}&state=firing"), t)
        .await
        .expect(200);
    let id = firing.body["data"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a firing alert: {}", firing.body))
        .to_owned();
    let unread = app.get("/v1/alerts/unread-count", t).await.expect(200);
    assert_eq!(unread.body["count"], 1);

    let (jar, csrf) = sign_in(&app).await;
    // The bell of every page counts it.
    let (status, html) = page(&app, &jar, "/nodes").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(r#"id="bell-count" data-live-alerts>1</span>"#),
        "{html}"
    );
    let (status, html) = page(&app, &jar, "/alerts?state=firing").await;
    assert_eq!(status, 200, "{html}");
    for part in [
        format!(r#"id="alert-{id}""#),
        "Hot CPU".to_owned(),
        node.clone(),
        "firing".to_owned(),
        "critical".to_owned(),
        format!(r#"id="ack-{id}""#),
        format!(r#"id="silence-{id}""#),
        r#"id="nav-alerts""#.to_owned(),
    ] {
        assert!(html.contains(&part), "{part} in {html}");
    }
    assert!(!html.contains("acknowledged by"), "{html}");
    // Seen on this page: its bell says 0, hidden.
    assert!(
        html.contains(r#"id="bell-count" data-live-alerts hidden>0</span>"#),
        "{html}"
    );
    // Opening the page marked the alert seen.
    let unread = app.get("/v1/alerts/unread-count", t).await.expect(200);
    assert_eq!(unread.body["count"], 0);

    let r = app
        .client
        .post(format!("{}/alerts/{id}/ack", app.base))
        .header(COOKIE, &jar)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("organization_id", ""),
            ("state", "firing"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 303);
    let back = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned();
    assert_eq!(back, "/alerts?state=firing&done=acked");
    let (status, html) = page(&app, &jar, &back).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("acknowledged by admin@example.com"), "{html}");
    assert!(!html.contains(&format!(r#"id="ack-{id}""#)), "{html}");
    let alert = app.get(&format!("/v1/alerts/{id}"), t).await.expect(200);
    assert_eq!(alert.body["acked_by"], admin.user_id.as_str());

    // Silence for an hour, from the same page.
    let r = app
        .client
        .post(format!("{}/alerts/{id}/silence", app.base))
        .header(COOKIE, &jar)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 303);
    let alert = app.get(&format!("/v1/alerts/{id}"), t).await.expect(200);
    assert!(alert.body["silenced_until"].is_string(), "{}", alert.body);
    // Without a session token, no acknowledging.
    let r = app
        .client
        .post(format!("{}/alerts/{id}/ack", app.base))
        .header(COOKIE, &jar)
        .form(&[("organization_id", "")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_maintenance_page_opens_a_window_and_ends_it() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let node = app.register_node(&admin.access, None, "rack-1").await;
    let (jar, csrf) = sign_in(&app).await;
    let (status, html) = page(&app, &jar, "/alerts/maintenance").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"id="windows-empty""#), "{html}");
    assert!(
        html.contains(&format!(r#"value="node:{node}""#)) && html.contains("Node rack-1"),
        "{html}"
    );
    let post = |target: String, minutes: &'static str, reason: &'static str| {
        let (app, jar, csrf) = (&app, jar.clone(), csrf.clone());
        async move {
            app.client
                .post(format!("{}/alerts/maintenance", app.base))
                .header(COOKIE, &jar)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("organization_id", ""),
                    ("target", target.as_str()),
                    ("duration_minutes", minutes),
                    ("reason", reason),
                ])
                .send()
                .await
                .expect("POST")
        }
    };
    // A refusal is shown on the page with the field, and what was typed is kept.
    let r = post(format!("node:{node}"), "0", "typed reason").await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.expect("page");
    assert!(html.contains("<code>duration_minutes</code>"), "{html}");
    assert!(html.contains(r#"value="typed reason""#), "{html}");
    // Another organization's node, or one that does not exist: not found.
    let r = post("node:nope".into(), "60", "").await;
    assert_eq!(r.status(), 404);

    let r = post(format!("node:{node}"), "120", "Kernel update").await;
    assert_eq!(r.status(), 303);
    let back = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned();
    assert_eq!(back, "/alerts/maintenance?done=maintenance");
    let windows = app.get("/v1/alerts/maintenance", t).await.expect(200);
    let id = windows.body["data"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a window: {}", windows.body))
        .to_owned();
    assert_eq!(windows.body["data"][0]["target_id"], node.as_str());
    let (status, html) = page(&app, &jar, &back).await;
    assert_eq!(status, 200, "{html}");
    for part in [
        format!(r#"id="window-{id}""#),
        "node rack-1".to_owned(),
        "Kernel update".to_owned(),
        "End now".to_owned(),
    ] {
        assert!(html.contains(&part), "{part} in {html}");
    }

    let r = app
        .client
        .post(format!("{}/alerts/maintenance/{id}/end", app.base))
        .header(COOKIE, &jar)
        .form(&[("csrf_token", csrf.as_str()), ("organization_id", "")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 303);
    let windows = app.get("/v1/alerts/maintenance", t).await.expect(200);
    assert_eq!(windows.body["pagination"]["total"], 0, "{}", windows.body);
    // Ending it again: not found.
    let r = app
        .client
        .post(format!("{}/alerts/maintenance/{id}/end", app.base))
        .header(COOKIE, &jar)
        .form(&[("csrf_token", csrf.as_str()), ("organization_id", "")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 404);
}
