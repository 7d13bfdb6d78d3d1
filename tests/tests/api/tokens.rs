//! API tokens: shown once, stored hashed, accepted as bearer, expiring, revoked at once.

use serde_json::json;
use sha2::Digest;
use shardlyn_tests::{both_engines, spawn_app};

both_engines! {
    async fn token_is_shown_once_and_works_as_bearer(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("tok@example.com").await;
        let created = app
            .post("/v1/api-tokens", Some(&s.access), json!({"name": "github-actions", "expires_in": 2_592_000}))
            .await
            .expect(201);
        let token = created.body["token"].as_str().expect("token").to_string();
        assert!(token.starts_with("shardlyn_api_"));
        assert_eq!(token.len(), "shardlyn_api_".len() + 64);
        assert!(created.body["expires_at"].as_str().is_some());
        insta::assert_json_snapshot!("api_token_created", created.body, {
            ".id" => "[id]", ".token" => "[token]", ".expires_at" => "[time]", ".created_at" => "[time]",
        });

        // Stored as SHA-256 only.
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("row");
        assert_eq!(stored, hex::encode(sha2::Sha256::digest(token.as_bytes())));
        assert_ne!(stored, token);

        let me = app.get("/v1/users/me", Some(&token)).await.expect(200);
        assert_eq!(me.body["email"], "tok@example.com");

        let list = app.get("/v1/api-tokens", Some(&s.access)).await.expect(200);
        let listed = &list.body[0];
        assert_eq!(listed["name"], "github-actions");
        assert!(listed.get("token").is_none(), "list leaks the secret: {listed}");
        assert!(!list.text.contains(&token[13..]), "list leaks the secret");
        assert!(listed["last_used_at"].as_str().is_some(), "last_used_at kept");
    }

    async fn api_tokens_cannot_manage_tokens_or_passwords(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("auto@example.com").await;
        let token = app.api_token(&s.access, "ci", None).await;
        app.post("/v1/api-tokens", Some(&token), json!({"name": "more"}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.post("/v1/users/me/password", Some(&token), json!({"current_password": "x", "new_password": "yyyyyyyyyyyy"}))
            .await
            .expect_error(403, "FORBIDDEN");
        // But it reaches organization routes.
        app.get("/v1/organizations", Some(&token)).await.expect(200);
    }

    async fn deleted_token_stops_at_once(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("del@example.com").await;
        let token = app.api_token(&s.access, "temp", None).await;
        let id = app.get("/v1/api-tokens", Some(&s.access)).await.body[0]["id"].as_str().expect("id").to_string();
        app.get("/v1/users/me", Some(&token)).await.expect(200);
        app.delete(&format!("/v1/api-tokens/{id}"), Some(&s.access)).await.expect(204);
        app.get("/v1/users/me", Some(&token)).await.expect_error(401, "UNAUTHORIZED");
        app.delete(&format!("/v1/api-tokens/{id}"), Some(&s.access)).await.expect_error(404, "NOT_FOUND");
    }

    async fn another_users_token_is_not_found(engine) {
        let app = spawn_app(engine).await;
        let a = app.register("a@example.com").await;
        let b = app.register("b@example.com").await;
        app.api_token(&a.access, "mine", None).await;
        let id = app.get("/v1/api-tokens", Some(&a.access)).await.body[0]["id"].as_str().expect("id").to_string();
        assert_eq!(app.get("/v1/api-tokens", Some(&b.access)).await.body, json!([]));
        app.delete(&format!("/v1/api-tokens/{id}"), Some(&b.access)).await.expect_error(404, "NOT_FOUND");
    }

    async fn expired_token_is_refused(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("exp@example.com").await;
        let token = app.api_token(&s.access, "short", Some(60)).await;
        app.get("/v1/users/me", Some(&token)).await.expect(200);
        sqlx::query("UPDATE api_tokens SET expires_at = $1")
            .bind(chrono::Utc::now().timestamp_millis() - 1)
            .execute(&app.state.db.pool)
            .await
            .expect("expire");
        // The row was edited behind the panel's back: drop its cached callers (their own
        // expiry check is unit-tested in auth::cache).
        app.state.auth_cache.invalidate_all();
        let r = app.get("/v1/users/me", Some(&token)).await.expect_error(401, "UNAUTHORIZED");
        assert_eq!(r.body["error"], "API token expired");
    }

    async fn token_input_is_validated(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("val@example.com").await;
        for body in [
            json!({"name": ""}),
            json!({"name": "   "}),
            json!({"name": "x".repeat(101)}),
            json!({"name": "ok", "expires_in": 0}),
            json!({"name": "ok", "expires_in": -5}),
            json!({"name": "ok", "expires_in": 9_999_999_999_i64}),
        ] {
            app.post("/v1/api-tokens", Some(&s.access), body).await.expect_error(400, "VALIDATION_ERROR");
        }
        app.post("/v1/api-tokens", Some(&s.access), json!({"name": 5})).await.expect_error(400, "BAD_REQUEST");
        app.post("/v1/api-tokens", Some(&s.access), json!({})).await.expect_error(400, "BAD_REQUEST");
        for forged in ["shardlyn_api_", "shardlyn_api_short", "shardlyn_api_00000000deadbeef"] {
            app.get("/v1/users/me", Some(forged)).await.expect_error(401, "UNAUTHORIZED");
        }
    }
}
