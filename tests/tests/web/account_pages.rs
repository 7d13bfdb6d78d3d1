//! Browser tests of the account, organization, workload, node and admin pages, in a real
//! headless Chromium against a real panel: MFA enrollment and a TOTP sign-in (codes from
//! Debian's `oathtool`, not our own TOTP code), an invitation that is mailed and listed,
//! an API token that works against `/v1/users/me`, an egg import whose error is shown
//! next to its field, a platform admin suspending a user, and the pages at phone width.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};

const SHORT: Duration = Duration::from_secs(10);
const EGG: &str = include_str!("../../../eggs/busybox-test.json");

/// The TOTP codes of a base32 secret for this 30-second step and the next one, from
/// `oathtool` (scripts/dev-services installs it).
fn oathtool(secret: &str) -> (String, String) {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", "-w", "1", secret])
        .output()
        .expect("oathtool runs (scripts/dev-services installs it)");
    assert!(out.status.success(), "oathtool failed: {out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines().map(str::trim);
    let now = lines.next().expect("a code").to_owned();
    let next = lines.next().expect("the next code").to_owned();
    (now, next)
}

/// Signs in on the login form as `email`.
async fn sign_in(c: &Client, base: &str, email: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", email).await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await
}

/// Sets a textarea's value the way pasting does (typing kilobytes is slow).
async fn paste(c: &Client, id: &str, text: &str) -> anyhow::Result<()> {
    c.execute(
        "document.getElementById(arguments[0]).value = arguments[1];",
        vec![json!(id), json!(text)],
    )
    .await?;
    Ok(())
}

/// Accepts the confirmation a `data-confirm` form asks for.
async fn confirm(c: &Client) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        match c.accept_alert().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("no confirmation dialog: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn admin_app() -> TestApp {
    let app = spawn_app(Engine::Sqlite).await;
    app.bootstrap_admin().await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_enrollment_then_a_totp_sign_in() {
    let app = admin_app().await;
    let base = app.base.clone();
    Chrome::start(false)
        .await
        .run("mfa_enrollment_then_a_totp_sign_in", |c| async move {
            sign_in(&c, &base, "admin@example.com").await?;
            wait_path(&c, "/").await?;
            c.goto(&format!("{base}/account")).await?;
            wait_text(&c, "#mfa-state", "off", SHORT).await?;
            click(&c, "#mfa-enroll").await?;
            // The QR code is an image the CSP allows, and the key is shown for typing.
            let qr = find(&c, "#mfa-qr")
                .await?
                .attr("src")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(qr.starts_with("data:image/svg+xml;base64,"), "QR: {qr:.40}");
            let width = c
                .execute(
                    "return document.getElementById('mfa-qr').naturalWidth;",
                    vec![],
                )
                .await?;
            anyhow::ensure!(width.as_i64().unwrap_or(0) > 0, "the QR code loads");
            let secret = find(&c, "#mfa-secret")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(secret.len() >= 16, "a base32 key: {secret:?}");
            // A wrong code is refused and the form stays.
            fill(&c, "#mfa-code", "000000").await?;
            click(&c, "#mfa-verify").await?;
            find(&c, "#form-error").await?;
            let (now, next) = oathtool(&secret);
            fill(&c, "#mfa-code", &now).await?;
            click(&c, "#mfa-verify").await?;
            // Recovery codes, once (on the page the verification loads: wait for it
            // rather than read the one being replaced).
            find(&c, "#recovery-codes li").await?;
            let codes = c.find_all(Locator::Css("#recovery-codes li")).await?;
            anyhow::ensure!(codes.len() == 10, "ten recovery codes, got {}", codes.len());
            wait_text(&c, "#mfa-state", "on", SHORT).await?;
            c.goto(&format!("{base}/account")).await?;
            wait_text(&c, "#mfa-state", "on", SHORT).await?;
            anyhow::ensure!(
                c.find(Locator::Css("#recovery-codes")).await.is_err(),
                "recovery codes are shown only once"
            );

            // Sign out; signing in now asks for the code.
            click(&c, "#signout").await?;
            wait_path(&c, "/login").await?;
            sign_in(&c, &base, "admin@example.com").await?;
            fill(&c, "#code", "123456").await?;
            click(&c, "#mfa-submit").await?;
            find(&c, "#mfa-form .error, .error").await?;
            // The next step's code: the one used to enroll is spent.
            fill(&c, "#code", &next).await?;
            click(&c, "#mfa-submit").await?;
            wait_path(&c, "/").await?;
            wait_text(&c, "h1", "Dashboard", SHORT).await?;
            Ok(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_mailed_and_listed() {
    let app = admin_app().await;
    let base = app.base.clone();
    let session = app.login("admin@example.com", PASSWORD).await;
    let mailer = app.mailer.clone();
    Chrome::start(false)
        .await
        .run("an_invitation_is_mailed_and_listed", |c| async move {
            sign_in(&c, &base, "admin@example.com").await?;
            wait_path(&c, "/").await?;
            c.goto(&format!("{base}/orgs")).await?;
            fill(&c, "#org-name", "Blue <Team>").await?;
            click(&c, "#new-org").await?;
            wait_text(&c, "#org-title", "Blue <Team>", SHORT).await?;
            let org_id = c
                .current_url()
                .await?
                .path()
                .trim_start_matches("/orgs/")
                .to_owned();
            wait_text(&c, "#members", "admin@example.com", SHORT).await?;

            // The API's refusal is shown on the page: this address is already a member.
            fill(&c, "#invite-email", "admin@example.com").await?;
            click(&c, "#invite-submit").await?;
            wait_text(&c, "#form-error", "CONFLICT", SHORT).await?;
            fill(&c, "#invite-email", "new.member@example.com").await?;
            find(&c, "#invite-role option[value='operator']")
                .await?
                .click()
                .await?;
            click(&c, "#invite-submit").await?;
            wait_text(&c, "#notice", "on its way", SHORT).await?;
            wait_text(&c, "#invites", "new.member@example.com", SHORT).await?;
            wait_text(&c, "#invites", "operator", SHORT).await?;

            // The mail went out, and the API lists the invitation.
            let deadline = tokio::time::Instant::now() + SHORT;
            while !mailer
                .sent()
                .iter()
                .any(|m| m.to == "new.member@example.com" && m.text.contains("/invites/"))
            {
                anyhow::ensure!(tokio::time::Instant::now() < deadline, "no invitation mail");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let listed = app
                .get(
                    &format!("/v1/organizations/{org_id}/invites"),
                    Some(&session.access),
                )
                .await
                .expect(200)
                .body;
            anyhow::ensure!(
                listed
                    .as_array()
                    .is_some_and(|a| a.iter().any(|i| i["email"] == "new.member@example.com")),
                "the API lists the invitation: {listed}"
            );

            // A second invitation, revoked after the confirmation.
            fill(&c, "#invite-email", "other@example.com").await?;
            click(&c, "#invite-submit").await?;
            wait_text(&c, "#invites", "other@example.com", SHORT).await?;
            click(
                &c,
                "#invites tr[data-email='other@example.com'] button.danger",
            )
            .await?;
            confirm(&c).await?;
            wait_text(&c, "#notice", "revoked", SHORT).await?;
            let left = find(&c, "#invites").await?.text().await?;
            anyhow::ensure!(
                !left.contains("other@example.com") && left.contains("new.member@example.com"),
                "only the revoked invitation is gone: {left:?}"
            );

            // The invited person follows the mail's link, signs in and joins.
            let mail = mailer
                .sent()
                .into_iter()
                .find(|m| m.to == "new.member@example.com")
                .expect("the mail");
            let link = mail
                .text
                .split_whitespace()
                .find(|w| w.contains("/invites/"))
                .expect("a link")
                .to_owned();
            let path = &link[link.find("/invites/").expect("path")..];
            app.register("new.member@example.com").await;
            click(&c, "#signout").await?;
            wait_path(&c, "/login").await?;
            c.goto(&format!("{base}{path}")).await?;
            wait_path(&c, "/login").await?;
            fill(&c, "#email", "new.member@example.com").await?;
            fill(&c, "#password", PASSWORD).await?;
            click(&c, "#login-submit").await?;
            wait_path(&c, path).await?;
            click(&c, "#accept-invite").await?;
            wait_path(&c, &format!("/orgs/{org_id}")).await?;
            wait_text(&c, "#notice", "member", SHORT).await?;
            wait_text(
                &c,
                "#members tr[data-member='new.member@example.com']",
                "new.member",
                SHORT,
            )
            .await?;
            let role = find(
                &c,
                "#members tr[data-member='new.member@example.com'] select",
            )
            .await?
            .prop("value")
            .await?;
            anyhow::ensure!(
                role.as_deref() == Some("operator"),
                "joined as operator: {role:?}"
            );
            // An operator may not invite: no invitations section.
            anyhow::ensure!(
                c.find(Locator::Css("#invite-form")).await.is_err(),
                "an operator sees no invite form"
            );
            Ok(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_made_on_the_page_works() {
    let app = admin_app().await;
    let base = app.base.clone();
    let client = app.client.clone();
    Chrome::start(false)
        .await
        .run("an_api_token_made_on_the_page_works", |c| async move {
            sign_in(&c, &base, "admin@example.com").await?;
            wait_path(&c, "/").await?;
            c.goto(&format!("{base}/account")).await?;
            fill(&c, "#token-name", "ci <bot>").await?;
            click(&c, "#token-create").await?;
            let secret = find(&c, "#token-secret")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(secret.starts_with("shardlyn_api_"), "secret: {secret:.16}");
            wait_text(&c, "#tokens", "ci <bot>", SHORT).await?;
            let me: Value = client
                .get(format!("{base}/v1/users/me"))
                .bearer_auth(&secret)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::ensure!(me["email"] == "admin@example.com", "users/me: {me}");

            // Shown once: a reload lists the token, never the secret.
            c.goto(&format!("{base}/account")).await?;
            wait_text(&c, "#tokens", "ci <bot>", SHORT).await?;
            anyhow::ensure!(
                !c.source().await?.contains(&secret),
                "the secret is not shown again"
            );
            // Revoked, it stops working.
            c.find(Locator::Css("#tokens button.danger"))
                .await?
                .click()
                .await?;
            confirm(&c).await?;
            wait_text(&c, "#notice", "revoked", SHORT).await?;
            let status = client
                .get(format!("{base}/v1/users/me"))
                .bearer_auth(&secret)
                .send()
                .await?
                .status();
            anyhow::ensure!(status == 401, "a revoked token answers {status}");
            Ok(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_egg_import_shows_its_error_next_to_the_field() {
    let app = admin_app().await;
    let base = app.base.clone();
    let mut bad: Value = serde_json::from_str(EGG).expect("the bundled egg");
    bad["variables"][0]["env_variable"] = json!("1 NOT VALID");
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_file = dir.path().join("bad-egg.json");
    std::fs::write(&bad_file, serde_json::to_string_pretty(&bad).expect("json")).expect("write");
    Chrome::start(false)
        .await
        .run(
            "an_egg_import_shows_its_error_next_to_the_field",
            |c| async move {
                sign_in(&c, &base, "admin@example.com").await?;
                wait_path(&c, "/").await?;
                c.goto(&format!("{base}/workloads")).await?;
                find(&c, "#no-workloads").await?;

                // The broken egg, chosen as a file: forms.js loads it into the form.
                find(&c, "#egg-file")
                    .await?
                    .send_keys(&bad_file.display().to_string())
                    .await?;
                let deadline = tokio::time::Instant::now() + SHORT;
                while find(&c, "#egg")
                    .await?
                    .prop("value")
                    .await?
                    .unwrap_or_default()
                    .len()
                    < 100
                {
                    anyhow::ensure!(
                        tokio::time::Instant::now() < deadline,
                        "the file never loaded"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                click(&c, "#import-submit").await?;
                wait_text(&c, "#form-error", "VALIDATION_ERROR", SHORT).await?;
                // The error sits on the variable's row, and only there.
                let row = find(&c, "#egg-fields tr[data-field='variables[0]']").await?;
                let text = row.text().await?;
                anyhow::ensure!(
                    text.contains("1 NOT VALID") && text.contains("environment variable"),
                    "the variable's row shows the error: {text:?}"
                );
                let errors = c.find_all(Locator::Css("#egg-fields .field-error")).await?;
                anyhow::ensure!(errors.len() == 1, "one field error, got {}", errors.len());
                // What was sent is kept for fixing.
                let kept = find(&c, "#egg")
                    .await?
                    .prop("value")
                    .await?
                    .unwrap_or_default();
                anyhow::ensure!(kept.contains("1 NOT VALID"), "the egg is kept in the form");

                // Not JSON at all: the error is next to the text box.
                paste(&c, "egg", "{ not json").await?;
                click(&c, "#import-submit").await?;
                wait_text(&c, "#egg-error", "line", SHORT).await?;

                // The valid egg, pasted: imported and listed.
                paste(&c, "egg", EGG).await?;
                click(&c, "#import-submit").await?;
                wait_text(&c, "#notice", "imported", SHORT).await?;
                wait_text(&c, "#workloads", "Busybox Test", SHORT).await?;
                Ok(())
            },
        )
        .await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_suspends_a_user() {
    let app = spawn_app(Engine::Sqlite).await;
    let token = app.bootstrap_admin().await.access;
    app.register("bob@example.com").await;
    let base = app.base.clone();
    let client = app.client.clone();
    Chrome::start(false)
        .await
        .run("an_admin_suspends_a_user", |c| async move {
            sign_in(&c, &base, "admin@example.com").await?;
            wait_path(&c, "/").await?;
            click(&c, "nav a[href='/admin/users']").await?;
            wait_path(&c, "/admin/users").await?;
            let row = "#users tr[data-user='bob@example.com']";
            wait_text(&c, &format!("{row} .user-state"), "active", SHORT).await?;
            click(&c, &format!("{row} button.suspend")).await?;
            confirm(&c).await?;
            wait_text(&c, "#notice", "suspended", SHORT).await?;
            wait_text(&c, &format!("{row} .user-state"), "suspended", SHORT).await?;
            let login = client
                .post(format!("{base}/v1/auth/login"))
                .json(&json!({"email": "bob@example.com", "password": PASSWORD}))
                .send()
                .await?;
            anyhow::ensure!(
                login.status() == 403 || login.status() == 401,
                "a suspended user cannot sign in: {}",
                login.status()
            );
            // And back.
            click(&c, &format!("{row} button.unsuspend")).await?;
            wait_text(&c, &format!("{row} .user-state"), "active", SHORT).await?;

            // The audit log shows it, grows live as changes happen, and filters by
            // action.
            c.goto(&format!("{base}/admin/audit")).await?;
            wait_text(&c, "#audit", "suspend", SHORT).await?;
            find(&c, "html[data-live='on']").await?;
            let made = client
                .post(format!("{base}/v1/organizations"))
                .bearer_auth(&token)
                .json(&json!({"name": "Live audit"}))
                .send()
                .await?;
            anyhow::ensure!(
                made.status() == 201,
                "creating an organization: {}",
                made.status()
            );
            wait_text(
                &c,
                "#audit tbody tr:first-child",
                "POST /v1/organizations",
                SHORT,
            )
            .await?;
            fill(&c, "#f-action", "suspend").await?;
            click(&c, "#audit-filter").await?;
            wait_text(&c, "#audit", "suspend", SHORT).await?;
            let rows = c.find_all(Locator::Css("#audit tbody tr")).await?;
            for r in rows {
                let t = r.text().await?;
                anyhow::ensure!(t.contains("suspend"), "filtered row: {t:?}");
            }
            // A bad filter is the API's error, on the page.
            c.goto(&format!("{base}/admin/audit?since=yesterday"))
                .await?;
            wait_text(&c, "#form-error", "VALIDATION_ERROR", SHORT).await?;
            c.goto(&format!("{base}/admin/organizations")).await?;
            wait_text(&c, "#admin-orgs", "personal", SHORT).await?;
            Ok(())
        })
        .await;
}

/// Two replicas on PostgreSQL and Redis with an agent on the first: the admin, signed in
/// on the second, follows Admin → Replicas and finds both, the agent on the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_the_replicas_and_their_agents() {
    let apps = shardlyn_tests::replicas(2, |_| {}).await;
    let (a, b) = (&apps[0], &apps[1]);
    let admin = a.bootstrap_admin().await;
    let (config, dir) = shardlyn_tests::agent::register_node(a, &admin.access).await;
    let node = config.node_id.clone();
    let agent = shardlyn_tests::agent::LocalAgent::start(config, dir.path());
    let name = shardlyn_tests::agent::wait_node(b, &admin.access, &node, "online").await["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let base = b.base.clone();
    let (a_id, b_id) = (a.state.replica_id.clone(), b.state.replica_id.clone());
    Chrome::start(false)
        .await
        .run(
            "an_admin_sees_the_replicas_and_their_agents",
            |c| async move {
                sign_in(&c, &base, "admin@example.com").await?;
                wait_path(&c, "/").await?;
                click(&c, "nav a[href='/admin/users']").await?;
                wait_path(&c, "/admin/users").await?;
                click(&c, ".subnav a[href='/admin/replicas']").await?;
                wait_path(&c, "/admin/replicas").await?;
                let row = |id: &str| format!("#admin-replicas tr[data-replica='{id}']");
                wait_text(&c, &format!("{} .agents", row(&a_id)), &name, SHORT).await?;
                wait_text(&c, &format!("{} .agents", row(&b_id)), "none", SHORT).await?;
                wait_text(&c, &row(&b_id), "this one", SHORT).await?;
                // The agent's name leads to its node page.
                click(&c, &format!("{} .agents a", row(&a_id))).await?;
                wait_path(&c, &format!("/nodes/{node}")).await?;
                Ok(())
            },
        )
        .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_not_an_admin_and_new_pages_fit_a_phone() {
    let app = admin_app().await;
    app.register("carol@example.com").await;
    let base = app.base.clone();
    Chrome::start(true)
        .await
        .run("a_member_is_not_an_admin_and_new_pages_fit_a_phone", |c| async move {
            sign_in(&c, &base, "admin@example.com").await?;
            wait_path(&c, "/").await?;
            for path in [
                "/nodes",
                "/workloads",
                "/orgs",
                "/account",
                "/admin/users",
                "/admin/organizations",
                "/admin/audit",
                "/admin/replicas",
            ] {
                c.goto(&format!("{base}{path}")).await?;
                find(&c, "h1").await?;
                let overflow = c
                    .execute(
                        "return document.documentElement.scrollWidth - window.innerWidth;",
                        vec![],
                    )
                    .await?;
                if overflow.as_i64().unwrap_or(0) > 0 {
                    let wide = c
                        .execute(
                            "return [...document.querySelectorAll('body *')]\
                             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)\
                             .slice(-4).map(e => e.tagName + '#' + e.id + '.' + e.className);",
                            vec![],
                        )
                        .await?;
                    anyhow::bail!("{path} scrolls sideways at phone width by {overflow}px: {wide}");
                }
                let unlabeled = c
                    .execute(
                        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
                         .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))\
                         .map(e => e.id || e.name);",
                        vec![],
                    )
                    .await?;
                anyhow::ensure!(
                    unlabeled.as_array().is_some_and(Vec::is_empty),
                    "{path}: controls without a label: {unlabeled}"
                );
            }
            // "Add node" shows the exact command with its token.
            c.goto(&format!("{base}/nodes")).await?;
            fill(&c, "#node-name", "edge-1").await?;
            click(&c, "#add-node").await?;
            let command = find(&c, "#register-command")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            let token = find(&c, "#register-token")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(
                command.starts_with("shardlyn-agent register --panel ")
                    && command.contains(&format!("--token {token}"))
                    && command.contains("&& shardlyn-agent run"),
                "command: {command}"
            );

            // A member who is not a platform admin has no Admin link and gets a 403 page.
            click(&c, "#signout").await?;
            wait_path(&c, "/login").await?;
            sign_in(&c, &base, "carol@example.com").await?;
            wait_path(&c, "/").await?;
            anyhow::ensure!(
                c.find(Locator::Css("nav a[href='/admin/users']")).await.is_err(),
                "no Admin link for a member"
            );
            c.goto(&format!("{base}/admin/users")).await?;
            wait_text(&c, "#error-code", "FORBIDDEN", SHORT).await?;
            Ok(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_page_with_inventory_charts_and_cordon() {
    use shardlyn_tests::agent::{LocalAgent, register_node, wait_node};
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let (config, dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let base = app.base.clone();
    let node_id = config.node_id.clone();
    Chrome::start(false)
        .await
        .run(
            "a_node_page_with_inventory_charts_and_cordon",
            |c| async move {
                sign_in(&c, &base, "admin@example.com").await?;
                wait_path(&c, "/").await?;
                // The list links to the node; its usage bars come with the first sample.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
                loop {
                    c.goto(&format!("{base}/nodes")).await?;
                    if c.find(Locator::Css("#nodes meter")).await.is_ok() {
                        break;
                    }
                    anyhow::ensure!(tokio::time::Instant::now() < deadline, "no usage bars");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                c.find(Locator::Css(&format!("#nodes a[href='/nodes/{node_id}']")))
                    .await?
                    .click()
                    .await?;
                wait_path(&c, &format!("/nodes/{node_id}")).await?;
                wait_text(&c, "#node-status", "online", SHORT).await?;
                // Inventory from the agent, and an SVG line per chart.
                let cpus = find(&c, "#node-cpus").await?.text().await?;
                anyhow::ensure!(
                    cpus.chars().next().is_some_and(|ch| ch.is_ascii_digit()),
                    "CPU count: {cpus:?}"
                );
                find(&c, "#disks").await?;
                for chart in ["cpu", "memory", "disk"] {
                    let line = find(&c, &format!("#chart-{chart} polyline")).await?;
                    let points = line.attr("points").await?.unwrap_or_default();
                    anyhow::ensure!(!points.is_empty(), "{chart} chart has points");
                }
                click(&c, ".ranges a[href$='range=24h']").await?;
                find(&c, ".ranges a[aria-current='page'][href$='range=24h']").await?;

                // Cordon and uncordon.
                click(&c, "#cordon").await?;
                wait_text(&c, "#notice", "cordoned", SHORT).await?;
                find(&c, "#node-cordoned").await?;
                click(&c, "#uncordon").await?;
                wait_text(&c, "#notice", "accepts new instances", SHORT).await?;
                anyhow::ensure!(
                    c.find(Locator::Css("#node-cordoned")).await.is_err(),
                    "no longer cordoned"
                );
                // Drain asks first, then reports.
                click(&c, "#drain").await?;
                confirm(&c).await?;
                wait_text(&c, "#drain-result", "0 of 0", SHORT).await?;
                find(&c, "#node-cordoned").await?;
                // Allocation settings on a freshly loaded page (typing while the drain's
                // page still loads could be lost): a range the form refuses, then one it
                // keeps.
                c.goto(&format!("{base}/nodes/{node_id}")).await?;
                wait_text(&c, "#node-status", "online", SHORT).await?;
                fill(&c, "#port-start", "40000").await?;
                fill(&c, "#port-end", "30000").await?;
                click(&c, "#allocation-submit").await?;
                wait_text(&c, "#form-error", "port_range", SHORT).await?;
                fill(&c, "#allocation-ip", "10.0.0.9").await?;
                fill(&c, "#port-start", "31000").await?;
                fill(&c, "#port-end", "31010").await?;
                click(&c, "#allocation-submit").await?;
                wait_text(&c, "#notice", "get their ports", SHORT).await?;
                let start = find(&c, "#port-start").await?.prop("value").await?;
                let ip = find(&c, "#allocation-ip").await?.prop("value").await?;
                anyhow::ensure!(
                    start.as_deref() == Some("31000") && ip.as_deref() == Some("10.0.0.9"),
                    "the form shows what was saved: {start:?} {ip:?}"
                );
                Ok(())
            },
        )
        .await;
    agent.stop().await;
}

/// An SSH certificate signed on the account page for a pasted public key: shown once
/// (`ssh-keygen -L` reads it), listed, and revoked from the list (the KRL then names it,
/// `ssh-keygen -Q` says so); then one for a server's SFTP, whose one principal is the SFTP
/// username. The admin page shows the CA key and rotates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_certificate_is_signed_and_revoked_on_the_pages() {
    use shardlyn_tests::agent::{
        LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
    };
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    // A node the admin may reach, with a server for the SFTP certificate.
    let (config, node_dir) = register_node(&app, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), node_dir.path());
    wait_node(&app, &admin.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &admin.access).await;
    let instance = app
        .post(
            "/v1/instances",
            Some(&admin.access),
            json!({"name": "sftp-cert", "workload_id": workload, "node_id": config.node_id,
                   "ports": [free_port()], "limits": {"memory_mb": 128, "disk_mb": 64}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    wait_instance(
        &app,
        &admin.access,
        &instance,
        "offline",
        Duration::from_secs(60),
    )
    .await;
    let sftp_user = format!(
        "admin@example.com.{}",
        shardlyn_panel::sftp::auth::username_suffix(&app.state, &config.node_id, &instance)
            .await
            .expect("suffix")
    );
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("id");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(dir.path().join("id.pub")).expect("pub");
    let base = app.base.clone();
    let client = app.client.clone();
    let cert_path = dir.path().join("id-cert.pub");
    let krl_path = dir.path().join("krl");
    let sftp_cert_path = dir.path().join("sftp-cert.pub");
    Chrome::start(false)
        .await
        .run("an_ssh_certificate_is_signed_and_revoked", |c| async move {
            sign_in(&c, &base, "admin@example.com").await?;
            wait_path(&c, "/").await?;
            c.goto(&format!("{base}/account#ssh-certificates")).await?;
            paste(&c, "certificate-key", public.trim()).await?;
            fill(&c, "#certificate-logins", "shardlyn, root").await?;
            click(&c, "#certificate-sign").await?;
            let cert = find(&c, "#certificate-text")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(
                cert.starts_with("ssh-ed25519-cert-v01@openssh.com "),
                "{cert:.40}"
            );
            std::fs::write(&cert_path, &cert)?;
            let read = std::process::Command::new("ssh-keygen")
                .arg("-L")
                .arg("-f")
                .arg(&cert_path)
                .output()?;
            let fields = String::from_utf8_lossy(&read.stdout);
            anyhow::ensure!(
                fields.contains(":root") && fields.contains(":shardlyn"),
                "{fields}"
            );
            wait_text(&c, "#certificates", "active", SHORT).await?;

            // Revoked from the list.
            c.find(Locator::Css("#certificates button.danger"))
                .await?
                .click()
                .await?;
            confirm(&c).await?;
            wait_text(&c, "#notice", "revoked", SHORT).await?;
            wait_text(&c, "#certificates", "revoked", SHORT).await?;

            // A certificate for the server's SFTP: its one principal is the username.
            c.goto(&format!("{base}/account#ssh-certificates")).await?;
            paste(&c, "certificate-key", public.trim()).await?;
            fill(&c, "#certificate-instance", &instance).await?;
            click(&c, "#certificate-sign").await?;
            wait_text(&c, "#certificate-sftp-user", &sftp_user, SHORT).await?;
            let sftp_cert = find(&c, "#certificate-text")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            std::fs::write(&sftp_cert_path, &sftp_cert)?;
            let read = std::process::Command::new("ssh-keygen")
                .arg("-L")
                .arg("-f")
                .arg(&sftp_cert_path)
                .output()?;
            let fields = String::from_utf8_lossy(&read.stdout);
            anyhow::ensure!(
                fields.contains(&sftp_user) && !fields.contains("node:"),
                "{fields}"
            );
            let krl = client
                .get(format!("{base}/v1/ssh/krl"))
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            std::fs::write(&krl_path, &krl)?;
            let checked = std::process::Command::new("ssh-keygen")
                .arg("-Q")
                .arg("-f")
                .arg(&krl_path)
                .arg(&cert_path)
                .output()?;
            let said = String::from_utf8_lossy(&checked.stdout);
            anyhow::ensure!(said.contains("REVOKED"), "{said}");

            // The admin page: the signing key, then a rotation.
            c.goto(&format!("{base}/admin/ssh")).await?;
            wait_text(&c, "#ca-keys", "signing", SHORT).await?;
            wait_text(&c, "#all-certificates", "revoked", SHORT).await?;
            find(&c, "#rotate-algorithm")
                .await?
                .select_by_value("ecdsa-p256")
                .await?;
            click(&c, "#rotate").await?;
            confirm(&c).await?;
            wait_text(&c, "#notice", "new signing key", SHORT).await?;
            wait_text(&c, "#ca-keys", "ecdsa-p256", SHORT).await?;
            wait_text(&c, "#ca-keys", "trusted until", SHORT).await?;
            Ok(())
        })
        .await;
    agent.stop().await;
}
