//! Outgoing mail over real SMTP: each test starts its own aiosmtpd on loopback
//! (`shardlyn_tests::smtp`), points `smtp` at it, triggers a flow and reads the message
//! the server received: envelope, headers, and both the text and the HTML part.

use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_panel::config::{Config, SmtpMode};
use shardlyn_tests::smtp::{ReceivedMail, SmtpSink, free_port};
use shardlyn_tests::{PASSWORD, TestApp, both_engines, spawn_app_with};

const FROM: &str = "panel@shardlyn.test";
/// The subject of the link every open registration mails.
const VERIFY: &str = "Verify your email address for Shardlyn";

/// What the sink received, without the verification mails of registrations.
fn received_but_verifications(sink: &SmtpSink) -> Vec<ReceivedMail> {
    sink.received()
        .into_iter()
        .filter(|m| m.subject != VERIFY)
        .collect()
}

/// Sends the panel's mail to the sink on `port`, unencrypted (allowed: loopback).
fn smtp_to(config: &mut Config, port: u16) {
    config.smtp.host = "127.0.0.1".into();
    config.smtp.port = Some(port);
    config.smtp.mode = SmtpMode::Plain;
    config.smtp.from = format!("Shardlyn Test <{FROM}>");
}

async fn app_with_sink(engine: shardlyn_tests::Engine) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let app = spawn_app_with(engine, |c| {
        smtp_to(c, port);
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    (app, sink)
}

/// Checks the parts every message has, and returns (text, html).
#[track_caller]
fn parts(mail: &ReceivedMail, to: &str) -> (String, String) {
    assert_eq!(mail.rcpt_tos, vec![to.to_string()], "{mail:#?}");
    assert_eq!(mail.to, to, "{mail:#?}");
    assert_eq!(mail.mail_from, FROM, "{mail:#?}");
    assert_eq!(mail.from, format!("Shardlyn Test <{FROM}>"), "{mail:#?}");
    assert_eq!(mail.content_type, "multipart/alternative", "{mail:#?}");
    let text = mail.text.clone().expect("a text/plain part");
    let html = mail.html.clone().expect("a text/html part");
    assert!(html.contains("<html"), "{html}");
    assert!(!text.contains("<html"), "{text}");
    (text, html)
}

/// The 64-hex-digit token following `marker` in `text`.
#[track_caller]
fn token_after(text: &str, marker: &str) -> String {
    let (_, rest) = text
        .split_once(marker)
        .unwrap_or_else(|| panic!("{marker} in {text}"));
    let token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    assert_eq!(token.len(), 64, "{text}");
    token
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

/// A private CA and a certificate for 127.0.0.1 it signed, as PEM files in a new
/// directory: `ca.pem`, `cert.pem`, `key.pem`.
fn private_ca() -> tempfile::TempDir {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("certificate");
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write");
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("write");
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write");
    dir
}

/// Asks for a password reset of a new account `email` on a panel whose `smtp` is set
/// by `adjust`; returns the sink's messages once `wait` has passed or one arrived.
async fn reset_mail_over(
    engine: shardlyn_tests::Engine,
    sink: &SmtpSink,
    email: &str,
    wait: Duration,
    adjust: impl FnOnce(&mut Config),
) -> Vec<ReceivedMail> {
    let port = sink.port;
    let app = spawn_app_with(engine, |c| {
        smtp_to(c, port);
        adjust(c);
    })
    .await;
    app.register(email).await;
    app.post("/v1/auth/forgot-password", None, json!({"email": email}))
        .await
        .expect(202);
    let deadline = Instant::now() + wait;
    while received_but_verifications(sink).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    received_but_verifications(sink)
}

/// Logs `email` in with `X-Forwarded-For: ip` (the app trusts 127.0.0.1 as a proxy).
async fn login_from(app: &TestApp, email: &str, ip: &str) {
    let r = app
        .client
        .post(format!("{}/v1/auth/login", app.base))
        .header("x-forwarded-for", ip)
        .header("user-agent", "MailTest/1.0 (shardlyn)")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
}

both_engines! {
    async fn password_reset_mail_carries_a_working_link(engine) {
        let (app, sink) = app_with_sink(engine).await;
        app.register("ann@example.com").await;
        app.post("/v1/auth/forgot-password", None, json!({"email": "ann@example.com"}))
            .await
            .expect(202);
        let mail = sink.wait_for_subject("ann@example.com", "Reset your Shardlyn password").await;
        let (text, html) = parts(&mail, "ann@example.com");
        let link = format!("{}/reset-password?token=", app.state.base_url());
        let token = token_after(&text, &link);
        assert!(text.contains(&format!("the token {token} to POST /v1/auth/reset-password")), "{text}");
        assert!(html.contains(&format!("href=\"{link}{token}\"")), "{html}");
        assert!(mail.login.is_none());
        app.post("/v1/auth/reset-password", None, json!({"token": token, "new_password": "mailed-password-1"}))
            .await
            .expect(200);
        app.login("ann@example.com", "mailed-password-1").await;
        // Only the reset was mailed (besides registration's link): the first sign-in of an
        // account is not announced.
        assert_eq!(received_but_verifications(&sink).len(), 1, "{:#?}", sink.received());
    }

    async fn invite_mail_carries_a_working_link(engine) {
        let (app, sink) = app_with_sink(engine).await;
        let owner = app.register("owner@example.com").await;
        let org = app.create_org(&owner.access, "Acme Games").await;
        app.post(
            &format!("/v1/organizations/{org}/members/invite"),
            Some(&owner.access),
            json!({"email": "guest@example.com", "role": "operator"}),
        )
        .await
        .expect(201);
        let mail = sink.wait_for_subject("guest@example.com", "You are invited to Acme Games on Shardlyn").await;
        let (text, html) = parts(&mail, "guest@example.com");
        let link = format!("{}/invites/", app.state.base_url());
        let token = token_after(&text, &link);
        assert!(text.contains("owner@example.com") && text.contains("as operator"), "{text}");
        assert!(html.contains(&format!("href=\"{link}{token}\"")), "{html}");
        assert!(html.contains("<strong>Acme Games</strong>"), "{html}");
        let guest = app.register("guest@example.com").await;
        let joined = app
            .post(&format!("/v1/invites/{token}/accept"), Some(&guest.access), json!({}))
            .await
            .expect(200);
        assert_eq!(joined.body["id"], org.as_str());
    }

    async fn enabling_and_disabling_mfa_is_mailed(engine) {
        let (app, sink) = app_with_sink(engine).await;
        let s = app.register("mia@example.com").await;
        let enroll = app.post("/v1/auth/mfa/enroll", Some(&s.access), json!({})).await.expect(200);
        let secret = enroll.body["secret"].as_str().expect("secret").to_string();
        let verify = app
            .post("/v1/auth/mfa/verify", Some(&s.access), json!({"code": oathtool(&secret)}))
            .await
            .expect(200);
        let enabled = sink
            .wait_for_subject("mia@example.com", "Two-factor authentication enabled")
            .await;
        let (text, html) = parts(&enabled, "mia@example.com");
        assert!(text.contains("now enabled") && text.contains("From: 127.0.0.1"), "{text}");
        assert!(html.contains("<strong>enabled</strong>"), "{html}");
        // Nothing about the secret or the recovery codes travels by mail.
        let code = verify.body["recovery_codes"][0].as_str().expect("recovery code").to_string();
        assert!(!text.contains(&secret) && !text.contains(&code) && !html.contains(&code));

        app.post("/v1/auth/mfa/disable", Some(&s.access), json!({"code": code}))
            .await
            .expect(204);
        let disabled = sink
            .wait_for_subject("mia@example.com", "Two-factor authentication disabled")
            .await;
        let (text, html) = parts(&disabled, "mia@example.com");
        assert!(text.contains("now disabled"), "{text}");
        assert!(html.contains("<strong>disabled</strong>"), "{html}");
    }

    async fn sign_in_from_a_new_address_is_mailed_once(engine) {
        let (app, sink) = app_with_sink(engine).await;
        // First sign-in ever (from 127.0.0.1): nothing to compare with, no mail.
        app.register("noa@example.com").await;
        login_from(&app, "noa@example.com", "198.51.100.7").await;
        let mail = sink
            .wait_for_subject("noa@example.com", "New sign-in to your Shardlyn account from 198.51.100.7")
            .await;
        let (text, html) = parts(&mail, "noa@example.com");
        assert!(text.contains("IP address: 198.51.100.7"), "{text}");
        assert!(text.contains("MailTest/1.0 (shardlyn)"), "{text}");
        assert!(html.contains("198.51.100.7") && html.contains("MailTest/1.0 (shardlyn)"), "{html}");
        // The same address again, the first address, and another account's first
        // sign-in from anywhere: no mail.
        login_from(&app, "noa@example.com", "198.51.100.7").await;
        app.login("noa@example.com", PASSWORD).await;
        let ole = app
            .post("/v1/auth/register", None, json!({"email": "ole@example.com", "password": PASSWORD}))
            .await
            .expect(201);
        let ole = ole.body["id"].as_str().expect("id");
        shardlyn_panel::users::store::mark_email_verified(&app.state.db.pool, ole).await.expect("verified");
        login_from(&app, "ole@example.com", "203.0.113.5").await;
        // A sign-in queues its mail before it answers: once the queue is empty, every
        // mail those requests made has reached the sink.
        let deadline = Instant::now() + Duration::from_secs(20);
        while app.state.mailer.outstanding() > 0 {
            assert!(Instant::now() < deadline, "mail still queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let subjects: Vec<String> = received_but_verifications(&sink).into_iter().map(|m| m.subject).collect();
        assert_eq!(subjects, ["New sign-in to your Shardlyn account from 198.51.100.7"], "{subjects:#?}");
    }

    async fn mail_survives_an_smtp_server_that_is_down(engine) {
        let port = free_port();
        let app = spawn_app_with(engine, |c| smtp_to(c, port)).await;
        app.register("pat@example.com").await;
        let started = Instant::now();
        app.post("/v1/auth/forgot-password", None, json!({"email": "pat@example.com"}))
            .await
            .expect(202);
        assert!(started.elapsed() < Duration::from_secs(2), "the request waited for SMTP");
        // Attempts at about 0 s and 1 s fail; the server is up for the one at about 3 s.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let sink = SmtpSink::start_on(port, None).await;
        let mail = sink
            .wait_for(Duration::from_secs(20), |m| m.subject == "Reset your Shardlyn password")
            .await;
        let (text, _) = parts(&mail, "pat@example.com");
        let token = token_after(&text, "token=");
        app.post("/v1/auth/reset-password", None, json!({"token": token, "new_password": "retried-password-1"}))
            .await
            .expect(200);
    }

    async fn smtp_auth_sends_the_configured_credentials(engine) {
        let sink = SmtpSink::start_on(0, Some("mailer:s3cret-pass")).await;
        let port = sink.port;
        let app = spawn_app_with(engine, |c| {
            smtp_to(c, port);
            c.smtp.username = "mailer".into();
            c.smtp.password = shardlyn_panel::config::Secret("s3cret-pass".into());
        })
        .await;
        app.register("quinn@example.com").await;
        app.post("/v1/auth/forgot-password", None, json!({"email": "quinn@example.com"}))
            .await
            .expect(202);
        let mail = sink.wait_for_subject("quinn@example.com", "Reset your Shardlyn password").await;
        assert_eq!(mail.login.as_deref(), Some("mailer"));
    }
}

both_engines! {
    async fn tls_modes_verify_the_server_certificate(engine) {
        let pki = private_ca();
        let (ca, cert, key) = (pki.path().join("ca.pem"), pki.path().join("cert.pem"), pki.path().join("key.pem"));
        for mode in [SmtpMode::Starttls, SmtpMode::Tls] {
            let name = if mode == SmtpMode::Starttls { "starttls" } else { "tls" };
            let sink = SmtpSink::start_tls(name, &cert, &key).await;
            let mails = reset_mail_over(engine, &sink, &format!("{name}@example.com"), Duration::from_secs(15), |c| {
                c.smtp.mode = mode;
                c.smtp.ca_cert_path = Some(ca.clone());
            })
            .await;
            assert_eq!(mails.len(), 1, "{name}: {mails:#?}");
            assert!(mails[0].tls, "{name}: {mails:#?}");
            parts(&mails[0], &format!("{name}@example.com"));
        }
        // A certificate the panel does not trust: the message is not sent.
        let sink = SmtpSink::start_tls("starttls", &cert, &key).await;
        let mails = reset_mail_over(engine, &sink, "untrusted@example.com", Duration::from_secs(2), |c| {
            c.smtp.mode = SmtpMode::Starttls;
            c.smtp.max_attempts = 1;
        })
        .await;
        assert!(mails.is_empty(), "{mails:#?}");
        // STARTTLS required but not offered: no downgrade to plain text.
        let sink = SmtpSink::start().await;
        let mails = reset_mail_over(engine, &sink, "downgrade@example.com", Duration::from_secs(2), |c| {
            c.smtp.mode = SmtpMode::Starttls;
            c.smtp.ca_cert_path = Some(ca.clone());
            c.smtp.max_attempts = 1;
        })
        .await;
        assert!(mails.is_empty(), "{mails:#?}");
    }
}
