//! The two Stripe fakes the billing tests use, checked by themselves.
//!
//! - Our fake (`shardlyn_tests::fake_stripe`): Stripe's official Python SDK, `stripe`
//!   (installed into the test venv by `scripts/dev-services`), drives it through
//!   customers, products, prices, a Checkout session paid on the hosted page, the billing
//!   portal, subscription and invoice lists, a plan change and cancellations, and verifies
//!   every webhook it delivered with `stripe.Webhook.construct_event`
//!   (`tests/support/stripe_check.py`); its faults and test controls are checked here.
//! - `localstripe` (`shardlyn_tests::stripe`), the third-party fake: it starts, and a
//!   subscription on a plan, a paid renewal, a failed one and a cancellation send
//!   webhooks that `shardlyn_panel::webhooks::verify::stripe` accepts.

use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::webhooks::verify;
use shardlyn_tests::fake_stripe::{self, FakeStripe};
use shardlyn_tests::stripe::{self as localstripe, LocalStripe, WebhookSink};

const WEBHOOK_SECRET: &str = "whsec_shardlyn_fake_stripe_check";

fn venv_python() -> std::path::PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    std::path::Path::new(&home).join(".cache/shardlyn/venv/bin/python")
}

/// Runs `stripe_check.py` with `args`; answers its stdout, failing on a non-zero exit.
async fn stripe_check(args: Vec<String>) -> String {
    let script = shardlyn_tests::crate_path("support/stripe_check.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(venv_python())
            .arg(script)
            .args(args)
            .output()
            .expect("the venv's python runs (scripts/dev-services installs stripe)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stripe_check.py failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// Fake: ours, driven by the official `stripe` Python SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_stripe_sdk_drives_the_fake_through_checkout_and_verifies_its_webhooks() {
    let fake = FakeStripe::start().await;
    let sink = WebhookSink::start().await;
    fake.webhook(sink.url(), WEBHOOK_SECRET);

    let out = stripe_check(vec![
        "api".into(),
        fake.url.clone(),
        fake.secret_key().into(),
    ])
    .await;
    assert_eq!(out.trim(), "ok");

    fake.flush_deliveries().await;
    let deliveries = sink.deliveries();
    for event in fake.events() {
        let id = event["id"].as_str().expect("id");
        assert_eq!(fake.deliveries(id), vec![200], "{event}");
    }
    assert_eq!(deliveries.len(), fake.events().len());

    // Every delivery verifies with the panel's own check, and with the SDK's.
    let now = fake_stripe::now();
    for d in &deliveries {
        verify::stripe(
            WEBHOOK_SECRET.as_bytes(),
            d.signature.as_deref(),
            d.body.as_bytes(),
            now,
            300,
        )
        .unwrap_or_else(|e| panic!("{e:?}: {}", d.body));
    }
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let captured: Vec<Value> = deliveries
        .iter()
        .map(|d| json!({"payload": d.body, "signature": d.signature}))
        .collect();
    std::fs::write(file.path(), serde_json::to_vec(&captured).expect("json")).expect("write");
    let out = stripe_check(vec![
        "webhooks".into(),
        file.path().display().to_string(),
        WEBHOOK_SECRET.into(),
    ])
    .await;
    let types: Vec<&str> = out
        .trim()
        .strip_prefix("ok ")
        .expect("ok <types>")
        .split(',')
        .collect();
    for kind in [
        "customer.created",
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ] {
        assert!(types.contains(&kind), "{kind} in {types:?}");
    }

    // The completed session's events carry what the panel reads.
    let completed = &fake.events_of("checkout.session.completed")[0]["data"]["object"];
    assert_eq!(completed["client_reference_id"], "org-1");
    assert_eq!(completed["metadata"]["org_id"], "org-1");
    let created = &fake.events_of("customer.subscription.created")[0]["data"]["object"];
    assert_eq!(created["id"], completed["subscription"]);
    assert_eq!(created["metadata"]["org_id"], "org-1");
    assert_eq!(created["status"], "active");
    let updated = fake.events_of("customer.subscription.updated");
    assert!(
        updated
            .iter()
            .any(|e| e["data"]["previous_attributes"]["cancel_at_period_end"] == false),
        "{updated:#?}"
    );

    // The SDK sent an Idempotency-Key with every POST and form bodies with brackets.
    let log = fake.request_log();
    let posts: Vec<_> = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v1/"))
        .collect();
    assert!(!posts.is_empty());
    assert!(
        posts.iter().all(|r| r.idempotency_key.is_some()),
        "{posts:#?}"
    );
    let checkout = posts
        .iter()
        .rev()
        .find(|r| r.path == "/v1/checkout/sessions")
        .expect("a checkout request");
    assert_eq!(checkout.params["line_items"][0]["quantity"], "1");
    assert_eq!(
        checkout.params["subscription_data"]["metadata"]["org_id"],
        "org-1"
    );
    assert_eq!(checkout.params["automatic_tax"]["enabled"], "true");
}

async fn form(
    client: &reqwest::Client,
    url: String,
    key: Option<&str>,
    idempotency: Option<&str>,
    body: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = client.post(url).form(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(i) = idempotency {
        req = req.header("Idempotency-Key", i);
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Fake: ours (keys, idempotency, faults, test controls and the delivery controls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_checks_keys_replays_idempotent_posts_and_fails_on_demand() {
    let fake = FakeStripe::start().await;
    let sink = WebhookSink::start().await;
    fake.webhook(sink.url(), WEBHOOK_SECRET);
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", fake.url);
    let key = Some(fake.secret_key());

    let (status, body) = form(&client, url("/v1/customers"), None, None, &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, _) = form(
        &client,
        url("/v1/customers"),
        Some("sk_test_wrong"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 401);
    // Basic auth with the key as user name works too.
    let r = client
        .get(url("/v1/prices/price_nope"))
        .basic_auth(fake.secret_key(), Some(""))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "resource_missing");

    // The same key and parameters: the first answer again; other parameters: 400.
    let (s1, first) = form(
        &client,
        url("/v1/customers"),
        key,
        Some("k-1"),
        &[("email", "a@example.com")],
    )
    .await;
    let (s2, again) = form(
        &client,
        url("/v1/customers"),
        key,
        Some("k-1"),
        &[("email", "a@example.com")],
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first["id"], again["id"]);
    let (s3, refused) = form(
        &client,
        url("/v1/customers"),
        key,
        Some("k-1"),
        &[("email", "b@example.com")],
    )
    .await;
    assert_eq!(s3, 400, "{refused}");
    assert_eq!(refused["error"]["type"], "idempotency_error");
    let customer = first["id"].as_str().expect("customer id").to_owned();
    assert_eq!(
        fake.events_of("customer.created").len(),
        1,
        "the replay created nothing"
    );

    // JSON bodies are refused as Stripe refuses them.
    let r = client
        .post(url("/v1/customers"))
        .bearer_auth(fake.secret_key())
        .json(&json!({"email": "c@example.com"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);

    // A checkout through the API, completed by the test control.
    let price = fake.create_price("Pro", 900, "usd", "month");
    let (status, session) = form(
        &client,
        url("/v1/checkout/sessions"),
        key,
        None,
        &[
            ("mode", "subscription"),
            ("customer", &customer),
            ("line_items[0][price]", &price),
            ("line_items[0][quantity]", "1"),
            ("success_url", "http://127.0.0.1:9/ok"),
            ("subscription_data[metadata][org_id]", "org-9"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let session_id = session["id"].as_str().expect("session id");
    let sub = fake.complete_checkout(session_id).expect("completes");
    assert!(fake.complete_checkout(session_id).is_err(), "only once");
    assert_eq!(
        fake.subscription(&sub).expect("sub")["metadata"]["org_id"],
        "org-9"
    );

    // Test controls: each records the events a real Stripe would send.
    let invoice = fake.fail_payment(&sub);
    assert_eq!(fake.subscription(&sub).expect("sub")["status"], "past_due");
    let failed = fake.events_of("invoice.payment_failed");
    assert_eq!(failed[0]["data"]["object"]["id"], invoice.as_str());
    let end_before = fake.subscription(&sub).expect("sub")["current_period_end"].clone();
    let paid = fake.pay(&sub);
    assert_eq!(paid, invoice, "the open invoice is the one paid");
    let after = fake.subscription(&sub).expect("sub");
    assert_eq!(after["status"], "active");
    assert_eq!(after["current_period_start"], end_before, "a new period");
    assert_eq!(
        after["items"]["data"][0]["current_period_end"],
        after["current_period_end"]
    );
    fake.set_status(&sub, "unpaid");
    assert_eq!(fake.subscription(&sub).expect("sub")["status"], "unpaid");
    let (status, _) = form(
        &client,
        url(&format!("/v1/subscriptions/{sub}")),
        key,
        None,
        &[("cancel_at_period_end", "true")],
    )
    .await;
    assert_eq!(status, 200);
    fake.advance_period(&sub);
    assert_eq!(fake.subscription(&sub).expect("sub")["status"], "canceled");
    assert_eq!(fake.events_of("customer.subscription.deleted").len(), 1);

    fake.flush_deliveries().await;
    let kinds: Vec<Value> = sink
        .deliveries()
        .iter()
        .map(|d| d.event["type"].clone())
        .collect();
    assert_eq!(kinds.len(), fake.events().len(), "{kinds:?}");

    // Held deliveries go out only when the test sends them, in its order.
    fake.hold_deliveries(true);
    let sub2 = {
        let (_, session) = form(
            &client,
            url("/v1/checkout/sessions"),
            key,
            None,
            &[
                ("mode", "subscription"),
                ("customer", &customer),
                ("line_items[0][price]", &price),
                ("success_url", "http://127.0.0.1:9/ok"),
            ],
        )
        .await;
        fake.complete_checkout(session["id"].as_str().expect("id"))
            .expect("completes")
    };
    fake.set_status(&sub2, "past_due");
    let held = fake.held();
    assert_eq!(held.len(), 5, "{held:?}");
    fake.flush_deliveries().await;
    let before = sink.deliveries().len();
    let updated = held.last().expect("updated").clone();
    let created = held
        .iter()
        .find(|id| fake.event(id).expect("event")["type"] == "customer.subscription.created")
        .expect("created")
        .clone();
    assert_eq!(fake.deliver_now(&updated).await, 200);
    assert_eq!(fake.deliver_now(&created).await, 200);
    fake.resend(&created);
    fake.flush_deliveries().await;
    let order: Vec<Value> = sink.deliveries()[before..]
        .iter()
        .map(|d| d.event["type"].clone())
        .collect();
    assert_eq!(
        order,
        vec![
            json!("customer.subscription.updated"),
            json!("customer.subscription.created"),
            json!("customer.subscription.created")
        ]
    );
    assert_eq!(fake.deliveries(&created), vec![200, 200]);

    // sign() makes the header a delivery would carry at any time.
    let body = r#"{"id":"evt_x"}"#;
    let header = fake.sign(body, 1_000);
    assert_eq!(
        verify::stripe(
            WEBHOOK_SECRET.as_bytes(),
            Some(&header),
            body.as_bytes(),
            1_100,
            300
        ),
        Ok(1_000)
    );
    assert_eq!(
        verify::stripe(
            WEBHOOK_SECRET.as_bytes(),
            Some(&header),
            body.as_bytes(),
            2_000,
            300
        ),
        Err(verify::Refusal::Stale)
    );

    // Injected failures, then down: connections closed unanswered, open ones too.
    fake.set_failing(Some(500));
    let (status, body) = form(&client, url("/v1/customers"), key, None, &[]).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "api_error");
    fake.set_failing(None);
    let pooled = reqwest::Client::new();
    let r = pooled
        .get(url(&format!("/v1/customers/{customer}")))
        .bearer_auth(fake.secret_key())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;
    fake.set_down(true);
    let r = pooled
        .get(url(&format!("/v1/customers/{customer}")))
        .bearer_auth(fake.secret_key())
        .send()
        .await;
    assert!(r.is_err(), "an open connection gets no answer: {r:?}");
    let r = reqwest::Client::new()
        .get(url(&format!("/v1/customers/{customer}")))
        .bearer_auth(fake.secret_key())
        .send()
        .await;
    assert!(r.is_err(), "a new connection gets no answer: {r:?}");
    fake.set_down(false);
    let r = reqwest::Client::new()
        .get(url(&format!("/v1/customers/{customer}")))
        .bearer_auth(fake.secret_key())
        .send()
        .await
        .expect("up again");
    assert_eq!(r.status(), 200);
}

fn verifies(d: &localstripe::Delivery) {
    verify::stripe(
        WEBHOOK_SECRET.as_bytes(),
        d.signature.as_deref(),
        d.body.as_bytes(),
        fake_stripe::now(),
        300,
    )
    .unwrap_or_else(|e| panic!("{e:?}: {}", d.body));
}

/// Fake: `localstripe` (a subscription on a plan, renewals paid and failed, cancel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstripe_sends_subscription_webhooks_the_panel_verifies() {
    let stripe = LocalStripe::start().await;
    let sink = WebhookSink::start().await;
    stripe
        .configure_webhook(sink.url(), WEBHOOK_SECRET, None)
        .await;
    stripe
        .create_plan("price_pro_month", 1200, "eur", "month")
        .await;
    let customer = stripe
        .create_customer("owner@example.com", &[("org_id", "org-1")])
        .await;
    let declined = stripe
        .attach_card(&customer, localstripe::CARD_DECLINED)
        .await
        .expect_err("declined at attach");
    assert_eq!(declined.status, 402);
    stripe
        .attach_card(&customer, localstripe::CARD_OK)
        .await
        .expect("card attaches");
    let sub = stripe
        .subscribe(&customer, "price_pro_month", &[("org_id", "org-1")])
        .await
        .expect("subscribes");
    assert_eq!(sub["status"], "active");
    let sub_id = sub["id"].as_str().expect("id").to_owned();

    let wait = Duration::from_secs(15);
    let created = sink.wait_for("customer.subscription.created", wait).await;
    verifies(&created);
    assert_eq!(
        created.event["data"]["object"]["metadata"]["org_id"],
        "org-1"
    );
    let t: i64 = created
        .signature
        .as_deref()
        .and_then(|s| s.strip_prefix("t="))
        .and_then(|s| s.split(',').next())
        .and_then(|t| t.parse().ok())
        .expect("t=");
    assert_eq!(
        json!(t),
        created.event["created"],
        "signed at the event's creation"
    );

    let renewal = stripe.renew(&customer, &sub_id).await;
    let paid = sink.wait_for("invoice.payment_succeeded", wait).await;
    verifies(&paid);
    let deadline = tokio::time::Instant::now() + wait;
    while !sink.deliveries().iter().any(|d| {
        d.event["type"] == "invoice.payment_succeeded"
            && d.event["data"]["object"]["id"] == renewal["id"]
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewal's payment event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let open = stripe.fail_renewal(&customer, &sub_id).await;
    assert_eq!(open["status"], "open");
    let failed = sink.wait_for("invoice.payment_failed", wait).await;
    verifies(&failed);
    assert_eq!(
        failed.event["data"]["object"]["subscription"],
        sub_id.as_str()
    );
    assert_eq!(stripe.subscription(&sub_id).await["status"], "past_due");

    stripe.cancel(&sub_id).await;
    let deleted = sink.wait_for("customer.subscription.deleted", wait).await;
    verifies(&deleted);
    assert_eq!(deleted.event["data"]["object"]["status"], "canceled");
    assert!(
        !sink
            .deliveries()
            .iter()
            .any(|d| d.event["type"] == "invoice.paid"
                || d.event["type"] == "customer.subscription.updated"),
        "localstripe sends neither invoice.paid nor customer.subscription.updated"
    );
}
