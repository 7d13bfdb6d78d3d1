//! Stripe deliveries acted on once: 1,000 copies of one event against one effect.
//!
//! `cargo bench -p shardlyn-tests --bench billing_webhooks` starts FakeStripe (our own
//! Stripe fake, `tests/src/fake_stripe.rs`) and a panel (SQLite;
//! `SHARDLYN_BENCH_BILLING_ENGINE=postgres` for PostgreSQL) selling through it, makes an
//! organization subscribe through Checkout, then sends `SHARDLYN_BENCH_BILLING_COPIES`
//! (default 1,000) signed copies of one `invoice.paid` event, 20 at a time, and prints:
//! - the baseline: the same number of deliveries of an event billing ignores
//!   (verified, recorded, claimed, no Stripe call), in the same run;
//! - each copy's processing time, p50 and p99, and as a ratio to the baseline's;
//! - the effect: how many copies were acted on (must be 1) and how many times the
//!   panel read the subscription from Stripe because of them.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use shardlyn_panel::config::Secret;
use shardlyn_tests::bench::{env_or, percentile};
use shardlyn_tests::fake_stripe::{FakeStripe, signature};
use shardlyn_tests::{Engine, TestApp, spawn_app_with};

const WHSEC: &str = "whsec_bench";

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sends `copies` deliveries of `body` (signed now), `parallel` at a time; answers the
/// sorted times (ms) and the outcomes.
async fn send(
    app: &Arc<TestApp>,
    body: &str,
    copies: usize,
    parallel: usize,
) -> (Vec<f64>, Vec<String>) {
    let body = Arc::new(body.to_owned());
    let mut times = Vec::with_capacity(copies);
    let mut outcomes = Vec::with_capacity(copies);
    let mut sent = 0;
    while sent < copies {
        let batch = parallel.min(copies - sent);
        let mut tasks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let app = Arc::clone(app);
            let body = Arc::clone(&body);
            tasks.push(tokio::spawn(async move {
                let sig = signature(WHSEC, &body, chrono::Utc::now().timestamp());
                let began = Instant::now();
                let r = app
                    .client
                    .post(format!("{}/v1/webhooks/stripe", app.base))
                    .header("Stripe-Signature", sig)
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("deliver");
                let took = began.elapsed();
                assert_eq!(r.status().as_u16(), 200);
                let v: Value = r.json().await.expect("receipt");
                (
                    ms(took),
                    v["outcome"].as_str().unwrap_or_default().to_owned(),
                )
            }));
        }
        for t in tasks {
            let (took, outcome) = t.await.expect("task");
            times.push(took);
            outcomes.push(outcome);
        }
        sent += batch;
    }
    times.sort_by(f64::total_cmp);
    (times, outcomes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let copies = usize::try_from(env_or("SHARDLYN_BENCH_BILLING_COPIES", 1_000)).expect("copies");
    let engine = match std::env::var("SHARDLYN_BENCH_BILLING_ENGINE").as_deref() {
        Ok("postgres") => Engine::Postgres,
        _ => Engine::Sqlite,
    };
    let stripe = FakeStripe::start().await;
    let (base, key) = (stripe.url.clone(), stripe.secret_key().to_owned());
    let app = Arc::new(
        spawn_app_with(engine, move |c| {
            c.stripe.secret_key = Secret(key);
            c.stripe.api_base = base;
            c.stripe.webhook_secret = Secret(WHSEC.to_owned());
            c.jobs.enabled = false;
        })
        .await,
    );
    stripe.webhook(&format!("{}/v1/webhooks/stripe", app.base), WHSEC);
    let admin = app.bootstrap_admin().await;
    let user = app.register("bench@example.com").await;
    let plan = app
        .post(
            "/v1/admin/plans",
            Some(&admin.access),
            json!({"name": "Bench", "price_month": 500}),
        )
        .await
        .expect(201)
        .body;
    let checkout = app
        .post(
            "/v1/billing/org/subscribe",
            Some(&user.access),
            json!({"plan_id": plan["id"]}),
        )
        .await
        .expect(200)
        .body;
    let url = checkout["url"].as_str().expect("url");
    let sub = stripe
        .complete_checkout(url.rsplit('/').next().unwrap_or_default())
        .expect("pay");
    stripe.flush_deliveries().await;

    // Baseline: deliveries of an event billing does not act on.
    let ignored = json!({"id": "evt_bench_ignored", "object": "event", "type": "customer.updated",
        "created": chrono::Utc::now().timestamp(), "data": {"object": {"object": "customer"}}})
    .to_string();
    let (base_times, _) = send(&app, &ignored, copies, 20).await;

    // The measured event: one invoice.paid, held back and sent `copies` times.
    stripe.hold_deliveries(true);
    let invoice = stripe.pay(&sub);
    let event = stripe
        .events_of("invoice.paid")
        .into_iter()
        .find(|e| e["data"]["object"]["id"] == invoice.as_str())
        .expect("invoice.paid");
    let reads_before = stripe
        .request_log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v1/subscriptions/"))
        .count();
    let began = Instant::now();
    let (times, outcomes) = send(&app, &event.to_string(), copies, 20).await;
    let wall = began.elapsed();
    let reads = stripe
        .request_log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v1/subscriptions/"))
        .count()
        - reads_before;
    let acted = outcomes.iter().filter(|o| *o == "processed").count();
    let (b50, b99) = (percentile(&base_times, 0.5), percentile(&base_times, 0.99));
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("billing webhooks ({engine:?}), {copies} deliveries, 20 at a time");
    println!("  baseline (an ignored event): p50 {b50:.2} ms, p99 {b99:.2} ms");
    println!(
        "  one invoice.paid x{copies}: p50 {p50:.2} ms ({:.2}x), p99 {p99:.2} ms ({:.2}x), wall {:.0} ms",
        p50 / b50,
        p99 / b99,
        ms(wall)
    );
    println!("  acted on: {acted} (must be 1); Stripe reads caused: {reads}");
    assert_eq!(acted, 1, "one effect");
    let processed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE delivery_id = $1 AND processed_at IS NOT NULL",
    )
    .bind(event["id"].as_str().unwrap_or_default())
    .fetch_one(&app.state.db.pool)
    .await
    .expect("count");
    assert_eq!(processed, 1);
}
