//! Alerts: rule CRUD and validation, evaluation semantics with a pinned clock (a value
//! hovering at a threshold does not flap, missing data is not recovery, cooldown,
//! ack, unread count, one email per transition), and end to end with a real agent and
//! busybox server: a crash fires `instance_down` once after its duration and a start
//! resolves it, a user stop fires nothing, a killed agent gives one `node_offline`
//! message and no per-server one; a maintenance window holds alerts and their mail back.

use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::alerts::evaluate;
use shardlyn_proto::metrics::NodeSample;
use shardlyn_tests::agent::{
    AgentProcess, LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::console::Console;
use shardlyn_tests::{Engine, TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(30);

fn rule(org: &str, extra: &Value) -> Value {
    let mut body = json!({
        "organization_id": org,
        "name": "High CPU",
        "target_type": "node",
        "target_id": null,
        "metric": "cpu_usage",
        "operator": "gt",
        "threshold": 90,
        "duration_seconds": 300,
        "severity": "warn",
        "notify_in_app": true,
        "notify_email": true,
        "cooldown_seconds": 600
    });
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

async fn personal_org(app: &TestApp, token: &str) -> String {
    let r = app.get("/v1/organizations", Some(token)).await.expect(200);
    // The first organization listed is the personal one.
    r.body[0]["id"].as_str().expect("personal org").to_string()
}

both_engines! {
    async fn rules_crud_validation_and_other_organizations(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("alerts-owner@example.com").await;
        let other = app.register("alerts-other@example.com").await;
        let t = Some(owner.access.as_str());
        let org = personal_org(&app, &owner.access).await;
        let other_org = personal_org(&app, &other.access).await;
        let node = app.register_node(&owner.access, None, "n1").await;
        let other_node = app.register_node(&other.access, None, "n2").await;

        let created = app
            .post("/v1/alerts/rules", t, rule(&org, &json!({"target_id": node})))
            .await
            .expect(201);
        let id = created.body["id"].as_str().expect("id").to_string();
        assert_eq!(created.body["organization_id"], org.as_str());
        assert_eq!(created.body["threshold"], 90.0);
        assert_eq!(created.body["resolve_after_seconds"], 60, "default hysteresis");
        assert_eq!(created.body["enabled"], true);

        let list = app.get(&format!("/v1/alerts/rules?organization_id={org}"), t).await.expect(200);
        assert_eq!(list.body["pagination"]["total"], 1);
        app.get(&format!("/v1/alerts/rules/{id}"), t).await.expect(200);

        let updated = app
            .put(
                &format!("/v1/alerts/rules/{id}"),
                t,
                rule(&org, &json!({"name": "Disk", "metric": "disk_usage", "threshold": 85, "severity": "critical", "email_recipients": ["ops@example.com"]})),
            )
            .await
            .expect(200);
        assert_eq!(updated.body["name"], "Disk");
        assert_eq!(updated.body["target_id"], Value::Null);
        assert_eq!(updated.body["email_recipients"], json!(["ops@example.com"]));

        // Validation names the field.
        for (extra, field) in [
            (json!({"metric": "load"}), "metric"),
            (json!({"target_type": "cluster"}), "target_type"),
            (json!({"target_type": "instance", "metric": "network_rx"}), "metric"),
            (json!({"metric": "instance_down"}), "metric"),
            (json!({"operator": "ne"}), "operator"),
            (json!({"threshold": 150}), "threshold"),
            (json!({"severity": "warning"}), "severity"),
            (json!({"duration_seconds": -1}), "duration_seconds"),
            (json!({"resolve_after_seconds": 99_999_999}), "resolve_after_seconds"),
            (json!({"cooldown_seconds": -5}), "cooldown_seconds"),
            (json!({"name": " "}), "name"),
            (json!({"email_recipients": ["not an address"]}), "email_recipients"),
        ] {
            let r = app.post("/v1/alerts/rules", t, rule(&org, &extra)).await;
            r.expect_error(400, "VALIDATION_ERROR");
            let r = app.post("/v1/alerts/rules", t, rule(&org, &extra)).await;
            assert_eq!(r.body["field"], field, "{extra}: {}", r.text);
        }
        app.post("/v1/alerts/rules", t, json!({"name": "x"}))
            .await
            .expect(400);
        // Another organization's node, organization, rule: 404.
        app.post("/v1/alerts/rules", t, rule(&org, &json!({"target_id": other_node})))
            .await
            .expect_error(404, "NOT_FOUND");
        app.post("/v1/alerts/rules", t, rule(&org, &json!({"target_type": "instance", "metric": "instance_down", "target_id": "nope"})))
            .await
            .expect_error(404, "NOT_FOUND");
        app.post("/v1/alerts/rules", t, rule(&other_org, &json!({})))
            .await
            .expect_error(404, "NOT_FOUND");
        app.post("/v1/alerts/rules", t, rule(&org, &json!({"integration_ids": ["nope"]})))
            .await
            .expect_error(404, "NOT_FOUND");
        let foreign = app
            .post("/v1/integrations", Some(&other.access), json!({"name": "hook", "type": "webhook",
                "organization_id": other_org, "config": {"url": "http://127.0.0.1:9/hook"}}))
            .await
            .expect(201)
            .body["id"].as_str().expect("integration id").to_string();
        app.post("/v1/alerts/rules", t, rule(&org, &json!({"integration_ids": [foreign]})))
            .await
            .expect_error(404, "NOT_FOUND");
        let o = Some(other.access.as_str());
        app.get(&format!("/v1/alerts/rules/{id}"), o).await.expect_error(404, "NOT_FOUND");
        app.put(&format!("/v1/alerts/rules/{id}"), o, rule(&other_org, &json!({}))).await.expect(404);
        app.delete(&format!("/v1/alerts/rules/{id}"), o).await.expect(404);
        app.get(&format!("/v1/alerts?organization_id={org}"), o).await.expect(404);
        app.get("/v1/alerts/nope", t).await.expect_error(404, "NOT_FOUND");
        app.get("/v1/alerts?state=open", t).await.expect_error(400, "VALIDATION_ERROR");

        app.delete(&format!("/v1/alerts/rules/{id}"), t).await.expect(204);
        app.get(&format!("/v1/alerts/rules/{id}"), t).await.expect(404);
    }

    async fn a_value_hovering_at_the_threshold_does_not_flap(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("hover@example.com").await;
        let t = Some(owner.access.as_str());
        let org = personal_org(&app, &owner.access).await;
        let node = app.register_node(&owner.access, None, "n1").await;
        // A receiver that is not there: only the queue is looked at here (the
        // integrations tests deliver).
        let integration = app
            .post("/v1/integrations", t, json!({"name": "hook", "type": "webhook", "organization_id": org,
                "config": {"url": "http://127.0.0.1:9/hook"}}))
            .await
            .expect(201)
            .body["id"].as_str().expect("integration id").to_string();
        let r = app
            .post(
                "/v1/alerts/rules",
                t,
                rule(&org, &json!({"duration_seconds": 20, "resolve_after_seconds": 60, "cooldown_seconds": 0,
                    "email_recipients": ["ops@example.com"], "integration_ids": [integration]})),
            )
            .await
            .expect(201);
        let rule_id = r.body["id"].as_str().expect("id").to_string();
        let clock = app.state.clock.clone();
        let start = shardlyn_panel::db::now_ms();
        let at = |s: i64| start + s * 1000;
        let feed = |secs: i64, cpu: f64| {
            let (app, node, clock) = (&app, node.clone(), clock.clone());
            async move {
                clock.set_ms(at(secs));
                let sample = NodeSample { cpu_percent: cpu, memory_total_bytes: 100, memory_used_bytes: 10, disk_total_bytes: 100, disk_used_bytes: 10, ..NodeSample::default() };
                evaluate::on_sample(&app.state, &node, &sample).await;
                evaluate::tick(&app.state).await.expect("tick");
            }
        };
        let alerts = |query: &'static str| {
            let app = &app;
            let org = org.clone();
            let t = t.map(str::to_string);
            async move {
                app.get(&format!("/v1/alerts?organization_id={org}{query}"), t.as_deref()).await.expect(200).body
            }
        };
        // Above, then below before the duration: it never fires and leaves nothing.
        feed(0, 95.0).await;
        assert_eq!(alerts("&state=pending").await["pagination"]["total"], 1);
        feed(10, 95.0).await;
        feed(15, 89.0).await;
        assert_eq!(alerts("").await["pagination"]["total"], 0);
        // Above for the duration: firing (the tick fires it with no new sample).
        feed(20, 95.0).await;
        clock.set_ms(at(41));
        evaluate::tick(&app.state).await.expect("tick");
        let firing = alerts("&state=firing").await;
        assert_eq!(firing["pagination"]["total"], 1, "{firing}");
        let alert = firing["data"][0].clone();
        let id = alert["id"].as_str().expect("id").to_string();
        assert_eq!(alert["rule_id"], rule_id.as_str());
        assert_eq!(alert["target_id"], node.as_str());
        assert_eq!(app.get("/v1/alerts/unread-count", t).await.expect(200).body["count"], 1);
        // Hovering around 90 for minutes: never resolved, never a second alert.
        for (i, cpu) in [89.0, 91.0, 88.5, 92.0, 89.9, 90.5, 85.0, 93.0].into_iter().enumerate() {
            feed(50 + 20 * i64::try_from(i).expect("i"), cpu).await;
        }
        let all = alerts("").await;
        assert_eq!(all["pagination"]["total"], 1, "{all}");
        assert_eq!(all["data"][0]["state"], "firing");
        // Missing data is not recovery: the node goes offline with the value below.
        feed(300, 50.0).await;
        clock.set_ms(at(301));
        evaluate::on_node_status(&app.state, &org, &node, false).await;
        clock.set_ms(at(1000));
        evaluate::tick(&app.state).await.expect("tick");
        let a = app.get(&format!("/v1/alerts/{id}"), t).await.expect(200).body;
        assert_eq!(a["state"], "firing", "{a}");
        assert_eq!(a["no_data"], true, "{a}");
        // Back online and below for the hysteresis: resolved, once.
        evaluate::on_node_status(&app.state, &org, &node, true).await;
        feed(1001, 50.0).await;
        feed(1030, 50.0).await;
        assert_eq!(app.get(&format!("/v1/alerts/{id}"), t).await.expect(200).body["state"], "firing");
        clock.set_ms(at(1062));
        evaluate::tick(&app.state).await.expect("tick");
        evaluate::tick(&app.state).await.expect("tick");
        let a = app.get(&format!("/v1/alerts/{id}"), t).await.expect(200).body;
        assert_eq!(a["state"], "resolved", "{a}");
        assert_eq!(a["no_data"], false, "{a}");
        // One email per transition.
        let mails: Vec<_> = app.mailer.sent().into_iter().filter(|m| m.to == "ops@example.com").collect();
        assert_eq!(mails.len(), 2, "{mails:#?}");
        assert!(mails[0].subject.contains("High CPU") && !mails[0].subject.contains("Resolved"), "{}", mails[0].subject);
        assert!(mails[1].subject.contains("Resolved: High CPU"), "{}", mails[1].subject);

        // One queued delivery per transition for the integration.
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT dedup_key FROM integration_deliveries WHERE integration_id = $1 ORDER BY created_at",
        )
        .bind(&integration)
        .fetch_all(&app.state.db.pool)
        .await
        .expect("deliveries");
        assert_eq!(keys, vec![format!("{id}:firing"), format!("{id}:resolved")]);

        // Ack records who and when; the unread count drops; marking read clears it.
        let acked = app.post(&format!("/v1/alerts/{id}/ack"), t, json!({})).await.expect(200).body;
        assert_eq!(acked["acked_by"], owner.user_id.as_str());
        assert!(acked["acked_at"].is_string(), "{acked}");
        assert_eq!(app.get("/v1/alerts/unread-count", t).await.expect(200).body["count"], 0);
        // A second firing within the cooldown is not mailed again; it counts as unread
        // until marked read.
        app.put(&format!("/v1/alerts/rules/{rule_id}"), t, rule(&org, &json!({"duration_seconds": 0, "cooldown_seconds": 3600, "email_recipients": ["ops@example.com"]})))
            .await
            .expect(200);
        feed(1100, 99.0).await;
        assert_eq!(alerts("&state=firing").await["pagination"]["total"], 1);
        let mails = app.mailer.sent().into_iter().filter(|m| m.to == "ops@example.com").count();
        assert_eq!(mails, 2, "the cooldown holds the repeat back");
        assert_eq!(app.get("/v1/alerts/unread-count", t).await.expect(200).body["count"], 1);
        app.post("/v1/alerts/read", t, json!({})).await.expect(204);
        assert_eq!(app.get("/v1/alerts/unread-count", t).await.expect(200).body["count"], 0);
        // Silence: validated, recorded.
        let second = alerts("&state=firing").await["data"][0]["id"].as_str().expect("id").to_string();
        app.post(&format!("/v1/alerts/{second}/silence"), t, json!({"minutes": -1})).await.expect_error(400, "VALIDATION_ERROR");
        let s = app.post(&format!("/v1/alerts/{second}/silence"), t, json!({"minutes": 30})).await.expect(200).body;
        assert!(s["silenced_until"].is_string(), "{s}");
        // Filters.
        assert_eq!(alerts("&severity=critical").await["pagination"]["total"], 0);
        let by_target = app.get(&format!("/v1/alerts?organization_id={org}&target={node}"), t).await.expect(200).body;
        assert_eq!(by_target["pagination"]["total"], 2, "{by_target}");
    }
}

both_engines! {
    async fn a_maintenance_window_holds_alerts_back_and_firing_is_on_the_event_bus(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("maint@example.com").await;
        let t = Some(owner.access.as_str());
        let org = personal_org(&app, &owner.access).await;
        let node = app.register_node(&owner.access, None, "n1").await;
        let other = app.register("maint-other@example.com").await;
        let other_node = app.register_node(&other.access, None, "theirs").await;
        app.post("/v1/alerts/rules", t, rule(&org, &json!({"name": "Node down", "metric": "node_offline",
                "target_id": node, "duration_seconds": 0, "cooldown_seconds": 0,
                "email_recipients": ["ops@example.com"]})))
            .await
            .expect(201);

        // Validation names the field; another organization's node is not found.
        let window = |extra: Value| {
            let mut body = json!({"organization_id": org, "target_type": "node", "target_id": node,
                "duration_minutes": 60, "reason": "kernel update"});
            for (k, v) in extra.as_object().expect("object") {
                body[k] = v.clone();
            }
            body
        };
        for (extra, field) in [
            (json!({"target_type": "cluster"}), "target_type"),
            (json!({"duration_minutes": 0}), "duration_minutes"),
            (json!({"duration_minutes": 50000}), "duration_minutes"),
            (json!({"duration_minutes": null}), "ends_at"),
            (json!({"duration_minutes": null, "ends_at": "2001-01-01T00:00:00Z"}), "ends_at"),
            (json!({"ends_at": "2099-01-01T00:00:00Z"}), "duration_minutes"),
            (json!({"reason": "a\u{7}b"}), "reason"),
        ] {
            let r = app.post("/v1/alerts/maintenance", t, window(extra.clone())).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{extra}: {}", r.body);
        }
        app.post("/v1/alerts/maintenance", t, window(json!({"target_id": other_node})))
            .await
            .expect_error(404, "NOT_FOUND");

        // In the window the node goes offline: no alert, nothing mailed.
        let clock = app.state.clock.clone();
        let start = shardlyn_panel::db::now_ms();
        clock.set_ms(start);
        let w = app.post("/v1/alerts/maintenance", t, window(json!({}))).await.expect(201).body;
        let wid = w["id"].as_str().expect("window id").to_string();
        assert_eq!(w["active"], true, "{w}");
        assert_eq!(w["target_id"], node.as_str());
        let listed = app.get(&format!("/v1/alerts/maintenance?organization_id={org}"), t).await.expect(200).body;
        assert_eq!(listed["pagination"]["total"], 1, "{listed}");
        assert_eq!(app.get(&format!("/v1/alerts/maintenance/{wid}"), Some(&other.access)).await.status, 404);
        evaluate::on_node_status(&app.state, &org, &node, false).await;
        evaluate::tick(&app.state).await.expect("tick");
        let all = app.get(&format!("/v1/alerts?organization_id={org}"), t).await.expect(200).body;
        assert_eq!(all["pagination"]["total"], 0, "planned downtime is not an outage: {all}");
        evaluate::on_node_status(&app.state, &org, &node, true).await;

        // After the window, the same outage fires, once, and the bus says so.
        let mut events = app.state.events.subscribe();
        clock.set_ms(start + 61 * 60_000);
        assert_eq!(app.get(&format!("/v1/alerts/maintenance?organization_id={org}"), t).await.expect(200).body["pagination"]["total"], 0);
        evaluate::on_node_status(&app.state, &org, &node, false).await;
        let firing = app.get(&format!("/v1/alerts?organization_id={org}&state=firing"), t).await.expect(200).body;
        assert_eq!(firing["pagination"]["total"], 1, "{firing}");
        let alert_id = firing["data"][0]["id"].as_str().expect("alert id").to_string();
        let heard = loop {
            let logged = tokio::time::timeout(WAIT, events.recv()).await.expect("an event").expect("the bus");
            if logged.event.data.name() == "alert" {
                break serde_json::to_value(&logged.event).expect("event json");
            }
        };
        assert_eq!(heard["alert_id"], alert_id.as_str(), "{heard}");
        assert_eq!(heard["state"], "firing", "{heard}");
        assert_eq!(heard["organization_id"], org.as_str(), "{heard}");
        let mails = app.mailer.sent().into_iter().filter(|m| m.to == "ops@example.com").count();
        assert_eq!(mails, 1);

        // A window set while it fires holds back the resolved mail; deleting it ends it.
        let w2 = app.post("/v1/alerts/maintenance", t, window(json!({}))).await.expect(201).body;
        let w2 = w2["id"].as_str().expect("id").to_string();
        app.delete(&format!("/v1/alerts/maintenance/{w2}"), Some(&other.access)).await.expect_error(404, "NOT_FOUND");
        evaluate::on_node_status(&app.state, &org, &node, true).await;
        clock.set_ms(start + 70 * 60_000);
        evaluate::tick(&app.state).await.expect("tick");
        let a = app.get(&format!("/v1/alerts/{alert_id}"), t).await.expect(200).body;
        assert_eq!(a["state"], "resolved", "{a}");
        let mails = app.mailer.sent().into_iter().filter(|m| m.to == "ops@example.com").count();
        assert_eq!(mails, 1, "no resolved mail in maintenance");
        app.delete(&format!("/v1/alerts/maintenance/{w2}"), t).await.expect(204);
        app.get(&format!("/v1/alerts/maintenance/{w2}"), t).await.expect_error(404, "NOT_FOUND");
        // A window on every node covers a server of any node (and the node itself).
        let tomorrow = shardlyn_panel::db::rfc3339(start + 71 * 60_000 + 24 * 3600 * 1000);
        let all_nodes = app.post("/v1/alerts/maintenance", t, window(json!({"target_id": null, "starts_at": tomorrow}))).await.expect(201).body;
        assert_eq!(all_nodes["active"], false, "{all_nodes}");
        assert!(all_nodes["target_id"].is_null(), "{all_nodes}");
    }
}

async fn create_instance(app: &TestApp, access: &str, node: &str, workload: &str) -> String {
    app.post(
        "/v1/instances",
        Some(access),
        json!({
            "name": "alerted",
            "workload_id": workload,
            "node_id": node,
            "ports": [free_port()],
            "variables": {"GREETING": "hi"},
            "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500},
        }),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn console(app: &TestApp, access: &str, id: &str) -> Console {
    let r = app
        .post(
            &format!("/v1/instances/{id}/console/tickets"),
            Some(access),
            json!({}),
        )
        .await
        .expect(201);
    let ticket = r.body["ticket"].as_str().expect("ticket");
    let mut c = Console::connect(
        &format!("{}/v1/instances/{id}/console?ticket={ticket}", app.base),
        None,
    )
    .await
    .expect("console opens");
    c.wait_for(WAIT, "auth success", |e| e.event == "auth success")
        .await;
    c
}

/// The organization's alerts, all states.
async fn all_alerts(app: &TestApp, access: &str) -> Vec<Value> {
    app.get("/v1/alerts?per_page=100", Some(access))
        .await
        .expect(200)
        .body["data"]
        .as_array()
        .expect("data")
        .clone()
}

/// Waits until an alert of `metric` is in `state`.
async fn wait_alert(app: &TestApp, access: &str, metric: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let alerts = all_alerts(app, access).await;
        if let Some(a) = alerts
            .iter()
            .find(|a| a["metric"] == metric && a["state"] == state)
        {
            return a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {metric} alert {state}: {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Docker-heavy scenarios run on SQLite only: the database plays no part in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_fires_instance_down_once_a_start_resolves_it_a_stop_fires_nothing() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let org = personal_org(&app, &admin.access).await;
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let id = create_instance(&app, &admin.access, &config.node_id, &workload).await;
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    app.post(
        "/v1/alerts/rules",
        t,
        json!({"organization_id": org, "name": "Server down", "target_type": "instance", "metric": "instance_down",
               "duration_seconds": 3, "resolve_after_seconds": 1, "severity": "critical",
               "notify_email": true, "email_recipients": ["oncall@example.com"]}),
    )
    .await
    .expect(201);
    let mails = || {
        app.mailer
            .sent()
            .into_iter()
            .filter(|m| m.to == "oncall@example.com")
            .collect::<Vec<_>>()
    };

    // Planned: start, stop, restart fire nothing.
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &admin.access, &id, "running", WAIT).await;
    app.post(&format!("/v1/instances/{id}/restart"), t, json!({}))
        .await
        .expect(202);
    tokio::time::sleep(Duration::from_secs(1)).await;
    wait_instance(&app, &admin.access, &id, "running", WAIT).await;
    app.post(&format!("/v1/instances/{id}/stop"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        all_alerts(&app, &admin.access).await.is_empty(),
        "a planned stop raised an alert"
    );
    assert!(mails().is_empty());

    // A crash that stays down (the agent gives up after a second crash within 60 s).
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &admin.access, &id, "running", WAIT).await;
    let mut c = console(&app, &admin.access, &id).await;
    c.send("send command", &["crash"]).await;
    c.wait_for(WAIT, "crash notice", |e| {
        e.event == "daemon message" && e.arg().to_lowercase().contains("crash")
    })
    .await;
    c.wait_for(WAIT, "running again", |e| {
        e.event == "status" && e.arg() == "running"
    })
    .await;
    c.send("send command", &["crash"]).await;
    c.wait_for(WAIT, "offline", |e| {
        e.event == "status" && e.arg() == "offline"
    })
    .await;
    c.close().await;
    let firing = wait_alert(&app, &admin.access, "instance_down", "firing").await;
    assert_eq!(firing["target_id"], id.as_str());
    assert_eq!(firing["severity"], "critical");
    let pending = firing["pending_since"].as_str().expect("pending_since");
    let fired = firing["fired_at"].as_str().expect("fired_at");
    let ms = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("ts")
            .timestamp_millis()
    };
    assert!(
        ms(fired) - ms(pending) >= 3000,
        "fired before its duration: {firing}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mails().len(), 1, "{:#?}", mails());
    assert!(
        mails()[0].subject.contains("[critical] Server down"),
        "{}",
        mails()[0].subject
    );

    // Started again: resolved after the hysteresis, one more mail.
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &admin.access, &id, "running", WAIT).await;
    wait_alert(&app, &admin.access, "instance_down", "resolved").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(all_alerts(&app, &admin.access).await.len(), 1);
    assert_eq!(mails().len(), 2, "{:#?}", mails());
    assert!(mails()[1].subject.contains("Resolved: Server down"));

    // A failed backup (as the node's report records it) fires `backup_failed`; the next
    // completed one resolves it.
    app.post(
        "/v1/alerts/rules",
        t,
        json!({"organization_id": org, "name": "Backup failed", "target_type": "instance", "metric": "backup_failed",
               "duration_seconds": 0, "resolve_after_seconds": 0}),
    )
    .await
    .expect(201);
    evaluate::on_backup_end(&app.state, &id, true).await;
    let failed = wait_alert(&app, &admin.access, "backup_failed", "firing").await;
    assert_eq!(failed["target_id"], id.as_str());
    evaluate::on_backup_end(&app.state, &id, false).await;
    wait_alert(&app, &admin.access, "backup_failed", "resolved").await;

    // A server's disk use in percent of its limit (256 MiB), from a heartbeat's figures.
    app.post(
        "/v1/alerts/rules",
        t,
        json!({"organization_id": org, "name": "Disk nearly full", "target_type": "instance", "target_id": id,
               "metric": "disk_usage", "operator": "gte", "threshold": 90, "duration_seconds": 0}),
    )
    .await
    .expect(201);
    let heartbeat = |disk_mib: u64| NodeSample {
        instances: vec![shardlyn_proto::metrics::InstanceSample {
            id: id.clone(),
            disk_bytes: disk_mib * 1024 * 1024,
            ..Default::default()
        }],
        ..NodeSample::default()
    };
    evaluate::on_sample(&app.state, &config.node_id, &heartbeat(100)).await;
    assert!(
        !all_alerts(&app, &admin.access)
            .await
            .iter()
            .any(|a| a["metric"] == "disk_usage")
    );
    evaluate::on_sample(&app.state, &config.node_id, &heartbeat(240)).await;
    let disk = wait_alert(&app, &admin.access, "disk_usage", "firing").await;
    assert_eq!(disk["target_id"], id.as_str());
    assert!(
        (disk["value"].as_f64().expect("value") - 93.75).abs() < 0.01,
        "{disk}"
    );

    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_gives_one_node_offline_message_and_no_server_storm() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    let org = personal_org(&app, &admin.access).await;
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = AgentProcess::spawn(dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = create_instance(&app, &admin.access, &config.node_id, &workload).await;
        wait_instance(&app, &admin.access, &id, "offline", WAIT).await;
        app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
            .await
            .expect(202);
        wait_instance(&app, &admin.access, &id, "running", WAIT).await;
        ids.push(id);
    }
    for (name, target_type, metric) in [
        ("Node offline", "node", "node_offline"),
        ("Server down", "instance", "instance_down"),
    ] {
        app.post(
            "/v1/alerts/rules",
            t,
            json!({"organization_id": org, "name": name, "target_type": target_type, "metric": metric,
                   "duration_seconds": 1, "resolve_after_seconds": 1,
                   "notify_email": true, "email_recipients": ["oncall@example.com"]}),
        )
        .await
        .expect(201);
    }
    let mails = || {
        app.mailer
            .sent()
            .into_iter()
            .filter(|m| m.to == "oncall@example.com")
            .collect::<Vec<_>>()
    };

    agent.kill9();
    let firing = wait_alert(&app, &admin.access, "node_offline", "firing").await;
    assert_eq!(firing["target_id"], config.node_id.as_str());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts = all_alerts(&app, &admin.access).await;
    assert_eq!(alerts.len(), 1, "one alert for one outage: {alerts:#?}");
    assert_eq!(mails().len(), 1, "{:#?}", mails());
    assert!(mails()[0].subject.contains("Node offline"));

    // The agent comes back and re-adopts the running servers: resolved, no server alert.
    let agent = AgentProcess::spawn(dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    wait_alert(&app, &admin.access, "node_offline", "resolved").await;
    for id in &ids {
        wait_instance(&app, &admin.access, id, "running", WAIT).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts = all_alerts(&app, &admin.access).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(mails().len(), 2, "{:#?}", mails());
    for id in &ids {
        app.delete(&format!("/v1/instances/{id}"), t)
            .await
            .expect(204);
    }
    drop(agent);
}

/// Two replicas evaluating the same samples (as each would hear a heartbeat routed to
/// it), with their jobs ticking: one alert, one transition each way, one mail each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_notify_each_transition_once() {
    let apps = shardlyn_tests::replicas(2, |c| c.jobs.poll_interval_ms = 20).await;
    let (a, b) = (&apps[0], &apps[1]);
    let owner = a.register("replicas@example.com").await;
    let t = Some(owner.access.as_str());
    let org = personal_org(a, &owner.access).await;
    let node = a.register_node(&owner.access, None, "n1").await;
    a.post(
        "/v1/alerts/rules",
        t,
        rule(
            &org,
            &json!({"duration_seconds": 0, "resolve_after_seconds": 0, "cooldown_seconds": 0,
                "email_recipients": ["ops@example.com"]}),
        ),
    )
    .await
    .expect(201);
    let sample = |cpu: f64| NodeSample {
        cpu_percent: cpu,
        ..NodeSample::default()
    };
    for round in 0..5 {
        let cpu = if round % 2 == 0 { 99.0 } else { 10.0 };
        let s = sample(cpu);
        tokio::join!(
            evaluate::on_sample(&a.state, &node, &s),
            evaluate::on_sample(&b.state, &node, &s),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = a.get("/v1/alerts?per_page=100", t).await.expect(200).body;
    // Rounds 0, 2, 4 fire; 1 and 3 resolve: three alerts, the last one firing.
    assert_eq!(all["pagination"]["total"], 3, "{all}");
    let mails: Vec<_> = a
        .mailer
        .sent()
        .into_iter()
        .chain(b.mailer.sent())
        .filter(|m| m.to == "ops@example.com")
        .collect();
    assert_eq!(
        mails.len(),
        5,
        "three firings and two resolutions, once each: {mails:#?}"
    );
}

both_engines! {
    async fn alert_mail_reaches_the_members_who_read_alerts_through_smtp(engine) {
        let sink = shardlyn_tests::smtp::SmtpSink::start().await;
        let port = sink.port;
        let app = shardlyn_tests::spawn_app_with(engine, move |c| {
            c.smtp.host = "127.0.0.1".into();
            c.smtp.port = Some(port);
            c.smtp.mode = shardlyn_panel::config::SmtpMode::Plain;
            c.smtp.from = "Shardlyn Test <panel@example.com>".into();
        })
        .await;
        let owner = app.register("mail-owner@example.com").await;
        let reader = app.register("mail-reader@example.com").await;
        let denied = app.register("mail-denied@example.com").await;
        let t = Some(owner.access.as_str());
        let org = app.create_org(&owner.access, "Ops").await;
        app.add_member(&org, &reader.user_id, "viewer").await;
        app.add_member(&org, &denied.user_id, "viewer").await;
        app.post(
            &format!("/v1/organizations/{org}/members/{}/permissions", denied.user_id),
            t,
            json!({"key": "alerts.read", "allowed": false}),
        )
        .await
        .expect(200);
        let node = app.register_node(&owner.access, Some(&org), "edge-1").await;
        app.post(
            "/v1/alerts/rules",
            t,
            json!({"organization_id": org, "name": "Edge node offline", "target_type": "node",
                   "metric": "node_offline", "duration_seconds": 0, "resolve_after_seconds": 0,
                   "severity": "critical", "notify_email": true}),
        )
        .await
        .expect(201);
        evaluate::on_node_status(&app.state, &org, &node, false).await;
        for to in ["mail-owner@example.com", "mail-reader@example.com"] {
            let m = sink.wait_for_subject(to, "Edge node offline").await;
            assert!(m.subject.contains("[critical]"), "{}", m.subject);
            assert!(m.text.unwrap_or_default().contains("the node is offline"));
        }
        evaluate::on_node_status(&app.state, &org, &node, true).await;
        sink.wait_for_subject("mail-reader@example.com", "Resolved: Edge node offline").await;
        sink.wait_for_subject("mail-owner@example.com", "Resolved: Edge node offline").await;
        // (Registration mailed each a verification link too.)
        let received: Vec<_> = sink
            .received()
            .into_iter()
            .filter(|m| m.subject.contains("Edge node offline"))
            .collect();
        assert!(
            !received.iter().any(|m| m.rcpt_tos.iter().any(|r| r == "mail-denied@example.com")),
            "a member without alerts.read got mail: {received:#?}"
        );
        assert_eq!(received.len(), 4, "one per transition and member: {received:#?}");
    }
}
