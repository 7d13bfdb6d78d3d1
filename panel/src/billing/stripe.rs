//! Stripe's API through async-stripe: its client (the secret key, `Stripe-Version`,
//! `Idempotency-Key`, timeouts, the configurable base URL tests point at fakes) and its
//! typed requests where they exist for what we send. Answers are read into the small
//! types below, with only the fields billing uses: async-stripe's own answer types
//! require every field of the current API version, which older accounts and the fakes
//! (`localstripe`, ours) do not all send.
//!
//! Every call answers [`StripeFailure`]: Stripe refused (its message, HTTP status) or
//! could not be reached; handlers turn both into 502 with the code `STRIPE_ERROR` or
//! `STRIPE_UNREACHABLE`, never a 5xx of ours.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use miniserde::Deserialize as MiniDeserialize;
use serde::Serialize;
use stripe::{Client, ClientBuilder, StripeError};
use stripe_client_core::{
    IdempotencyKey, RequestBuilder, RequestStrategy, StripeMethod, StripeRequest,
};

use crate::config::StripeConfig;
use crate::error::AppError;

/// Why a Stripe call failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// Stripe answered with an error (status, its message).
    #[error("Stripe refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// No answer: connection refused, reset or timed out, or an answer we cannot read.
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
}

impl StripeFailure {
    /// Whether Stripe says the object does not exist.
    #[must_use]
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Refused { status: 404, .. })
    }
}

impl From<StripeError> for StripeFailure {
    fn from(err: StripeError) -> Self {
        match err {
            StripeError::Stripe(api, status) => Self::Refused {
                status,
                message: api
                    .message
                    .clone()
                    .unwrap_or_else(|| "no message".to_owned()),
            },
            StripeError::Timeout => Self::Unreachable("timed out".into()),
            StripeError::ClientError(e) => Self::Unreachable(e),
            StripeError::JSONDeserialize(e) => Self::Unreachable(format!("unreadable answer: {e}")),
            StripeError::ConfigError(e) => Self::Unreachable(e),
        }
    }
}

impl From<StripeFailure> for AppError {
    fn from(err: StripeFailure) -> Self {
        let code = match err {
            StripeFailure::Refused { .. } => "STRIPE_ERROR",
            StripeFailure::Unreachable(_) => "STRIPE_UNREACHABLE",
        };
        AppError::coded(StatusCode::BAD_GATEWAY, code, err.to_string())
    }
}

/// A Stripe object's id.
#[derive(Debug, Clone, MiniDeserialize)]
pub struct Object {
    pub id: String,
}

/// A Checkout Session, as far as billing reads it.
#[derive(Debug, Clone, MiniDeserialize)]
pub struct CheckoutSession {
    pub id: String,
    pub url: Option<String>,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub client_reference_id: Option<String>,
    pub status: Option<String>,
}

/// A billing-portal session.
#[derive(Debug, Clone, MiniDeserialize)]
pub struct PortalSession {
    pub id: String,
    pub url: String,
}

/// An id-only reference (`price`, `plan`).
#[derive(Debug, Clone, MiniDeserialize)]
pub struct Ref {
    pub id: String,
}

/// A subscription item: its price (a plan, on older accounts and in localstripe).
#[derive(Debug, Clone, MiniDeserialize)]
pub struct Item {
    pub id: String,
    pub price: Option<Ref>,
    pub plan: Option<Ref>,
    pub current_period_end: Option<i64>,
}

/// A list of subscription items.
#[derive(Debug, Clone, MiniDeserialize)]
pub struct Items {
    pub data: Vec<Item>,
}

/// A subscription, as far as billing reads it.
#[derive(Debug, Clone, MiniDeserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub cancel_at_period_end: Option<bool>,
    pub current_period_end: Option<i64>,
    pub items: Items,
    pub metadata: Option<HashMap<String, String>>,
}

impl Subscription {
    /// The price (or plan) of its first item.
    #[must_use]
    pub fn price_id(&self) -> Option<&str> {
        let item = self.items.data.first()?;
        item.price
            .as_ref()
            .or(item.plan.as_ref())
            .map(|p| p.id.as_str())
    }

    /// The end of the paid period, in unix seconds (on the subscription before API
    /// version 2025-03-31, on its items since).
    #[must_use]
    pub fn period_end(&self) -> Option<i64> {
        self.current_period_end
            .or_else(|| self.items.data.first().and_then(|i| i.current_period_end))
    }

    /// The organization named in its metadata (set at Checkout).
    #[must_use]
    pub fn org_id(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("org_id"))
            .map(String::as_str)
    }
}

/// One page of a list.
#[derive(Debug, Clone, MiniDeserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    pub has_more: Option<bool>,
}

/// An invoice, as billing shows it.
#[derive(Debug, Clone, MiniDeserialize)]
pub struct Invoice {
    pub id: String,
    pub number: Option<String>,
    pub status: Option<String>,
    pub currency: Option<String>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub created: Option<i64>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub subscription: Option<String>,
}

/// The billing client of this panel.
#[derive(Clone)]
pub struct Stripe {
    client: Client,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stripe")
    }
}

/// `key` as an idempotency key (Stripe keeps the first answer for a key 24 hours).
fn idempotent(key: &str) -> RequestStrategy {
    match IdempotencyKey::new(key) {
        Ok(k) => RequestStrategy::Idempotent(k),
        Err(_) => RequestStrategy::Once,
    }
}

impl Stripe {
    /// The client for `config` (None while billing is off: no secret key).
    #[must_use]
    pub fn from_config(config: &StripeConfig) -> Option<Self> {
        let secret = config.secret_key.expose();
        if secret.is_empty() {
            return None;
        }
        let base = format!("{}/", config.api_base.trim_end_matches('/'));
        let client = ClientBuilder::new(secret)
            .url(base)
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .build()
            .ok()?;
        Some(Self { client })
    }

    async fn send<T: MiniDeserialize>(
        &self,
        request: RequestBuilder,
        strategy: RequestStrategy,
    ) -> Result<T, StripeFailure> {
        Ok(request
            .customize::<T>()
            .request_strategy(strategy)
            .send(&self.client)
            .await?)
    }

    /// Makes the customer of organization `org_id` (one per organization: the key is
    /// the organization's, so two racing requests get the same customer).
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn create_customer(
        &self,
        org_id: &str,
        name: &str,
        email: Option<&str>,
    ) -> Result<String, StripeFailure> {
        let mut request = stripe_core::customer::CreateCustomer::new()
            .name(name)
            .metadata(HashMap::from([("org_id".to_owned(), org_id.to_owned())]));
        if let Some(email) = email {
            request = request.email(email);
        }
        let customer: Object = self
            .send(request.build(), idempotent(&format!("customer-{org_id}")))
            .await?;
        Ok(customer.id)
    }

    /// Makes a product for a plan.
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn create_product(&self, plan_id: &str, name: &str) -> Result<String, StripeFailure> {
        #[derive(Serialize)]
        struct Form<'a> {
            name: &'a str,
            metadata: HashMap<&'static str, &'a str>,
        }
        let form = Form {
            name,
            metadata: HashMap::from([("plan_id", plan_id)]),
        };
        let product: Object = self
            .send(
                RequestBuilder::new(StripeMethod::Post, "/products").form(&form),
                idempotent(&format!("product-{plan_id}")),
            )
            .await?;
        Ok(product.id)
    }

    /// Makes a recurring price (`interval` month or year) of `amount` minor units.
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn create_price(
        &self,
        product: &str,
        amount: i64,
        currency: &str,
        interval: &str,
    ) -> Result<String, StripeFailure> {
        #[derive(Serialize)]
        struct Recurring<'a> {
            interval: &'a str,
        }
        #[derive(Serialize)]
        struct Form<'a> {
            product: &'a str,
            unit_amount: i64,
            currency: &'a str,
            recurring: Recurring<'a>,
        }
        let form = Form {
            product,
            unit_amount: amount,
            currency,
            recurring: Recurring { interval },
        };
        let price: Object = self
            .send(
                RequestBuilder::new(StripeMethod::Post, "/prices").form(&form),
                idempotent(&format!("price-{product}-{interval}-{amount}-{currency}")),
            )
            .await?;
        Ok(price.id)
    }

    /// Starts a Checkout Session in subscription mode for `price`.
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn create_checkout(
        &self,
        c: &CheckoutRequest<'_>,
    ) -> Result<CheckoutSession, StripeFailure> {
        use stripe_checkout::checkout_session::{
            CreateCheckoutSession, CreateCheckoutSessionAutomaticTax,
            CreateCheckoutSessionCustomerUpdate, CreateCheckoutSessionCustomerUpdateAddress,
            CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
        };
        let metadata = HashMap::from([
            ("org_id".to_owned(), c.org_id.to_owned()),
            ("plan_id".to_owned(), c.plan_id.to_owned()),
        ]);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(c.price.to_owned());
        item.quantity = Some(1);
        let mut data = CreateCheckoutSessionSubscriptionData::new();
        data.metadata = Some(metadata.clone());
        let mut request = CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Subscription)
            .customer(c.customer)
            .client_reference_id(c.org_id)
            .line_items(vec![item])
            .allow_promotion_codes(true)
            .subscription_data(data)
            .metadata(metadata)
            .success_url(c.success_url)
            .cancel_url(c.cancel_url);
        if c.automatic_tax {
            // Stripe Tax needs the customer's address: Checkout collects it and saves it
            // on the customer.
            let mut update = CreateCheckoutSessionCustomerUpdate::new();
            update.address = Some(CreateCheckoutSessionCustomerUpdateAddress::Auto);
            request = request
                .automatic_tax(CreateCheckoutSessionAutomaticTax::new(true))
                .customer_update(update);
        }
        self.send(request.build(), RequestStrategy::Retry(2)).await
    }

    /// A billing-portal session for `customer`, coming back to `return_url`.
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn portal(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<PortalSession, StripeFailure> {
        let request = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url);
        self.send(request.build(), RequestStrategy::Retry(2)).await
    }

    /// A subscription by id.
    ///
    /// # Errors
    /// Stripe refused (404: no such subscription) or could not be reached.
    pub async fn subscription(&self, id: &str) -> Result<Subscription, StripeFailure> {
        self.send(
            RequestBuilder::new(StripeMethod::Get, format!("/subscriptions/{id}")),
            RequestStrategy::Retry(2),
        )
        .await
    }

    /// Every subscription (all statuses), one page of up to 100 after `starting_after`.
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn subscriptions(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<Subscription>, StripeFailure> {
        #[derive(Serialize)]
        struct Query<'a> {
            status: &'a str,
            limit: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            starting_after: Option<&'a str>,
        }
        self.send(
            RequestBuilder::new(StripeMethod::Get, "/subscriptions").query(&Query {
                status: "all",
                limit: 100,
                starting_after,
            }),
            RequestStrategy::Retry(2),
        )
        .await
    }

    /// Sets or clears `cancel_at_period_end`.
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
    ) -> Result<Subscription, StripeFailure> {
        #[derive(Serialize)]
        struct Form {
            cancel_at_period_end: bool,
        }
        self.send(
            RequestBuilder::new(StripeMethod::Post, format!("/subscriptions/{id}")).form(&Form {
                cancel_at_period_end: cancel,
            }),
            RequestStrategy::Retry(2),
        )
        .await
    }

    /// Moves the subscription's item to `price`, prorated (Stripe's default behaviour,
    /// named), and keeps `plan_id` in its metadata.
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn change_price(
        &self,
        sub: &Subscription,
        price: &str,
        plan_id: &str,
    ) -> Result<Subscription, StripeFailure> {
        #[derive(Serialize)]
        struct ItemForm<'a> {
            id: &'a str,
            price: &'a str,
        }
        #[derive(Serialize)]
        struct Form<'a> {
            items: Vec<ItemForm<'a>>,
            proration_behavior: &'a str,
            cancel_at_period_end: bool,
            metadata: HashMap<&'static str, &'a str>,
        }
        let item = sub
            .items
            .data
            .first()
            .ok_or_else(|| StripeFailure::Unreachable("the subscription has no item".into()))?;
        self.send(
            RequestBuilder::new(StripeMethod::Post, format!("/subscriptions/{}", sub.id)).form(
                &Form {
                    items: vec![ItemForm {
                        id: &item.id,
                        price,
                    }],
                    proration_behavior: "create_prorations",
                    cancel_at_period_end: false,
                    metadata: HashMap::from([("plan_id", plan_id)]),
                },
            ),
            RequestStrategy::Retry(2),
        )
        .await
    }

    /// Cancels the subscription now.
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn cancel_now(&self, id: &str) -> Result<Subscription, StripeFailure> {
        self.send(
            RequestBuilder::new(StripeMethod::Delete, format!("/subscriptions/{id}")),
            RequestStrategy::Retry(2),
        )
        .await
    }

    /// The customer's latest invoices (up to 50).
    ///
    /// # Errors
    /// Stripe refused or could not be reached.
    pub async fn invoices(&self, customer: &str) -> Result<List<Invoice>, StripeFailure> {
        #[derive(Serialize)]
        struct Query<'a> {
            customer: &'a str,
            limit: u32,
        }
        self.send(
            RequestBuilder::new(StripeMethod::Get, "/invoices").query(&Query {
                customer,
                limit: 50,
            }),
            RequestStrategy::Retry(2),
        )
        .await
    }
}

/// What a Checkout Session is made of.
#[derive(Debug)]
pub struct CheckoutRequest<'a> {
    pub customer: &'a str,
    pub price: &'a str,
    pub org_id: &'a str,
    pub plan_id: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    pub automatic_tax: bool,
}
