//! admin API tests (real panel, both engines): the metrics dashboard counts what the
//! test created, and the log settings (level and audit-log retention).

use serde_json::{Value, json};
use shardlyn_tests::{TestApp, both_engines, spawn_app};

const GIB: i64 = 1024 * 1024 * 1024;

async fn metrics(app: &TestApp, token: &str) -> Value {
    app.get("/v1/admin/metrics", Some(token))
        .await
        .expect(200)
        .body
}

/// Inserts a backup row of `instance_id` (the agent side of backups is tested elsewhere).
async fn backup_row(app: &TestApp, instance_id: &str, org_id: &str, status: &str, size: i64) {
    sqlx::query(
        "INSERT INTO backups (id, instance_id, org_id, name, status, target, size_bytes, created_at) \
         VALUES ($1, $2, $3, 'b', $4, 'local', $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(instance_id)
    .bind(org_id)
    .bind(status)
    .bind(size)
    .bind(shardlyn_panel::db::now_ms())
    .execute(&app.state.db.pool)
    .await
    .expect("insert backup");
}

both_engines! {
    async fn metrics_count_what_exists(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let m = metrics(&app, &admin.access).await;
        assert_eq!(m["users"], json!({"total": 1, "admins": 1, "suspended": 0, "mfa_enabled": 0}));
        assert_eq!(m["organizations"]["total"], 1);
        assert_eq!(m["nodes"], json!({"total": 0, "online": 0, "offline": 0, "cordoned": 0}));
        assert_eq!(m["instances"], json!({"total": 0, "by_state": {}}));
        assert_eq!(m["backups"]["total"], 0);

        let owner = app.register("owner@example.com").await;
        let other = app.register("other@example.com").await;
        app.post(&format!("/v1/admin/users/{}/suspend", other.user_id), Some(&admin.access), json!({}))
            .await
            .expect(200);
        let org = app.create_org(&owner.access, "Hosting").await;
        let online = app.register_node(&owner.access, Some(&org), "node-a").await;
        app.mark_node_online(&online, 8 * GIB, 100 * GIB).await;
        let _offline = app.register_node(&owner.access, Some(&org), "node-b").await;
        let workload = app
            .post("/v1/workloads/from-template", Some(&owner.access), json!({"template": "busybox-test", "organization_id": org}))
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .expect("workload")
            .to_string();
        let mut states = std::collections::BTreeMap::<String, i64>::new();
        let mut instance_ids = Vec::new();
        for name in ["one", "two"] {
            let r = app
                .post("/v1/instances", Some(&owner.access), json!({"name": name, "workload_id": workload, "node_id": online, "limits": {"memory_mb": 256}}))
                .await
                .expect(201);
            instance_ids.push(r.body["id"].as_str().expect("id").to_string());
        }
        for id in &instance_ids {
            let r = app.get(&format!("/v1/instances/{id}"), Some(&owner.access)).await.expect(200);
            *states.entry(r.body["state"].as_str().expect("state").to_string()).or_default() += 1;
        }
        backup_row(&app, &instance_ids[0], &org, "completed", 1000).await;
        backup_row(&app, &instance_ids[0], &org, "completed", 234).await;
        backup_row(&app, &instance_ids[1], &org, "failed", 0).await;

        let m = metrics(&app, &admin.access).await;
        assert_eq!(m["users"], json!({"total": 3, "admins": 1, "suspended": 1, "mfa_enabled": 0}));
        // Three personal organizations and one created.
        assert_eq!(m["organizations"]["total"], 4);
        assert_eq!(m["nodes"], json!({"total": 2, "online": 1, "offline": 1, "cordoned": 0}));
        assert_eq!(m["instances"]["total"], 2);
        assert_eq!(m["instances"]["by_state"], json!(states));
        assert_eq!(m["backups"], json!({"total": 3, "by_status": {"completed": 2, "failed": 1}, "size_bytes": 1234}));
        // The admin's and the owner's login sessions (suspension ended the other's).
        assert_eq!(m["sessions"]["active"], 2);
        assert!(m["generated_at"].is_string());

        app.get("/v1/admin/metrics", Some(&owner.access)).await.expect_error(403, "FORBIDDEN");
        app.get("/v1/admin/metrics", None).await.expect_error(401, "UNAUTHORIZED");
    }

    async fn log_settings_are_validated_stored_and_enforced(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("user@example.com").await;
        let r = app.get("/v1/admin/settings/logs", Some(&admin.access)).await.expect(200);
        assert_eq!(r.body["level"], "info");
        assert_eq!(r.body["audit_retention_days"], Value::Null);
        // The test harness installs no tracing subscriber of its own: nothing to reload.
        assert_eq!(r.body["runtime_reload"], false);

        for (body, field) in [
            (json!({"level": ""}), "level"),
            (json!({"level": "shardlyn_panel=loud"}), "level"),
            (json!({"audit_retention_days": 0}), "audit_retention_days"),
            (json!({"audit_retention_days": 3651}), "audit_retention_days"),
            (json!({"audit_retention_days": -5}), "audit_retention_days"),
        ] {
            let r = app.put("/v1/admin/settings/logs", Some(&admin.access), body).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{}", r.text);
        }
        app.put("/v1/admin/settings/logs", Some(&admin.access), json!({"verbosity": 3}))
            .await
            .expect_error(400, "BAD_REQUEST");
        app.put("/v1/admin/settings/logs", Some(&user.access), json!({"level": "debug"}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.get("/v1/admin/settings/logs", Some(&user.access)).await.expect_error(403, "FORBIDDEN");

        // Old audit entries go as soon as a retention is set; recent ones stay.
        let old = shardlyn_panel::db::now_ms() - 40 * 24 * 3600 * 1000;
        for (id, at) in [("old-1", old), ("old-2", old - 1)] {
            sqlx::query("INSERT INTO audit_logs (id, at, action, method, path, status, result) VALUES ($1, $2, 'test.old', 'POST', '/v1/x', 200, 'success')")
                .bind(id)
                .bind(at)
                .execute(&app.state.db.pool)
                .await
                .expect("insert audit entry");
        }
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_logs WHERE action = 'test.old'")
                .fetch_one(&app.state.db.pool)
                .await
                .expect("count")
        };
        let r = app
            .put("/v1/admin/settings/logs", Some(&admin.access), json!({"level": " shardlyn_panel=debug,info ", "audit_retention_days": 60}))
            .await
            .expect(200);
        assert_eq!(r.body["audit_logs_pruned"], 0);
        assert_eq!(count().await, 2);
        let r = app
            .put("/v1/admin/settings/logs", Some(&admin.access), json!({"audit_retention_days": 30}))
            .await
            .expect(200);
        assert_eq!(r.body["level"], "shardlyn_panel=debug,info");
        assert_eq!(r.body["audit_retention_days"], 30);
        assert_eq!(r.body["audit_logs_pruned"], 2);
        assert_eq!(count().await, 0);
        let recent: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_logs")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
        assert!(recent > 0, "today's entries are kept");

        let r = app.get("/v1/admin/settings/logs", Some(&admin.access)).await.expect(200);
        assert_eq!(r.body["level"], "shardlyn_panel=debug,info");
        assert_eq!(r.body["audit_retention_days"], 30);
        let r = app.put("/v1/admin/settings/logs", Some(&admin.access), json!({"audit_retention_days": null})).await.expect(200);
        assert_eq!(r.body["audit_retention_days"], Value::Null);
        assert_eq!(r.body["level"], "shardlyn_panel=debug,info");
    }
}

both_engines! {
    /// Without Redis the panel is one replica: this process, holding the job lease and
    /// the agents connected to it. Only platform admins see the list.
    async fn one_panel_is_one_replica_holding_its_agents(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let (config, dir) = shardlyn_tests::agent::register_node(&app, &admin.access).await;
        let node = config.node_id.clone();
        let agent = shardlyn_tests::agent::LocalAgent::start(config, dir.path());
        let name = shardlyn_tests::agent::wait_node(&app, &admin.access, &node, "online").await["name"].clone();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let list = loop {
            let list = app.get("/v1/admin/replicas", t).await.expect(200).body;
            if list["data"][0]["runs_jobs"] == true {
                break list;
            }
            assert!(tokio::time::Instant::now() < deadline, "never took the job lease: {list}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let replicas = list["data"].as_array().expect("data");
        assert_eq!(replicas.len(), 1, "{list}");
        let me = &replicas[0];
        assert_eq!(me["id"], app.state.replica_id.as_str());
        assert_eq!(me["this"], true);
        assert!(me["url"].is_null(), "no replica listener without Redis");
        assert_eq!(me["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(me["agents"], json!([{"node_id": node, "name": name}]), "{list}");

        let member = app.register("notadmin@example.com").await;
        app.get("/v1/admin/replicas", Some(&member.access)).await.expect_error(403, "FORBIDDEN");
        app.get("/v1/admin/replicas", None).await.expect_error(401, "UNAUTHORIZED");
        agent.stop().await;
    }
}
