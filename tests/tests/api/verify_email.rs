//! Email verification with open registration, over real SMTP (aiosmtpd on loopback): a
//! registered address signs in only after its mailed link was followed, through the API
//! or the web page; the link is single use and expires; a new one can be asked for
//! without learning whether the address has an account; accounts made by an admin or
//! with an invite, and password resets, count as verified.

use std::time::Duration;

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use shardlyn_panel::config::SmtpMode;
use shardlyn_tests::smtp::{ReceivedMail, SmtpSink};
use shardlyn_tests::{PASSWORD, TestApp, both_engines, spawn_app_with};

const SUBJECT: &str = "Verify your email address for Shardlyn";

async fn app_with_sink(engine: shardlyn_tests::Engine) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let app = spawn_app_with(engine, |c| {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = Some(port);
        c.smtp.mode = SmtpMode::Plain;
        c.smtp.from = "panel@shardlyn.test".into();
    })
    .await;
    (app, sink)
}

/// Registers `email` over the API, without verifying it.
async fn register(app: &TestApp, email: &str) {
    app.post(
        "/v1/auth/register",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .expect(201);
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> shardlyn_tests::Resp {
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

/// The verification mails `to` received, oldest first.
fn verifications(sink: &SmtpSink, to: &str) -> Vec<ReceivedMail> {
    sink.received()
        .into_iter()
        .filter(|m| m.subject == SUBJECT && m.rcpt_tos.iter().any(|r| r == to))
        .collect()
}

/// Waits up to 20 s until what the sink received satisfies `done`.
async fn wait_until(sink: &SmtpSink, done: impl Fn(&[ReceivedMail]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&sink.received()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:#?}",
            sink.received()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The token of a verification mail: the link in both parts, and the token for the API.
#[track_caller]
fn token_of(app: &TestApp, mail: &ReceivedMail) -> String {
    let text = mail.text.clone().expect("a text part");
    let html = mail.html.clone().expect("an HTML part");
    let link = format!("{}/verify-email?token=", app.state.base_url());
    let (_, rest) = text
        .split_once(&link)
        .unwrap_or_else(|| panic!("{link} in {text}"));
    let token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    assert_eq!(token.len(), 64, "{text}");
    assert!(html.contains(&format!("href=\"{link}{token}\"")), "{html}");
    assert!(
        text.contains(&format!("the token {token} to POST /v1/auth/verify-email")),
        "{text}"
    );
    token
}

both_engines! {
    async fn open_registration_signs_in_only_after_the_mailed_link(engine) {
        let (app, sink) = app_with_sink(engine).await;
        register(&app, "eve@example.com").await;
        // The right password of an unverified account: a clear refusal, no session.
        let r = login_status(&app, "eve@example.com", PASSWORD).await;
        let r = r.expect_error(403, "EMAIL_NOT_VERIFIED");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("verify-email/resend")), "{}", r.text);
        // A wrong password says nothing about verification.
        login_status(&app, "eve@example.com", "wrong-password-1").await.expect_error(401, "INVALID_CREDENTIALS");

        let mail = sink.wait_for_subject("eve@example.com", SUBJECT).await;
        let token = token_of(&app, &mail);
        app.post("/v1/auth/verify-email", None, json!({"token": "0".repeat(64)}))
            .await
            .expect_error(400, "INVALID_TOKEN");
        app.post("/v1/auth/verify-email", None, json!({"token": token}))
            .await
            .expect(200);
        app.login("eve@example.com", PASSWORD).await;
        // Single use.
        app.post("/v1/auth/verify-email", None, json!({"token": token}))
            .await
            .expect_error(400, "INVALID_TOKEN");
        app.post("/v1/auth/verify-email", None, json!({}))
            .await
            .expect_error(400, "BAD_REQUEST");
        // Stored hashed: the token itself is nowhere in the table.
        let stored: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM email_verifications WHERE token_hash = $1")
            .bind(&token)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(stored, 0);
    }

    async fn links_expire_and_a_new_one_can_be_asked_for(engine) {
        let (app, sink) = app_with_sink(engine).await;
        register(&app, "fay@example.com").await;
        let first = token_of(&app, &sink.wait_for_subject("fay@example.com", SUBJECT).await);
        sqlx::query("UPDATE email_verifications SET expires_at = $1")
            .bind(chrono::Utc::now().timestamp_millis() - 1)
            .execute(&app.state.db.pool)
            .await
            .expect("expire");
        app.post("/v1/auth/verify-email", None, json!({"token": first}))
            .await
            .expect_error(400, "INVALID_TOKEN");
        // Within the minute after a link, asking again mails nothing (but answers alike).
        let known = app.post("/v1/auth/verify-email/resend", None, json!({"email": "Fay@Example.com"})).await.expect(202);
        let unknown = app.post("/v1/auth/verify-email/resend", None, json!({"email": "nobody@example.com"})).await.expect(202);
        let malformed = app.post("/v1/auth/verify-email/resend", None, json!({"email": "not an address"})).await.expect(202);
        assert_eq!(known.body, unknown.body);
        assert_eq!(known.body, malformed.body);
        // A minute later, a new link comes.
        sqlx::query("UPDATE email_verifications SET created_at = created_at - 60000")
            .execute(&app.state.db.pool)
            .await
            .expect("age the link");
        app.post("/v1/auth/verify-email/resend", None, json!({"email": "fay@example.com"})).await.expect(202);
        let second = sink
            .wait_for(Duration::from_secs(20), |m| m.subject == SUBJECT && token_of(&app, m) != first)
            .await;
        let second = token_of(&app, &second);
        // A later mail marks the end of what the requests above queued: one link per
        // minute, none for unknown addresses.
        app.post("/v1/auth/forgot-password", None, json!({"email": "fay@example.com"})).await.expect(202);
        sink.wait_for_subject("fay@example.com", "Reset your Shardlyn password").await;
        assert_eq!(verifications(&sink, "fay@example.com").len(), 2, "{:#?}", sink.received());
        assert!(sink.received().iter().all(|m| m.rcpt_tos.iter().all(|r| r == "fay@example.com")));
        app.post("/v1/auth/verify-email", None, json!({"token": second}))
            .await
            .expect(200);
        app.login("fay@example.com", PASSWORD).await;
        // A verified address gets no more links.
        sqlx::query("UPDATE email_verifications SET created_at = created_at - 60000")
            .execute(&app.state.db.pool)
            .await
            .expect("age the links");
        app.post("/v1/auth/verify-email/resend", None, json!({"email": "fay@example.com"})).await.expect(202);
        app.post("/v1/auth/forgot-password", None, json!({"email": "fay@example.com"})).await.expect(202);
        wait_until(&sink, |mails| mails.iter().filter(|m| m.subject.contains("Reset")).count() == 2).await;
        assert_eq!(verifications(&sink, "fay@example.com").len(), 2, "{:#?}", sink.received());
    }

    async fn admins_invites_and_password_resets_count_as_verified(engine) {
        let (app, sink) = app_with_sink(engine).await;
        let admin = app.bootstrap_admin().await;
        // Made by an admin.
        app.post("/v1/users", Some(&admin.access), json!({"email": "gus@example.com", "password": PASSWORD}))
            .await
            .expect(201);
        app.login("gus@example.com", PASSWORD).await;
        // Registered with an invite sent to that address (open registration too).
        let org = app.create_org(&admin.access, "Invited").await;
        app.post(&format!("/v1/organizations/{org}/members/invite"), Some(&admin.access), json!({"email": "hal@example.com", "role": "viewer"}))
            .await
            .expect(201);
        let invite = sink.wait_for_subject("hal@example.com", "You are invited").await;
        let text = invite.text.expect("text");
        let (_, rest) = text.split_once("/invites/").expect("invite link");
        let invite_token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        app.post("/v1/auth/register", None, json!({"email": "hal@example.com", "password": PASSWORD, "invite_token": invite_token}))
            .await
            .expect(201);
        let hal = app.login("hal@example.com", PASSWORD).await;
        let orgs = app.get("/v1/organizations", Some(&hal.access)).await.expect(200);
        assert!(orgs.body.as_array().is_some_and(|o| o.iter().any(|o| o["id"] == org.as_str())), "{}", orgs.text);
        // An open registration whose owner resets the password through the mailed link.
        register(&app, "ivo@example.com").await;
        login_status(&app, "ivo@example.com", PASSWORD).await.expect_error(403, "EMAIL_NOT_VERIFIED");
        app.post("/v1/auth/forgot-password", None, json!({"email": "ivo@example.com"})).await.expect(202);
        let reset = sink.wait_for_subject("ivo@example.com", "Reset your Shardlyn password").await;
        let text = reset.text.expect("text");
        let (_, rest) = text.split_once("token=").expect("reset link");
        let reset_token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        app.post("/v1/auth/reset-password", None, json!({"token": reset_token, "new_password": "reset-and-verified-1"}))
            .await
            .expect(200);
        app.login("ivo@example.com", "reset-and-verified-1").await;
        // None of them was sent a verification link but the open registration.
        let linked: Vec<_> = sink.received().into_iter().filter(|m| m.subject == SUBJECT).flat_map(|m| m.rcpt_tos).collect();
        assert_eq!(linked, vec!["ivo@example.com".to_string()]);
    }

    async fn the_web_page_of_the_link_completes_verification(engine) {
        let (app, sink) = app_with_sink(engine).await;
        register(&app, "joy@example.com").await;
        let token = token_of(&app, &sink.wait_for_subject("joy@example.com", SUBJECT).await);
        // Following the link shows a confirmation form; nothing is spent yet.
        let page = app.client.get(format!("{}/verify-email?token={token}", app.base)).send().await.expect("GET");
        assert_eq!(page.status(), 200);
        let cookie = page
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("shardlyn_csrf="))
            .and_then(|v| v.split(';').next())
            .expect("a CSRF cookie")
            .to_owned();
        let csrf = cookie.trim_start_matches("shardlyn_csrf=").to_owned();
        let html = page.text().await.expect("html");
        assert!(html.contains(&format!("name=\"token\" value=\"{token}\"")), "{html}");
        assert!(html.contains(&format!("name=\"csrf_token\" value=\"{csrf}\"")), "{html}");
        login_status(&app, "joy@example.com", PASSWORD).await.expect_error(403, "EMAIL_NOT_VERIFIED");
        // Without the CSRF token the form is refused.
        let refused = app.client.post(format!("{}/verify-email", app.base)).form(&[("token", token.as_str())]).send().await.expect("POST");
        assert_eq!(refused.status(), 403);
        // Confirmed: the page says so, and the account signs in.
        let done = app
            .client
            .post(format!("{}/verify-email", app.base))
            .header(COOKIE, &cookie)
            .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str())])
            .send()
            .await
            .expect("POST");
        assert_eq!(done.status(), 200);
        let html = done.text().await.expect("html");
        assert!(html.contains("id=\"verify-done\"") && html.contains("Your email address is verified"), "{html}");
        app.login("joy@example.com", PASSWORD).await;
        // The link again: the page shows the API's refusal.
        let again = app
            .client
            .post(format!("{}/verify-email", app.base))
            .header(COOKIE, &cookie)
            .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str())])
            .send()
            .await
            .expect("POST");
        assert_eq!(again.status(), 400);
        assert!(again.text().await.expect("html").contains("INVALID_TOKEN"));
        // The resend form answers without telling whether the address has an account.
        let resent = app
            .client
            .post(format!("{}/verify-email/resend", app.base))
            .header(COOKIE, &cookie)
            .form(&[("csrf_token", csrf.as_str()), ("email", "nobody@example.com")])
            .send()
            .await
            .expect("POST");
        assert_eq!(resent.status(), 200);
        assert!(resent.text().await.expect("html").contains("a new link is on its way"));
    }
}
