//! The fake's objects and what changes them: customers, products, prices, Checkout and
//! billing-portal sessions, subscriptions, invoices and the events each change records.
//! Objects are kept as the JSON Stripe answers (API 2025+ shapes: periods on the
//! subscription items and the invoice's `parent.subscription_details`, plus the older
//! top-level `current_period_*`, `plan` and `invoice.subscription` fields clients still
//! read). Every operation answers the events it recorded; the caller delivers them.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::API_VERSION;
use super::error::ApiError;
use super::form::Params;

/// Unix seconds.
#[must_use]
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A new id with Stripe's prefix.
#[must_use]
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..24])
}

/// An idempotent request's stored outcome.
#[derive(Debug, Clone)]
pub enum Idem {
    /// The first request with the key is still running.
    Running,
    /// Its answer, replayed to every retry with the same parameters.
    Done {
        fingerprint: String,
        status: u16,
        body: Vec<u8>,
    },
}

/// A request the fake answered.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    /// The path with its query string.
    pub path: String,
    /// The decoded parameters (body and query).
    pub params: Value,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
}

/// What a Checkout session will subscribe to.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    pub lines: Vec<(String, i64)>,
    pub subscription_metadata: Value,
}

#[derive(Default)]
pub struct Inner {
    pub base: String,
    pub customers: BTreeMap<String, Value>,
    pub products: BTreeMap<String, Value>,
    pub prices: BTreeMap<String, Value>,
    pub sessions: BTreeMap<String, Value>,
    pub session_plans: BTreeMap<String, SessionPlan>,
    pub portals: BTreeMap<String, Value>,
    /// In creation order.
    pub subscriptions: Vec<Value>,
    /// In creation order.
    pub invoices: Vec<Value>,
    pub invoice_seq: u64,
    pub events: Vec<Value>,
    /// HTTP status of each delivery attempt per event id (0: no answer).
    pub deliveries: BTreeMap<String, Vec<u16>>,
    pub webhook: Option<(String, String)>,
    pub hold: bool,
    pub held: Vec<String>,
    pub idempotency: HashMap<String, Idem>,
    pub log: Vec<LoggedRequest>,
    pub failing: Option<u16>,
}

fn metadata_of(value: Option<&Value>, param: &str) -> Result<Map<String, Value>, ApiError> {
    match value {
        None => Ok(Map::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Map::new()),
        Some(Value::Object(map)) => {
            if map.len() > 50 {
                return Err(ApiError::invalid(
                    "Metadata can have at most 50 keys.",
                    Some(param),
                ));
            }
            for (k, v) in map {
                if k.chars().count() > 40 {
                    return Err(ApiError::invalid(
                        format!("Metadata keys must be at most 40 characters: {k}"),
                        Some(&format!("{param}[{k}]")),
                    ));
                }
                if v.as_str().is_none_or(|s| s.chars().count() > 500) {
                    return Err(ApiError::invalid(
                        "Metadata values must be strings of at most 500 characters.",
                        Some(&format!("{param}[{k}]")),
                    ));
                }
            }
            Ok(map.clone())
        }
        Some(_) => Err(ApiError::invalid("Invalid hash", Some(param))),
    }
}

/// Merges metadata as Stripe does on updates: an empty value deletes the key.
fn merge_metadata(target: &mut Value, update: &Map<String, Value>) {
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(map) = target.as_object_mut() {
        for (k, v) in update {
            if v.as_str() == Some("") {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
}

pub fn boolean(params: &Params, name: &str) -> Result<Option<bool>, ApiError> {
    match params.str(&[name]) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid(
            format!("Invalid boolean: {other}"),
            Some(name),
        )),
    }
}

fn integer(text: Option<&str>, param: &str) -> Result<Option<i64>, ApiError> {
    text.map(|t| {
        t.parse::<i64>()
            .map_err(|_| ApiError::invalid(format!("Invalid integer: {t}"), Some(param)))
    })
    .transpose()
}

/// Seconds in one billing interval of `price` (a month is 30 days, a year 365).
fn interval_secs(price: &Value) -> i64 {
    let count = price["recurring"]["interval_count"].as_i64().unwrap_or(1);
    let unit = match price["recurring"]["interval"].as_str() {
        Some("day") => 86_400,
        Some("week") => 7 * 86_400,
        Some("year") => 365 * 86_400,
        _ => 30 * 86_400,
    };
    unit * count
}

/// The legacy `plan` object Stripe still embeds next to a recurring price.
fn plan_of(price: &Value) -> Value {
    json!({
        "id": price["id"], "object": "plan", "active": price["active"],
        "amount": price["unit_amount"], "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "product": price["product"], "livemode": false, "metadata": {},
        "usage_type": "licensed", "billing_scheme": "per_unit", "created": price["created"],
    })
}

impl Inner {
    pub fn event(&mut self, kind: &str, object: &Value, previous: Option<Value>) -> Value {
        let mut data = json!({ "object": object });
        if let Some(prev) = previous {
            data["previous_attributes"] = prev;
        }
        let event = json!({
            "id": new_id("evt"), "object": "event", "api_version": API_VERSION,
            "created": now(), "data": data, "livemode": false,
            "pending_webhooks": i32::from(self.webhook.is_some()),
            "request": {"id": null, "idempotency_key": null}, "type": kind,
        });
        self.events.push(event.clone());
        event
    }

    // --- customers -------------------------------------------------------------

    pub fn create_customer(&mut self, p: &Params) -> Result<(Value, Vec<Value>), ApiError> {
        const ALLOWED: &[&str] = &[
            "email",
            "name",
            "metadata",
            "description",
            "phone",
            "address",
            "preferred_locales",
            "invoice_settings",
            "tax",
            "shipping",
            "tax_id_data",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        let metadata = metadata_of(p.get(&["metadata"]), "metadata")?;
        let id = new_id("cus");
        let customer = json!({
            "id": id, "object": "customer", "address": p.get(&["address"]),
            "balance": 0, "created": now(), "currency": null, "default_source": null,
            "delinquent": false, "description": p.str(&["description"]),
            "email": p.str(&["email"]), "invoice_prefix": "FAKE",
            "invoice_settings": {"default_payment_method": null, "custom_fields": null,
                                 "footer": null, "rendering_options": null},
            "livemode": false, "metadata": metadata, "name": p.str(&["name"]),
            "phone": p.str(&["phone"]), "preferred_locales": [], "shipping": null,
            "tax_exempt": "none", "test_clock": null,
        });
        self.customers.insert(id, customer.clone());
        let event = self.event("customer.created", &customer, None);
        Ok((customer, vec![event]))
    }

    pub fn customer(&self, id: &str) -> Result<Value, ApiError> {
        self.customers
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such("customer", id, "id"))
    }

    pub fn update_customer(
        &mut self,
        id: &str,
        p: &Params,
    ) -> Result<(Value, Vec<Value>), ApiError> {
        const ALLOWED: &[&str] = &[
            "email",
            "name",
            "metadata",
            "description",
            "phone",
            "address",
            "preferred_locales",
            "invoice_settings",
            "tax",
            "shipping",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        let metadata = metadata_of(p.get(&["metadata"]), "metadata")?;
        let customer = self
            .customers
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("customer", id, "id"))?;
        let mut previous = Map::new();
        for field in ["email", "name", "description", "phone"] {
            if let Some(v) = p.str(&[field]) {
                previous.insert(field.into(), customer[field].clone());
                customer[field] = if v.is_empty() { Value::Null } else { json!(v) };
            }
        }
        if let Some(address) = p.get(&["address"]) {
            previous.insert("address".into(), customer["address"].clone());
            customer["address"] = address.clone();
        }
        if p.get(&["metadata"]).is_some() {
            previous.insert("metadata".into(), customer["metadata"].clone());
            merge_metadata(&mut customer["metadata"], &metadata);
        }
        let customer = customer.clone();
        let event = self.event("customer.updated", &customer, Some(Value::Object(previous)));
        Ok((customer, vec![event]))
    }

    // --- products and prices ---------------------------------------------------

    pub fn create_product(&mut self, p: &Params) -> Result<(Value, Vec<Value>), ApiError> {
        const ALLOWED: &[&str] = &[
            "name",
            "description",
            "metadata",
            "active",
            "id",
            "tax_code",
            "images",
            "url",
            "statement_descriptor",
            "unit_label",
            "marketing_features",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        let name = p.str(&["name"]).ok_or_else(|| ApiError::missing("name"))?;
        let metadata = metadata_of(p.get(&["metadata"]), "metadata")?;
        let id = p.str(&["id"]).map_or_else(|| new_id("prod"), str::to_owned);
        if self.products.contains_key(&id) {
            return Err(ApiError {
                code: Some("resource_already_exists"),
                ..ApiError::invalid("Product already exists.", Some("id"))
            });
        }
        let product = json!({
            "id": id, "object": "product", "active": boolean(p, "active")?.unwrap_or(true),
            "created": now(), "updated": now(), "default_price": null,
            "description": p.str(&["description"]), "images": [], "livemode": false,
            "marketing_features": [], "metadata": metadata, "name": name,
            "package_dimensions": null, "shippable": null, "statement_descriptor": null,
            "tax_code": p.str(&["tax_code"]), "type": "service", "unit_label": null, "url": null,
        });
        self.products.insert(id, product.clone());
        let event = self.event("product.created", &product, None);
        Ok((product, vec![event]))
    }

    pub fn create_price(&mut self, p: &Params) -> Result<(Value, Vec<Value>), ApiError> {
        const ALLOWED: &[&str] = &[
            "product",
            "unit_amount",
            "currency",
            "recurring",
            "metadata",
            "nickname",
            "lookup_key",
            "active",
            "product_data",
            "tax_behavior",
            "billing_scheme",
            "transfer_lookup_key",
            "unit_amount_decimal",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        let currency = p
            .str(&["currency"])
            .ok_or_else(|| ApiError::missing("currency"))?
            .to_ascii_lowercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ApiError::invalid(
                format!("Invalid currency: {currency}."),
                Some("currency"),
            ));
        }
        let mut events = Vec::new();
        let product = match (p.str(&["product"]), p.get(&["product_data"])) {
            (Some(id), None) => {
                if !self.products.contains_key(id) {
                    return Err(ApiError::no_such("product", id, "product"));
                }
                id.to_owned()
            }
            (None, Some(Value::Object(data))) => {
                let mut pairs: Vec<(String, String)> = Vec::new();
                for (k, v) in data {
                    if let Some(s) = v.as_str() {
                        pairs.push((k.clone(), s.to_owned()));
                    }
                }
                let encoded = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish();
                let (made, mut evs) = self.create_product(&Params::parse(encoded.as_bytes()))?;
                events.append(&mut evs);
                made["id"].as_str().unwrap_or_default().to_owned()
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "You may only specify one of these parameters: product, product_data.",
                    Some("product"),
                ));
            }
            _ => return Err(ApiError::missing("product")),
        };
        let unit_amount = integer(p.str(&["unit_amount"]), "unit_amount")?
            .ok_or_else(|| ApiError::missing("unit_amount"))?;
        if unit_amount < 0 {
            return Err(ApiError::invalid(
                "This value must be greater than or equal to 0.",
                Some("unit_amount"),
            ));
        }
        let recurring = match p.get(&["recurring"]) {
            None => Value::Null,
            Some(_) => {
                let interval = p
                    .str(&["recurring", "interval"])
                    .ok_or_else(|| ApiError::missing("recurring[interval]"))?;
                if !["day", "week", "month", "year"].contains(&interval) {
                    return Err(ApiError::invalid(
                        "Invalid recurring[interval]: must be one of day, week, month, or year",
                        Some("recurring[interval]"),
                    ));
                }
                let count = integer(
                    p.str(&["recurring", "interval_count"]),
                    "recurring[interval_count]",
                )?
                .unwrap_or(1);
                json!({"interval": interval, "interval_count": count, "usage_type": "licensed",
                       "meter": null, "trial_period_days": null, "aggregate_usage": null})
            }
        };
        let metadata = metadata_of(p.get(&["metadata"]), "metadata")?;
        let id = new_id("price");
        let kind = if recurring.is_null() {
            "one_time"
        } else {
            "recurring"
        };
        let price = json!({
            "id": id, "object": "price", "active": boolean(p, "active")?.unwrap_or(true),
            "billing_scheme": "per_unit", "created": now(), "currency": currency,
            "custom_unit_amount": null, "livemode": false, "lookup_key": p.str(&["lookup_key"]),
            "metadata": metadata, "nickname": p.str(&["nickname"]), "product": product,
            "recurring": recurring, "tax_behavior": p.str(&["tax_behavior"]).unwrap_or("unspecified"),
            "tiers_mode": null, "transform_quantity": null, "type": kind,
            "unit_amount": unit_amount, "unit_amount_decimal": unit_amount.to_string(),
        });
        self.prices.insert(id, price.clone());
        events.push(self.event("price.created", &price, None));
        Ok((price, events))
    }

    pub fn price(&self, id: &str, param: &str) -> Result<Value, ApiError> {
        self.prices
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such("price", id, param))
    }

    // --- Checkout ----------------------------------------------------------------

    pub fn create_session(&mut self, p: &Params) -> Result<Value, ApiError> {
        const ALLOWED: &[&str] = &[
            "mode",
            "customer",
            "customer_email",
            "line_items",
            "client_reference_id",
            "success_url",
            "cancel_url",
            "allow_promotion_codes",
            "automatic_tax",
            "subscription_data",
            "metadata",
            "customer_update",
            "billing_address_collection",
            "tax_id_collection",
            "locale",
            "payment_method_types",
            "discounts",
            "ui_mode",
            "return_url",
            "expires_at",
            "payment_method_collection",
            "consent_collection",
            "customer_creation",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        let mode = p.str(&["mode"]).ok_or_else(|| ApiError::missing("mode"))?;
        if !["payment", "setup", "subscription"].contains(&mode) {
            return Err(ApiError::invalid(
                "Invalid mode: must be one of payment, setup, or subscription",
                Some("mode"),
            ));
        }
        let success_url = p
            .str(&["success_url"])
            .ok_or_else(|| ApiError::missing("success_url"))?;
        for (name, url) in [
            ("success_url", Some(success_url)),
            ("cancel_url", p.str(&["cancel_url"])),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ApiError::invalid("Not a valid URL", Some(name)));
            }
        }
        let customer = p.str(&["customer"]);
        if customer.is_some() && p.str(&["customer_email"]).is_some() {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: customer, customer_email.",
                Some("customer"),
            ));
        }
        let customer_obj = match customer {
            Some(id) => Some(
                self.customers
                    .get(id)
                    .cloned()
                    .ok_or_else(|| ApiError::no_such("customer", id, "customer"))?,
            ),
            None => None,
        };
        let allow_promotion_codes = boolean(p, "allow_promotion_codes")?;
        let automatic_tax = match p.str(&["automatic_tax", "enabled"]) {
            None => false,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(ApiError::invalid(
                    format!("Invalid boolean: {other}"),
                    Some("automatic_tax[enabled]"),
                ));
            }
        };
        if automatic_tax
            && let Some(c) = &customer_obj
            && c["address"].is_null()
            && p.str(&["customer_update", "address"]) != Some("auto")
            && p.str(&["customer_update", "shipping"]) != Some("auto")
        {
            return Err(ApiError::invalid(
                "Automatic tax calculation in Checkout requires a valid address on the Customer. \
                 Add a valid address to the Customer or set either `customer_update[address]` to \
                 'auto' or `customer_update[shipping]` to 'auto' to save the address entered in \
                 Checkout to the Customer.",
                Some("automatic_tax[enabled]"),
            ));
        }
        let items: Vec<Value> = match p.get(&["line_items"]) {
            None => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(ApiError::invalid("Invalid array", Some("line_items"))),
        };
        if mode != "setup" && items.is_empty() {
            return Err(ApiError::missing("line_items"));
        }
        let mut lines = Vec::new();
        let mut total = 0;
        let mut currency = Value::Null;
        let mut recurring = false;
        for (i, item) in items.iter().enumerate() {
            let param = format!("line_items[{i}][price]");
            let price_id = item["price"]
                .as_str()
                .ok_or_else(|| ApiError::missing(&param))?;
            let price = self.price(price_id, &param)?;
            let quantity = integer(
                item["quantity"].as_str(),
                &format!("line_items[{i}][quantity]"),
            )?
            .unwrap_or(1);
            recurring |= !price["recurring"].is_null();
            total += price["unit_amount"].as_i64().unwrap_or(0) * quantity;
            currency = price["currency"].clone();
            lines.push((price_id.to_owned(), quantity));
        }
        if mode == "subscription" && !recurring {
            return Err(ApiError::invalid(
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                Some("line_items"),
            ));
        }
        let metadata = metadata_of(p.get(&["metadata"]), "metadata")?;
        let sub_metadata = metadata_of(
            p.get(&["subscription_data", "metadata"]),
            "subscription_data[metadata]",
        )?;
        let id = format!("cs_test_{}", uuid::Uuid::new_v4().simple());
        let created = now();
        let session = json!({
            "id": id, "object": "checkout.session",
            "allow_promotion_codes": allow_promotion_codes,
            "amount_subtotal": total, "amount_total": total,
            "automatic_tax": {"enabled": automatic_tax, "liability": null,
                              "status": if automatic_tax { json!("requires_location_inputs") } else { Value::Null }},
            "billing_address_collection": p.str(&["billing_address_collection"]),
            "cancel_url": p.str(&["cancel_url"]),
            "client_reference_id": p.str(&["client_reference_id"]),
            "created": created, "currency": currency, "customer": customer,
            "customer_details": null, "customer_email": p.str(&["customer_email"]),
            "customer_update": p.get(&["customer_update"]),
            "expires_at": created + 86_400, "invoice": null, "livemode": false,
            "locale": p.str(&["locale"]), "metadata": metadata, "mode": mode,
            "payment_status": "unpaid", "status": "open", "subscription": null,
            "success_url": success_url, "ui_mode": "hosted",
            "url": format!("{}/checkout/{id}", self.base),
        });
        self.sessions.insert(id.clone(), session.clone());
        self.session_plans.insert(
            id,
            SessionPlan {
                lines,
                subscription_metadata: Value::Object(sub_metadata),
            },
        );
        Ok(session)
    }

    pub fn session(&self, id: &str) -> Result<Value, ApiError> {
        self.sessions
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such("checkout.session", id, "session"))
    }

    /// Pays an open subscription-mode session: its customer (made from
    /// `customer_email` when it had none), an active subscription, a paid invoice.
    pub fn complete_session(&mut self, id: &str) -> Result<(Value, Vec<Value>), ApiError> {
        let session = self.session(id)?;
        if session["status"] != "open" {
            return Err(ApiError::invalid(
                format!(
                    "This Checkout Session is no longer active (status {}).",
                    session["status"]
                ),
                None,
            ));
        }
        if session["mode"] != "subscription" {
            return Err(ApiError::invalid(
                "The fake completes subscription-mode sessions only.",
                Some("mode"),
            ));
        }
        let plan = self
            .session_plans
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such("checkout.session", id, "session"))?;
        let mut events = Vec::new();
        let customer = match session["customer"].as_str() {
            Some(c) => c.to_owned(),
            None => {
                let encoded = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(session["customer_email"].as_str().map(|e| ("email", e)))
                    .finish();
                let (made, mut evs) = self.create_customer(&Params::parse(encoded.as_bytes()))?;
                events.append(&mut evs);
                made["id"].as_str().unwrap_or_default().to_owned()
            }
        };
        let (price_id, quantity) = plan
            .lines
            .iter()
            .find(|(p, _)| {
                self.prices
                    .get(p)
                    .is_some_and(|v| !v["recurring"].is_null())
            })
            .cloned()
            .ok_or_else(|| ApiError::invalid("No recurring price", Some("line_items")))?;
        let price = self.price(&price_id, "line_items[0][price]")?;
        let mut subscription =
            self.new_subscription(&customer, &price, quantity, &plan.subscription_metadata);
        let invoice = self.new_invoice(&subscription, "subscription_create", true, None);
        subscription["latest_invoice"] = invoice["id"].clone();
        let sub_id = subscription["id"].clone();
        self.subscriptions.push(subscription.clone());
        let completed = {
            let s = self
                .sessions
                .get_mut(id)
                .ok_or_else(|| ApiError::no_such("checkout.session", id, "session"))?;
            s["status"] = json!("complete");
            s["payment_status"] = json!("paid");
            s["subscription"] = sub_id;
            s["customer"] = json!(customer);
            s["invoice"] = invoice["id"].clone();
            if s["automatic_tax"]["enabled"] == true {
                s["automatic_tax"]["status"] = json!("complete");
            }
            s["customer_details"] = json!({
                "email": self.customers.get(&customer).map(|c| c["email"].clone()),
                "address": null, "name": null, "phone": null, "tax_exempt": "none", "tax_ids": [],
            });
            s.clone()
        };
        events.push(self.event("checkout.session.completed", &completed, None));
        events.push(self.event("customer.subscription.created", &subscription, None));
        events.push(self.event("invoice.paid", &invoice, None));
        events.push(self.event("invoice.payment_succeeded", &invoice, None));
        Ok((completed, events))
    }

    /// Expires an open session (`checkout.session.expired`).
    pub fn expire_session(&mut self, id: &str) -> Result<Vec<Value>, ApiError> {
        let s = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("checkout.session", id, "session"))?;
        if s["status"] != "open" {
            return Err(ApiError::invalid(
                "Only open sessions can be expired.",
                None,
            ));
        }
        s["status"] = json!("expired");
        let s = s.clone();
        Ok(vec![self.event("checkout.session.expired", &s, None)])
    }

    pub fn create_portal(&mut self, p: &Params) -> Result<Value, ApiError> {
        const ALLOWED: &[&str] = &[
            "customer",
            "return_url",
            "configuration",
            "locale",
            "flow_data",
            "on_behalf_of",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        let customer = p
            .str(&["customer"])
            .ok_or_else(|| ApiError::missing("customer"))?;
        if !self.customers.contains_key(customer) {
            return Err(ApiError::no_such("customer", customer, "customer"));
        }
        let id = new_id("bps");
        let portal = json!({
            "id": id, "object": "billing_portal.session", "configuration": "bpc_fake",
            "created": now(), "customer": customer, "flow": null, "livemode": false,
            "locale": p.str(&["locale"]), "on_behalf_of": null,
            "return_url": p.str(&["return_url"]),
            "url": format!("{}/portal/{id}", self.base),
        });
        self.portals.insert(id, portal.clone());
        Ok(portal)
    }

    // --- subscriptions and invoices --------------------------------------------

    fn new_subscription(
        &mut self,
        customer: &str,
        price: &Value,
        quantity: i64,
        metadata: &Value,
    ) -> Value {
        let start = now();
        let end = start + interval_secs(price);
        let id = new_id("sub");
        let item = json!({
            "id": new_id("si"), "object": "subscription_item", "created": start,
            "current_period_start": start, "current_period_end": end, "metadata": {},
            "price": price, "plan": plan_of(price), "quantity": quantity,
            "subscription": id, "tax_rates": [], "discounts": [],
        });
        json!({
            "id": id, "object": "subscription", "application": null,
            "automatic_tax": {"enabled": false, "liability": null},
            "billing_cycle_anchor": start, "cancel_at": null, "cancel_at_period_end": false,
            "canceled_at": null, "cancellation_details": {"comment": null, "feedback": null, "reason": null},
            "collection_method": "charge_automatically", "created": start,
            "currency": price["currency"], "current_period_start": start,
            "current_period_end": end, "customer": customer, "default_payment_method": null,
            "description": null, "discounts": [], "ended_at": null,
            "items": {"object": "list", "data": [item], "has_more": false, "total_count": 1,
                      "url": format!("/v1/subscription_items?subscription={id}")},
            "latest_invoice": null, "livemode": false, "metadata": metadata,
            "plan": plan_of(price), "quantity": quantity, "start_date": start,
            "status": "active", "test_clock": null, "trial_end": null, "trial_start": null,
        })
    }

    /// An invoice of `subscription`'s current item for the given or current period.
    fn new_invoice(
        &mut self,
        sub: &Value,
        reason: &str,
        paid: bool,
        period: Option<(i64, i64)>,
    ) -> Value {
        let item = &sub["items"]["data"][0];
        let quantity = item["quantity"].as_i64().unwrap_or(1);
        let amount = item["price"]["unit_amount"].as_i64().unwrap_or(0) * quantity;
        let (start, end) = period.unwrap_or((
            sub["current_period_start"].as_i64().unwrap_or_else(now),
            sub["current_period_end"].as_i64().unwrap_or_else(now),
        ));
        self.invoice_seq += 1;
        let id = new_id("in");
        let at = now();
        let customer = sub["customer"].as_str().unwrap_or_default();
        let email = self.customers.get(customer).map(|c| c["email"].clone());
        let invoice = json!({
            "id": id, "object": "invoice", "account_country": "US",
            "amount_due": amount, "amount_paid": if paid { amount } else { 0 },
            "amount_remaining": if paid { 0 } else { amount },
            "attempt_count": 1, "attempted": true, "auto_advance": !paid,
            "billing_reason": reason, "collection_method": "charge_automatically",
            "created": at, "currency": item["price"]["currency"], "customer": customer,
            "customer_email": email, "description": null,
            "hosted_invoice_url": format!("{}/invoice/{id}", self.base),
            "invoice_pdf": format!("{}/invoice/{id}/pdf", self.base),
            "lines": {"object": "list", "has_more": false, "total_count": 1,
                      "url": format!("/v1/invoices/{id}/lines"),
                      "data": [{"id": new_id("il"), "object": "line_item", "amount": amount,
                                "currency": item["price"]["currency"], "description": null,
                                "period": {"start": start, "end": end},
                                "price": item["price"], "quantity": quantity,
                                "pricing": {"type": "price_details",
                                            "price_details": {"price": item["price"]["id"],
                                                              "product": item["price"]["product"]}},
                                "subscription": sub["id"]}]},
            "livemode": false, "metadata": {},
            "next_payment_attempt": if paid { Value::Null } else { json!(at + 3 * 86_400) },
            "number": format!("FAKE-{:04}", self.invoice_seq), "paid": paid,
            "parent": {"type": "subscription_details", "quote_details": null,
                       "subscription_details": {"metadata": sub["metadata"], "subscription": sub["id"]}},
            "period_start": start, "period_end": end,
            "status": if paid { "paid" } else { "open" },
            "status_transitions": {"finalized_at": at, "marked_uncollectible_at": null,
                                   "paid_at": if paid { json!(at) } else { Value::Null },
                                   "voided_at": null},
            "subscription": sub["id"], "subtotal": amount, "total": amount,
        });
        self.invoices.push(invoice.clone());
        invoice
    }

    pub fn subscription(&self, id: &str) -> Result<Value, ApiError> {
        self.subscriptions
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .ok_or_else(|| ApiError::no_such("subscription", id, "id"))
    }

    fn subscription_mut(&mut self, id: &str) -> Result<&mut Value, ApiError> {
        self.subscriptions
            .iter_mut()
            .find(|s| s["id"] == id)
            .ok_or_else(|| ApiError::no_such("subscription", id, "id"))
    }

    pub fn update_subscription(
        &mut self,
        id: &str,
        p: &Params,
    ) -> Result<(Value, Vec<Value>), ApiError> {
        const ALLOWED: &[&str] = &[
            "cancel_at_period_end",
            "items",
            "proration_behavior",
            "metadata",
            "cancel_at",
            "payment_behavior",
            "billing_cycle_anchor",
            "default_payment_method",
            "proration_date",
            "description",
            "collection_method",
            "cancellation_details",
            "trial_end",
            "off_session",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        let current = self.subscription(id)?;
        if current["status"] == "canceled"
            && p.tree
                .keys()
                .any(|k| !["metadata", "cancellation_details", "expand"].contains(&k.as_str()))
        {
            return Err(ApiError::invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
                None,
            ));
        }
        let cancel_at_period_end = boolean(p, "cancel_at_period_end")?;
        let proration = p.str(&["proration_behavior"]);
        if let Some(b) = proration
            && !["create_prorations", "none", "always_invoice"].contains(&b)
        {
            return Err(ApiError::invalid(
                "Invalid proration_behavior: must be one of create_prorations, none, or always_invoice",
                Some("proration_behavior"),
            ));
        }
        let metadata = metadata_of(p.get(&["metadata"]), "metadata")?;
        let new_price = match p.get(&["items"]) {
            None => None,
            Some(Value::Array(items)) if items.len() == 1 => {
                let item = &items[0];
                let current_item = current["items"]["data"][0]["id"]
                    .as_str()
                    .unwrap_or_default();
                if let Some(si) = item["id"].as_str()
                    && si != current_item
                {
                    return Err(ApiError::invalid(
                        format!("Invalid subscription_item id: {si}"),
                        Some("items[0][id]"),
                    ));
                }
                if item["id"].is_null() {
                    return Err(ApiError::invalid(
                        "The fake changes the one item in place: pass items[0][id].",
                        Some("items[0][id]"),
                    ));
                }
                let quantity = integer(item["quantity"].as_str(), "items[0][quantity]")?;
                match item["price"].as_str() {
                    Some(price) => {
                        let price = self.price(price, "items[0][price]")?;
                        if price["recurring"].is_null() {
                            return Err(ApiError::invalid(
                                "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                                Some("items[0][price]"),
                            ));
                        }
                        Some((price, quantity))
                    }
                    None => Some((current["items"]["data"][0]["price"].clone(), quantity)),
                }
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "The fake supports exactly one item.",
                    Some("items"),
                ));
            }
        };
        let now = now();
        let sub = self.subscription_mut(id)?;
        let mut previous = Map::new();
        let mut reinvoice = false;
        if let Some(flag) = cancel_at_period_end
            && sub["cancel_at_period_end"] != flag
        {
            previous.insert(
                "cancel_at_period_end".into(),
                sub["cancel_at_period_end"].clone(),
            );
            previous.insert("cancel_at".into(), sub["cancel_at"].clone());
            previous.insert("canceled_at".into(), sub["canceled_at"].clone());
            sub["cancel_at_period_end"] = json!(flag);
            sub["cancel_at"] = if flag {
                sub["current_period_end"].clone()
            } else {
                Value::Null
            };
            sub["canceled_at"] = if flag { json!(now) } else { Value::Null };
        }
        if let Some((price, quantity)) = new_price {
            let old_price = sub["items"]["data"][0]["price"].clone();
            let old_quantity = sub["items"]["data"][0]["quantity"].clone();
            let quantity = quantity.map_or(old_quantity.clone(), |q| json!(q));
            if old_price["id"] != price["id"] || old_quantity != quantity {
                previous.insert("items".into(), sub["items"].clone());
                previous.insert("plan".into(), sub["plan"].clone());
                let interval_changed = old_price["recurring"] != price["recurring"];
                let item = &mut sub["items"]["data"][0];
                item["price"] = price.clone();
                item["plan"] = plan_of(&price);
                item["quantity"] = quantity.clone();
                sub["plan"] = plan_of(&price);
                sub["quantity"] = quantity;
                if interval_changed {
                    // A new interval restarts the billing cycle now, as Stripe does.
                    previous.insert(
                        "current_period_start".into(),
                        sub["current_period_start"].clone(),
                    );
                    previous.insert(
                        "current_period_end".into(),
                        sub["current_period_end"].clone(),
                    );
                    set_period(sub, now, now + interval_secs(&price));
                    sub["billing_cycle_anchor"] = json!(now);
                }
                reinvoice = interval_changed || proration == Some("always_invoice");
            }
        }
        if p.get(&["metadata"]).is_some() {
            previous.insert("metadata".into(), sub["metadata"].clone());
            merge_metadata(&mut sub["metadata"], &metadata);
        }
        let mut snapshot = sub.clone();
        let mut events = Vec::new();
        if reinvoice {
            let invoice = self.new_invoice(&snapshot, "subscription_update", true, None);
            let sub = self.subscription_mut(id)?;
            sub["latest_invoice"] = invoice["id"].clone();
            snapshot = sub.clone();
            events.push(self.event(
                "customer.subscription.updated",
                &snapshot,
                Some(Value::Object(previous)),
            ));
            events.push(self.event("invoice.paid", &invoice, None));
            events.push(self.event("invoice.payment_succeeded", &invoice, None));
        } else if !previous.is_empty() {
            events.push(self.event(
                "customer.subscription.updated",
                &snapshot,
                Some(Value::Object(previous)),
            ));
        }
        Ok((snapshot, events))
    }

    pub fn cancel_subscription(&mut self, id: &str) -> Result<(Value, Vec<Value>), ApiError> {
        let now = now();
        let sub = self.subscription_mut(id)?;
        if sub["status"] == "canceled" {
            return Err(ApiError::no_such("subscription", id, "id"));
        }
        sub["status"] = json!("canceled");
        sub["canceled_at"] = json!(now);
        sub["ended_at"] = json!(now);
        let sub = sub.clone();
        let event = self.event("customer.subscription.deleted", &sub, None);
        Ok((sub, vec![event]))
    }

    /// The next page of `items` (newest first) as Stripe's list envelope.
    pub fn page(items: Vec<Value>, p: &Params, url: &str) -> Result<Value, ApiError> {
        let limit = integer(p.str(&["limit"]), "limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid(
                "This value must be between 1 and 100.",
                Some("limit"),
            ));
        }
        let mut items = items;
        if let Some(after) = p.str(&["starting_after"]) {
            let at = items
                .iter()
                .position(|v| v["id"] == after)
                .ok_or_else(|| ApiError::no_such("object", after, "starting_after"))?;
            items.drain(..=at);
        }
        let limit = usize::try_from(limit).unwrap_or(10);
        let has_more = items.len() > limit;
        items.truncate(limit);
        Ok(json!({"object": "list", "data": items, "has_more": has_more, "url": url}))
    }

    pub fn list_subscriptions(&self, p: &Params) -> Result<Value, ApiError> {
        const ALLOWED: &[&str] = &[
            "customer",
            "status",
            "limit",
            "starting_after",
            "ending_before",
            "price",
            "created",
            "collection_method",
            "current_period_end",
            "current_period_start",
            "test_clock",
            "automatic_tax",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        let status = p.str(&["status"]);
        const STATUSES: &[&str] = &[
            "all",
            "active",
            "past_due",
            "unpaid",
            "canceled",
            "incomplete",
            "incomplete_expired",
            "trialing",
            "paused",
            "ended",
        ];
        if let Some(s) = status
            && !STATUSES.contains(&s)
        {
            return Err(ApiError::invalid(
                format!("Invalid status: {s}"),
                Some("status"),
            ));
        }
        if let Some(c) = p.str(&["customer"])
            && !self.customers.contains_key(c)
        {
            return Err(ApiError::no_such("customer", c, "customer"));
        }
        let items = self
            .subscriptions
            .iter()
            .rev()
            .filter(|s| p.str(&["customer"]).is_none_or(|c| s["customer"] == c))
            .filter(|s| {
                p.str(&["price"])
                    .is_none_or(|id| s["items"]["data"][0]["price"]["id"] == id)
            })
            .filter(|s| match status {
                None => !["canceled", "incomplete_expired"]
                    .contains(&s["status"].as_str().unwrap_or("")),
                Some("all") => true,
                Some("ended") => s["status"] == "canceled",
                Some(other) => s["status"] == other,
            })
            .cloned()
            .collect();
        Self::page(items, p, "/v1/subscriptions")
    }

    pub fn list_invoices(&self, p: &Params) -> Result<Value, ApiError> {
        const ALLOWED: &[&str] = &[
            "customer",
            "subscription",
            "status",
            "limit",
            "starting_after",
            "ending_before",
            "created",
            "collection_method",
            "due_date",
        ];
        if let Some(k) = p.unknown(ALLOWED) {
            return Err(ApiError::unknown(&k));
        }
        if let Some(c) = p.str(&["customer"])
            && !self.customers.contains_key(c)
        {
            return Err(ApiError::no_such("customer", c, "customer"));
        }
        let items = self
            .invoices
            .iter()
            .rev()
            .filter(|i| p.str(&["customer"]).is_none_or(|c| i["customer"] == c))
            .filter(|i| {
                p.str(&["subscription"])
                    .is_none_or(|s| i["subscription"] == s)
            })
            .filter(|i| p.str(&["status"]).is_none_or(|s| i["status"] == s))
            .cloned()
            .collect();
        Self::page(items, p, "/v1/invoices")
    }

    pub fn invoice(&self, id: &str) -> Result<Value, ApiError> {
        self.invoices
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .ok_or_else(|| ApiError::no_such("invoice", id, "id"))
    }

    // --- test controls ---------------------------------------------------------

    /// Sets the status and records `customer.subscription.updated`.
    pub fn set_status(&mut self, id: &str, status: &str) -> Result<Vec<Value>, ApiError> {
        let now = now();
        let sub = self.subscription_mut(id)?;
        let previous = json!({"status": sub["status"]});
        sub["status"] = json!(status);
        if status == "canceled" {
            sub["canceled_at"] = json!(now);
            sub["ended_at"] = json!(now);
        }
        let sub = sub.clone();
        Ok(vec![self.event(
            "customer.subscription.updated",
            &sub,
            Some(previous),
        )])
    }

    /// A renewal whose charge fails: an open invoice for the next period,
    /// `invoice.payment_failed`, and the subscription `past_due`.
    pub fn fail_payment(&mut self, id: &str) -> Result<(String, Vec<Value>), ApiError> {
        let sub = self.subscription(id)?;
        let start = sub["current_period_end"].as_i64().unwrap_or_else(now);
        let price = sub["items"]["data"][0]["price"].clone();
        let period = (start, start + interval_secs(&price));
        let invoice = self.new_invoice(&sub, "subscription_cycle", false, Some(period));
        let sub = self.subscription_mut(id)?;
        let previous = json!({"status": sub["status"], "latest_invoice": sub["latest_invoice"]});
        sub["status"] = json!("past_due");
        sub["latest_invoice"] = invoice["id"].clone();
        let sub = sub.clone();
        let events = vec![
            self.event("invoice.payment_failed", &invoice, None),
            self.event("customer.subscription.updated", &sub, Some(previous)),
        ];
        Ok((
            invoice["id"].as_str().unwrap_or_default().to_owned(),
            events,
        ))
    }

    /// A successful payment: the open invoice (or a new renewal invoice) is paid, the
    /// period moves on one interval and the subscription is `active`.
    pub fn pay(&mut self, id: &str) -> Result<(String, Vec<Value>), ApiError> {
        let sub = self.subscription(id)?;
        let open = self
            .invoices
            .iter()
            .position(|i| i["subscription"] == sub["id"] && i["status"] == "open");
        let at = now();
        let invoice = match open {
            Some(i) => {
                let inv = &mut self.invoices[i];
                inv["status"] = json!("paid");
                inv["paid"] = json!(true);
                inv["amount_paid"] = inv["amount_due"].clone();
                inv["amount_remaining"] = json!(0);
                inv["attempt_count"] = json!(inv["attempt_count"].as_i64().unwrap_or(1) + 1);
                inv["next_payment_attempt"] = Value::Null;
                inv["status_transitions"]["paid_at"] = json!(at);
                inv.clone()
            }
            None => {
                let start = sub["current_period_end"].as_i64().unwrap_or(at);
                let price = sub["items"]["data"][0]["price"].clone();
                self.new_invoice(
                    &sub,
                    "subscription_cycle",
                    true,
                    Some((start, start + interval_secs(&price))),
                )
            }
        };
        let sub = self.subscription_mut(id)?;
        let previous = json!({
            "status": sub["status"], "current_period_start": sub["current_period_start"],
            "current_period_end": sub["current_period_end"], "latest_invoice": sub["latest_invoice"],
        });
        let start = invoice["period_start"].as_i64().unwrap_or(at);
        let end = invoice["period_end"].as_i64().unwrap_or(at);
        set_period(sub, start, end);
        sub["status"] = json!("active");
        sub["latest_invoice"] = invoice["id"].clone();
        let sub = sub.clone();
        let events = vec![
            self.event("invoice.paid", &invoice, None),
            self.event("invoice.payment_succeeded", &invoice, None),
            self.event("customer.subscription.updated", &sub, Some(previous)),
        ];
        Ok((
            invoice["id"].as_str().unwrap_or_default().to_owned(),
            events,
        ))
    }

    /// The period ends: a subscription set to cancel at period end is canceled
    /// (`customer.subscription.deleted`); any other renews and is paid as [`Self::pay`].
    pub fn advance_period(&mut self, id: &str) -> Result<Vec<Value>, ApiError> {
        let sub = self.subscription(id)?;
        if sub["cancel_at_period_end"] == true {
            let sub = self.subscription_mut(id)?;
            sub["status"] = json!("canceled");
            sub["ended_at"] = sub["current_period_end"].clone();
            let sub = sub.clone();
            return Ok(vec![self.event(
                "customer.subscription.deleted",
                &sub,
                None,
            )]);
        }
        let start = sub["current_period_end"].as_i64().unwrap_or_else(now);
        let price = sub["items"]["data"][0]["price"].clone();
        let invoice = self.new_invoice(
            &sub,
            "subscription_cycle",
            true,
            Some((start, start + interval_secs(&price))),
        );
        let sub = self.subscription_mut(id)?;
        let previous = json!({
            "current_period_start": sub["current_period_start"],
            "current_period_end": sub["current_period_end"], "latest_invoice": sub["latest_invoice"],
        });
        set_period(sub, start, start + interval_secs(&price));
        sub["latest_invoice"] = invoice["id"].clone();
        let sub = sub.clone();
        Ok(vec![
            self.event("invoice.paid", &invoice, None),
            self.event("invoice.payment_succeeded", &invoice, None),
            self.event("customer.subscription.updated", &sub, Some(previous)),
        ])
    }
}

fn set_period(sub: &mut Value, start: i64, end: i64) {
    sub["current_period_start"] = json!(start);
    sub["current_period_end"] = json!(end);
    if let Some(items) = sub["items"]["data"].as_array_mut() {
        for item in items {
            item["current_period_start"] = json!(start);
            item["current_period_end"] = json!(end);
        }
    }
    if sub["cancel_at_period_end"] == true {
        sub["cancel_at"] = json!(end);
    }
}
