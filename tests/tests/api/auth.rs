//! Bootstrap, registration, login, refresh rotation and reuse, logout, lockout,
//! password change and reset.

use serde_json::json;
use shardlyn_tests::{PASSWORD, both_engines, spawn_app, spawn_app_with};

both_engines! {
    async fn bootstrap_once_then_conflict(engine) {
        let app = spawn_app(engine).await;
        let status = app.get("/v1/auth/bootstrap/status", None).await.expect(200);
        assert_eq!(status.body, json!({"needs_bootstrap": true}));
        let admin = app.bootstrap_admin().await;
        let me = app.get("/v1/users/me", Some(&admin.access)).await.expect(200);
        assert_eq!(me.body["is_admin"], true);
        assert_eq!(me.body["email"], "admin@example.com");
        let status = app.get("/v1/auth/bootstrap/status", None).await.expect(200);
        assert_eq!(status.body, json!({"needs_bootstrap": false}));
        app.post("/v1/auth/bootstrap", None, json!({"email": "second@example.com", "password": PASSWORD}))
            .await
            .expect_error(409, "CONFLICT");
        // The first admin has a personal organization they own.
        let orgs = app.get("/v1/organizations", Some(&admin.access)).await.expect(200);
        assert_eq!(orgs.body.as_array().map(Vec::len), Some(1));
        assert_eq!(orgs.body[0]["role"], "owner");
        assert_eq!(orgs.body[0]["personal"], true);
    }

    async fn concurrent_bootstraps_create_one_admin(engine) {
        let app = spawn_app(engine).await;
        let calls = (0..6).map(|i| {
            app.post(
                "/v1/auth/bootstrap",
                None,
                json!({"email": format!("admin{i}@example.com"), "password": PASSWORD}),
            )
        });
        let results = futures::future::join_all(calls).await;
        let created = results.iter().filter(|r| r.status == 201).count();
        assert_eq!(created, 1, "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
        assert!(results.iter().all(|r| r.status == 201 || r.status == 409));
    }

    async fn bootstrap_validates_input(engine) {
        let app = spawn_app(engine).await;
        app.post("/v1/auth/bootstrap", None, json!({"email": "not-an-email", "password": PASSWORD}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post("/v1/auth/bootstrap", None, json!({"email": "a@example.com", "password": "short"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        // Nothing was half-written: bootstrap is still possible.
        app.get("/v1/auth/bootstrap/status", None).await.expect(200);
        app.bootstrap_admin().await;
    }

    async fn login_returns_the_reference_shape(engine) {
        let app = spawn_app(engine).await;
        let user = app
            .post("/v1/auth/register", None, json!({"email": "Ada@Example.com", "password": PASSWORD}))
            .await
            .expect(201);
        let id = user.body["id"].as_str().expect("id");
        shardlyn_panel::users::store::mark_email_verified(&app.state.db.pool, id).await.expect("verified");
        let r = app
            .post("/v1/auth/login", None, json!({"email": "ada@example.com", "password": PASSWORD}))
            .await
            .expect(200);
        assert_eq!(r.body["expires_in"], 900);
        assert_eq!(r.body["token_type"], "Bearer");
        assert!(r.body["access_token"].as_str().is_some_and(|t| t.split('.').count() == 3));
        assert!(r.body["refresh_token"].as_str().is_some_and(|t| t.len() > 40));
        insta::assert_json_snapshot!("login_response", r.body, {
            ".access_token" => "[jwt]",
            ".refresh_token" => "[refresh]",
        });
    }

    async fn wrong_password_and_unknown_email_answer_alike(engine) {
        let app = spawn_app(engine).await;
        app.register("bob@example.com").await;
        let wrong = app
            .post("/v1/auth/login", None, json!({"email": "bob@example.com", "password": "wrong-password-1"}))
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
        let unknown = app
            .post("/v1/auth/login", None, json!({"email": "nobody@example.com", "password": "wrong-password-1"}))
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
        assert_eq!(wrong.body, unknown.body);
    }

    async fn refresh_rotates_and_reuse_revokes_the_family(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("carol@example.com").await;
        let first = app
            .post("/v1/auth/refresh", None, json!({"refresh_token": s.refresh}))
            .await
            .expect(200);
        let rotated = first.body["refresh_token"].as_str().expect("rt").to_string();
        assert_ne!(rotated, s.refresh);
        let new_access = first.body["access_token"].as_str().expect("at").to_string();
        app.get("/v1/users/me", Some(&new_access)).await.expect(200);

        // Presenting the used token again revokes the whole family...
        app.post("/v1/auth/refresh", None, json!({"refresh_token": s.refresh}))
            .await
            .expect_error(401, "UNAUTHORIZED");
        // ...so the rotated token and the access tokens of that session die too.
        app.post("/v1/auth/refresh", None, json!({"refresh_token": rotated}))
            .await
            .expect_error(401, "UNAUTHORIZED");
        app.get("/v1/users/me", Some(&new_access)).await.expect_error(401, "UNAUTHORIZED");
        // Another session of the same user is unaffected.
        let other = app.login("carol@example.com", PASSWORD).await;
        app.get("/v1/users/me", Some(&other.access)).await.expect(200);
        app.post("/v1/auth/refresh", None, json!({"refresh_token": "shardlyn_rt_forged"}))
            .await
            .expect_error(401, "UNAUTHORIZED");
    }

    async fn logout_revokes_the_session(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("dan@example.com").await;
        app.post("/v1/auth/logout", Some(&s.access), json!({})).await.expect(204);
        app.get("/v1/users/me", Some(&s.access)).await.expect_error(401, "UNAUTHORIZED");
        app.post("/v1/auth/refresh", None, json!({"refresh_token": s.refresh}))
            .await
            .expect_error(401, "UNAUTHORIZED");
    }

    async fn five_failures_lock_the_account(engine) {
        let app = spawn_app(engine).await;
        app.register("eve@example.com").await;
        for _ in 0..5 {
            app.post("/v1/auth/login", None, json!({"email": "eve@example.com", "password": "not-the-password"}))
                .await
                .expect_error(401, "INVALID_CREDENTIALS");
        }
        // Locked: even the right password gets 429, with Retry-After, and no hint.
        let locked = app
            .post("/v1/auth/login", None, json!({"email": "eve@example.com", "password": PASSWORD}))
            .await
            .expect_error(429, "ACCOUNT_LOCKED");
        let retry: u64 = locked.header("retry-after").expect("retry-after").parse().expect("secs");
        assert!((800..=900).contains(&retry), "retry-after {retry}");
        let wrong = app
            .post("/v1/auth/login", None, json!({"email": "eve@example.com", "password": "still-wrong-1"}))
            .await
            .expect_error(429, "ACCOUNT_LOCKED");
        assert_eq!(wrong.body, locked.body);
        // Once the lock has passed, the right password works and clears the counter.
        sqlx::query("UPDATE users SET locked_until = $1 WHERE email = $2")
            .bind(chrono::Utc::now().timestamp_millis() - 1)
            .bind("eve@example.com")
            .execute(&app.state.db.pool)
            .await
            .expect("expire lock");
        app.login("eve@example.com", PASSWORD).await;
    }

    async fn failures_outside_the_window_do_not_lock(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("fay@example.com").await;
        for _ in 0..4 {
            app.post("/v1/auth/login", None, json!({"email": "fay@example.com", "password": "nope-nope-nope"}))
                .await
                .expect(401);
        }
        // Age those failures past the 15-minute window.
        sqlx::query("UPDATE login_failures SET at = at - $1 WHERE user_id = $2")
            .bind(16_i64 * 60 * 1000)
            .bind(&s.user_id)
            .execute(&app.state.db.pool)
            .await
            .expect("age failures");
        for _ in 0..4 {
            app.post("/v1/auth/login", None, json!({"email": "fay@example.com", "password": "nope-nope-nope"}))
                .await
                .expect(401);
        }
        app.login("fay@example.com", PASSWORD).await;
    }

    async fn a_cached_access_token_still_expires_on_time(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("hal@example.com").await;
        let sid = session_of(&s.access);
        // Valid for one more second: the first request verifies it and caches the caller.
        let token = app
            .state
            .jwt
            .issue_at(&s.user_id, &sid, chrono::Utc::now().timestamp() - 899)
            .expect("issue");
        app.get("/v1/users/me", Some(&token)).await.expect(200);
        // The cache entry ends with the token (JWT expiry is wall-clock time), well
        // before the cache's own 30 s lifetime.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let r = app.get("/v1/users/me", Some(&token)).await;
            if r.status == 401 {
                assert_eq!(r.body["error"], "access token expired");
                break;
            }
            assert_eq!(r.status, 200, "{:?}", r.body);
            assert!(std::time::Instant::now() < deadline, "an expired token was still served from the cache");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn expired_access_token_is_refused(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("gus@example.com").await;
        let sid = session_of(&s.access);
        let old = app
            .state
            .jwt
            .issue_at(&s.user_id, &sid, chrono::Utc::now().timestamp() - 901)
            .expect("issue");
        let r = app.get("/v1/users/me", Some(&old)).await.expect_error(401, "UNAUTHORIZED");
        assert_eq!(r.body["error"], "access token expired");
        // A token signed with another key is refused as well.
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": s.user_id, "sid": sid, "iat": 0, "exp": 4_000_000_000_i64, "typ": "access"}),
            &jsonwebtoken::EncodingKey::from_secret(b"not-the-panel-secret-not-the-panel"),
        )
        .expect("encode");
        app.get("/v1/users/me", Some(&forged)).await.expect_error(401, "UNAUTHORIZED");
    }

    async fn register_respects_the_setting(engine) {
        let closed = spawn_app_with(engine, |c| c.auth.registration = shardlyn_panel::config::Registration::Closed).await;
        closed
            .post("/v1/auth/register", None, json!({"email": "h@example.com", "password": PASSWORD}))
            .await
            .expect_error(403, "FORBIDDEN");
        let invite = spawn_app_with(engine, |c| c.auth.registration = shardlyn_panel::config::Registration::InviteOnly).await;
        invite
            .post("/v1/auth/register", None, json!({"email": "h@example.com", "password": PASSWORD}))
            .await
            .expect_error(403, "FORBIDDEN");
        let open = spawn_app(engine).await;
        open.register("h@example.com").await;
        open.post("/v1/auth/register", None, json!({"email": "H@EXAMPLE.com", "password": PASSWORD}))
            .await
            .expect_error(409, "CONFLICT");
    }

    async fn password_change_revokes_other_sessions(engine) {
        let app = spawn_app(engine).await;
        let a = app.register("ivy@example.com").await;
        let b = app.login("ivy@example.com", PASSWORD).await;
        app.post("/v1/users/me/password", Some(&a.access), json!({"current_password": "wrong-wrong-wrong", "new_password": "brand-new-password"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post("/v1/users/me/password", Some(&a.access), json!({"current_password": PASSWORD, "new_password": "brand-new-password"}))
            .await
            .expect(204);
        app.get("/v1/users/me", Some(&a.access)).await.expect(200);
        app.get("/v1/users/me", Some(&b.access)).await.expect_error(401, "UNAUTHORIZED");
        app.post("/v1/auth/login", None, json!({"email": "ivy@example.com", "password": PASSWORD}))
            .await
            .expect(401);
        app.login("ivy@example.com", "brand-new-password").await;
    }

    async fn password_reset_is_single_use_and_silent_about_emails(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("jay@example.com").await;
        let known = app.post("/v1/auth/forgot-password", None, json!({"email": "jay@example.com"})).await.expect(202);
        let unknown = app.post("/v1/auth/forgot-password", None, json!({"email": "nobody@example.com"})).await.expect(202);
        assert_eq!(known.body, unknown.body);
        // Registration mailed a verification link; the reset link is the only other mail.
        let mails: Vec<_> = app.mailer.sent().into_iter().filter(|m| m.subject.contains("Reset")).collect();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].to, "jay@example.com");
        let token = mails[0]
            .text
            .split("token=")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .expect("token in mail")
            .to_string();
        app.post("/v1/auth/reset-password", None, json!({"token": token, "new_password": "short"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post("/v1/auth/reset-password", None, json!({"token": token, "new_password": "reset-password-1"}))
            .await
            .expect(200);
        // Every session ended; the token cannot be used twice.
        app.get("/v1/users/me", Some(&s.access)).await.expect(401);
        app.post("/v1/auth/reset-password", None, json!({"token": token, "new_password": "reset-password-2"}))
            .await
            .expect_error(400, "INVALID_TOKEN");
        app.login("jay@example.com", "reset-password-1").await;
    }

    async fn expired_reset_token_is_refused(engine) {
        let app = spawn_app(engine).await;
        app.register("kim@example.com").await;
        app.post("/v1/auth/forgot-password", None, json!({"email": "kim@example.com"})).await.expect(202);
        let text = &app.mailer.sent().into_iter().find(|m| m.subject.contains("Reset")).expect("reset mail").text;
        let token = text.split("token=").nth(1).and_then(|t| t.split_whitespace().next()).expect("token").to_string();
        sqlx::query("UPDATE password_resets SET expires_at = $1")
            .bind(chrono::Utc::now().timestamp_millis() - 1)
            .execute(&app.state.db.pool)
            .await
            .expect("expire");
        app.post("/v1/auth/reset-password", None, json!({"token": token, "new_password": "reset-password-1"}))
            .await
            .expect_error(400, "INVALID_TOKEN");
    }
}

fn session_of(access: &str) -> String {
    let payload = access.split('.').nth(1).expect("payload");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("claims");
    claims["sid"].as_str().expect("sid").to_string()
}
