//! support API tests (real panel, both engines): support messages delivered to a real
//! SMTP server on loopback, their rate limit, and the HelpScout signature checked
//! against an HMAC computed here with the `hmac` crate.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use shardlyn_panel::config::SmtpMode;
use shardlyn_tests::smtp::SmtpSink;
use shardlyn_tests::{both_engines, spawn_app, spawn_app_with};

const FROM: &str = "panel@shardlyn.test";
const SUPPORT: &str = "support@acme.example";

both_engines! {
    async fn support_messages_reach_the_support_address(engine) {
        let sink = SmtpSink::start().await;
        let port = sink.port;
        let app = spawn_app_with(engine, |c| {
            c.smtp.host = "127.0.0.1".into();
            c.smtp.port = Some(port);
            c.smtp.mode = SmtpMode::Plain;
            c.smtp.from = format!("Shardlyn Test <{FROM}>");
            c.support.messages_per_hour = 2;
        })
        .await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("ada@example.com").await;
        let message = json!({"subject": "Server won't start", "message": "It says <error>.\nPlease help."});

        // No support address yet: a clear 409, nothing sent.
        app.post("/v1/support/messages", Some(&user.access), message.clone())
            .await
            .expect_error(409, "SUPPORT_NOT_CONFIGURED");
        app.put("/v1/settings", Some(&admin.access), json!({"support_email": SUPPORT})).await.expect(200);

        let r = app.post("/v1/support/messages", Some(&user.access), message.clone()).await.expect(202);
        assert_eq!(r.body, json!({"queued": true}));
        let mail = sink.wait_for_subject(SUPPORT, "[Shardlyn support] Server won't start").await;
        assert_eq!(mail.rcpt_tos, vec![SUPPORT.to_string()]);
        assert_eq!(mail.mail_from, FROM);
        let text = mail.text.clone().expect("text part").replace("\r\n", "\n");
        let html = mail.html.clone().expect("html part");
        assert!(text.contains("Support message from ada@example.com"), "{text}");
        assert!(text.contains("It says <error>.\nPlease help."), "{text}");
        assert!(html.contains("It says &lt;error&gt;."), "{html}");

        // Validation: nothing is sent for a bad body.
        for (body, field) in [
            (json!({"subject": " ", "message": "x"}), "subject"),
            (json!({"subject": "a\nb", "message": "x"}), "subject"),
            (json!({"subject": "s".repeat(201), "message": "x"}), "subject"),
            (json!({"subject": "x", "message": ""}), "message"),
            (json!({"subject": "x", "message": "m".repeat(10_001)}), "message"),
        ] {
            let r = app.post("/v1/support/messages", Some(&user.access), body).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{}", r.text);
        }
        app.post("/v1/support/messages", Some(&user.access), json!({"subject": "x"}))
            .await
            .expect_error(400, "BAD_REQUEST");
        app.post("/v1/support/messages", None, message.clone()).await.expect_error(401, "UNAUTHORIZED");

        // Two an hour: the third is refused with Retry-After; another user is not affected.
        app.post("/v1/support/messages", Some(&user.access), json!({"subject": "Second", "message": "again"})).await.expect(202);
        let r = app.post("/v1/support/messages", Some(&user.access), json!({"subject": "Third", "message": "again"}))
            .await
            .expect_error(429, "RATE_LIMITED");
        let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
        assert!((1..=3600).contains(&retry), "{retry}");
        app.post("/v1/support/messages", Some(&admin.access), json!({"subject": "From admin", "message": "hi"})).await.expect(202);
        sink.wait_for_subject(SUPPORT, "From admin").await;
        sink.wait_for_subject(SUPPORT, "Second").await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // The support mails (the user's registration also mailed a verification link).
        let subjects: Vec<String> = sink.received().into_iter().map(|m| m.subject).filter(|s| s.starts_with("[Shardlyn support]")).collect();
        assert_eq!(subjects.len(), 3, "{subjects:?}");
        assert!(!subjects.iter().any(|s| s.contains("Third")), "{subjects:?}");
    }

    async fn a_failing_smtp_server_does_not_fail_the_request(engine) {
        // Nothing listens on this port: the send is queued, retried and logged.
        let port = shardlyn_tests::smtp::free_port();
        let app = spawn_app_with(engine, |c| {
            c.smtp.host = "127.0.0.1".into();
            c.smtp.port = Some(port);
            c.smtp.mode = SmtpMode::Plain;
        })
        .await;
        let admin = app.bootstrap_admin().await;
        app.put("/v1/settings", Some(&admin.access), json!({"support_email": SUPPORT})).await.expect(200);
        let started = std::time::Instant::now();
        app.post("/v1/support/messages", Some(&admin.access), json!({"subject": "Hi", "message": "there"}))
            .await
            .expect(202);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    async fn helpscout_signature_is_the_hmac_of_the_email(engine) {
        let secret = "beacon-secret-0123456789";
        let app = spawn_app_with(engine, |c| {
            c.support.helpscout_secret = shardlyn_panel::config::Secret(secret.into());
        })
        .await;
        app.bootstrap_admin().await;
        let user = app.register("Grace@Example.com").await;
        let r = app.get("/v1/support/helpscout/signature", Some(&user.access)).await.expect(200);
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(b"grace@example.com");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(r.body["email"], "grace@example.com");
        assert_eq!(r.body["signature"], expected);
        // An API token of the same user signs the same email.
        let token = app.api_token(&user.access, "bot", None).await;
        let r = app.get("/v1/support/helpscout/signature", Some(&token)).await.expect(200);
        assert_eq!(r.body["signature"], expected);
        app.get("/v1/support/helpscout/signature", None).await.expect_error(401, "UNAUTHORIZED");
    }

    async fn helpscout_without_a_secret_is_not_found(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        app.get("/v1/support/helpscout/signature", Some(&admin.access))
            .await
            .expect_error(404, "HELPSCOUT_NOT_CONFIGURED");
    }
}
