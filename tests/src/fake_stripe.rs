//! A fake of the parts of Stripe's API billing uses that `localstripe`
//! (`crate::stripe`) lacks — Checkout Sessions, the Billing Portal, Prices, period ends,
//! `invoice.paid`, `checkout.session.completed`, `customer.subscription.updated` — as an
//! axum server on `127.0.0.1:0` inside the test process, speaking Stripe's documented
//! wire format: form-encoded bodies with bracket keys (`line_items[0][price]`,
//! `metadata[org_id]`), JSON answers with `object` fields, list envelopes, errors
//! `{"error": {"type", "message", "code", "param"}}` (400/401/402/404/409), the secret
//! key as Bearer or Basic auth, unknown parameters refused as Stripe refuses them, and
//! `Idempotency-Key` replay (the same key with other parameters: 400
//! `idempotency_error`).
//!
//! `tests/tests/api/fake_stripe.rs` drives it with Stripe's official Python SDK
//! (`tests/support/stripe_check.py`), so its shapes are checked against the real client.
//!
//! Routes: `POST /v1/customers`, `GET|POST /v1/customers/{id}`, `POST /v1/products`,
//! `GET /v1/products/{id}`, `POST /v1/prices`, `GET /v1/prices/{id}`,
//! `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//! `POST /v1/billing_portal/sessions`, `GET /v1/subscriptions`,
//! `GET|POST|DELETE /v1/subscriptions/{id}`, `GET /v1/invoices`, `GET /v1/invoices/{id}`;
//! browser pages `GET /checkout/{id}` (button `#pay` posts `/checkout/{id}/pay`, which
//! completes the session and answers 303 to `success_url`), `GET /portal/{id}` (link
//! `#return`), `GET /invoice/{id}[/pdf]`.
//!
//! Webhooks ([`FakeStripe::webhook`]): every event is POSTed, signed
//! `Stripe-Signature: t=<now>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`, from a spawned
//! task (one task per API call, its events in order); [`FakeStripe::flush_deliveries`]
//! waits for every pending one, [`FakeStripe::deliveries`] tells what each answered.
//!
//! Faults: [`FakeStripe::set_down`] (connections are closed unanswered, new and open
//! ones: "Stripe unreachable"), [`FakeStripe::set_failing`] (every API call answers a
//! status with `api_error`), [`FakeStripe::hold_deliveries`] (events are recorded, not
//! sent, for tests that deliver them in their own order), [`FakeStripe::resend`].

mod api;
mod browser;
mod error;
mod form;
mod world;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use error::ApiError;
pub use form::Params;
use world::Inner;
pub use world::{LoggedRequest, now};

/// The secret key the fake accepts.
pub const SECRET_KEY: &str = "sk_test_shardlyn_fake_stripe_0123456789";

/// The `api_version` of the events the fake sends (async-stripe 1.0.0-rc.10's).
pub const API_VERSION: &str = "2026-09-30.endive";

/// A running fake; stops when dropped.
pub struct FakeStripe {
    /// The API base, `http://127.0.0.1:PORT` (the SDK's `api_base`, the panel's
    /// `stripe.api_base`).
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    key: Arc<str>,
    down: Arc<AtomicBool>,
    inner: Arc<Mutex<Inner>>,
    pending: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Delivers `events` in order from one spawned task (or holds them).
    fn dispatch(&self, events: Vec<Value>) {
        if events.is_empty() {
            return;
        }
        let target = {
            let mut inner = self.lock();
            if inner.hold {
                let ids = events
                    .iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_owned));
                inner.held.extend(ids);
                return;
            }
            inner.webhook.clone()
        };
        let Some((url, secret)) = target else {
            return;
        };
        let shared = self.clone();
        let handle = tokio::spawn(async move {
            for event in &events {
                shared.deliver(&url, &secret, event).await;
            }
        });
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }

    /// POSTs one event, signed now; records and answers the status (0: no answer).
    async fn deliver(&self, url: &str, secret: &str, event: &Value) -> u16 {
        let body = serde_json::to_string_pretty(event).unwrap_or_default();
        let header = signature(secret, &body, now());
        let status = match self
            .http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("stripe-signature", header)
            .body(body)
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        self.lock().deliveries.entry(id).or_default().push(status);
        status
    }
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`, Stripe's `Stripe-Signature`.
///
/// # Panics
/// Never: HMAC takes keys of any length.
#[must_use]
pub fn signature(secret: &str, body: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl FakeStripe {
    /// Starts the fake with [`SECRET_KEY`].
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> FakeStripe {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Stripe");
        let port = listener.local_addr().expect("local addr").port();
        let url = format!("http://127.0.0.1:{port}");
        let shared = Shared {
            key: SECRET_KEY.into(),
            down: Arc::new(AtomicBool::new(false)),
            inner: Arc::new(Mutex::new(Inner {
                base: url.clone(),
                ..Inner::default()
            })),
            pending: Arc::new(Mutex::new(Vec::new())),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("webhook client"),
        };
        let app = api::router(shared.clone());
        let gated = Gated {
            inner: listener,
            down: shared.down.clone(),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(gated, app).await;
        });
        FakeStripe { url, shared, task }
    }

    /// The key the fake accepts.
    #[must_use]
    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    /// Sends every later event to `url`, signed with `secret`.
    pub fn webhook(&self, url: &str, secret: &str) {
        self.shared.lock().webhook = Some((url.to_owned(), secret.to_owned()));
    }

    /// While held, events are recorded (see [`Self::held`]) and not delivered; deliver
    /// them with [`Self::resend`] or [`Self::deliver_now`] in any order.
    pub fn hold_deliveries(&self, hold: bool) {
        self.shared.lock().hold = hold;
    }

    /// The ids of the events recorded while deliveries were held, in order.
    #[must_use]
    pub fn held(&self) -> Vec<String> {
        self.shared.lock().held.clone()
    }

    /// Down: connections are closed unanswered (new ones at accept, open ones at their
    /// next request), as when Stripe cannot be reached.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Every `/v1` call answers `status` with an `api_error` (None: back to normal).
    pub fn set_failing(&self, status: Option<u16>) {
        self.shared.lock().failing = status;
    }

    /// Completes an open Checkout session as the browser's "Pay" does: its customer, an
    /// active subscription, a paid invoice, and the events
    /// `checkout.session.completed`, `customer.subscription.created`, `invoice.paid`,
    /// `invoice.payment_succeeded` (in that order). Answers the subscription's id.
    ///
    /// # Errors
    /// The session is unknown, not open, or not in subscription mode.
    pub fn complete_checkout(&self, session_id: &str) -> Result<String, ApiError> {
        let (session, events) = self.shared.lock().complete_session(session_id)?;
        self.shared.dispatch(events);
        Ok(session["subscription"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Expires an open Checkout session (`checkout.session.expired`).
    ///
    /// # Errors
    /// The session is unknown or not open.
    pub fn expire_checkout(&self, session_id: &str) -> Result<(), ApiError> {
        let events = self.shared.lock().expire_session(session_id)?;
        self.shared.dispatch(events);
        Ok(())
    }

    fn control<T>(&self, f: impl FnOnce(&mut Inner) -> Result<(T, Vec<Value>), ApiError>) -> T {
        let outcome = f(&mut self.shared.lock());
        let (value, events) = outcome.unwrap_or_else(|e| panic!("fake Stripe control: {e}"));
        self.shared.dispatch(events);
        value
    }

    /// Sets a subscription's status (`past_due`, `active`, `unpaid`, `canceled`...) and
    /// sends `customer.subscription.updated`; answers the event's id.
    ///
    /// # Panics
    /// When the subscription does not exist.
    pub fn set_status(&self, sub_id: &str, status: &str) -> String {
        self.control(|i| {
            let events = i.set_status(sub_id, status)?;
            Ok((
                events[0]["id"].as_str().unwrap_or_default().to_owned(),
                events,
            ))
        })
    }

    /// A renewal whose payment fails: an open invoice, `invoice.payment_failed`, the
    /// subscription `past_due` (`customer.subscription.updated`). Answers the invoice id.
    ///
    /// # Panics
    /// When the subscription does not exist.
    pub fn fail_payment(&self, sub_id: &str) -> String {
        self.control(|i| i.fail_payment(sub_id))
    }

    /// A payment that succeeds: the open invoice (or a new renewal invoice) is paid, the
    /// period moves one interval on, the subscription is `active`; sends `invoice.paid`,
    /// `invoice.payment_succeeded`, `customer.subscription.updated`. Answers the invoice id.
    ///
    /// # Panics
    /// When the subscription does not exist.
    pub fn pay(&self, sub_id: &str) -> String {
        self.control(|i| i.pay(sub_id))
    }

    /// The period ends: with `cancel_at_period_end` the subscription is canceled
    /// (`customer.subscription.deleted`), otherwise it renews and is paid (as [`Self::pay`]).
    ///
    /// # Panics
    /// When the subscription does not exist.
    pub fn advance_period(&self, sub_id: &str) {
        self.control(|i| Ok(((), i.advance_period(sub_id)?)));
    }

    /// Creates a product and a recurring price directly (no request is logged); answers
    /// the price id. `interval` is `month` or `year` (or `day`, `week`).
    pub fn create_price(
        &self,
        product_name: &str,
        unit_amount: i64,
        currency: &str,
        interval: &str,
    ) -> String {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .append_pair("product_data[name]", product_name)
            .append_pair("unit_amount", &unit_amount.to_string())
            .append_pair("currency", currency)
            .append_pair("recurring[interval]", interval)
            .finish();
        let params = Params::parse(encoded.as_bytes());
        self.control(|i| {
            let (price, events) = i.create_price(&params)?;
            Ok((price["id"].as_str().unwrap_or_default().to_owned(), events))
        })
    }

    /// Every request answered so far, as `(method, path with query)`.
    #[must_use]
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared
            .lock()
            .log
            .iter()
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect()
    }

    /// Every request with its decoded parameters, idempotency key and `Stripe-Version`.
    #[must_use]
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// Every event recorded so far, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<Value> {
        self.shared.lock().events.clone()
    }

    /// The events of one type, oldest first.
    #[must_use]
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// One event by id.
    #[must_use]
    pub fn event(&self, event_id: &str) -> Option<Value> {
        self.shared
            .lock()
            .events
            .iter()
            .find(|e| e["id"] == event_id)
            .cloned()
    }

    /// The status each delivery of the event got, in order (0: no answer).
    #[must_use]
    pub fn deliveries(&self, event_id: &str) -> Vec<u16> {
        self.shared
            .lock()
            .deliveries
            .get(event_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until every spawned delivery got its answer.
    pub async fn flush_deliveries(&self) {
        loop {
            let handles: Vec<_> = std::mem::take(
                &mut *self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                let _ = handle.await;
            }
        }
    }

    fn target(&self) -> (String, String) {
        self.shared
            .lock()
            .webhook
            .clone()
            .expect("configure the webhook first (FakeStripe::webhook)")
    }

    /// Sends the event again, as Stripe's retries do (spawned; see
    /// [`Self::flush_deliveries`]).
    ///
    /// # Panics
    /// When no webhook is configured or the event does not exist.
    pub fn resend(&self, event_id: &str) {
        let event = self.event(event_id).expect("the event exists");
        let (url, secret) = self.target();
        let shared = self.shared.clone();
        let handle = tokio::spawn(async move {
            shared.deliver(&url, &secret, &event).await;
        });
        self.shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }

    /// Sends the event now and answers the status it got (0: no answer).
    ///
    /// # Panics
    /// When no webhook is configured or the event does not exist.
    pub async fn deliver_now(&self, event_id: &str) -> u16 {
        let event = self.event(event_id).expect("the event exists");
        let (url, secret) = self.target();
        self.shared.deliver(&url, &secret, &event).await
    }

    /// Re-sends every event whose last delivery was not a 2xx, as Stripe's retry
    /// schedule would (spawned); answers how many.
    pub fn retry_failed(&self) -> usize {
        let failed: Vec<String> = {
            let inner = self.shared.lock();
            inner
                .deliveries
                .iter()
                .filter(|(_, statuses)| statuses.last().is_some_and(|s| !(200..300).contains(s)))
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in &failed {
            self.resend(id);
        }
        failed.len()
    }

    /// The `Stripe-Signature` header for `body` at `t` with the webhook's secret (for
    /// forged, stale and replayed deliveries).
    ///
    /// # Panics
    /// When no webhook is configured.
    #[must_use]
    pub fn sign(&self, body: &str, t: i64) -> String {
        signature(&self.target().1, body, t)
    }

    /// A customer as the API answers it.
    #[must_use]
    pub fn customer(&self, id: &str) -> Option<Value> {
        self.shared.lock().customers.get(id).cloned()
    }

    /// A subscription as the API answers it.
    #[must_use]
    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.shared.lock().subscription(id).ok()
    }

    /// Every subscription, oldest first.
    #[must_use]
    pub fn subscriptions(&self) -> Vec<Value> {
        self.shared.lock().subscriptions.clone()
    }

    /// Every invoice, oldest first.
    #[must_use]
    pub fn invoices(&self) -> Vec<Value> {
        self.shared.lock().invoices.clone()
    }

    /// A Checkout session as the API answers it.
    #[must_use]
    pub fn checkout_session(&self, id: &str) -> Option<Value> {
        self.shared.lock().session(id).ok()
    }

    /// Every Checkout session, by id.
    #[must_use]
    pub fn checkout_sessions(&self) -> Vec<Value> {
        self.shared.lock().sessions.values().cloned().collect()
    }
}

/// The listener: while down, connections are accepted and closed at once, and open
/// ones fail their next read (hyper then closes them without an answer).
struct Gated {
    inner: tokio::net::TcpListener,
    down: Arc<AtomicBool>,
}

impl axum::serve::Listener for Gated {
    type Io = DownAware;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if !self.down.load(Ordering::SeqCst) {
                let io = DownAware {
                    stream,
                    down: self.down.clone(),
                };
                return (io, addr);
            }
            drop(stream);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that resets once the fake is down.
struct DownAware {
    stream: tokio::net::TcpStream,
    down: Arc<AtomicBool>,
}

impl AsyncRead for DownAware {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.down.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        // Bytes that arrived after the switch are dropped with the connection.
        if matches!(poll, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && self.down.load(Ordering::SeqCst)
        {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        poll
    }
}

impl AsyncWrite for DownAware {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
