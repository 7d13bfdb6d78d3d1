//! One-click deploys (issue 20 §5): `POST /v1/deploy` checks what it can before making
//! anything (template, name, variables, node, the plan's room: 402 at once), then runs
//! its steps as a persisted job; `GET /v1/deploy[/{id}]` shows them, scoped to the
//! organization. The `testing` templates are hidden until the platform setting shows
//! them. A failure removes what the deployment made; a deployment whose replica died is
//! resumed by the `deployments` job.
//!
//! The Docker-heavy scenarios (a real agent installs and starts `busybox-test`) run on
//! SQLite only: the database plays no part in what they check, and the scenarios that
//! need no agent run on both engines.

use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::config::Secret;
use shardlyn_tests::agent::{LocalAgent, own_ports, register_node, wait_node};
use shardlyn_tests::{Engine, Session, TestApp, both_engines, spawn_app, spawn_app_with};

/// How long a deployment with a real agent may take.
const WAIT: Duration = Duration::from_secs(120);

async fn personal_org(app: &TestApp, token: &str) -> String {
    let r = app.get("/v1/organizations", Some(token)).await.expect(200);
    // The first organization listed is the personal one.
    r.body[0]["id"].as_str().expect("personal org").to_owned()
}

/// Turns the `testing` templates on (a platform admin's session).
async fn show_testing(app: &TestApp, admin: &Session) {
    let r = app
        .put(
            "/v1/settings",
            Some(&admin.access),
            json!({"show_testing_templates": true}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["show_testing_templates"], true, "{}", r.text);
}

/// Polls deployment `id` until it is `succeeded` or `failed`.
async fn wait_done(app: &TestApp, token: &str, id: &str, wait: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let r = app
            .get(&format!("/v1/deploy/{id}"), Some(token))
            .await
            .expect(200);
        if r.body["status"] == "succeeded" || r.body["status"] == "failed" {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deployment never ended: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The step `name` of a deployment.
fn step<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name}: {d}"))
}

async fn count(app: &TestApp, sql: &'static str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count")
}

both_engines! {
    async fn testing_templates_are_hidden_until_the_setting_shows_them(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("tpl-hidden@example.com").await;
        let t = Some(user.access.as_str());
        let ids = |v: &Value| -> Vec<String> {
            v.as_array().expect("list").iter().map(|t| t["id"].as_str().expect("id").to_owned()).collect()
        };
        let listed = app.get("/v1/templates", t).await.expect(200);
        assert!(!ids(&listed.body).contains(&"busybox-test".to_owned()), "{}", listed.text);
        assert!(ids(&listed.body).contains(&"minecraft-paper".to_owned()), "{}", listed.text);
        app.get("/v1/templates/testing", t).await.expect_error(404, "NOT_FOUND");
        let r = app
            .post("/v1/deploy", t, json!({"template": "busybox-test", "name": "hidden"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "template", "{}", r.text);

        show_testing(&app, &admin).await;
        let listed = app.get("/v1/templates", t).await.expect(200);
        assert!(ids(&listed.body).contains(&"busybox-test".to_owned()), "{}", listed.text);
        app.get("/v1/templates/testing", t).await.expect(200);
        // The setting is the platform's: only its admins change it.
        app.put("/v1/settings", t, json!({"show_testing_templates": false}))
            .await
            .expect_error(403, "FORBIDDEN");
    }

    async fn bad_input_is_refused_before_anything_is_made(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        show_testing(&app, &admin).await;
        let owner = app.register("deploy-bad@example.com").await;
        let t = Some(owner.access.as_str());
        let org = app.create_org(&owner.access, "Games").await;
        let stranger = app.register("deploy-stranger@example.com").await;
        let foreign = app.create_org(&stranger.access, "Theirs").await;
        let their_node = app.register_node(&stranger.access, Some(&foreign), "theirs").await;
        let base = json!({"template": "busybox-test", "name": "ok", "organization_id": org});
        let with = |extra: Value| {
            let mut b = base.clone();
            b.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
            b
        };
        for (extra, field) in [
            (json!({"template": "no-such-template"}), "template"),
            (json!({"name": ""}), "name"),
            (json!({"name": "x".repeat(300)}), "name"),
            (json!({"variables": {"GREETING": "x".repeat(65)}}), "variables.GREETING"),
            (json!({"subdomain": "not a label!"}), "subdomain"),
        ] {
            let r = app.post("/v1/deploy", t, with(extra.clone())).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{extra}: {}", r.text);
        }
        app.post("/v1/deploy", t, with(json!({"node_id": their_node})))
            .await
            .expect_error(404, "NOT_FOUND");
        app.post("/v1/deploy", t, with(json!({"colour": "red"})))
            .await
            .expect_error(400, "BAD_REQUEST");
        // Deploying into someone else's organization: it does not exist for the caller.
        app.post("/v1/deploy", t, with(json!({"organization_id": foreign})))
            .await
            .expect_error(404, "NOT_FOUND");
        let none = app.get(&format!("/v1/deploy?organization_id={org}"), t).await.expect(200);
        assert_eq!(none.body["data"], json!([]), "{}", none.text);
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM workloads WHERE org_id = $1", &org).await, 0);
    }

    async fn a_deployment_with_no_node_fails_at_place_and_removes_its_workload(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        show_testing(&app, &admin).await;
        let owner = app.register("deploy-scope@example.com").await;
        let t = Some(owner.access.as_str());
        let org = app.create_org(&owner.access, "Scoped").await;
        let r = app
            .post("/v1/deploy", t, json!({"template": "busybox-test", "name": "lonely", "organization_id": org}))
            .await
            .expect(202);
        let id = r.body["id"].as_str().expect("id").to_owned();
        assert_eq!(r.body["organization_id"], org.as_str());
        assert_eq!(r.body["steps"].as_array().map(Vec::len), Some(7), "{}", r.text);
        let d = wait_done(&app, &owner.access, &id, Duration::from_secs(30)).await;
        assert_eq!(d["status"], "failed", "{d}");
        assert_eq!(step(&d, "workload")["status"], "succeeded", "{d}");
        assert_eq!(step(&d, "limits")["status"], "succeeded", "{d}");
        let place = step(&d, "place");
        assert_eq!(place["status"], "failed", "{d}");
        assert!(place["message"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
        assert!(place["finished_at"].is_string(), "{d}");
        assert_eq!(step(&d, "create")["status"], "pending", "{d}");
        assert!(d["error"].as_str().is_some_and(|e| e.starts_with("place: ")), "{d}");
        // The workload it made is gone with it; nothing else was made.
        assert_eq!(d["workload_id"], Value::Null, "{d}");
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM workloads WHERE org_id = $1", &org).await, 0);
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM instances WHERE org_id = $1", &org).await, 0);

        // Scoping: the list and the deployment are the organization's.
        let list = app.get(&format!("/v1/deploy?organization_id={org}"), t).await.expect(200);
        assert_eq!(list.body["pagination"]["total"], 1, "{}", list.text);
        assert_eq!(list.body["data"][0]["id"], id.as_str());
        let other = app.register("deploy-other@example.com").await;
        let o = Some(other.access.as_str());
        app.get(&format!("/v1/deploy/{id}"), o).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/deploy?organization_id={org}"), o).await.expect_error(404, "NOT_FOUND");
        let mine = app.get("/v1/deploy", o).await.expect(200);
        assert_eq!(mine.body["data"], json!([]), "{}", mine.text);
        // A viewer reads deployments (instances.read) but may not deploy (deploy.write).
        app.add_member(&org, &other.user_id, "viewer").await;
        app.get(&format!("/v1/deploy/{id}"), o).await.expect(200);
        app.post("/v1/deploy", o, json!({"template": "busybox-test", "name": "nope", "organization_id": org}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.get("/v1/deploy/no-such-deployment", t).await.expect_error(404, "NOT_FOUND");
    }

    async fn a_deployment_whose_replica_died_is_resumed(engine) {
        let app = spawn_app_with(engine, |c| c.jobs.poll_interval_ms = 100).await;
        let owner = app.register("deploy-resume@example.com").await;
        let org = personal_org(&app, &owner.access).await;
        // As a replica leaves it when it dies mid-way: running, its lease lapsed.
        let now = shardlyn_panel::db::now_ms();
        let steps: Vec<Value> = ["workload", "limits", "place", "create", "dns", "install", "start"]
            .iter()
            .map(|n| json!({"name": n, "status": "pending", "message": null, "started_at": null, "finished_at": null}))
            .collect();
        let mut steps = steps;
        steps[0]["status"] = json!("running");
        steps[0]["started_at"] = json!(now - 60_000);
        let d = shardlyn_panel::deploy::store::Deployment {
            id: shardlyn_panel::db::new_id(),
            org_id: org.clone(),
            template: "python-app".into(),
            name: "resumed".into(),
            variables: "{}".into(),
            node_id: None,
            subdomain: None,
            status: "running".into(),
            steps: Value::Array(steps).to_string(),
            workload_id: None,
            workload_made: false,
            instance_id: None,
            dns_record_id: None,
            error: None,
            created_by: owner.user_id.clone(),
            lease_owner: Some("a-dead-replica".into()),
            lease_until: Some(now - 1),
            created_at: now - 60_000,
            updated_at: now - 60_000,
        };
        shardlyn_panel::deploy::store::insert(&app.state.db.pool, &d).await.expect("insert");
        let done = wait_done(&app, &owner.access, &d.id, Duration::from_secs(30)).await;
        // It went on from the step it was in: the workload was made, no node to place on.
        assert_eq!(step(&done, "workload")["status"], "succeeded", "{done}");
        assert_eq!(step(&done, "place")["status"], "failed", "{done}");
        let owner_now: Option<String> = sqlx::query_scalar("SELECT lease_owner FROM deployments WHERE id = $1")
            .bind(&d.id)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("row");
        assert_eq!(owner_now.as_deref(), Some(app.state.replica_id.as_str()));
    }

    async fn a_plan_without_room_answers_402_at_once(engine) {
        let app = spawn_app_with(engine, |c| {
            c.stripe.secret_key = Secret("sk_test_limits_only".into());
        })
        .await;
        let owner = app.register("deploy-plan@example.com").await;
        let t = Some(owner.access.as_str());
        let org = app.create_org(&owner.access, "Small").await;
        sqlx::query("UPDATE plans SET max_servers = 0 WHERE id = 'plan-free'")
            .execute(&app.state.db.pool)
            .await
            .expect("cap");
        let r = app
            .post("/v1/deploy", t, json!({"template": "python-app", "name": "too-many", "organization_id": org}))
            .await
            .expect_error(402, "PLAN_LIMIT");
        assert_eq!((r.body["limit"].as_str(), r.body["usage"].as_i64(), r.body["cap"].as_i64()),
            (Some("servers"), Some(0), Some(0)), "{}", r.text);
        let none = app.get(&format!("/v1/deploy?organization_id={org}"), t).await.expect(200);
        assert_eq!(none.body["pagination"]["total"], 0, "{}", none.text);
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM workloads WHERE org_id = $1", &org).await, 0);
    }
}

/// A real agent: busybox-test is deployed, installed and started; the `dns` step is
/// skipped (no zone) and says so; a second deployment reuses the workload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_deploys_installs_and_runs() {
    shardlyn_tests::docker::ensure_test_image();
    let app = spawn_app_with(Engine::Sqlite, own_ports).await;
    let admin = app.bootstrap_admin().await;
    show_testing(&app, &admin).await;
    let t = Some(admin.access.as_str());
    let org = personal_org(&app, &admin.access).await;
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let r = app
        .post(
            "/v1/deploy",
            t,
            json!({"template": "busybox-test", "name": "one-click", "organization_id": org,
                   "variables": {"GREETING": "hello from a deploy"}, "subdomain": "play"}),
        )
        .await
        .expect(202);
    assert_eq!(r.body["status"], "pending", "{}", r.text);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let d = wait_done(&app, &admin.access, &id, WAIT).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    for name in ["workload", "limits", "place", "create", "install", "start"] {
        assert_eq!(step(&d, name)["status"], "succeeded", "{name}: {d}");
    }
    let dns = step(&d, "dns");
    assert_eq!(dns["status"], "skipped", "{d}");
    assert!(
        dns["message"]
            .as_str()
            .is_some_and(|m| m.contains("no auto-DNS zone")),
        "{d}"
    );
    assert_eq!(d["node_id"], config.node_id.as_str(), "{d}");
    let instance = d["instance_id"].as_str().expect("instance id");
    let got = app
        .get(&format!("/v1/instances/{instance}"), t)
        .await
        .expect(200);
    assert_eq!(got.body["state"], "running", "{}", got.text);
    assert_eq!(got.body["name"], "one-click");
    let workload = d["workload_id"].as_str().expect("workload").to_owned();

    let again = app
        .post(
            "/v1/deploy",
            t,
            json!({"template": "busybox-test", "name": "second", "organization_id": org}),
        )
        .await
        .expect(202);
    let again = wait_done(
        &app,
        &admin.access,
        again.body["id"].as_str().expect("id"),
        WAIT,
    )
    .await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["workload_id"], workload.as_str(), "{again}");
    assert!(
        step(&again, "workload")["message"]
            .as_str()
            .is_some_and(|m| m.contains("reused")),
        "{again}"
    );
    let list = app.get("/v1/deploy", t).await.expect(200);
    assert_eq!(list.body["pagination"]["total"], 2, "{}", list.text);
    assert_eq!(list.body["data"][0]["id"], again["id"], "newest first");
    for i in [instance, again["instance_id"].as_str().expect("id")] {
        app.delete(&format!("/v1/instances/{i}"), t)
            .await
            .expect(204);
    }
    agent.stop().await;
}

/// A real agent: the workload's install script fails; the deployment fails at
/// `install` and removes the server it made, but not the workload it reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_install_removes_the_server() {
    shardlyn_tests::docker::ensure_test_image();
    let app = spawn_app_with(Engine::Sqlite, own_ports).await;
    let admin = app.bootstrap_admin().await;
    show_testing(&app, &admin).await;
    let t = Some(admin.access.as_str());
    let org = personal_org(&app, &admin.access).await;
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = app
        .post(
            "/v1/workloads/from-template",
            t,
            json!({"template": "busybox-test", "organization_id": org}),
        )
        .await
        .expect(201);
    let wid = workload.body["id"].as_str().expect("id").to_owned();
    let mut shape = app
        .get(&format!("/v1/workloads/{wid}"), t)
        .await
        .expect(200)
        .body;
    shape["install"]["script"] = json!("#!/bin/sh\necho failing on purpose\nexit 1\n");
    for key in [
        "id",
        "organization_id",
        "source",
        "template",
        "created_by",
        "created_at",
        "updated_at",
    ] {
        if let Some(o) = shape.as_object_mut() {
            o.remove(key);
        }
    }
    app.put(&format!("/v1/workloads/{wid}"), t, shape)
        .await
        .expect(200);
    let r = app
        .post(
            "/v1/deploy",
            t,
            json!({"template": "busybox-test", "name": "doomed", "organization_id": org,
                                      "node_id": config.node_id}),
        )
        .await
        .expect(202);
    let d = wait_done(
        &app,
        &admin.access,
        r.body["id"].as_str().expect("id"),
        WAIT,
    )
    .await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(step(&d, "create")["status"], "succeeded", "{d}");
    let install = step(&d, "install");
    assert_eq!(install["status"], "failed", "{d}");
    assert!(
        install["message"]
            .as_str()
            .is_some_and(|m| m.contains("install")),
        "{d}"
    );
    assert_eq!(step(&d, "start")["status"], "pending", "{d}");
    assert_eq!(d["instance_id"], Value::Null, "{d}");
    assert_eq!(
        d["workload_id"],
        wid.as_str(),
        "the reused workload is kept: {d}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM instances WHERE org_id = $1",
            &org
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM allocations WHERE node_id = $1",
            &config.node_id
        )
        .await,
        0
    );
    app.get(&format!("/v1/workloads/{wid}"), t)
        .await
        .expect(200);
    agent.stop().await;
}
