//! Pages that read the API through its typed answers, over plain HTTP: a member's
//! permission page (member permissions and the permission catalog), a permission
//! change made from it, and the reset-password form's refusal.

use reqwest::header::COOKIE;

use super::security::{set_cookie, value};
use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app};

/// The value of cookie `name` set by `r`.
fn cookie(r: &reqwest::Response, name: &str) -> String {
    let header = set_cookie(r, name).unwrap_or_else(|| panic!("no {name} cookie"));
    value(&header)
}

/// Signs in through the login form; the cookie jar and the CSRF token of the session.
pub(crate) async fn sign_in(app: &TestApp) -> (String, String) {
    let r = app
        .client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .expect("GET /login");
    let csrf = cookie(&r, "shardlyn_csrf");
    let r = app
        .client
        .post(format!("{}/login", app.base))
        .header(COOKIE, format!("shardlyn_csrf={csrf}"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "admin@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(r.status(), 303);
    let csrf = cookie(&r, "shardlyn_csrf");
    let session = cookie(&r, "shardlyn_session");
    (
        format!("shardlyn_csrf={csrf}; shardlyn_session={session}"),
        csrf,
    )
}

/// `GET path` with the cookie jar: the status and the HTML.
pub(crate) async fn page(app: &TestApp, jar: &str, path: &str) -> (u16, String) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .header(COOKIE, jar)
        .send()
        .await
        .expect("GET");
    (r.status().as_u16(), r.text().await.expect("html"))
}

#[tokio::test]
async fn the_member_page_reads_typed_permissions_and_changes_one() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let orgs = app
        .get("/v1/organizations", Some(&admin.access))
        .await
        .expect(200);
    let org = orgs.body[0]["id"].as_str().expect("org id").to_owned();
    let member = admin.user_id.clone();
    let (jar, csrf) = sign_in(&app).await;
    let path = format!("/orgs/{org}/members/{member}");

    let (status, html) = page(&app, &jar, &path).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"data-key="instances.read""#), "{html}");
    assert!(!html.contains("set-denied"), "nothing overridden yet");

    let r = app
        .client
        .post(format!("{}{path}/permissions", app.base))
        .header(COOKIE, &jar)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("key", "instances.read"),
            ("action", "deny"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 303);
    let (status, html) = page(&app, &jar, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains("set-denied"), "{html}");
}

#[tokio::test]
async fn the_reset_form_shows_the_api_refusal() {
    let app = spawn_app(Engine::Sqlite).await;
    app.bootstrap_admin().await;
    let r = app
        .client
        .get(format!("{}/reset-password?token=x", app.base))
        .send()
        .await
        .expect("GET");
    let csrf = cookie(&r, "shardlyn_csrf");
    let r = app
        .client
        .post(format!("{}/reset-password", app.base))
        .header(COOKIE, format!("shardlyn_csrf={csrf}"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("token", "0".repeat(64).as_str()),
            ("new_password", "a-long-new-password-1"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    let html = r.text().await.expect("html");
    assert!(html.contains("INVALID_TOKEN"), "{html}");
}
