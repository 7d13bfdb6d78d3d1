//! The audit log records every mutating request; admins filter, page and export it.

use serde_json::json;
use shardlyn_tests::{both_engines, spawn_app};

both_engines! {
    async fn mutations_are_recorded_with_actor_and_result(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let org = app.create_org(&admin.access, "Audited").await;
        app.put(&format!("/v1/organizations/{org}"), Some(&admin.access), json!({"name": ""})).await.expect(400);
        app.post("/v1/auth/login", None, json!({"email": "admin@example.com", "password": "wrong-password"})).await.expect(401);
        app.get("/v1/users/me", Some(&admin.access)).await.expect(200);

        let all = app.get("/v1/admin/audit-logs?per_page=100", Some(&admin.access)).await.expect(200);
        let entries = all.body["data"].as_array().expect("entries");
        assert!(entries.iter().all(|e| e["method"] != "GET"), "reads are not audited");
        let created = entries.iter().find(|e| e["action"] == "POST /v1/organizations").expect("org create entry");
        assert_eq!(created["actor_email"], "admin@example.com");
        assert_eq!(created["status"], 201);
        assert_eq!(created["result"], "success");
        assert_eq!(created["ip"], "127.0.0.1");
        let failed = entries.iter().find(|e| e["action"] == "PUT /v1/organizations/{orgId}").expect("update entry");
        assert_eq!(failed["result"], "failure");
        assert_eq!(failed["path"], format!("/v1/organizations/{org}"));
        let login = entries.iter().find(|e| e["path"] == "/v1/auth/login" && e["status"] == 401).expect("failed login");
        assert_eq!(login["actor_id"], admin.user_id.as_str());

        let filtered = app.get("/v1/admin/audit-logs?action=organizations&per_page=1", Some(&admin.access)).await.expect(200);
        assert_eq!(filtered.body["pagination"]["total"], 2);
        assert_eq!(filtered.body["data"].as_array().map(Vec::len), Some(1));
        let by_actor = app.get("/v1/admin/audit-logs?actor=admin%40example.com", Some(&admin.access)).await.expect(200);
        assert!(by_actor.body["pagination"]["total"].as_i64().is_some_and(|n| n >= 3));
        let future = app.get("/v1/admin/audit-logs?since=2999-01-01T00:00:00Z", Some(&admin.access)).await.expect(200);
        assert_eq!(future.body["pagination"]["total"], 0);
        let past = app.get("/v1/admin/audit-logs?until=2000-01-01T00:00:00Z", Some(&admin.access)).await.expect(200);
        assert_eq!(past.body["pagination"]["total"], 0);
    }

    async fn export_as_csv_and_json(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        app.post("/v1/organizations", Some(&admin.access), json!({"name": "=HYPERLINK(\"x\")"})).await.expect(201);
        let csv = app.get("/v1/admin/audit-logs/export?format=csv", Some(&admin.access)).await.expect(200);
        assert!(csv.header("content-type").is_some_and(|c| c.starts_with("text/csv")));
        let mut lines = csv.text.lines();
        assert_eq!(lines.next(), Some("id,at,actor_id,actor_email,action,method,path,target,ip,status,result"));
        assert!(lines.count() >= 2);
        let json_export = app.get("/v1/admin/audit-logs/export?format=json&action=organizations", Some(&admin.access)).await.expect(200);
        assert_eq!(json_export.body.as_array().map(Vec::len), Some(1));
        app.get("/v1/admin/audit-logs/export?format=xml", Some(&admin.access)).await.expect_error(400, "VALIDATION_ERROR");
    }
}

both_engines! {
    async fn forwarded_for_is_honoured_only_from_trusted_proxies(engine) {
        let behind = shardlyn_tests::spawn_app_with(engine, |c| {
            c.trusted_proxies = vec!["127.0.0.1".into()];
            c.rate_limit.login_per_minute = 2;
        })
        .await;
        let direct = spawn_app(engine).await;
        for app in [&behind, &direct] {
            let admin = app.bootstrap_admin().await;
            app.client
                .post(format!("{}/v1/organizations", app.base))
                .bearer_auth(&admin.access)
                .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
                .json(&json!({"name": "Proxied"}))
                .send()
                .await
                .expect("request");
            let logs = app.get("/v1/admin/audit-logs?action=organizations", Some(&admin.access)).await.expect(200);
            let expected = if std::ptr::eq(app, &behind) { "198.51.100.7" } else { "127.0.0.1" };
            assert_eq!(logs.body["data"][0]["ip"], expected);
        }
        // Behind the proxy, each forwarded client has its own login budget.
        let login = |ip: &'static str| {
            behind
                .client
                .post(format!("{}/v1/auth/login", behind.base))
                .header("x-forwarded-for", ip)
                .json(&json!({"email": "nobody@example.com", "password": "wrong-password-1"}))
                .send()
        };
        for _ in 0..2 {
            assert_eq!(login("203.0.113.1").await.expect("login").status(), 401);
        }
        assert_eq!(login("203.0.113.1").await.expect("login").status(), 429);
        assert_eq!(login("203.0.113.2").await.expect("login").status(), 401);
    }
}

both_engines! {
    async fn tokens_in_request_paths_are_not_stored(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let org = app.create_org(&admin.access, "Tokens").await;
        app.post(&format!("/v1/organizations/{org}/members/invite"), Some(&admin.access), json!({"email": "tia@example.com", "role": "viewer"}))
            .await
            .expect(201);
        let mail = app.mailer.sent().into_iter().find(|m| m.to == "tia@example.com").expect("invite mail");
        let (_, rest) = mail.text.split_once("/invites/").expect("invite link");
        let token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        assert_eq!(token.len(), 64);
        let tia = app.register("tia@example.com").await;
        // A wrong token, a wrong method on the route, a mistyped route, then the right one.
        let wrong = "f".repeat(64);
        app.post(&format!("/v1/invites/{wrong}/accept"), Some(&tia.access), json!({})).await.expect(404);
        app.put(&format!("/v1/invites/{token}/accept"), Some(&tia.access), json!({})).await.expect(405);
        app.post(&format!("/v1/invites/{token}/acept"), Some(&tia.access), json!({})).await.expect(404);
        app.post(&format!("/v1/invites/{token}/accept"), Some(&tia.access), json!({})).await.expect(200);

        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as("SELECT path, action, target FROM audit_logs")
            .fetch_all(&app.state.db.pool)
            .await
            .expect("audit rows");
        for (path, action, target) in &rows {
            for secret in [&token, &wrong] {
                assert!(!path.contains(secret.as_str()), "{path}");
                assert!(!action.contains(secret.as_str()), "{action}");
                assert!(!target.as_deref().unwrap_or_default().contains(secret.as_str()), "{target:?}");
            }
        }
        // The matched route keeps its placeholder; an unmatched path loses the token-like part.
        let accepts = rows.iter().filter(|(p, _, _)| p == "/v1/invites/{token}/accept").count();
        assert!(accepts >= 2, "{rows:#?}");
        assert!(rows.iter().any(|(p, _, _)| p == "/v1/invites/{redacted}/acept"), "{rows:#?}");
    }
}
