//! GitHub login (`/v1/auth/github`, its callback, and the login-code exchange).
//!
//! GitHub cannot run on this machine, so these tests use `FakeGithub`: a FAKE, an axum
//! server on 127.0.0.1:0 inside the test that speaks GitHub's documented wire formats for
//! the OAuth web application flow (docs.github.com, "Authorizing OAuth apps") and the REST
//! `GET /user` and `GET /user/emails`. Its `/login/oauth/authorize` approves at once as the
//! account the test chose (standing in for the user clicking "Authorize"), remembering the
//! PKCE challenge; `/login/oauth/access_token` checks the client id and secret, the code,
//! the redirect URI and the PKCE verifier against the challenge, and answers refusals the
//! way GitHub does: `200 OK` with `{"error": ...}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shardlyn_panel::config::{GithubConfig, Registration, Secret};
use shardlyn_tests::{PASSWORD, Resp, TestApp, both_engines, spawn_app, spawn_app_with};

const CLIENT_ID: &str = "Iv1.fakeclientid";
const CLIENT_SECRET: &str = "fake-client-secret-0123456789";

/// A GitHub account of the fake: id, login, name and `(email, verified, primary)`.
#[derive(Debug, Clone)]
struct Account {
    id: u64,
    login: &'static str,
    name: Option<&'static str>,
    emails: Vec<(&'static str, bool, bool)>,
}

fn account(id: u64, login: &'static str, emails: &[(&'static str, bool, bool)]) -> Account {
    Account {
        id,
        login,
        name: None,
        emails: emails.to_vec(),
    }
}

struct Grant {
    account: Account,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct Fake {
    signed_in: Option<Account>,
    grants: HashMap<String, Grant>,
    tokens: HashMap<String, Account>,
    fail_user_api: bool,
    counter: u64,
}

type Shared = Arc<Mutex<Fake>>;

/// The fake GitHub (see the module comment).
struct FakeGithub {
    url: String,
    inner: Shared,
}

impl FakeGithub {
    async fn start() -> Self {
        let inner = Shared::default();
        let router = axum::Router::new()
            .route("/login/oauth/authorize", get(fake_authorize))
            .route("/login/oauth/access_token", post(fake_access_token))
            .route("/user", get(fake_user))
            .route("/user/emails", get(fake_emails))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake GitHub");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, inner }
    }

    /// The account that approves the next authorization.
    fn sign_in_as(&self, account: Account) {
        self.inner.lock().expect("lock").signed_in = Some(account);
    }

    fn fail_user_api(&self, fail: bool) {
        self.inner.lock().expect("lock").fail_user_api = fail;
    }

    fn config(&self) -> GithubConfig {
        GithubConfig {
            client_id: CLIENT_ID.into(),
            client_secret: Secret(CLIENT_SECRET.into()),
            authorize_url: format!("{}/login/oauth/authorize", self.url),
            token_url: format!("{}/login/oauth/access_token", self.url),
            api_url: self.url.clone(),
            ..GithubConfig::default()
        }
    }
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
}

async fn fake_authorize(State(fake): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    let mut fake = fake.lock().expect("lock");
    let Some(account) = fake.signed_in.clone() else {
        return (StatusCode::UNAUTHORIZED, "nobody signed in to the fake").into_response();
    };
    if q.client_id != CLIENT_ID || q.code_challenge_method != "S256" || q.scope.is_empty() {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    }
    fake.counter += 1;
    let code = format!("fakecode{}", fake.counter);
    fake.grants.insert(
        code.clone(),
        Grant {
            account,
            challenge: q.code_challenge,
            redirect_uri: q.redirect_uri.clone(),
        },
    );
    let mut target = reqwest::Url::parse(&q.redirect_uri).expect("redirect_uri");
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q.state);
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    client_id: String,
    client_secret: String,
    code: String,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

fn oauth_error(error: &str, description: &str) -> Response {
    // GitHub answers refused token requests with 200 and an error object.
    axum::Json(json!({
        "error": error,
        "error_description": description,
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
    }))
    .into_response()
}

async fn fake_access_token(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    assert_eq!(
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "the panel asks for JSON"
    );
    let mut fake = fake.lock().expect("lock");
    if form.client_id != CLIENT_ID || form.client_secret != CLIENT_SECRET {
        return oauth_error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    // A code is good for one exchange, right or wrong.
    let Some(grant) = fake.grants.remove(&form.code) else {
        return oauth_error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return oauth_error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    let verifier = form.code_verifier.unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return oauth_error(
            "bad_verification_code",
            "The code_verifier does not match the code_challenge.",
        );
    }
    fake.counter += 1;
    let token = format!("gho_fake{}", fake.counter);
    fake.tokens.insert(token.clone(), grant.account);
    axum::Json(
        json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}),
    )
    .into_response()
}

/// The account of the request's token, or the status GitHub would answer.
fn authenticated(fake: &Shared, headers: &HeaderMap) -> Result<Account, StatusCode> {
    if headers.get(header::USER_AGENT).is_none() {
        // GitHub refuses API requests without a User-Agent.
        return Err(StatusCode::FORBIDDEN);
    }
    let fake = fake.lock().expect("lock");
    if fake.fail_user_api {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| fake.tokens.get(t).cloned())
        .ok_or(StatusCode::UNAUTHORIZED)
}

fn api_error(status: StatusCode) -> Response {
    (
        status,
        axum::Json(json!({"message": status.canonical_reason(), "status": status.as_str()})),
    )
        .into_response()
}

async fn fake_user(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    match authenticated(&fake, &headers) {
        Ok(a) => axum::Json(json!({
            "login": a.login,
            "id": a.id,
            "node_id": "MDQ6VXNlcjE=",
            "type": "User",
            "name": a.name,
            "email": null,
        }))
        .into_response(),
        Err(status) => api_error(status),
    }
}

async fn fake_emails(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    match authenticated(&fake, &headers) {
        Ok(a) => axum::Json(
            a.emails
                .iter()
                .map(|(email, verified, primary)| {
                    json!({"email": email, "verified": verified, "primary": primary, "visibility": null})
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(status) => api_error(status),
    }
}

// ---- the browser's side -------------------------------------------------------------

/// A login started at the panel: GitHub's authorize URL and our cookie's value.
struct Started {
    authorize: reqwest::Url,
    cookie: String,
    set_cookie: String,
}

async fn start(app: &TestApp) -> Started {
    let r = app.get("/v1/auth/github", None).await.expect(302);
    let location = r.header("location").expect("Location");
    let set_cookie = r.header("set-cookie").expect("Set-Cookie");
    let cookie = set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("shardlyn_github_oauth="))
        .expect("our cookie")
        .to_string();
    Started {
        authorize: reqwest::Url::parse(&location).expect("absolute Location"),
        cookie,
        set_cookie,
    }
}

async fn fetch(app: &TestApp, url: &str, cookie: Option<&str>) -> Resp {
    let mut req = app.client.get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("theme=dark; shardlyn_github_oauth={c}"));
    }
    let response = req.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    Resp {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
        text,
    }
}

/// The fake approves: returns the panel callback URL it redirects to.
async fn approve(app: &TestApp, authorize: &reqwest::Url) -> String {
    let r = fetch(app, authorize.as_str(), None).await.expect(302);
    r.header("location").expect("callback Location")
}

/// The login code in the callback's redirect.
fn login_code(r: &Resp) -> String {
    let location = r.header("location").expect("Location");
    let (target, code) = location
        .split_once("#github_code=")
        .expect("code in fragment");
    assert_eq!(target, "/");
    code.to_string()
}

/// A whole login as `who`: start, approve, callback, exchange. Returns the exchange answer.
async fn github_login(app: &TestApp, fake: &FakeGithub, who: &Account) -> Resp {
    fake.sign_in_as(who.clone());
    let started = start(app).await;
    let callback = approve(app, &started.authorize).await;
    let r = fetch(app, &callback, Some(&started.cookie))
        .await
        .expect(302);
    app.post(
        "/v1/auth/github/exchange",
        None,
        json!({"code": login_code(&r)}),
    )
    .await
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count")
}

const USERS: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM users";
const IDENTITIES: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM user_identities";
const SESSIONS: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM sessions";
const CODES: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM oauth_login_codes";
const USED_STATES: &str =
    "SELECT CAST(COUNT(*) AS BIGINT) FROM oauth_states WHERE used_at IS NOT NULL";

async fn written(app: &TestApp) -> [i64; 5] {
    [
        count(app, USERS).await,
        count(app, IDENTITIES).await,
        count(app, SESSIONS).await,
        count(app, CODES).await,
        count(app, USED_STATES).await,
    ]
}

async fn spawn_with_github(engine: shardlyn_tests::Engine, fake: &FakeGithub) -> TestApp {
    let config = fake.config();
    spawn_app_with(engine, move |c| c.github = config).await
}

fn octocat() -> Account {
    Account {
        name: Some("The Octocat"),
        ..account(
            583_231,
            "octocat",
            &[
                ("octocat@example.com", true, true),
                ("octo-old@example.com", false, false),
            ],
        )
    }
}

both_engines! {
    async fn github_login_is_disabled_when_not_configured(engine) {
        let app = spawn_app(engine).await;
        app.get("/v1/auth/github", None).await.expect_error(404, "GITHUB_NOT_CONFIGURED");
        app.get("/v1/auth/github/callback?code=x&state=y", None)
            .await
            .expect_error(404, "GITHUB_NOT_CONFIGURED");
        app.post("/v1/auth/github/exchange", None, json!({"code": "shardlyn_ghc_x"}))
            .await
            .expect_error(404, "GITHUB_NOT_CONFIGURED");
    }

    async fn github_first_login_creates_the_user_and_later_logins_find_it(engine) {
        let fake = FakeGithub::start().await;
        let app = spawn_with_github(engine, &fake).await;
        fake.sign_in_as(octocat());

        let started = start(&app).await;
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/v1/auth/github", "Max-Age=600"] {
            assert!(started.set_cookie.contains(flag), "{flag}: {}", started.set_cookie);
        }
        assert!(!started.set_cookie.contains("Secure"), "plain HTTP: no Secure flag");
        assert_eq!(started.authorize.path(), "/login/oauth/authorize");
        let params: HashMap<String, String> = started.authorize.query_pairs().into_owned().collect();
        assert_eq!(params["client_id"], CLIENT_ID);
        assert_eq!(params["redirect_uri"], format!("{}/v1/auth/github/callback", app.base));
        assert_eq!(params["scope"], "read:user user:email");
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(params["code_challenge"].len(), 43);
        assert!(params["state"].len() >= 32);

        let callback = approve(&app, &started.authorize).await;
        let r = fetch(&app, &callback, Some(&started.cookie)).await.expect(302);
        assert!(r.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")), "cookie cleared");
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        let code = login_code(&r);
        let tokens = app
            .post("/v1/auth/github/exchange", None, json!({"code": code}))
            .await
            .expect(200);
        assert_eq!(tokens.body["token_type"], "Bearer");
        let access = tokens.body["access_token"].as_str().expect("access");
        assert!(tokens.body["refresh_token"].as_str().is_some());
        let me = app.get("/v1/users/me", Some(access)).await.expect(200);
        assert_eq!(me.body["email"], "octocat@example.com");
        assert_eq!(me.body["name"], "The Octocat");
        assert_eq!(me.body["is_admin"], false);
        let orgs = app.get("/v1/organizations", Some(access)).await.expect(200);
        assert_eq!(orgs.body[0]["personal"], true);
        assert_eq!(orgs.body[0]["role"], "owner");
        // The code is single use.
        app.post("/v1/auth/github/exchange", None, json!({"code": code}))
            .await
            .expect_error(401, "UNAUTHORIZED");
        app.post("/v1/auth/github/exchange", None, json!({"code": "shardlyn_ghc_forged"}))
            .await
            .expect_error(401, "UNAUTHORIZED");
        let (provider_id, login): (String, String) = sqlx::query_as(
            "SELECT provider_user_id, login FROM user_identities WHERE provider = 'github'",
        )
        .fetch_one(&app.state.db.pool)
        .await
        .expect("identity");
        assert_eq!((provider_id.as_str(), login.as_str()), ("583231", "octocat"));

        // Second login: the same user, nothing new created.
        let again = github_login(&app, &fake, &octocat()).await.expect(200);
        let me2 = app
            .get("/v1/users/me", again.body["access_token"].as_str())
            .await
            .expect(200);
        assert_eq!(me2.body["id"], me.body["id"]);
        assert_eq!(count(&app, USERS).await, 1);
        assert_eq!(count(&app, IDENTITIES).await, 1);
        let signups = count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_logs WHERE action = 'auth.github.signup'").await;
        let logins = count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_logs WHERE action = 'auth.login'").await;
        assert_eq!((signups, logins), (1, 2));
    }

    async fn github_links_existing_accounts_only_through_verified_emails(engine) {
        let fake = FakeGithub::start().await;
        let app = spawn_with_github(engine, &fake).await;
        let ada = app.register("ada@example.com").await;
        // A verified (not primary) address matching an existing account links to it.
        let gh_ada = account(1, "ada-gh", &[("ada@gh.example.org", true, true), ("Ada@Example.com", true, false)]);
        let r = github_login(&app, &fake, &gh_ada).await.expect(200);
        let me = app.get("/v1/users/me", r.body["access_token"].as_str()).await.expect(200);
        assert_eq!(me.body["id"], ada.user_id.as_str());
        assert_eq!(count(&app, USERS).await, 1);
        // The password still works.
        app.login("ada@example.com", PASSWORD).await;

        // An unverified address never proves ownership: no link, and no account made.
        let victim = app.register("victim@example.com").await;
        let before = written(&app).await;
        fake.sign_in_as(account(2, "mallory", &[("victim@example.com", false, true)]));
        let started = start(&app).await;
        let callback = approve(&app, &started.authorize).await;
        fetch(&app, &callback, Some(&started.cookie))
            .await
            .expect_error(403, "GITHUB_EMAIL_UNVERIFIED");
        let after = written(&app).await;
        assert_eq!(before[..4], after[..4], "users, identities, sessions, codes unchanged");

        // With another, verified, address the GitHub account gets its own new account.
        let gh_mallory = account(2, "mallory", &[("victim@example.com", false, true), ("mallory@example.net", true, false)]);
        let r = github_login(&app, &fake, &gh_mallory).await.expect(200);
        let me = app.get("/v1/users/me", r.body["access_token"].as_str()).await.expect(200);
        assert_eq!(me.body["email"], "mallory@example.net");
        assert_ne!(me.body["id"], victim.user_id.as_str());
        let victim_links: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM user_identities WHERE user_id = $1")
            .bind(&victim.user_id)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(victim_links, 0);
    }

    async fn github_does_not_link_an_account_whose_address_is_not_verified(engine) {
        let fake = FakeGithub::start().await;
        let app = spawn_with_github(engine, &fake).await;
        // Someone registers the address first (open registration) and never verifies it.
        app.post("/v1/auth/register", None, json!({"email": "dora@example.com", "password": PASSWORD}))
            .await
            .expect(201);
        let before = written(&app).await;
        let gh_dora = account(7, "dora", &[("dora@example.com", true, true)]);
        fake.sign_in_as(gh_dora.clone());
        let started = start(&app).await;
        let callback = approve(&app, &started.authorize).await;
        fetch(&app, &callback, Some(&started.cookie))
            .await
            .expect_error(403, "EMAIL_NOT_VERIFIED");
        let after = written(&app).await;
        assert_eq!(before[..4], after[..4], "users, identities, sessions, codes unchanged");
        // Once the mailed link was followed, the GitHub login links the account.
        let mail = app
            .mailer
            .sent()
            .into_iter()
            .find(|m| m.to == "dora@example.com" && m.subject.contains("Verify"))
            .expect("the verification mail");
        let token: String = mail
            .text
            .split_once("verify-email?token=")
            .expect("link")
            .1
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        app.post("/v1/auth/verify-email", None, json!({"token": token})).await.expect(200);
        let r = github_login(&app, &fake, &gh_dora).await.expect(200);
        let me = app.get("/v1/users/me", r.body["access_token"].as_str()).await.expect(200);
        assert_eq!(me.body["email"], "dora@example.com");
        assert_eq!(count(&app, IDENTITIES).await, 1);
    }

    async fn github_callback_refuses_bad_states_and_writes_nothing(engine) {
        let fake = FakeGithub::start().await;
        let app = spawn_with_github(engine, &fake).await;
        fake.sign_in_as(octocat());
        let started = start(&app).await;
        let other_browser = start(&app).await;
        let callback = approve(&app, &started.authorize).await;
        let url = reqwest::Url::parse(&callback).expect("url");
        let with_state = |state: Option<&str>| {
            let mut u = url.clone();
            let pairs: Vec<(String, String)> = url.query_pairs().into_owned().filter(|(k, _)| k != "state").collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
            if let Some(s) = state {
                u.query_pairs_mut().append_pair("state", s);
            }
            u.to_string()
        };
        let before = written(&app).await;
        for (what, target, cookie) in [
            ("missing cookie", callback.clone(), None),
            ("cookie of another browser", callback.clone(), Some(other_browser.cookie.as_str())),
            ("forged cookie", callback.clone(), Some("00ff")),
            ("missing state", with_state(None), Some(started.cookie.as_str())),
            ("unknown state", with_state(Some("deadbeef")), Some(started.cookie.as_str())),
        ] {
            let r = fetch(&app, &target, cookie).await;
            assert_eq!((r.status, r.body["code"].as_str()), (400, Some("INVALID_OAUTH_STATE")), "{what}: {}", r.text);
        }
        assert_eq!(written(&app).await, before, "refusals write nothing");
        // The state survived the refusals: the right browser still completes the login.
        fetch(&app, &callback, Some(&started.cookie)).await.expect(302);
        let after_login = written(&app).await;
        // Reused state: refused.
        fetch(&app, &callback, Some(&started.cookie))
            .await
            .expect_error(400, "INVALID_OAUTH_STATE");
        assert_eq!(written(&app).await, after_login);

        // Expired state: refused.
        let late = start(&app).await;
        let late_callback = approve(&app, &late.authorize).await;
        sqlx::query("UPDATE oauth_states SET expires_at = $1 WHERE used_at IS NULL")
            .bind(chrono::Utc::now().timestamp_millis() - 1)
            .execute(&app.state.db.pool)
            .await
            .expect("expire");
        let before = written(&app).await;
        fetch(&app, &late_callback, Some(&late.cookie))
            .await
            .expect_error(400, "INVALID_OAUTH_STATE");
        assert_eq!(written(&app).await, before);
    }

    async fn github_refusals_are_clean_errors(engine) {
        let fake = FakeGithub::start().await;
        let app = spawn_with_github(engine, &fake).await;
        fake.sign_in_as(octocat());

        // PKCE: a challenge that is not our verifier's (tampered on the way) is refused.
        let started = start(&app).await;
        let mut tampered = started.authorize.clone();
        let pairs: Vec<(String, String)> = started
            .authorize
            .query_pairs()
            .into_owned()
            .map(|(k, v)| if k == "code_challenge" { (k, URL_SAFE_NO_PAD.encode(Sha256::digest(b"attacker"))) } else { (k, v) })
            .collect();
        tampered.query_pairs_mut().clear().extend_pairs(pairs);
        let callback = approve(&app, &tampered).await;
        fetch(&app, &callback, Some(&started.cookie))
            .await
            .expect_error(400, "GITHUB_AUTH_FAILED");

        // A code GitHub does not know.
        let started = start(&app).await;
        let callback = approve(&app, &started.authorize).await;
        let forged = callback.replace("code=fakecode", "code=forged");
        fetch(&app, &forged, Some(&started.cookie))
            .await
            .expect_error(400, "GITHUB_AUTH_FAILED");

        // The user declined on GitHub.
        let started = start(&app).await;
        let state = started.authorize.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).expect("state");
        fetch(&app, &format!("{}/v1/auth/github/callback?error=access_denied&state={state}", app.base), Some(&started.cookie))
            .await
            .expect_error(403, "GITHUB_DENIED");

        // GitHub's API failing.
        fake.fail_user_api(true);
        let started = start(&app).await;
        let callback = approve(&app, &started.authorize).await;
        fetch(&app, &callback, Some(&started.cookie))
            .await
            .expect_error(502, "GITHUB_UNAVAILABLE");
        fake.fail_user_api(false);
        assert_eq!(count(&app, USERS).await, 0);
        assert_eq!(count(&app, CODES).await, 0);

        // A panel with the wrong client secret: GitHub's error JSON becomes a 502.
        let mut config = fake.config();
        config.client_secret = Secret("wrong-secret".into());
        let misconfigured = spawn_app_with(engine, move |c| c.github = config).await;
        let started = start(&misconfigured).await;
        let callback = approve(&misconfigured, &started.authorize).await;
        fetch(&misconfigured, &callback, Some(&started.cookie))
            .await
            .expect_error(502, "GITHUB_ERROR");
    }

    async fn github_login_of_an_mfa_user_needs_the_second_factor(engine) {
        let fake = FakeGithub::start().await;
        let app = spawn_with_github(engine, &fake).await;
        let s = app.register("mfa@example.com").await;
        let enroll = app.post("/v1/auth/mfa/enroll", Some(&s.access), json!({})).await.expect(200);
        let secret = enroll.body["secret"].as_str().expect("secret").to_string();
        app.post("/v1/auth/mfa/verify", Some(&s.access), json!({"code": oathtool(&secret)}))
            .await
            .expect(200);

        let gh = account(7, "mfa-user", &[("mfa@example.com", true, true)]);
        let r = github_login(&app, &fake, &gh).await.expect(200);
        assert_eq!(r.body["mfa_required"], true, "{}", r.text);
        assert!(r.body.get("access_token").is_none(), "{}", r.text);
        let challenge = r.body["challenge_token"].as_str().expect("challenge").to_string();
        sqlx::query("UPDATE mfa_secrets SET last_step = NULL WHERE user_id = $1")
            .bind(&s.user_id)
            .execute(&app.state.db.pool)
            .await
            .expect("allow the current code again");
        let done = app
            .post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": oathtool(&secret)}))
            .await
            .expect(200);
        let me = app.get("/v1/users/me", done.body["access_token"].as_str()).await.expect(200);
        assert_eq!(me.body["id"], s.user_id.as_str());
    }

    async fn github_respects_closed_registration_and_suspension(engine) {
        let fake = FakeGithub::start().await;
        let config = fake.config();
        let app = spawn_app_with(engine, move |c| {
            c.github = config;
            c.auth.registration = Registration::Closed;
        })
        .await;
        let admin = app.bootstrap_admin().await;
        // No account to link to: a closed panel makes none.
        fake.sign_in_as(account(10, "stranger", &[("stranger@example.com", true, true)]));
        let started = start(&app).await;
        let callback = approve(&app, &started.authorize).await;
        fetch(&app, &callback, Some(&started.cookie))
            .await
            .expect_error(403, "REGISTRATION_CLOSED");
        assert_eq!(count(&app, USERS).await, 1);
        assert_eq!(count(&app, IDENTITIES).await, 0);

        // Existing accounts still link through a verified email.
        let r = github_login(&app, &fake, &account(11, "the-admin", &[("admin@example.com", true, true)]))
            .await
            .expect(200);
        let me = app.get("/v1/users/me", r.body["access_token"].as_str()).await.expect(200);
        assert_eq!(me.body["id"], admin.user_id.as_str());

        // Suspended users are refused, linked or not.
        let bob = app
            .post("/v1/users", Some(&admin.access), json!({"email": "bob@example.com", "password": PASSWORD}))
            .await
            .expect(201);
        let bob_id = bob.body["id"].as_str().expect("id").to_string();
        app.post(&format!("/v1/admin/users/{bob_id}/suspend"), Some(&admin.access), json!({}))
            .await
            .expect(200);
        fake.sign_in_as(account(12, "bob", &[("bob@example.com", true, true)]));
        let started = start(&app).await;
        let callback = approve(&app, &started.authorize).await;
        fetch(&app, &callback, Some(&started.cookie))
            .await
            .expect_error(403, "FORBIDDEN");
        assert_eq!(count(&app, CODES).await, 1, "only the admin's login code");
        assert_eq!(count(&app, IDENTITIES).await, 1, "the suspended account was not linked");
    }
}

/// The current TOTP code of a base32 secret, from oathtool (independent of the panel).
fn oathtool(secret: &str) -> String {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", secret])
        .output()
        .expect("oathtool runs (scripts/dev-services installs it)");
    assert!(out.status.success(), "oathtool failed: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}
