//! Rate limits: headers on limited routes, 429 with Retry-After, per-caller counting,
//! counters shared through Redis between panel replicas (and kept apart from another
//! panel on the same Redis), and callers counted by address until their credential is
//! verified, in a table that stays bounded.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use futures::StreamExt;
use serde_json::json;
use shardlyn_panel::ratelimit::MAX_KEYS;
use shardlyn_tests::console::Console;
use shardlyn_tests::{PASSWORD, TestApp, both_engines, redis_url, spawn_app_with};
use tower::ServiceExt;

/// A bearer token nobody issued: JWT-shaped or API-token-shaped, never the same twice.
fn garbage_token(i: usize) -> String {
    let r = || uuid::Uuid::new_v4().simple().to_string();
    if i.is_multiple_of(2) {
        format!("{}.{}.{}", r(), r(), r())
    } else {
        format!("shardlyn_api_{}{}", r(), r())
    }
}

/// `GET /v1/users/me` with `token` over a real socket, from `forwarded` when given (the
/// app must trust 127.0.0.1 as a proxy); the status.
async fn me_status(app: &TestApp, token: &str, forwarded: Option<&str>) -> u16 {
    let mut req = app
        .client
        .get(format!("{}/v1/users/me", app.base))
        .bearer_auth(token);
    if let Some(ip) = forwarded {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.expect("request").status().as_u16()
}

/// How many of `n` requests with distinct garbage bearer tokens got each of 401 and 429
/// (16 in flight over real sockets).
async fn garbage_over_sockets(app: &TestApp, n: usize) -> (usize, usize) {
    let statuses: Vec<u16> = futures::stream::iter(0..n)
        .map(|i| async move { me_status(app, &garbage_token(i), None).await })
        .buffer_unordered(16)
        .collect()
        .await;
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    assert_eq!(count(401) + count(429), n, "{statuses:?}");
    (count(401), count(429))
}

/// A random address in 2001:db8::/32 (documentation prefix), so tests sharing a Redis do
/// not share a bucket.
fn random_v6() -> String {
    let b = uuid::Uuid::new_v4();
    let b = b.as_bytes();
    format!("2001:db8:{:x}{:02x}:{:x}{:02x}::1", b[0], b[1], b[2], b[3])
}

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
        // Another session of the same user draws from the user's budget; another user
        // has their own; health is never limited.
        let again = app.post("/v1/auth/login", None, json!({"email": "rl@example.com", "password": PASSWORD})).await.expect(200);
        let again = again.body["access_token"].as_str().expect("access");
        app.get("/v1/users/me", Some(again)).await.expect_error(429, "RATE_LIMITED");
        let other = app.register("rl-other@example.com").await;
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

    async fn garbage_bearer_tokens_count_as_their_address(engine) {
        let app = spawn_app_with(engine, |c| {
            c.rate_limit.api_requests = 50;
            c.rate_limit.api_window_secs = 86_400;
        })
        .await;
        // A user and an API token verified before the flood keep their own budgets.
        let user = app.register("flood@example.com").await;
        let api = app.api_token(&user.access, "automation", None).await;
        app.get("/v1/users/me", Some(&api)).await.expect(200);

        // Exactly what is left of the address's budget answers 401 (the API token's first
        // request, before it was verified, counted there), the rest 429.
        let (unauthorized, limited) = garbage_over_sockets(&app, 3000).await;
        assert_eq!((unauthorized, limited), (49, 2951));
        // The table holds the callers, not the tokens: the login and API buckets of the
        // address, the user's and the API token's.
        let keys = app.state.limiter.local_keys().expect("in-process table");
        assert!(keys <= 4, "{keys} keys after 3,000 garbage tokens");

        // The verified callers were not starved by the flood from their address.
        app.get("/v1/users/me", Some(&user.access)).await.expect(200);
        app.get("/v1/users/me", Some(&api)).await.expect(200);
    }
}

/// 100,000 distinct garbage bearer tokens from one address, in process through the API's
/// whole middleware stack (sockets would make this minutes): they all end in 429 after
/// the budget and the table stays bounded. The in-process table does not depend on the
/// database, so SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_garbage_tokens_leave_the_table_bounded() {
    let app = spawn_app_with(shardlyn_tests::Engine::Sqlite, |c| {
        c.rate_limit.api_requests = 50;
        c.rate_limit.api_window_secs = 86_400;
    })
    .await;
    let api = shardlyn_panel::app::api(app.state.clone());
    let peer = SocketAddr::from(([127, 0, 0, 1], 40_000));
    let statuses: Vec<u16> = futures::stream::iter(0..100_000)
        .map(|i| {
            let api = api.clone();
            async move {
                let mut req = axum::http::Request::get("/v1/users/me")
                    .header("authorization", format!("Bearer {}", garbage_token(i)))
                    .body(Body::empty())
                    .expect("request");
                req.extensions_mut().insert(ConnectInfo(peer));
                api.oneshot(req).await.expect("answer").status().as_u16()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    assert_eq!((count(401), count(429)), (50, 99_950));
    let keys = app.state.limiter.local_keys().expect("in-process table");
    assert!(
        keys == 1 && keys < MAX_KEYS,
        "{keys} keys after 100,000 garbage tokens"
    );
}

/// Replicas share a PostgreSQL database and Redis (SQLite with `redis_url` is refused);
/// another panel on the same Redis server but its own database counts apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_shares_limits_between_replicas() {
    let engine = shardlyn_tests::Engine::Postgres;
    let adjust = |c: &mut shardlyn_panel::config::Config| {
        c.redis_url = redis_url();
        c.rate_limit.api_requests = 4;
        c.rate_limit.api_window_secs = 86_400;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    };
    let mut replicas = shardlyn_tests::replicas(2, adjust).await;
    let b = replicas.pop().expect("two replicas");
    let a = replicas.pop().expect("two replicas");
    let other = spawn_app_with(engine, adjust).await;
    // Made-up bearers from one (forwarded) address on both replicas: one caller, one
    // budget shared through Redis, whatever the header says.
    let ip = random_v6();
    for (i, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        assert_eq!(me_status(app, &garbage_token(i), Some(&ip)).await, 401);
    }
    assert_eq!(me_status(&b, &garbage_token(4), Some(&ip)).await, 429);
    assert_eq!(me_status(&a, &garbage_token(5), Some(&ip)).await, 429);
    // The other panel (another cluster id) has spent nothing of its own budget for
    // that caller, and spends it alone.
    for i in 0..4 {
        assert_eq!(
            me_status(&other, &garbage_token(10 + i), Some(&ip)).await,
            401
        );
    }
    assert_eq!(me_status(&other, &garbage_token(14), Some(&ip)).await, 429);
    // The same /64 is the same caller; a verified user from there has their own budget.
    let neighbour = ip.replace("::1", "::2");
    assert_eq!(
        me_status(&a, &garbage_token(6), Some(&neighbour)).await,
        429
    );
    let user = a.register("rl-redis@example.com").await;
    let access = user.access.as_str();
    assert_eq!(me_status(&a, access, Some(&ip)).await, 200);
}
