//! Subscriptions through Stripe (issue 19): Checkout, plan changes with proration,
//! cancel at the period's end, the portal, invoices, webhooks acted on once, the
//! reconciliation, and Stripe's failures.
//!
//! Two Stripe fakes, named in each test:
//! - **FakeStripe** (`shardlyn_tests::fake_stripe`, ours; its wire format is checked with
//!   Stripe's official Python SDK in `fake_stripe.rs`) for what localstripe lacks:
//!   Prices, Checkout Sessions, the billing portal, `checkout.session.completed`,
//!   `customer.subscription.updated`, `invoice.paid`, period ends.
//! - **localstripe** (PyPI, a real third-party fake; `shardlyn_tests::stripe`) for
//!   customers, subscriptions on plans, failed renewals and its own signed webhooks.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shardlyn_panel::config::Secret;
use shardlyn_tests::fake_stripe::{FakeStripe, signature};
use shardlyn_tests::stripe::LocalStripe;
use shardlyn_tests::{Session, TestApp, both_engines, spawn_app_with};

const WHSEC: &str = "whsec_billing_tests";

/// A panel selling through Stripe at `api_base`, with its webhook secret.
async fn panel(engine: shardlyn_tests::Engine, api_base: &str, key: &str) -> TestApp {
    let (base, key) = (api_base.to_owned(), key.to_owned());
    spawn_app_with(engine, move |c| {
        c.stripe.secret_key = Secret(key);
        c.stripe.api_base = base;
        c.stripe.webhook_secret = Secret(WHSEC.to_owned());
        c.stripe.timeout_secs = 3;
        // The tests run the retry worker and the reconciliation themselves.
        c.jobs.enabled = false;
    })
    .await
}

/// A paid plan made by the admin (the panel makes its Stripe product and prices).
async fn paid_plan(app: &TestApp, admin: &Session, name: &str, month: i64) -> Value {
    app.post(
        "/v1/admin/plans",
        Some(&admin.access),
        json!({"name": name, "price_month": month, "price_year": month * 10,
               "limits": {"servers": 5}, "pools": ["own"]}),
    )
    .await
    .expect(201)
    .body
}

async fn subscription(app: &TestApp, user: &Session) -> Value {
    app.get("/v1/billing/org/subscription", Some(&user.access))
        .await
        .expect(200)
        .body
}

/// Polls the caller's subscription until `check` holds (deliveries are asynchronous).
async fn until(app: &TestApp, user: &Session, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = subscription(app, user).await;
        if check(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The session id of a Checkout URL (`<base>/checkout/<id>`).
fn session_of(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_owned()
}

async fn deliveries_of(app: &TestApp, event_id: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM webhook_deliveries \
         WHERE provider = 'stripe' AND delivery_id = $1 AND processed_at IS NOT NULL",
    )
    .bind(event_id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("deliveries")
}

/// POSTs `body` to the panel's Stripe endpoint with `sig`.
async fn deliver(app: &TestApp, body: &str, sig: &str) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}/v1/webhooks/stripe", app.base))
        .header("Stripe-Signature", sig)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("deliver");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

both_engines! {
    /// FakeStripe: Checkout, activation from Stripe's events only, one customer, a plan
    /// change without a second charge, cancel at the period's end, portal, invoices.
    async fn checkout_activates_only_from_stripe_and_changes_do_not_charge_twice(engine) {
        let stripe = FakeStripe::start().await;
        let app = panel(engine, &stripe.url, stripe.secret_key()).await;
        stripe.webhook(&format!("{}/v1/webhooks/stripe", app.base), WHSEC);
        let admin = app.bootstrap_admin().await;
        let user = app.register("player@example.com").await;

        let small = paid_plan(&app, &admin, "Small", 500).await;
        let large = paid_plan(&app, &admin, "Large", 1500).await;
        let small_id = small["id"].as_str().unwrap();
        let price = small["stripe_price_month"].as_str().expect("a price was made").to_owned();
        assert!(small["stripe_price_year"].as_str().is_some());
        assert!(small["stripe_product_id"].as_str().is_some());

        let r = app.post("/v1/billing/org/subscribe", Some(&user.access),
            json!({"plan_id": small_id, "interval": "month"})).await.expect(200).body;
        assert_eq!(r["action"], "checkout");
        let url = r["url"].as_str().unwrap().to_owned();
        let session = stripe.checkout_session(&session_of(&url)).expect("session exists");
        assert_eq!(session["mode"], "subscription");
        assert_eq!(session["allow_promotion_codes"], true);
        let made = stripe.request_log().into_iter()
            .find(|r| r.method == "POST" && r.path == "/v1/checkout/sessions").expect("checkout posted");
        assert!(made.params.to_string().contains(&price), "{:?}", made.params);
        assert!(made.idempotency_key.is_some());

        // Coming back from Checkout grants nothing: only Stripe's word does.
        assert_eq!(subscription(&app, &user).await["status"], "free");
        let sub_id = stripe.complete_checkout(&session_of(&url)).expect("pay");
        stripe.flush_deliveries().await;
        let s = until(&app, &user, "active after checkout", |s| s["status"] == "active").await;
        assert_eq!(s["plan"]["id"], small_id);
        assert_eq!(s["interval"], "month");
        assert!(s["current_period_end"].is_string());

        // Subscribing again to the same plan is refused; another plan changes this one.
        let r = app.post("/v1/billing/org/subscribe", Some(&user.access),
            json!({"plan_id": small_id})).await.expect(409);
        assert_eq!(r.body["code"], "ALREADY_SUBSCRIBED");
        let r = app.post("/v1/billing/org/subscribe", Some(&user.access),
            json!({"plan_id": large["id"]})).await.expect(200).body;
        assert_eq!(r["action"], "changed");
        assert_eq!(r["subscription"]["plan"]["id"], large["id"]);
        assert_eq!(stripe.checkout_sessions().len(), 1, "no second Checkout");
        assert_eq!(stripe.subscriptions().len(), 1, "no second subscription");
        let changed = stripe.subscription(&sub_id).unwrap();
        assert_eq!(changed["items"]["data"][0]["price"]["id"], large["stripe_price_month"]);
        let posted = stripe.request_log().into_iter()
            .find(|r| r.method == "POST" && r.path == format!("/v1/subscriptions/{sub_id}"))
            .expect("the change was posted");
        assert_eq!(posted.params["proration_behavior"], "create_prorations", "{:?}", posted.params);

        // One customer for the organization, whatever was called.
        let portal = app.post("/v1/billing/org/portal", Some(&user.access), json!({})).await.expect(200).body;
        assert!(portal["url"].as_str().unwrap().starts_with(&format!("{}/portal/", stripe.url)));
        let customers: std::collections::HashSet<String> = stripe.subscriptions().iter()
            .map(|s| s["customer"].as_str().unwrap().to_owned()).collect();
        assert_eq!(customers.len(), 1);
        assert_eq!(stripe.request_log().iter().filter(|r| r.method == "POST" && r.path == "/v1/customers").count(), 1);

        let invoices = app.get("/v1/billing/org/invoices", Some(&user.access)).await.expect(200).body;
        let paid = invoices["data"].as_array().unwrap();
        assert!(!paid.is_empty());
        assert_eq!(paid[0]["status"], "paid");
        assert_eq!(paid[0]["amount_paid"], 500);

        // Cancel: at the period's end, still on the plan until then.
        let c = app.post("/v1/billing/org/cancel", Some(&user.access), json!({})).await.expect(200).body;
        assert_eq!(c["cancel_at_period_end"], true);
        assert_eq!(c["status"], "active");
        stripe.advance_period(&sub_id);
        stripe.flush_deliveries().await;
        let s = until(&app, &user, "free after the period ended", |s| s["status"] == "free").await;
        assert_eq!(s["plan"]["id"], "plan-free");
    }

    /// FakeStripe: forged, stale, replayed and concurrent deliveries; events out of order;
    /// a crash between receiving and acting; Stripe unreachable while acting.
    async fn webhooks_are_verified_and_acted_on_once(engine) {
        let stripe = FakeStripe::start().await;
        let app = panel(engine, &stripe.url, stripe.secret_key()).await;
        stripe.webhook(&format!("{}/v1/webhooks/stripe", app.base), WHSEC);
        let admin = app.bootstrap_admin().await;
        let user = app.register("payer@example.com").await;
        let plan = paid_plan(&app, &admin, "Small", 500).await;
        let r = app.post("/v1/billing/org/subscribe", Some(&user.access),
            json!({"plan_id": plan["id"]})).await.expect(200).body;

        // Out of order: hold everything, deliver the subscription's `updated` first.
        stripe.hold_deliveries(true);
        let sub_id = stripe.complete_checkout(&session_of(r["url"].as_str().unwrap())).unwrap();
        let update = stripe.set_status(&sub_id, "past_due");
        let mut held = stripe.held();
        assert!(held.contains(&update));
        held.reverse();
        for id in &held {
            assert_eq!(stripe.deliver_now(id).await, 200);
        }
        // Each event re-read the subscription: the last word is Stripe's current state.
        let s = subscription(&app, &user).await;
        assert_eq!(s["status"], "past_due");
        assert!(s["past_due_since"].is_string());
        assert!(s["grace_ends_at"].is_string());
        stripe.hold_deliveries(false);

        // A replay of a processed event: answered, not acted on again.
        let created = stripe.events_of("customer.subscription.created")[0].clone();
        let created_id = created["id"].as_str().unwrap().to_owned();
        let body = created.to_string();
        let now = chrono::Utc::now().timestamp();
        let (status, receipt) = deliver(&app, &body, &signature(WHSEC, &body, now)).await;
        assert_eq!((status, receipt["outcome"].clone(), receipt["duplicate"].clone()),
            (200, json!("duplicate"), json!(true)));
        assert_eq!(deliveries_of(&app, &created_id).await, (1, 1));

        // Forged (wrong secret), stale (400 s old), future, unsigned: refused, nothing recorded.
        let now = chrono::Utc::now().timestamp();
        let forged = json!({"id": "evt_forged", "object": "event", "type": "invoice.paid",
            "created": now, "data": {"object": {"object": "invoice", "subscription": sub_id}}}).to_string();
        for sig in [
            signature("whsec_wrong", &forged, now),
            signature(WHSEC, &forged, now - 400),
            signature(WHSEC, &forged, now + 400),
            String::new(),
            format!("t={now},v1=zz"),
        ] {
            let (status, err) = deliver(&app, &forged, &sig).await;
            assert!(status == 400 || status == 401, "{sig}: {status} {err}");
        }
        let none: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE delivery_id = 'evt_forged'")
            .fetch_one(&app.state.db.pool).await.unwrap();
        assert_eq!(none, 0);
        // During a secret roll Stripe signs twice: any matching v1 is enough.
        let good = signature(WHSEC, &forged, now);
        let v1 = good.split("v1=").nth(1).unwrap();
        let rolled = format!("t={now},v1={},v1={v1}", "0".repeat(64));
        assert_eq!(deliver(&app, &forged, &rolled).await.0, 200);

        // The same new event twice at once: one effect.
        stripe.hold_deliveries(true);
        let paid_invoice = stripe.pay(&sub_id);
        let paid_event = stripe.events_of("invoice.paid").into_iter()
            .find(|e| e["data"]["object"]["id"] == paid_invoice.as_str()).expect("invoice.paid");
        let body = paid_event.to_string();
        let sig = signature(WHSEC, &body, now);
        let (a, b) = tokio::join!(deliver(&app, &body, &sig), deliver(&app, &body, &sig));
        let outcomes = [a.1["outcome"].clone(), b.1["outcome"].clone()];
        assert_eq!((a.0, b.0), (200, 200));
        assert_eq!(outcomes.iter().filter(|o| **o == json!("processed")).count(), 1, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| **o == json!("duplicate")).count(), 1, "{outcomes:?}");
        let paid_id = paid_event["id"].as_str().unwrap();
        assert_eq!(deliveries_of(&app, paid_id).await, (1, 1));
        assert_eq!(subscription(&app, &user).await["status"], "active");

        // A crash between recording and acting: the delivery is recorded, never acted on.
        let fail_invoice = stripe.fail_payment(&sub_id);
        let failed = stripe.events_of("invoice.payment_failed").into_iter()
            .find(|e| e["data"]["object"]["id"] == fail_invoice.as_str()).unwrap();
        let failed_id = failed["id"].as_str().unwrap().to_owned();
        shardlyn_panel::webhooks::store::record(&app.state.db.pool, &shardlyn_panel::webhooks::store::NewDelivery {
            provider: "stripe", scope: shardlyn_panel::webhooks::store::PLATFORM_SCOPE,
            delivery_id: &failed_id, token_id: None, org_id: None, event: "invoice.payment_failed",
            repository: None, branch: None, payload: &failed.to_string(),
            received_at: shardlyn_panel::db::now_ms(),
        }).await.unwrap();
        assert_eq!(subscription(&app, &user).await["status"], "active");
        // Stripe's retry acts on it (not "duplicate").
        assert_eq!(stripe.deliver_now(&failed_id).await, 200);
        assert_eq!(subscription(&app, &user).await["status"], "past_due");
        assert_eq!(deliveries_of(&app, &failed_id).await.0, 1);

        // Stripe unreachable while acting: deferred, then the retry worker acts.
        let paid_again = stripe.pay(&sub_id);
        let event = stripe.events_of("invoice.paid").into_iter()
            .find(|e| e["data"]["object"]["id"] == paid_again.as_str()).unwrap();
        let body = event.to_string();
        stripe.set_down(true);
        let (status, receipt) = deliver(&app, &body, &signature(WHSEC, &body, now)).await;
        assert_eq!((status, receipt["outcome"].clone()), (200, json!("deferred")));
        assert_eq!(subscription(&app, &user).await["status"], "past_due");
        stripe.set_down(false);
        sqlx::query("UPDATE webhook_deliveries SET received_at = received_at - 60000 WHERE delivery_id = $1")
            .bind(event["id"].as_str().unwrap()).execute(&app.state.db.pool).await.unwrap();
        let done = shardlyn_panel::billing::events::retry_pending(&app.state).await.unwrap();
        assert!(done >= 1);
        let s = subscription(&app, &user).await;
        assert_eq!(s["status"], "active");
        assert_eq!(s["past_due_since"], Value::Null);
    }

    /// FakeStripe: Stripe unreachable or failing during checkout: a clear error, nothing
    /// recorded; the nightly reconciliation repairs a missed webhook and reports drift.
    async fn stripe_failures_and_the_reconciliation(engine) {
        let stripe = FakeStripe::start().await;
        let app = panel(engine, &stripe.url, stripe.secret_key()).await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("late@example.com").await;
        let plan = paid_plan(&app, &admin, "Small", 500).await;

        stripe.set_down(true);
        let r = app.post("/v1/billing/org/subscribe", Some(&user.access),
            json!({"plan_id": plan["id"]})).await.expect(502);
        assert_eq!(r.body["code"], "STRIPE_UNREACHABLE");
        stripe.set_down(false);
        stripe.set_failing(Some(500));
        let r = app.post("/v1/billing/org/subscribe", Some(&user.access),
            json!({"plan_id": plan["id"]})).await.expect(502);
        assert_eq!(r.body["code"], "STRIPE_ERROR");
        stripe.set_failing(None);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions")
            .fetch_one(&app.state.db.pool).await.unwrap();
        assert_eq!(rows, 0, "nothing recorded");
        // A plan made while Stripe is down is not made either.
        stripe.set_down(true);
        app.post("/v1/admin/plans", Some(&admin.access),
            json!({"name": "Down", "price_month": 100})).await.expect(502);
        stripe.set_down(false);
        let plans = app.get("/v1/admin/plans", Some(&admin.access)).await.expect(200).body;
        assert!(plans["data"].as_array().unwrap().iter().all(|p| p["name"] != "Down"));

        // No webhook endpoint configured: Stripe's events never arrive.
        let r = app.post("/v1/billing/org/subscribe", Some(&user.access),
            json!({"plan_id": plan["id"]})).await.expect(200).body;
        stripe.complete_checkout(&session_of(r["url"].as_str().unwrap())).unwrap();
        assert_eq!(subscription(&app, &user).await["status"], "free");
        let client = shardlyn_panel::billing::client(&app.state).unwrap();
        let report = shardlyn_panel::billing::events::reconcile(&app.state, &client).await.unwrap();
        assert_eq!(report.listed, 1);
        assert_eq!(report.drifted, 1);
        let s = subscription(&app, &user).await;
        assert_eq!(s["status"], "active");
        assert_eq!(s["plan"]["id"], plan["id"]);
        let admin_list = app.get("/v1/admin/subscriptions", Some(&admin.access)).await.expect(200).body;
        let row = &admin_list["data"][0];
        assert!(row["drift"].as_str().unwrap().contains("status none → active"), "{row}");
        // A second pass finds nothing to repair.
        let again = shardlyn_panel::billing::events::reconcile(&app.state, &client).await.unwrap();
        assert_eq!(again.drifted, 0);

        // Admins end it at Stripe.
        let id = row["id"].as_str().unwrap();
        let ended = app.put(&format!("/v1/admin/subscriptions/{id}"), Some(&admin.access),
            json!({"action": "cancel_now"})).await.expect(200).body;
        assert_eq!(ended["status"], "canceled");
        assert_eq!(subscription(&app, &user).await["status"], "free");
    }

    /// FakeStripe: with Stripe Tax on, Checkout computes tax and collects the address it
    /// needs onto the customer (the fake refuses automatic tax without one, as Stripe does).
    async fn stripe_tax_collects_the_customers_address(engine) {
        let stripe = FakeStripe::start().await;
        let (base, key) = (stripe.url.clone(), stripe.secret_key().to_owned());
        let app = spawn_app_with(engine, move |c| {
            c.stripe.secret_key = Secret(key);
            c.stripe.api_base = base;
            c.stripe.automatic_tax = true;
            c.jobs.enabled = false;
        })
        .await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("taxed@example.com").await;
        let plan = paid_plan(&app, &admin, "Taxed", 700).await;
        let r = app.post("/v1/billing/org/subscribe", Some(&user.access),
            json!({"plan_id": plan["id"], "interval": "year"})).await.expect(200).body;
        assert_eq!(r["action"], "checkout");
        let made = stripe.request_log().into_iter()
            .find(|r| r.method == "POST" && r.path == "/v1/checkout/sessions").expect("checkout posted");
        let params = made.params.to_string();
        assert!(params.contains("automatic_tax"), "{params}");
        assert!(params.contains(plan["stripe_price_year"].as_str().unwrap()), "{params}");
    }

    /// localstripe: a subscription made at Stripe on a plan (localstripe has Plans, not
    /// Prices: the panel's plan names the plan id as its price), its signed webhooks, a
    /// renewal whose payment fails (past due) and one that pays (active again).
    async fn localstripe_subscriptions_renewals_and_failed_payments(engine) {
        let ls = LocalStripe::start().await;
        let app = panel(engine, &ls.base_url(), ls.secret_key()).await;
        ls.configure_webhook(&format!("{}/v1/webhooks/stripe", app.base), WHSEC, None).await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("ls@example.com").await;
        let org: String = sqlx::query_scalar(
            "SELECT o.id FROM organizations o JOIN org_members m ON m.org_id = o.id WHERE m.user_id = $1")
            .bind(&user.user_id).fetch_one(&app.state.db.pool).await.unwrap();
        ls.create_plan("plan_small_monthly", 500, "usd", "month").await;
        let plan = app.post("/v1/admin/plans", Some(&admin.access),
            json!({"name": "Small", "price_month": 500, "stripe_price_month": "plan_small_monthly",
                   "limits": {"servers": 3}})).await.expect(201).body;
        assert_eq!(plan["stripe_price_month"], "plan_small_monthly");

        // The organization's customer, as the panel records the one it makes.
        let customer = ls.create_customer("ls@example.com", &[("org_id", &org)]).await;
        shardlyn_panel::billing::subscriptions::set_customer(&app.state.db.pool, &org, &customer,
            shardlyn_panel::db::now_ms()).await.unwrap();
        ls.attach_card(&customer, "4242424242424242").await.expect("card");
        let sub = ls.subscribe(&customer, "plan_small_monthly", &[]).await.expect("subscribe");
        let sub_id = sub["id"].as_str().unwrap().to_owned();
        let s = until(&app, &user, "active from localstripe's webhook", |s| s["status"] == "active").await;
        assert_eq!(s["plan"]["id"], plan["id"]);
        let limits = app.get("/v1/billing/org/limits", Some(&user.access)).await.expect(200).body;
        assert_eq!(limits["plan_id"], plan["id"]);

        // A renewal whose payment fails: invoice.payment_failed, re-read: past due.
        ls.fail_renewal(&customer, &sub_id).await;
        let s = until(&app, &user, "past due after a failed renewal", |s| s["status"] == "past_due").await;
        assert!(s["past_due_since"].is_string());
        // Paid with a good card: invoice.payment_succeeded, active again.
        ls.attach_card(&customer, "4242424242424242").await.expect("new card");
        let open = ls.renew(&customer, &sub_id).await;
        assert_eq!(open["status"], "paid");
        until(&app, &user, "active after paying", |s| s["status"] == "active" && s["past_due_since"].is_null()).await;

        // Cancelled at Stripe: customer.subscription.deleted, back to the free plan.
        ls.cancel(&sub_id).await;
        let s = until(&app, &user, "free after cancel", |s| s["status"] == "free").await;
        assert_eq!(s["plan"]["id"], "plan-free");
    }
}
