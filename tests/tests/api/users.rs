//! Admin user management and suspension.

use serde_json::json;
use shardlyn_tests::{PASSWORD, both_engines, spawn_app};

both_engines! {
    async fn admin_crud_of_users(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let created = app
            .post("/v1/users", Some(&admin.access), json!({"email": "new@example.com", "password": PASSWORD, "name": "New"}))
            .await
            .expect(201);
        let id = created.body["id"].as_str().expect("id").to_string();
        assert_eq!(created.body["is_admin"], false);
        insta::assert_json_snapshot!("user", created.body, {
            ".id" => "[id]", ".created_at" => "[time]", ".updated_at" => "[time]",
        });
        app.post("/v1/users", Some(&admin.access), json!({"email": "NEW@example.com", "password": PASSWORD}))
            .await
            .expect_error(409, "CONFLICT");
        let list = app.get("/v1/users?per_page=1&page=1", Some(&admin.access)).await.expect(200);
        assert_eq!(list.body["pagination"]["total"], 2);
        assert_eq!(list.body["data"].as_array().map(Vec::len), Some(1));
        let found = app.get("/v1/users?q=new%40", Some(&admin.access)).await.expect(200);
        assert_eq!(found.body["data"][0]["email"], "new@example.com");
        app.get(&format!("/v1/users/{id}"), Some(&admin.access)).await.expect(200);

        let user = app.login("new@example.com", PASSWORD).await;
        app.delete(&format!("/v1/users/{id}"), Some(&admin.access)).await.expect(204);
        app.get(&format!("/v1/users/{id}"), Some(&admin.access)).await.expect_error(404, "NOT_FOUND");
        // A deleted user's tokens stop working on the next request.
        app.get("/v1/users/me", Some(&user.access)).await.expect_error(401, "UNAUTHORIZED");
        app.delete(&format!("/v1/users/{}", admin.user_id), Some(&admin.access)).await.expect_error(409, "CONFLICT");
    }

    async fn non_admins_are_forbidden(engine) {
        let app = spawn_app(engine).await;
        app.bootstrap_admin().await;
        let user = app.register("plain@example.com").await;
        app.get("/v1/users", Some(&user.access)).await.expect_error(403, "FORBIDDEN");
        app.get("/v1/admin/audit-logs", Some(&user.access)).await.expect_error(403, "FORBIDDEN");
        app.post("/v1/users", Some(&user.access), json!({"email": "x@example.com", "password": PASSWORD}))
            .await
            .expect_error(403, "FORBIDDEN");
    }

    async fn suspension_stops_every_credential_at_once(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("sus@example.com").await;
        let token = app.api_token(&user.access, "bot", None).await;
        app.get("/v1/users/me", Some(&token)).await.expect(200);
        let r = app
            .post(&format!("/v1/admin/users/{}/suspend", user.user_id), Some(&admin.access), json!({}))
            .await
            .expect(200);
        assert_eq!(r.body["suspended"], true);
        app.get("/v1/users/me", Some(&user.access)).await.expect_error(401, "UNAUTHORIZED");
        app.get("/v1/users/me", Some(&token)).await.expect_error(401, "UNAUTHORIZED");
        app.post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh})).await.expect(401);
        app.post("/v1/auth/login", None, json!({"email": "sus@example.com", "password": PASSWORD}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.post(&format!("/v1/admin/users/{}/unsuspend", user.user_id), Some(&admin.access), json!({}))
            .await
            .expect(200);
        app.get("/v1/users/me", Some(&token)).await.expect(200);
        app.login("sus@example.com", PASSWORD).await;
        app.post("/v1/admin/users/does-not-exist/suspend", Some(&admin.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
    }

    async fn sessions_are_listed_and_revocable(engine) {
        let app = spawn_app(engine).await;
        let a = app.register("ses@example.com").await;
        let b = app.login("ses@example.com", PASSWORD).await;
        let list = app.get("/v1/users/me/sessions", Some(&a.access)).await.expect(200);
        let sessions = list.body.as_array().expect("array");
        assert_eq!(sessions.len(), 2);
        let other = sessions.iter().find(|s| s["current"] == false).expect("other");
        app.delete(&format!("/v1/users/me/sessions/{}", other["id"].as_str().expect("id")), Some(&a.access))
            .await
            .expect(204);
        app.get("/v1/users/me", Some(&b.access)).await.expect(401);
        app.delete("/v1/users/me/sessions/unknown", Some(&a.access)).await.expect_error(404, "NOT_FOUND");
    }
}
