//! Rate limits: headers on limited routes, 429 with Retry-After, per-caller counting,
//! and counters shared through Redis between panel replicas.

use serde_json::json;
use shardlyn_tests::console::Console;
use shardlyn_tests::{both_engines, redis_url, spawn_app_with};

both_engines! {
    async fn api_limit_sends_headers_then_429(engine) {
        let app = spawn_app_with(engine, |c| {
            c.rate_limit.api_requests = 5;
            c.rate_limit.api_window_secs = 86_400;
        }).await;
        let s = app.register("rl@example.com").await;
        // Login itself used one API request (/v1/users/me) of this token.
        let mut last = None;
        for expected_remaining in (0..4).rev() {
            let r = app.get("/v1/users/me", Some(&s.access)).await.expect(200);
            assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("5"));
            assert_eq!(r.header("x-ratelimit-remaining"), Some(expected_remaining.to_string()));
            last = r.header("x-ratelimit-reset");
        }
        let reset: u64 = last.expect("reset").parse().expect("unix time");
        assert!(reset > u64::try_from(chrono::Utc::now().timestamp()).expect("now"));
        let r = app.get("/v1/users/me", Some(&s.access)).await.expect_error(429, "RATE_LIMITED");
        assert!(r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1));
        assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
        // Another caller has its own budget; health is never limited.
        let other = app.login("rl@example.com", shardlyn_tests::PASSWORD).await;
        app.get("/v1/organizations", Some(&other.access)).await.expect(200);
        let h = app.get("/health", None).await.expect(200);
        assert!(h.header("x-ratelimit-limit").is_none());
    }

    async fn login_class_is_per_ip(engine) {
        let app = spawn_app_with(engine, |c| c.rate_limit.login_per_minute = 3).await;
        for _ in 0..3 {
            let r = app.post("/v1/auth/login", None, json!({"email": "x@example.com", "password": "whatever-123"})).await.expect(401);
            assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("3"));
        }
        app.post("/v1/auth/forgot-password", None, json!({"email": "x@example.com"}))
            .await
            .expect_error(429, "RATE_LIMITED");
    }

    async fn websocket_upgrades_have_their_own_budget(engine) {
        let app = spawn_app_with(engine, |c| c.rate_limit.websocket_per_minute = 2).await;
        let s = app.register("ws-rl@example.com").await;
        let url = format!("{}/v1/instances/00000000-0000-0000-0000-000000000000/console", app.base);
        for _ in 0..2 {
            let refused = Console::connect(&url, Some(&s.access)).await.err().expect("no such instance");
            assert_eq!(refused.status, 404, "{}", refused.body);
        }
        let refused = Console::connect(&url, Some(&s.access)).await.err().expect("limited");
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert!(refused.body.contains("RATE_LIMITED"), "{}", refused.body);
        // Plain API calls of the same caller draw from another budget.
        app.get("/v1/users/me", Some(&s.access)).await.expect(200);
    }

    async fn redis_shares_limits_between_replicas(engine) {
        let adjust = |c: &mut shardlyn_panel::config::Config| {
            c.redis_url = redis_url();
            c.rate_limit.api_requests = 4;
            c.rate_limit.api_window_secs = 86_400;
        };
        let a = spawn_app_with(engine, adjust).await;
        let b = spawn_app_with(engine, adjust).await;
        // The same (unknown) bearer on both replicas draws from one shared budget.
        let caller = format!("not-a-real-token-{}", uuid::Uuid::new_v4());
        for app in [&a, &b, &a, &b] {
            app.get("/v1/users/me", Some(&caller)).await.expect(401);
        }
        b.get("/v1/users/me", Some(&caller)).await.expect_error(429, "RATE_LIMITED");
        a.get("/v1/users/me", Some(&caller)).await.expect_error(429, "RATE_LIMITED");
    }
}
