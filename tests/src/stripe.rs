//! A real third-party Stripe fake for tests: PyPI `localstripe` 1.15
//! (`~/.cache/shardlyn/venv/bin/localstripe`, installed by `scripts/dev-services`), one
//! process per test on a free port, killed on drop.
//!
//! What it does, read from its source (`localstripe/resources.py`, `webhooks.py`):
//! - Customers, Products, **Plans** (no Prices: the panel treats a plan id as a price
//!   id; `items[0][plan]`), PaymentMethods, Subscriptions, Invoices, and events.
//! - Webhooks are configured with `POST /_config/webhooks/{id}` (form `url`, `secret`,
//!   optional `events[]`). Each event is POSTed about one second after it happens, from
//!   its own task (so deliveries are unordered), with
//!   `Stripe-Signature: t=<event.created>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`.
//!   `event.created` is the event's creation time in real time, so deliveries are fresh
//!   for a panel on the real clock. Failed deliveries are never retried.
//! - It has no clock: a subscription's period never ends by itself. A renewal is
//!   [`LocalStripe::create_invoice`] for the subscription then [`LocalStripe::pay_invoice`].
//! - Events it sends: `customer.created|updated`, `product.created`, `plan.created`,
//!   `customer.subscription.created` (the subscription is `active` once its first
//!   invoice is paid), `customer.subscription.deleted` (on `DELETE`), `invoice.created`,
//!   `invoice.payment_succeeded` (never `invoice.paid`), `invoice.payment_failed`,
//!   `payment_intent.succeeded|payment_failed`. Never `customer.subscription.updated`
//!   (not even when a `POST /v1/subscriptions/{id}` changes the plan or the status
//!   changes) and never `checkout.session.completed` (it has no Checkout).
//! - Test cards: `4242424242424242` pays. `4000000000000002` is declined when attached
//!   (402 `card_declined`). `4000000000000341` attaches, then every charge fails — but
//!   paying an invoice with it through `POST /v1/invoices/{id}/pay` only leaves the
//!   invoice `open`: no `invoice.payment_failed`, the subscription stays `active`
//!   (localstripe's `_api_pay_invoice` confirms with a no-op failure callback); at
//!   subscription creation it leaves the subscription `incomplete`, also silently.
//!   What does send `invoice.payment_failed` and turn the subscription `past_due` is a
//!   failed 3-D Secure authentication: card `4000002500003155` requires it, and
//!   `POST /v1/payment_intents/{id}/_authenticate` with `success=false` fails it.
//!   [`LocalStripe::fail_renewal`] does exactly that; [`LocalStripe::renew`] pays.
//!   Paying a `past_due` subscription's open invoice with a good card
//!   ([`LocalStripe::attach_card`] then [`LocalStripe::pay_invoice`]) sends
//!   `invoice.payment_succeeded` and turns it `active` again.
//! - It pickles its store to `/tmp/localstripe.pickle` after every write; processes
//!   start with `--from-scratch` so they never read another's.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::agent::free_port;

/// A secret key localstripe accepts (any `sk_...` longer than five characters).
pub const SECRET_KEY: &str = "sk_test_shardlyn_localstripe";

/// Pays.
pub const CARD_OK: &str = "4242424242424242";
/// Declined when attached (402 `card_declined`).
pub const CARD_DECLINED: &str = "4000000000000002";
/// Attaches; every charge then fails (silently when paying an invoice; see the module doc).
pub const CARD_CHARGE_FAILS: &str = "4000000000000341";
/// Requires 3-D Secure: a payment waits for `_authenticate`.
pub const CARD_3DS: &str = "4000002500003155";

/// A refusal from localstripe: the status and its JSON body.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "localstripe answered {}: {}", self.status, self.body)
    }
}

/// A running `localstripe`, killed on drop.
pub struct LocalStripe {
    child: tokio::process::Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

fn binary() -> PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    PathBuf::from(home).join(".cache/shardlyn/venv/bin/localstripe")
}

impl LocalStripe {
    /// Starts `localstripe --port N --from-scratch` on a free port and waits until it
    /// answers.
    ///
    /// # Panics
    /// When it is not installed (run `scripts/dev-services`) or does not answer within
    /// 20 seconds.
    pub async fn start() -> LocalStripe {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = dir.path().join("localstripe.log");
            let out = std::fs::File::create(&log).expect("log file");
            let err = out.try_clone().expect("log file");
            let port = free_port();
            let mut child = tokio::process::Command::new(binary())
                .args(["--port", &port.to_string(), "--from-scratch"])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(true)
                .spawn()
                .expect("localstripe starts (scripts/dev-services installs it)");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                if child.try_wait().ok().flatten().is_some() {
                    break; // exited: the port was taken meanwhile; try another
                }
                let probe = client
                    .get(format!("http://127.0.0.1:{port}/v1/customers"))
                    .basic_auth(SECRET_KEY, Some(""))
                    .send()
                    .await;
                if probe.is_ok_and(|r| r.status().is_success()) {
                    return LocalStripe {
                        child,
                        port,
                        log,
                        _dir: dir,
                        client,
                    };
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "localstripe did not answer on port {port}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("localstripe exited three times at start (ports taken?)");
    }

    /// `http://127.0.0.1:N`, the panel's `stripe.api_base`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The secret key to configure (any `sk_` key works).
    #[must_use]
    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    /// What localstripe printed (its access log), for failure messages.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Sends a form-encoded request with the secret key; answers the JSON.
    ///
    /// # Errors
    /// Any non-2xx answer.
    ///
    /// # Panics
    /// When localstripe cannot be reached.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<Value, Refused> {
        let url = format!("{}{path}", self.base_url());
        let mut req = self
            .client
            .request(method.clone(), url)
            .basic_auth(SECRET_KEY, Some(""));
        if method == reqwest::Method::GET || method == reqwest::Method::DELETE {
            req = req.query(form);
        } else {
            req = req.form(form);
        }
        let r = req.send().await.expect("localstripe answers");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(Refused { status, body })
        }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        self.request(reqwest::Method::POST, path, form)
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.request(reqwest::Method::GET, path, &[])
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Sends events to `url`, signed with `secret`; `events` filters by type (None: all).
    ///
    /// # Panics
    /// When localstripe refuses.
    pub async fn configure_webhook(&self, url: &str, secret: &str, events: Option<&[&str]>) {
        let mut form = vec![
            ("url".to_owned(), url.to_owned()),
            ("secret".to_owned(), secret.to_owned()),
        ];
        for (i, e) in events.unwrap_or(&[]).iter().enumerate() {
            form.push((format!("events[{i}]"), (*e).to_owned()));
        }
        let r = self
            .client
            .post(format!("{}/_config/webhooks/shardlyn", self.base_url()))
            .form(&form)
            .send()
            .await
            .expect("localstripe answers");
        assert!(r.status().is_success(), "configure webhook: {}", r.status());
    }

    /// A plan (localstripe's price) with this id; `interval` is `month` or `year`.
    /// Answers the plan object.
    pub async fn create_plan(
        &self,
        id: &str,
        amount: i64,
        currency: &str,
        interval: &str,
    ) -> Value {
        let amount = amount.to_string();
        self.post(
            "/v1/plans",
            &[
                ("id", id),
                ("amount", &amount),
                ("currency", currency),
                ("interval", interval),
                ("product[name]", id),
            ],
        )
        .await
    }

    /// A customer with this email and metadata; answers its id.
    pub async fn create_customer(&self, email: &str, metadata: &[(&str, &str)]) -> String {
        let keys: Vec<String> = metadata
            .iter()
            .map(|(k, _)| format!("metadata[{k}]"))
            .collect();
        let mut form = vec![("email", email)];
        form.extend(
            keys.iter()
                .map(String::as_str)
                .zip(metadata.iter().map(|(_, v)| *v)),
        );
        let c = self.post("/v1/customers", &form).await;
        c["id"].as_str().expect("customer id").to_owned()
    }

    /// Creates a card payment method, attaches it and makes it the customer's default
    /// (`invoice_settings[default_payment_method]`); answers its id.
    ///
    /// # Errors
    /// The card is declined at attach ([`CARD_DECLINED`]: 402 `card_declined`).
    pub async fn attach_card(&self, customer: &str, number: &str) -> Result<String, Refused> {
        let pm = self
            .post(
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", number),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2034"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        let id = pm["id"].as_str().expect("payment method id").to_owned();
        self.request(
            reqwest::Method::POST,
            &format!("/v1/payment_methods/{id}/attach"),
            &[("customer", customer)],
        )
        .await?;
        self.post(
            &format!("/v1/customers/{customer}"),
            &[("invoice_settings[default_payment_method]", &id)],
        )
        .await;
        Ok(id)
    }

    /// Subscribes the customer to a plan (its first invoice is paid at once with the
    /// default card); answers the subscription.
    ///
    /// # Errors
    /// localstripe refuses (unknown customer or plan, no payment method).
    pub async fn subscribe(
        &self,
        customer: &str,
        plan: &str,
        metadata: &[(&str, &str)],
    ) -> Result<Value, Refused> {
        let keys: Vec<String> = metadata
            .iter()
            .map(|(k, _)| format!("metadata[{k}]"))
            .collect();
        let mut form = vec![("customer", customer), ("items[0][plan]", plan)];
        form.extend(
            keys.iter()
                .map(String::as_str)
                .zip(metadata.iter().map(|(_, v)| *v)),
        );
        self.request(reqwest::Method::POST, "/v1/subscriptions", &form)
            .await
    }

    /// A subscription as localstripe answers it.
    pub async fn subscription(&self, id: &str) -> Value {
        self.get(&format!("/v1/subscriptions/{id}")).await
    }

    /// Cancels now (`customer.subscription.deleted`).
    pub async fn cancel(&self, id: &str) -> Value {
        self.request(
            reqwest::Method::DELETE,
            &format!("/v1/subscriptions/{id}"),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("cancel {id}: {e}"))
    }

    /// A draft invoice for the customer's subscription (`invoice.created`).
    pub async fn create_invoice(&self, customer: &str, subscription: &str) -> Value {
        self.post(
            "/v1/invoices",
            &[("customer", customer), ("subscription", subscription)],
        )
        .await
    }

    /// Pays an invoice with the customer's default card; answers the invoice (`paid`,
    /// or `open` when the charge failed or needs authentication).
    ///
    /// # Errors
    /// localstripe refuses (already paid, no payment method).
    pub async fn pay_invoice(&self, invoice: &str) -> Result<Value, Refused> {
        self.request(
            reqwest::Method::POST,
            &format!("/v1/invoices/{invoice}/pay"),
            &[],
        )
        .await
    }

    /// A renewal that is paid: a new invoice paid with the default card
    /// (`invoice.created`, `invoice.payment_succeeded`). Answers the invoice.
    ///
    /// # Panics
    /// When the payment does not go through (the default card must pay).
    pub async fn renew(&self, customer: &str, subscription: &str) -> Value {
        let invoice = self.create_invoice(customer, subscription).await;
        let id = invoice["id"].as_str().expect("invoice id");
        let paid = self
            .pay_invoice(id)
            .await
            .unwrap_or_else(|e| panic!("pay: {e}"));
        assert_eq!(paid["status"], "paid", "renewal not paid: {paid}");
        paid
    }

    /// A renewal whose payment fails: the customer's default card becomes
    /// [`CARD_3DS`], a new invoice is paid with it and its authentication fails, which
    /// sends `invoice.payment_failed` and turns the subscription `past_due`. Answers
    /// the open invoice.
    pub async fn fail_renewal(&self, customer: &str, subscription: &str) -> Value {
        self.attach_card(customer, CARD_3DS)
            .await
            .expect("3DS card attaches");
        let invoice = self.create_invoice(customer, subscription).await;
        let id = invoice["id"].as_str().expect("invoice id").to_owned();
        let invoice = self
            .pay_invoice(&id)
            .await
            .unwrap_or_else(|e| panic!("pay: {e}"));
        let pi_id = invoice["payment_intent"]
            .as_str()
            .expect("payment intent")
            .to_owned();
        let pi = self.get(&format!("/v1/payment_intents/{pi_id}")).await;
        let secret = pi["client_secret"]
            .as_str()
            .expect("client secret")
            .to_owned();
        self.post(
            &format!("/v1/payment_intents/{pi_id}/_authenticate"),
            &[("client_secret", &secret), ("success", "false")],
        )
        .await;
        self.get(&format!("/v1/invoices/{id}")).await
    }

    /// Forgets every object (`DELETE /_config/data`); webhooks stay configured.
    pub async fn flush(&self) {
        let r = self
            .client
            .delete(format!("{}/_config/data", self.base_url()))
            .send()
            .await
            .expect("localstripe answers");
        assert!(r.status().is_success(), "flush: {}", r.status());
    }
}

/// One webhook delivery a [`WebhookSink`] received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The raw body.
    pub body: String,
    /// The `Stripe-Signature` header.
    pub signature: Option<String>,
    /// The body as JSON.
    pub event: Value,
}

/// A webhook receiver on `127.0.0.1:0` standing in for the panel (to check a fake's
/// deliveries by themselves): records every POST and answers 200.
pub struct WebhookSink {
    url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Delivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookSink {
    /// Starts the receiver.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> WebhookSink {
        use axum::extract::State;
        use axum::http::HeaderMap;
        type Received = std::sync::Arc<std::sync::Mutex<Vec<Delivery>>>;
        async fn receive(
            State(received): State<Received>,
            headers: HeaderMap,
            body: String,
        ) -> &'static str {
            let signature = headers
                .get("stripe-signature")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let event = serde_json::from_str(&body).unwrap_or(Value::Null);
            received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Delivery {
                    body,
                    signature,
                    event,
                });
            "ok"
        }
        let received: Received = std::sync::Arc::default();
        let app = axum::Router::new()
            .route("/webhook", axum::routing::post(receive))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook sink");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookSink {
            url: format!("http://127.0.0.1:{port}/webhook"),
            received,
            task,
        }
    }

    /// The URL to configure as the webhook endpoint.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every delivery so far, in arrival order.
    #[must_use]
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits (up to `timeout`) for a delivery of an event of type `kind` and answers it.
    ///
    /// # Panics
    /// When none arrives in time.
    pub async fn wait_for(&self, kind: &str, timeout: Duration) -> Delivery {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(d) = self
                .deliveries()
                .into_iter()
                .find(|d| d.event["type"] == kind)
            {
                return d;
            }
            let types: Vec<Value> = self
                .deliveries()
                .iter()
                .map(|d| d.event["type"].clone())
                .collect();
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {kind} delivery within {timeout:?}; got {types:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
