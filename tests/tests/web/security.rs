//! The web panel's protections over plain HTTP: CSRF on every POST, cookie flags, the
//! session shared with the API (and revoked at logout), security and cache headers,
//! friendly error pages carrying the API's codes.

use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::Value;
use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app, spawn_app_with};

/// The `Set-Cookie` header of `name` in `r`.
pub(crate) fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value part of a `Set-Cookie` header.
pub(crate) fn value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// `GET /login`: the CSRF cookie's header and the token rendered in the form.
async fn csrf(app: &TestApp) -> (String, String) {
    let r = app
        .client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .expect("GET /login");
    assert_eq!(r.status(), 200);
    let header = set_cookie(&r, "shardlyn_csrf").expect("a CSRF cookie");
    let html = r.text().await.expect("html");
    let token = value(&header);
    assert!(
        html.contains(&format!("name=\"csrf_token\" value=\"{token}\"")),
        "the form carries the token"
    );
    (header, token)
}

async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.client.post(format!("{}{path}", app.base)).form(fields);
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    req.send().await.expect("POST")
}

async fn assert_refused(r: reqwest::Response) {
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html"),
        "a page, not JSON"
    );
    let html = r.text().await.unwrap_or_default();
    assert!(html.contains("CSRF_FAILED"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_csrf_token_and_sessions_are_shared_with_the_api() {
    let app = spawn_app(Engine::Sqlite).await;
    app.bootstrap_admin().await;
    let (csrf_header, token) = csrf(&app).await;
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(csrf_header.contains(flag), "{csrf_header} lacks {flag}");
    }
    assert!(
        !csrf_header.contains("Secure"),
        "plain HTTP on loopback: {csrf_header}"
    );
    let jar = format!("shardlyn_csrf={token}");
    let login = [("email", "admin@example.com"), ("password", PASSWORD)];

    // Without the token, with a wrong one, or cross-site: refused before anything runs.
    assert_refused(post_form(&app, "/login", None, &login).await).await;
    assert_refused(post_form(&app, "/login", Some(&jar), &login).await).await;
    let wrong = [
        ("csrf_token", "0".repeat(64)),
        ("email", "admin@example.com".into()),
        ("password", PASSWORD.into()),
    ];
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_refused(post_form(&app, "/login", Some(&jar), &wrong).await).await;
    let fields = [
        ("csrf_token", token.as_str()),
        ("email", "admin@example.com"),
        ("password", PASSWORD),
    ];
    let cross = app
        .client
        .post(format!("{}/login", app.base))
        .header(COOKIE, &jar)
        .header("origin", "https://evil.example")
        .form(&fields)
        .send()
        .await
        .expect("POST");
    assert_refused(cross).await;

    // With it: a session cookie and a fresh CSRF token.
    let r = post_form(&app, "/login", Some(&jar), &fields).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let session = set_cookie(&r, "shardlyn_session").expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    assert!(
        !session.contains("Secure"),
        "plain HTTP on loopback: {session}"
    );
    let new_csrf = value(&set_cookie(&r, "shardlyn_csrf").expect("a new CSRF token at sign-in"));
    assert_ne!(new_csrf, token);
    let jar = format!(
        "shardlyn_csrf={new_csrf}; shardlyn_session={}",
        value(&session)
    );

    // The page's JavaScript gets access tokens of that session, with the CSRF header only.
    let url = format!("{}/web/token", app.base);
    let r = app
        .client
        .post(&url)
        .header(COOKIE, &jar)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "CSRF_FAILED");
    let r = app
        .client
        .post(&url)
        .header(COOKIE, &jar)
        .header("x-csrf-token", &new_csrf)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.expect("json");
    let access = body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    app.get("/v1/users/me", Some(&access)).await.expect(200);
    // The session is listed like any other.
    let sessions = app.get("/v1/users/me/sessions", Some(&access)).await;
    if sessions.status == 200 {
        assert!(
            sessions.text.contains("\"current\":true"),
            "{}",
            sessions.text
        );
    }

    // Logout needs the token too; with it, the session is revoked for the API as well.
    assert_refused(post_form(&app, "/logout", Some(&jar), &[]).await).await;
    app.get("/v1/users/me", Some(&access)).await.expect(200);
    let r = post_form(&app, "/logout", Some(&jar), &[("csrf_token", &new_csrf)]).await;
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "shardlyn_session").is_some_and(|c| c.contains("Max-Age=0")));
    app.get("/v1/users/me", Some(&access))
        .await
        .expect_error(401, "UNAUTHORIZED");
    let r = app
        .client
        .post(&url)
        .header(COOKIE, &jar)
        .header("x-csrf-token", &new_csrf)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 401);
    // A forged session cookie is no session.
    let r = app
        .client
        .get(format!("{}/", app.base))
        .header(
            COOKIE,
            "shardlyn_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .send()
        .await
        .expect("GET /");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_assets_carry_security_and_cache_headers() {
    let app = spawn_app(Engine::Sqlite).await;
    // A new panel sends pages to the first-run form.
    let r = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .expect("GET /");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/setup");
    let r = app
        .client
        .get(format!("{}/setup", app.base))
        .send()
        .await
        .expect("GET /setup");
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' ws: wss:",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.expect("html");
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains(" style="), "no inline style");

    // Assets: versioned URLs are immutable, others revalidate with an ETag.
    let version = html
        .split("/static/app.css?v=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the stylesheet link")
        .to_owned();
    let r = app
        .client
        .get(format!("{}/static/app.css?v={version}", app.base))
        .send()
        .await
        .expect("css");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap_or("")
            .contains("immutable")
    );
    let etag = r.headers()["etag"].clone();
    let r = app
        .client
        .get(format!("{}/static/console.js", app.base))
        .send()
        .await
        .expect("js");
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        !r.headers()["cache-control"]
            .to_str()
            .unwrap_or("")
            .contains("immutable")
    );
    let r = app
        .client
        .get(format!("{}/static/app.css", app.base))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("css");
    assert_eq!(r.status(), 304);

    // Unknown pages are friendly pages with the API's code; the API stays JSON.
    for path in ["/no-such-page", "/static/nope.css"] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .header(ACCEPT, "text/html,application/xhtml+xml")
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 404, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with("text/html")
        );
        assert!(r.text().await.unwrap_or_default().contains("NOT_FOUND"));
    }
    app.get("/v1/no-such-route", None)
        .await
        .expect_error(404, "NOT_FOUND");
    let r = app
        .client
        .get(format!("{}/v1/no-such-route", app.base))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_outside_loopback() {
    let app = spawn_app_with(Engine::Sqlite, |c| {
        c.public_url = "https://panel.example.com".into();
    })
    .await;
    let r = app
        .client
        .get(format!("{}/setup", app.base))
        .send()
        .await
        .expect("GET");
    let cookie = set_cookie(&r, "shardlyn_csrf").expect("cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
}
