//! Pterodactyl users imported as accounts (issue 20, `pterodactyl::users`): database mode
//! keeps the bcrypt password (made here by PHP's own `password_hash`) working, verified
//! once with bcrypt and then re-hashed with argon2id; a TOTP secret carries over (codes
//! from `oathtool`); API mode mails a set-your-password link that the reset page honours;
//! an email clash is reported and the existing account left alone; a re-run adds nothing;
//! `root_admin` becomes platform admin only when asked; a dry run writes nothing. Both
//! engines.

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use shardlyn_panel::pterodactyl::model::{Mode, User};
use shardlyn_panel::pterodactyl::users::{Outcome, UserOptions, UserOutcome, import_user};
use shardlyn_tests::{PASSWORD, TestApp, both_engines, spawn_app};

const IMPORT: &str = "import-under-test";
/// The password the user had on the old panel.
const OLD_PASSWORD: &str = "old-panel-password";
/// A base32 TOTP secret as Pterodactyl stores it (decrypted).
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DP";

/// A bcrypt hash of `password` from PHP's `password_hash` (`$2y$`), as Pterodactyl stores.
fn php_bcrypt(password: &str) -> String {
    let out = std::process::Command::new("php")
        .args([
            "-r",
            "echo password_hash($argv[1], PASSWORD_BCRYPT);",
            password,
        ])
        .output()
        .expect("php runs (scripts/dev-services installs php-cli)");
    assert!(out.status.success(), "php failed: {out:?}");
    let hash = String::from_utf8(out.stdout).expect("utf-8");
    assert!(hash.starts_with("$2y$"), "{hash}");
    hash
}

/// The current TOTP code of a base32 secret, from oathtool.
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

fn ptero_user(uuid: &str, email: &str) -> User {
    User {
        id: 7,
        uuid: uuid.into(),
        username: "ada".into(),
        email: email.into(),
        name_first: "Ada".into(),
        name_last: "Lovelace".into(),
        root_admin: false,
        password_hash: None,
        totp_secret: None,
        use_totp: false,
    }
}

fn options(mode: Mode) -> UserOptions {
    UserOptions {
        mode,
        dry_run: false,
        root_admins_become_platform_admins: false,
    }
}

async fn import(app: &TestApp, u: &User, opts: &UserOptions) -> UserOutcome {
    import_user(&app.state, IMPORT, u, opts)
        .await
        .expect("import runs")
}

async fn stored_hash(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("the account")
}

async fn count(app: &TestApp, sql: &'static str, value: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(value)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count")
}

async fn users_with_email(app: &TestApp, email: &str) -> i64 {
    count(
        app,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE email = $1",
        email,
    )
    .await
}

async fn map_rows(app: &TestApp, uuid: &str) -> i64 {
    count(
        app,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM pterodactyl_map WHERE source_uuid = $1",
        uuid,
    )
    .await
}

/// The value of cookie `name` set by `r`.
fn cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

both_engines! {
    async fn bcrypt_password_works_once_then_is_argon2id(engine) {
        let app = spawn_app(engine).await;
        let mut u = ptero_user("0b8e5a1c-1111-4000-8000-000000000001", "Ada@Example.com");
        u.password_hash = Some(php_bcrypt(OLD_PASSWORD));
        let out = import(&app, &u, &options(Mode::Database)).await;
        assert_eq!(out.status, Outcome::Imported, "{}", out.message);
        assert_eq!(out.email, "ada@example.com");
        let user_id = out.user_id.clone().expect("user id");
        assert!(out.org_id.is_some());
        assert!(stored_hash(&app, "ada@example.com").await.starts_with("$2y$"));
        // No set-your-password mail: the old password still works.
        assert!(app.mailer.sent().is_empty(), "{:?}", app.mailer.sent());

        // A wrong password fails like any other, and leaves the hash alone.
        app.post("/v1/auth/login", None, json!({"email": "ada@example.com", "password": "not-the-password"}))
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
        assert!(stored_hash(&app, "ada@example.com").await.starts_with("$2y$"));

        let s = app.login("ada@example.com", OLD_PASSWORD).await;
        assert_eq!(s.user_id, user_id);
        let me = app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        assert_eq!(me.body["name"], "Ada Lovelace");
        assert_eq!(me.body["is_admin"], false);
        let rehashed = stored_hash(&app, "ada@example.com").await;
        assert!(rehashed.starts_with("$argon2id$"), "{rehashed}");
        // Again, now through argon2id; the first session is still alive.
        app.login("ada@example.com", OLD_PASSWORD).await;
        assert_eq!(stored_hash(&app, "ada@example.com").await, rehashed);
        app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        // The personal organization the import reported is the account's.
        let orgs = app.get("/v1/organizations", Some(&s.access)).await.expect(200);
        assert!(
            orgs.text.contains(out.org_id.as_deref().expect("org")),
            "{}",
            orgs.text
        );
    }

    async fn totp_secret_carries_over(engine) {
        let app = spawn_app(engine).await;
        let mut u = ptero_user("0b8e5a1c-2222-4000-8000-000000000002", "totp@example.com");
        u.password_hash = Some(php_bcrypt(OLD_PASSWORD));
        u.use_totp = true;
        u.totp_secret = Some(TOTP_SECRET.into());
        let out = import(&app, &u, &options(Mode::Database)).await;
        assert_eq!(out.status, Outcome::Imported, "{}", out.message);
        assert!(out.message.contains("two-factor"), "{}", out.message);

        let r = app
            .post("/v1/auth/login", None, json!({"email": "totp@example.com", "password": OLD_PASSWORD}))
            .await
            .expect(200);
        assert_eq!(r.body["mfa_required"], true, "{}", r.text);
        assert!(r.body.get("access_token").is_none());
        let challenge = r.body["challenge_token"].as_str().expect("challenge");
        let tokens = app
            .post(
                "/v1/auth/mfa/challenge",
                None,
                json!({"challenge_token": challenge, "code": oathtool(TOTP_SECRET)}),
            )
            .await
            .expect(200);
        let access = tokens.body["access_token"].as_str().expect("access");
        let status = app.get("/v1/auth/mfa/status", Some(access)).await.expect(200);
        assert_eq!(status.body["enabled"], true);
    }

    async fn api_mode_mails_a_link_that_sets_the_password(engine) {
        let app = spawn_app(engine).await;
        let mut u = ptero_user("0b8e5a1c-3333-4000-8000-000000000003", "bob@example.com");
        // API mode carries no secrets, whatever the user had.
        u.use_totp = true;
        let out = import(&app, &u, &options(Mode::Api)).await;
        assert_eq!(out.status, Outcome::Imported, "{}", out.message);
        let hash = stored_hash(&app, "bob@example.com").await;
        assert!(hash.starts_with("$argon2id$"), "an unusable argon2id hash: {hash}");

        let mails: Vec<_> = app.mailer.sent().into_iter().filter(|m| m.to == "bob@example.com").collect();
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert!(mails[0].text.contains("Pterodactyl"), "{}", mails[0].text);
        assert!(mails[0].text.contains("moved"), "{}", mails[0].text);
        let link = mails[0]
            .text
            .split_whitespace()
            .find(|w| w.contains("/reset-password?token="))
            .expect("link in mail")
            .to_string();
        assert!(link.starts_with(&app.base), "{link}");
        let token = link.split("token=").nth(1).expect("token").to_string();

        // Follow the link in the browser: the form sets the password.
        let page = app.client.get(&link).send().await.expect("GET link");
        assert_eq!(page.status(), 200);
        let csrf = cookie(&page, "shardlyn_csrf");
        let html = page.text().await.expect("page");
        assert!(html.contains(&token), "the form carries the token");
        let set = app
            .client
            .post(format!("{}/reset-password", app.base))
            .header(COOKIE, format!("shardlyn_csrf={csrf}"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("token", token.as_str()),
                ("new_password", "a-brand-new-password"),
            ])
            .send()
            .await
            .expect("POST /reset-password");
        assert_eq!(set.status(), 303);
        let s = app.login("bob@example.com", "a-brand-new-password").await;
        let me = app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        assert_eq!(me.body["mfa_enabled"], false);
    }

    async fn an_email_clash_is_reported_and_nothing_merged(engine) {
        let app = spawn_app(engine).await;
        let existing = app.register("taken@example.com").await;
        let mut u = ptero_user("0b8e5a1c-4444-4000-8000-000000000004", "  TAKEN@example.COM ");
        u.password_hash = Some(php_bcrypt(OLD_PASSWORD));
        u.root_admin = true;
        let opts = UserOptions { root_admins_become_platform_admins: true, ..options(Mode::Database) };
        let out = import(&app, &u, &opts).await;
        assert_eq!(out.status, Outcome::Clash);
        assert!(out.message.contains("not merged"), "{}", out.message);
        assert_eq!(out.user_id, None);
        assert_eq!(users_with_email(&app, "taken@example.com").await, 1);
        assert_eq!(map_rows(&app, &u.uuid).await, 0);
        // The existing account is untouched: its password, not the old panel's, and no
        // admin rights.
        app.post("/v1/auth/login", None, json!({"email": "taken@example.com", "password": OLD_PASSWORD}))
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
        let s = app.login("taken@example.com", PASSWORD).await;
        assert_eq!(s.user_id, existing.user_id);
        let me = app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        assert_eq!(me.body["is_admin"], false);
        assert_eq!(me.body["mfa_enabled"], false);

        // Another Pterodactyl user with the email of an imported one: not merged either.
        let first = ptero_user("0b8e5a1c-4444-4000-8000-00000000000a", "twin@example.com");
        assert_eq!(import(&app, &first, &options(Mode::Api)).await.status, Outcome::Imported);
        let twin = ptero_user("0b8e5a1c-4444-4000-8000-00000000000b", "Twin@example.com");
        let out = import(&app, &twin, &options(Mode::Api)).await;
        assert_eq!(out.status, Outcome::Clash);
        assert!(out.message.contains(&first.uuid), "{}", out.message);
        assert_eq!(map_rows(&app, &twin.uuid).await, 0);
    }

    async fn a_rerun_adds_nothing(engine) {
        let app = spawn_app(engine).await;
        let u = ptero_user("0b8e5a1c-5555-4000-8000-000000000005", "again@example.com");
        let first = import(&app, &u, &options(Mode::Api)).await;
        assert_eq!(first.status, Outcome::Imported, "{}", first.message);
        for mode in [Mode::Api, Mode::Database] {
            let again = import(&app, &u, &options(mode)).await;
            assert_eq!(again.status, Outcome::Exists, "{}", again.message);
            assert_eq!(again.user_id, first.user_id);
            assert_eq!(again.org_id, first.org_id);
        }
        assert_eq!(users_with_email(&app, "again@example.com").await, 1);
        assert_eq!(map_rows(&app, &u.uuid).await, 1);
        let orgs = count(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM org_members WHERE user_id = $1",
            first.user_id.as_deref().expect("id"),
        )
        .await;
        assert_eq!(orgs, 1);
        // One mail, from the first run.
        assert_eq!(app.mailer.sent().iter().filter(|m| m.to == "again@example.com").count(), 1);
    }

    async fn root_admins_become_platform_admins_only_when_asked(engine) {
        let app = spawn_app(engine).await;
        for (n, asked) in [(1, false), (2, true)] {
            let email = format!("root{n}@example.com");
            let mut u = ptero_user(&format!("0b8e5a1c-6666-4000-8000-00000000000{n}"), &email);
            u.root_admin = true;
            u.password_hash = Some(php_bcrypt(OLD_PASSWORD));
            let opts = UserOptions { root_admins_become_platform_admins: asked, ..options(Mode::Database) };
            let out = import(&app, &u, &opts).await;
            assert_eq!(out.status, Outcome::Imported, "{}", out.message);
            let s = app.login(&email, OLD_PASSWORD).await;
            let me = app.get("/v1/users/me", Some(&s.access)).await.expect(200);
            assert_eq!(me.body["is_admin"], asked, "asked: {asked}");
            // Only a platform admin may list every user.
            let list = app.get("/v1/admin/users", Some(&s.access)).await;
            assert_eq!(list.status, if asked { 200 } else { 403 }, "{}", list.text);
        }
        // A user who was not root admin never becomes one.
        let u = ptero_user("0b8e5a1c-6666-4000-8000-000000000009", "plain@example.com");
        let opts = UserOptions { root_admins_become_platform_admins: true, ..options(Mode::Api) };
        let out = import(&app, &u, &opts).await;
        let plain = shardlyn_panel::users::store::find(&app.state.db.pool, out.user_id.as_deref().expect("id"))
            .await
            .expect("read")
            .expect("user");
        assert!(!plain.is_admin);
    }

    async fn a_dry_run_writes_nothing(engine) {
        let app = spawn_app(engine).await;
        let mut u = ptero_user("0b8e5a1c-7777-4000-8000-000000000007", "dry@example.com");
        u.password_hash = Some(php_bcrypt(OLD_PASSWORD));
        u.use_totp = true;
        u.totp_secret = Some(TOTP_SECRET.into());
        let pool = &app.state.db.pool;
        let users_before = shardlyn_panel::users::store::count(pool).await.expect("count");
        for mode in [Mode::Database, Mode::Api] {
            let opts = UserOptions { dry_run: true, ..options(mode) };
            let out = import(&app, &u, &opts).await;
            assert_eq!(out.status, Outcome::Planned, "{}", out.message);
            assert_eq!(out.user_id, None);
        }
        let users_after = shardlyn_panel::users::store::count(pool).await.expect("count");
        assert_eq!(users_after, users_before);
        assert_eq!(map_rows(&app, &u.uuid).await, 0);
        assert!(app.mailer.sent().is_empty());
        // A clash shows in a dry run too.
        app.register("seen@example.com").await;
        let clash = ptero_user("0b8e5a1c-7777-4000-8000-000000000008", "seen@example.com");
        let opts = UserOptions { dry_run: true, ..options(Mode::Api) };
        assert_eq!(import(&app, &clash, &opts).await.status, Outcome::Clash);
    }

    async fn an_unusable_email_or_totp_secret_fails_the_user(engine) {
        let app = spawn_app(engine).await;
        let u = ptero_user("0b8e5a1c-8888-4000-8000-000000000001", "admin@localhost");
        let out = import(&app, &u, &options(Mode::Api)).await;
        assert_eq!(out.status, Outcome::Failed);
        let mut u = ptero_user("0b8e5a1c-8888-4000-8000-000000000002", "broken@example.com");
        u.use_totp = true;
        u.totp_secret = Some("not base32 at all!".into());
        let out = import(&app, &u, &options(Mode::Database)).await;
        assert_eq!(out.status, Outcome::Failed, "{}", out.message);
        assert_eq!(users_with_email(&app, "broken@example.com").await, 0);
    }
}
