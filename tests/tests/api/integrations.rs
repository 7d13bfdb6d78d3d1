//! Notification integrations: real deliveries over HTTP to receivers started here.
//!
//! Discord, Slack, Telegram, Microsoft Teams and ntfy cannot be reached (nor installed)
//! from the test machines, so each is a **local fake**: a small axum server on
//! 127.0.0.1 that records every request and answers as scripted, at the path the real
//! service would be asked (the loopback receivers are allowed through the test
//! configuration's `[outbound] allow`). The tests check each service's wire format as
//! the service documents it. The generic webhook is verified by PyPI's
//! `standardwebhooks` (installed by `scripts/dev-services`), email goes through aiosmtpd.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use shardlyn_panel::integrations::deliver::{self, Notification};
use shardlyn_tests::smtp::SmtpSink;
use shardlyn_tests::{Session, TestApp, both_engines, spawn_app, spawn_app_with};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Default)]
struct Inner {
    got: Vec<Received>,
    /// Answers to give, in order (status, Retry-After); then 200.
    script: Vec<(u16, Option<&'static str>)>,
}

/// A local fake receiver.
#[derive(Clone)]
struct Receiver {
    base: String,
    inner: Arc<Mutex<Inner>>,
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut guard = inner.lock().expect("lock");
    guard.got.push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
        at: Instant::now(),
    });
    let (status, retry_after) = if guard.script.is_empty() {
        (200, None)
    } else {
        guard.script.remove(0)
    };
    let status = StatusCode::from_u16(status).expect("status");
    let mut out = HeaderMap::new();
    if let Some(v) = retry_after {
        out.insert("retry-after", v.parse().expect("header"));
    }
    (
        status,
        out,
        format!("{{\"ok\":{},\"fake\":\"receiver\"}}", status.is_success()),
    )
}

impl Receiver {
    async fn start(script: Vec<(u16, Option<&'static str>)>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            got: Vec::new(),
            script,
        }));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://127.0.0.1:{}", addr.port()),
            inner,
        }
    }

    fn got(&self) -> Vec<Received> {
        self.inner.lock().expect("lock").got.clone()
    }

    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests within {within:?}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn note(key: &str, severity: &str) -> Notification {
    Notification {
        key: key.into(),
        title: format!("Server down <{key}>"),
        text: "The server crashed & did not restart".into(),
        severity: severity.into(),
        link: Some("https://panel.example/alerts/1".into()),
        fields: vec![
            ("Node".into(), "node-1".into()),
            ("Value".into(), "97%".into()),
        ],
    }
}

async fn create(app: &TestApp, s: &Session, body: Value) -> Value {
    app.post("/v1/integrations", Some(&s.access), body)
        .await
        .expect(201)
        .body
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// The integration once `pred` holds for it.
async fn integration_when(
    app: &TestApp,
    s: &Session,
    id: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = app
            .get(&format!("/v1/integrations/{id}"), Some(&s.access))
            .await
            .expect(200)
            .body;
        if pred(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "integration never matched: {got}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Verifies a delivery with PyPI `standardwebhooks` (`Webhook(secret).verify(body, headers)`).
async fn verify_with_standardwebhooks(secret: &str, r: &Received) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body");
    std::fs::write(&body, &r.body).expect("write body");
    let headers = json!({
        "webhook-id": r.header("webhook-id"),
        "webhook-timestamp": r.header("webhook-timestamp"),
        "webhook-signature": r.header("webhook-signature"),
    });
    let script = "import json, sys\n\
        from standardwebhooks import Webhook\n\
        body = open(sys.argv[2], 'rb').read()\n\
        Webhook(sys.argv[1]).verify(body, json.loads(sys.argv[3]))\n\
        print('verified')\n";
    // The venv of `scripts/dev-services`, as the mail tests use it.
    let python = std::env::var("SHARDLYN_TEST_SMTP_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/shardlyn/venv/bin/python")
    });
    let out = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(secret)
        .arg(&body)
        .arg(headers.to_string())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{python}: {e}; run scripts/dev-services"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("verified") {
        Ok(())
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn fast_retries(c: &mut shardlyn_panel::config::Config) {
    c.integrations.retry_base_ms = 50;
    c.integrations.retry_max_ms = 200;
    c.jobs.poll_interval_ms = 50;
}

both_engines! {
    async fn each_service_gets_its_wire_format(engine) {
        let rx = Receiver::start(Vec::new()).await;
        let telegram_base = rx.base.clone();
        let app = spawn_app_with(engine, move |c| {
            c.integrations.telegram_api_url = format!("{telegram_base}/telegram");
            c.jobs.poll_interval_ms = 50;
        }).await;
        let s = app.register("owner@example.com").await;
        let base = &rx.base;
        let discord = create(&app, &s, json!({"name": "Discord", "type": "discord",
            "config": {"webhook_url": format!("{base}/api/webhooks/123/discord-secret-token")}})).await;
        let slack = create(&app, &s, json!({"name": "Slack", "type": "slack",
            "config": {"webhook_url": format!("{base}/services/T0/B0/slack-secret-token")}})).await;
        let telegram = create(&app, &s, json!({"name": "Telegram", "type": "telegram",
            "config": {"bot_token": "123456:telegram-secret-token", "chat_id": "-100200300"}})).await;
        let teams = create(&app, &s, json!({"name": "Teams", "type": "teams",
            "config": {"webhook_url": format!("{base}/workflows/teams-secret-token")}})).await;
        let ntfy = create(&app, &s, json!({"name": "ntfy", "type": "ntfy",
            "config": {"server_url": format!("{base}/ntfy"), "topic": "ops-alerts", "token": "tk_ntfy-secret-token"}})).await;
        let webhook = create(&app, &s, json!({"name": "Hook", "type": "webhook",
            "config": {"url": format!("{base}/hook")}})).await;
        let secret = webhook["signing_secret"].as_str().expect("signing secret shown at creation").to_owned();
        assert!(secret.starts_with("whsec_"), "{secret}");

        // Secrets are never answered, in any GET.
        let list = app.get("/v1/integrations", Some(&s.access)).await.expect(200);
        assert_eq!(list.body["data"].as_array().expect("data").len(), 6);
        let mut texts = vec![list.text];
        for i in [&discord, &slack, &telegram, &teams, &ntfy, &webhook] {
            texts.push(app.get(&format!("/v1/integrations/{}", id(i)), Some(&s.access)).await.expect(200).text);
        }
        for text in &texts {
            for secret_part in ["discord-secret-token", "slack-secret-token", "telegram-secret-token",
                "teams-secret-token", "ntfy-secret-token", secret.as_str()] {
                assert!(!text.contains(secret_part), "{secret_part} answered in {text}");
            }
        }
        assert_eq!(discord["secrets"]["webhook_url"], "http://127.0.0.1/…");
        assert_eq!(ntfy["config"]["topic"], "ops-alerts");
        assert_eq!(webhook["has_signing_secret"], true);
        assert!(texts[6].contains("\"has_signing_secret\":true") && !texts[6].contains("whsec_"));

        for i in [&discord, &slack, &telegram, &teams, &ntfy, &webhook] {
            assert!(deliver::enqueue(&app.state, &id(i), &note("alert-1:firing", "critical")).await.expect("enqueue"));
            assert!(!deliver::enqueue(&app.state, &id(i), &note("alert-1:firing", "critical")).await.expect("again"),
                "the same key is queued once per integration");
        }
        let got = rx.wait_for(6, Duration::from_secs(20)).await;
        let by = |prefix: &str| got.iter().find(|r| r.path.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}: {got:#?}")).clone();

        let d = by("/api/webhooks/123/discord-secret-token");
        let b = d.json();
        assert!(b["content"].as_str().expect("content").contains("Server down <alert-1:firing>"));
        assert_eq!(b["embeds"][0]["title"], "Server down <alert-1:firing>");
        assert_eq!(b["embeds"][0]["description"], "The server crashed & did not restart");
        assert_eq!(b["embeds"][0]["url"], "https://panel.example/alerts/1");
        assert_eq!(b["embeds"][0]["fields"][0], json!({"name": "Node", "value": "node-1", "inline": true}));
        assert_eq!(b["embeds"][0]["color"], 0x00E0_1E5A);
        assert!(d.header("idempotency-key").starts_with("msg_"));

        let sl = by("/services/T0/B0/slack-secret-token").json();
        assert!(sl["text"].as_str().expect("text").contains("Server down"));
        assert_eq!(sl["blocks"][0]["type"], "header");
        assert_eq!(sl["blocks"][0]["text"]["text"], "Server down <alert-1:firing>");
        assert_eq!(sl["blocks"][1]["text"]["text"], "The server crashed &amp; did not restart", "mrkdwn escaped");
        assert_eq!(sl["blocks"][2]["fields"][0]["text"], "*Node*\nnode-1");

        let tg = by("/telegram/bot123456:telegram-secret-token/sendMessage").json();
        assert_eq!(tg["chat_id"], "-100200300");
        assert_eq!(tg["parse_mode"], "HTML");
        let text = tg["text"].as_str().expect("text");
        assert!(text.contains("<b>[CRITICAL] Server down &lt;alert-1:firing&gt;</b>"), "{text}");
        assert!(text.contains("<a href=\"https://panel.example/alerts/1\">"), "{text}");

        let tm = by("/workflows/teams-secret-token").json();
        assert_eq!(tm["type"], "message");
        let att = &tm["attachments"][0];
        assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(att["content"]["type"], "AdaptiveCard");
        assert_eq!(att["content"]["body"][0]["type"], "TextBlock");
        assert_eq!(att["content"]["body"][2]["facts"][1], json!({"title": "Value", "value": "97%"}));
        assert_eq!(att["content"]["actions"][0]["url"], "https://panel.example/alerts/1");

        let nt = by("/ntfy/ops-alerts");
        assert_eq!(String::from_utf8_lossy(&nt.body), "The server crashed & did not restart");
        assert_eq!(nt.header("title"), "Server down <alert-1:firing>");
        assert_eq!(nt.header("priority"), "5");
        assert_eq!(nt.header("tags"), "rotating_light,shardlyn");
        assert_eq!(nt.header("click"), "https://panel.example/alerts/1");
        assert_eq!(nt.header("authorization"), "Bearer tk_ntfy-secret-token");

        let wh = by("/hook");
        assert_eq!(wh.json()["data"]["key"], "alert-1:firing");
        assert_eq!(wh.json()["data"]["severity"], "critical");
        assert_eq!(wh.header("webhook-id"), wh.header("idempotency-key"));
        verify_with_standardwebhooks(&secret, &wh).await.expect("standardwebhooks verifies the delivery");
        let mut forged = wh.clone();
        forged.body = Bytes::from([wh.body.as_ref(), b" "].concat());
        assert!(verify_with_standardwebhooks(&secret, &forged).await.is_err(), "a changed body fails");

        // Delivered: healthy, with the time of the last delivery.
        let after = integration_when(&app, &s, &id(&webhook), |v| !v["last_delivery_at"].is_null()).await;
        assert_eq!(after["healthy"], true);

        // Rotation: a new secret, shown once; deliveries are signed with it.
        let rotated = app.post(&format!("/v1/integrations/{}/rotate-secret", id(&webhook)), Some(&s.access), json!({}))
            .await.expect(200).body;
        let new_secret = rotated["signing_secret"].as_str().expect("secret").to_owned();
        assert_ne!(new_secret, secret);
        let one = app.get(&format!("/v1/integrations/{}", id(&webhook)), Some(&s.access)).await.expect(200);
        assert!(!one.text.contains(&new_secret));
        assert!(deliver::enqueue(&app.state, &id(&webhook), &note("alert-1:resolved", "resolved")).await.expect("enqueue"));
        let got = rx.wait_for(7, Duration::from_secs(20)).await;
        let last = got.iter().rev().find(|r| r.path == "/hook").expect("second hook").clone();
        verify_with_standardwebhooks(&new_secret, &last).await.expect("signed with the new secret");
        assert!(verify_with_standardwebhooks(&secret, &last).await.is_err(), "not with the old one");

        // The test button: sent now, answered with what the receiver said.
        let t = app.post(&format!("/v1/integrations/{}/test", id(&discord)), Some(&s.access), json!({})).await.expect(200);
        assert_eq!(t.body["delivered"], true, "{}", t.text);
        assert_eq!(t.body["status"], 200);
        assert!(t.body["body"].as_str().expect("body").contains("fake"), "{}", t.text);
        assert!(t.body["latency_ms"].is_u64());
    }

    async fn a_refusing_receiver_is_reported_by_the_test_and_given_up_by_the_queue(engine) {
        let rx = Receiver::start(vec![(403, None), (404, None), (500, None), (500, None), (500, None)]).await;
        let app = spawn_app_with(engine, |c| {
            fast_retries(c);
            c.integrations.max_attempts = 3;
        }).await;
        let s = app.register("owner@example.com").await;
        let hook = create(&app, &s, json!({"name": "Hook", "type": "webhook", "config": {"url": format!("{}/hook", rx.base)}})).await;
        let t = app.post(&format!("/v1/integrations/{}/test", id(&hook)), Some(&s.access), json!({})).await.expect(200);
        assert_eq!(t.body["delivered"], false);
        assert_eq!(t.body["status"], 403);
        assert!(t.body["error"].as_str().expect("error").contains("403"), "{}", t.text);

        // A 404 is not retried: given up at once, the integration unhealthy.
        deliver::enqueue(&app.state, &id(&hook), &note("a:firing", "warn")).await.expect("enqueue");
        let bad = integration_when(&app, &s, &id(&hook), |v| v["healthy"] == false).await;
        assert!(bad["last_error"].as_str().expect("error").contains("404"), "{bad}");
        assert_eq!(rx.got().len(), 2);

        // 5xx are retried up to max_attempts (3), then given up.
        deliver::enqueue(&app.state, &id(&hook), &note("b:firing", "warn")).await.expect("enqueue");
        let got = rx.wait_for(5, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(rx.got().len(), 5, "no fourth attempt: {got:#?}");
        let bad = integration_when(&app, &s, &id(&hook), |v| {
            v["last_error"].as_str().is_some_and(|e| e.contains("3 attempt"))
        }).await;
        assert_eq!(bad["healthy"], false);

        // A success makes it healthy again.
        deliver::enqueue(&app.state, &id(&hook), &note("c:firing", "warn")).await.expect("enqueue");
        let good = integration_when(&app, &s, &id(&hook), |v| v["healthy"] == true).await;
        assert!(good["last_error"].is_null());
    }

    async fn retries_deliver_exactly_once_with_the_same_id(engine) {
        let rx = Receiver::start(vec![(500, None), (429, Some("1")), (503, None)]).await;
        let app = spawn_app_with(engine, fast_retries).await;
        let s = app.register("owner@example.com").await;
        let hook = create(&app, &s, json!({"name": "Hook", "type": "webhook", "config": {"url": format!("{}/hook", rx.base)}})).await;
        let secret = hook["signing_secret"].as_str().expect("secret").to_owned();
        // Notification 1: 500, then 429 Retry-After: 1, then 503, then 200.
        deliver::enqueue(&app.state, &id(&hook), &note("n1:firing", "critical")).await.expect("enqueue");
        let got = rx.wait_for(4, Duration::from_secs(20)).await;
        let ids: Vec<String> = got.iter().map(|r| r.header("webhook-id")).collect();
        assert!(ids.iter().all(|i| *i == ids[0]), "one id across retries: {ids:?}");
        assert!(got[2].at.duration_since(got[1].at) >= Duration::from_millis(950),
            "Retry-After: 1 honoured (waited {:?})", got[2].at.duration_since(got[1].at));
        verify_with_standardwebhooks(&secret, &got[3]).await.expect("the retry verifies");
        // Notification 2 goes through at once; nothing more comes for either.
        deliver::enqueue(&app.state, &id(&hook), &note("n2:firing", "critical")).await.expect("enqueue");
        rx.wait_for(5, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let got = rx.got();
        assert_eq!(got.len(), 5, "{got:#?}");
        let keys: Vec<String> = got.iter().map(|r| r.json()["data"]["key"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(keys, ["n1:firing", "n1:firing", "n1:firing", "n1:firing", "n2:firing"]);
        assert_ne!(got[4].header("webhook-id"), ids[0]);
        // Queued once per key, whoever asks again.
        assert!(!deliver::enqueue(&app.state, &id(&hook), &note("n1:firing", "critical")).await.expect("again"));
        let after = integration_when(&app, &s, &id(&hook), |v| !v["last_delivery_at"].is_null()).await;
        assert_eq!(after["healthy"], true);
    }

    async fn queued_deliveries_survive_a_restart(engine) {
        let rx = Receiver::start(Vec::new()).await;
        // A replica without jobs queues but does not deliver: the queue is all in the database.
        let app = spawn_app_with(engine, |c| c.jobs.enabled = false).await;
        let s = app.register("owner@example.com").await;
        let hook = create(&app, &s, json!({"name": "Hook", "type": "webhook", "config": {"url": format!("{}/hook", rx.base)}})).await;
        for n in 0..5 {
            assert!(deliver::enqueue(&app.state, &id(&hook), &note(&format!("k{n}"), "info")).await.expect("enqueue"));
        }
        let mut config = app.state.config.clone();
        let dir = app.stop_keep_dir().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(rx.got().is_empty());
        config.jobs.enabled = true;
        config.jobs.poll_interval_ms = 50;
        let again = shardlyn_tests::start_with_config(engine, dir, config).await;
        let got = rx.wait_for(5, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(rx.got().len(), 5, "each exactly once: {got:#?}");
        let mut keys: Vec<String> = rx.got().iter().map(|r| r.json()["data"]["key"].as_str().unwrap_or_default().to_owned()).collect();
        keys.sort();
        assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
        again.stop().await;
    }

    async fn email_goes_through_the_mailer(engine) {
        let sink = SmtpSink::start().await;
        let port = sink.port;
        let app = spawn_app_with(engine, move |c| {
            c.smtp.host = "127.0.0.1".into();
            c.smtp.port = Some(port);
            c.smtp.mode = shardlyn_panel::config::SmtpMode::Plain;
            c.smtp.from = "Shardlyn Test <panel@example.com>".into();
            c.jobs.poll_interval_ms = 50;
        }).await;
        let s = app.register("owner@example.com").await;
        let bad = app.post("/v1/integrations", Some(&s.access), json!({"name": "Mail", "type": "email",
            "config": {"recipients": ["ops@example.com", "not an address"]}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(bad.body["field"], "config.recipients[1]");
        let mail = create(&app, &s, json!({"name": "Mail", "type": "email",
            "config": {"recipients": ["ops@example.com", "oncall@example.com"]}})).await;
        assert_eq!(mail["config"]["recipients"], json!(["ops@example.com", "oncall@example.com"]));
        deliver::enqueue(&app.state, &id(&mail), &note("disk:firing", "warn")).await.expect("enqueue");
        for to in ["ops@example.com", "oncall@example.com"] {
            let m = sink.wait_for_subject(to, "Server down").await;
            assert!(m.subject.contains("[warning]"), "{}", m.subject);
            let text = m.text.unwrap_or_default();
            assert!(text.contains("The server crashed & did not restart") && text.contains("Node: node-1"), "{text}");
        }
        let t = app.post(&format!("/v1/integrations/{}/test", id(&mail)), Some(&s.access), json!({})).await.expect(200);
        assert_eq!(t.body["delivered"], true);
        sink.wait_for_subject("ops@example.com", "Test notification").await;
    }

    async fn bad_input_is_refused_with_the_field(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("owner@example.com").await;
        let post = |body: Value| {
            let app = &app;
            let token = s.access.clone();
            async move { app.post("/v1/integrations", Some(&token), body).await }
        };
        let r = post(json!({"name": "x", "type": "pager", "config": {}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "type");
        let r = post(json!({"name": "x", "type": "discord", "config": {}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "config.webhook_url");
        let r = post(json!({"name": "x", "type": "discord", "config": {"webhook_url": "not a url"}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "config.webhook_url");
        let r = post(json!({"name": "x", "type": "slack", "config": {"webhook_url": "ftp://example.com/x"}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "config.webhook_url");
        let r = post(json!({"name": "x", "type": "slack", "config": {"webhook_url": "https://x.example", "extra": 1}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "config.extra");
        let r = post(json!({"name": "", "type": "slack", "config": {"webhook_url": "https://x.example"}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "name");
        let r = post(json!({"name": "x", "type": "telegram", "config": {"bot_token": "nocolon", "chat_id": "1"}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "config.bot_token");
        let r = post(json!({"name": "x", "type": "ntfy", "config": {"topic": "a/b"}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "config.topic");
        let r = post(json!({"name": "x", "type": "email", "config": {"recipients": "ops@example.com"}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "config.recipients");
        post(json!({"name": "x", "type": "webhook", "config": {"url": "https://x.example"}, "surprise": true})).await.expect_error(400, "BAD_REQUEST");
        let r = app.call(reqwest::Method::POST, "/v1/integrations", Some(&s.access), None).await;
        assert!(matches!(r.status, 400 | 415), "{}", r.text);
        assert!(r.body["code"].is_string());

        // Types: each with its schema, secrets marked.
        let types = app.get("/v1/integrations/types", Some(&s.access)).await.expect(200).body;
        let names: Vec<&str> = types["data"].as_array().expect("data").iter().map(|t| t["type"].as_str().unwrap_or_default()).collect();
        assert_eq!(names, ["discord", "slack", "telegram", "email", "teams", "ntfy", "webhook"]);
        let telegram = &types["data"][2];
        assert_eq!(telegram["config_schema"]["properties"]["bot_token"]["writeOnly"], true);
        assert_eq!(telegram["config_schema"]["required"], json!(["bot_token", "chat_id"]));
        assert_eq!(telegram["fields"][1]["secret"], false);

        // Another organization's integration: 404 to outsiders, for every route.
        let hook = create(&app, &s, json!({"name": "Hook", "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}})).await;
        let other = app.register("other@example.com").await;
        let path = format!("/v1/integrations/{}", id(&hook));
        app.get(&path, Some(&other.access)).await.expect_error(404, "NOT_FOUND");
        app.put(&path, Some(&other.access), json!({"name": "mine"})).await.expect_error(404, "NOT_FOUND");
        app.post(&format!("{path}/test"), Some(&other.access), json!({})).await.expect_error(404, "NOT_FOUND");
        app.post(&format!("{path}/rotate-secret"), Some(&other.access), json!({})).await.expect_error(404, "NOT_FOUND");
        app.delete(&path, Some(&other.access)).await.expect_error(404, "NOT_FOUND");
        let listed = app.get("/v1/integrations", Some(&other.access)).await.expect(200);
        assert_eq!(listed.body["data"], json!([]));
        let org = hook["organization_id"].as_str().expect("org");
        app.get(&format!("/v1/integrations?organization_id={org}"), Some(&other.access)).await.expect_error(404, "NOT_FOUND");
        app.get("/v1/integrations/nope", Some(&s.access)).await.expect_error(404, "NOT_FOUND");

        // A receiver that does not answer: the test says so, with 200.
        let t = app.post(&format!("{path}/test"), Some(&s.access), json!({})).await.expect(200);
        assert_eq!(t.body["delivered"], false);
        assert!(t.body["status"].is_null());
        assert!(t.body["error"].as_str().is_some_and(|e| e.contains("connect")), "{}", t.text);

        // Updates: secrets kept when omitted, validated when given; rotation only for webhooks.
        let discord = create(&app, &s, json!({"name": "D", "type": "discord", "config": {"webhook_url": "https://discord.example/api/webhooks/1/tok"}})).await;
        let dpath = format!("/v1/integrations/{}", id(&discord));
        let u = app.put(&dpath, Some(&s.access), json!({"name": "Renamed", "enabled": false})).await.expect(200);
        assert_eq!(u.body["name"], "Renamed");
        assert_eq!(u.body["enabled"], false);
        assert_eq!(u.body["secrets"]["webhook_url"], "https://discord.example/…");
        let u = app.put(&dpath, Some(&s.access), json!({"config": {"webhook_url": "nope"}})).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(u.body["field"], "config.webhook_url");
        app.post(&format!("{dpath}/rotate-secret"), Some(&s.access), json!({})).await.expect_error(400, "VALIDATION_ERROR");
        app.put(&path, Some(&s.access), json!({"config": {"url": "http://127.0.0.1:9/other"}})).await.expect(200);
        let kept = app.get(&path, Some(&s.access)).await.expect(200);
        assert_eq!(kept.body["has_signing_secret"], true, "an update keeps the signing secret");
        app.delete(&dpath, Some(&s.access)).await.expect(204);
        app.get(&dpath, Some(&s.access)).await.expect_error(404, "NOT_FOUND");

        // The delivery API refuses what it cannot deliver.
        assert!(deliver::enqueue(&app.state, "nope", &note("k", "info")).await.is_err());
        assert!(deliver::enqueue(&app.state, &id(&hook), &note("k", "loud")).await.is_err());
        assert!(deliver::enqueue(&app.state, &id(&hook), &note("", "info")).await.is_err());
    }

    async fn private_addresses_are_refused_unless_allowed(engine) {
        // No `[outbound] allow`: loopback and private receivers are refused when saved.
        let app = spawn_app_with(engine, |c| c.outbound = shardlyn_net::outbound::Outbound::default()).await;
        let s = app.register("owner@example.com").await;
        for (kind, field, url) in [
            ("webhook", "url", "http://127.0.0.1:8080/hook"),
            ("discord", "webhook_url", "http://10.1.2.3/api/webhooks/1/x"),
            ("ntfy", "server_url", "http://169.254.169.254"),
            ("teams", "webhook_url", "http://[::1]/flow"),
        ] {
            let mut config = serde_json::Map::new();
            config.insert(field.into(), json!(url));
            if kind == "ntfy" {
                config.insert("topic".into(), json!("t"));
            }
            let r = app.post("/v1/integrations", Some(&s.access), json!({"name": "x", "type": kind, "config": config}))
                .await.expect_error(422, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], format!("config.{field}"), "{}", r.text);
            assert!(r.body["error"].as_str().expect("error").contains("outbound"), "{}", r.text);
        }
        let r = app.get("/v1/integrations", Some(&s.access)).await.expect(200);
        assert_eq!(r.body["data"], json!([]), "nothing saved");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_is_queued_once_across_replicas() {
    // Two replicas on one PostgreSQL database enqueue the same alert transition: one row,
    // one delivery.
    let rx = Receiver::start(Vec::new()).await;
    let apps = shardlyn_tests::replicas(2, |c| c.jobs.poll_interval_ms = 50).await;
    let s = apps[0].register("owner@example.com").await;
    let hook = create(
        &apps[0],
        &s,
        json!({"name": "Hook", "type": "webhook", "config": {"url": format!("{}/hook", rx.base)}}),
    )
    .await;
    let n = note("alert-9:firing", "critical");
    let hook_id = id(&hook);
    let (a, b) = tokio::join!(
        deliver::enqueue(&apps[0].state, &hook_id, &n),
        deliver::enqueue(&apps[1].state, &hook_id, &n)
    );
    assert!(
        a.expect("a") ^ b.expect("b"),
        "exactly one replica queued it"
    );
    rx.wait_for(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got().len(), 1);
    for app in apps {
        app.stop().await;
    }
}
