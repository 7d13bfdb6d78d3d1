//! The alerts page over plain HTTP: an alert fired with a pinned clock (a node above its
//! CPU threshold for the rule's duration) is listed with its rule, opening the page
//! marks it seen, and its Ack form acknowledges it as the signed-in user.

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
