//! The HTTP side: the `/v1` routes, the gate every request passes (log, secret key,
//! injected failures, `Idempotency-Key` replay) and the parameter extractor.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::error::ApiError;
use super::form::Params;
use super::world::{Idem, Inner, LoggedRequest, new_id};
use super::{API_VERSION, Shared, browser};

type Answer = Result<Response, ApiError>;

fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let mut encoded = req.uri().query().unwrap_or("").as_bytes().to_vec();
        let form = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::invalid("Could not read the request body.", None))?;
        if !bytes.is_empty() {
            if !form {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid request: unsupported Content-Type {content_type}. \
                         Stripe takes application/x-www-form-urlencoded bodies."
                    ),
                    None,
                ));
            }
            if !encoded.is_empty() {
                encoded.push(b'&');
            }
            encoded.extend_from_slice(&bytes);
        }
        Ok(Params::parse(&encoded))
    }
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/v1/customers", post(customer_create))
        .route(
            "/v1/customers/{id}",
            get(customer_get).post(customer_update),
        )
        .route("/v1/products", post(product_create))
        .route("/v1/products/{id}", get(product_get))
        .route("/v1/prices", post(price_create))
        .route("/v1/prices/{id}", get(price_get))
        .route("/v1/checkout/sessions", post(session_create))
        .route("/v1/checkout/sessions/{id}", get(session_get))
        .route("/v1/billing_portal/sessions", post(portal_create))
        .route("/v1/subscriptions", get(subscription_list))
        .route(
            "/v1/subscriptions/{id}",
            get(subscription_get)
                .post(subscription_update)
                .delete(subscription_cancel),
        )
        .route("/v1/invoices", get(invoice_list))
        .route("/v1/invoices/{id}", get(invoice_get))
        .merge(browser::router())
        .fallback(|method: Method, req: Request| async move {
            ApiError {
                status: StatusCode::NOT_FOUND,
                ..ApiError::invalid(
                    format!(
                        "Unrecognized request URL ({method}: {}). The fake Stripe serves only \
                         the endpoints listed in tests/src/fake_stripe.rs.",
                        req.uri().path()
                    ),
                    None,
                )
            }
        })
        .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

fn authorized(shared: &Shared, header: Option<&str>) -> Result<(), ApiError> {
    let Some(header) = header else {
        return Err(ApiError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    let key = if let Some(token) = header.strip_prefix("Bearer ") {
        token.trim().to_owned()
    } else if let Some(basic) = header.strip_prefix("Basic ") {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        decoded
            .map(|d| d.split(':').next().unwrap_or("").to_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    if key == *shared.key {
        Ok(())
    } else {
        let shown: String = key.chars().take(8).collect();
        Err(ApiError::unauthorized(format!(
            "Invalid API Key provided: {shown}****"
        )))
    }
}

/// Logs, then (for `/v1`) checks the key, answers an injected failure, and replays or
/// refuses reused idempotency keys. Only 2xx answers are stored for replay: Stripe saves
/// no result when parameters fail validation.
async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::invalid("Request body too large.", None).into_response();
    };
    let path = parts.uri.path().to_owned();
    let shown = parts
        .uri
        .query()
        .map_or_else(|| path.clone(), |q| format!("{path}?{q}"));
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let idempotency_key = header("idempotency-key");
    let stripe_version = header("stripe-version");
    let mut encoded = parts.uri.query().unwrap_or("").as_bytes().to_vec();
    if !bytes.is_empty() {
        if !encoded.is_empty() {
            encoded.push(b'&');
        }
        encoded.extend_from_slice(&bytes);
    }
    let params = Params::parse(&encoded);
    shared.lock().log.push(LoggedRequest {
        method: parts.method.to_string(),
        path: shown,
        params: Value::Object(params.tree.clone()),
        idempotency_key: idempotency_key.clone(),
        stripe_version: stripe_version.clone(),
    });
    if shared.is_down() {
        // Reached only by a request read before the fake went down.
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let api = path.starts_with("/v1/");
    let method = parts.method.clone();
    let request = Request::from_parts(parts, Body::from(bytes));
    if !api {
        return next.run(request).await;
    }
    let mut response = match api_gate(
        &shared,
        request,
        next,
        &method,
        &path,
        &params,
        idempotency_key,
    )
    .await
    {
        Ok(r) | Err(r) => r,
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&new_id("req")) {
        headers.insert("request-id", v);
    }
    let version = stripe_version.unwrap_or_else(|| API_VERSION.to_owned());
    if let Ok(v) = HeaderValue::from_str(&version) {
        headers.insert("stripe-version", v);
    }
    response
}

async fn api_gate(
    shared: &Shared,
    request: Request,
    next: Next,
    method: &Method,
    path: &str,
    params: &Params,
    idempotency_key: Option<String>,
) -> Result<Response, Response> {
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    authorized(shared, auth).map_err(IntoResponse::into_response)?;
    let failing = shared.lock().failing;
    if let Some(status) = failing {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(ApiError::api(status).into_response());
    }
    let Some(key) = idempotency_key.filter(|_| *method == Method::POST) else {
        return Ok(next.run(request).await);
    };
    let fingerprint = format!("{method} {path}?{}", params.fingerprint());
    {
        let mut inner = shared.lock();
        match inner.idempotency.get(&key) {
            Some(Idem::Running) => {
                return Err(ApiError::idempotency(
                    StatusCode::CONFLICT,
                    format!(
                        "There is currently another in-progress request using this Idempotent \
                         Key (that probably means you submitted twice, and the other request is \
                         still going through): {key}. Please try again later."
                    ),
                )
                .into_response());
            }
            Some(Idem::Done { fingerprint: f, .. }) if *f != fingerprint => {
                return Err(ApiError::idempotency(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Keys for idempotent requests can only be used with the same parameters \
                         they were first used with. Try using a key other than '{key}' if you \
                         meant to execute a different request."
                    ),
                )
                .into_response());
            }
            Some(Idem::Done { status, body, .. }) => {
                let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
                let mut response = (status, body.clone()).into_response();
                let headers = response.headers_mut();
                headers.insert("content-type", HeaderValue::from_static("application/json"));
                headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
                headers.insert("original-request", HeaderValue::from_static("replayed"));
                return Ok(response);
            }
            None => {
                inner.idempotency.insert(key.clone(), Idem::Running);
            }
        }
    }
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 8 << 20)
        .await
        .unwrap_or_default();
    {
        let mut inner = shared.lock();
        if parts.status.is_success() {
            inner.idempotency.insert(
                key,
                Idem::Done {
                    fingerprint,
                    status: parts.status.as_u16(),
                    body: bytes.to_vec(),
                },
            );
        } else {
            inner.idempotency.remove(&key);
        }
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Runs `f` on the state and delivers the events it recorded.
fn mutate(
    shared: &Shared,
    f: impl FnOnce(&mut Inner) -> Result<(Value, Vec<Value>), ApiError>,
) -> Answer {
    let (value, events) = f(&mut shared.lock())?;
    shared.dispatch(events);
    ok(value)
}

async fn customer_create(State(s): State<Shared>, p: Params) -> Answer {
    mutate(&s, |i| i.create_customer(&p))
}

async fn customer_get(State(s): State<Shared>, Path(id): Path<String>) -> Answer {
    ok(s.lock().customer(&id)?)
}

async fn customer_update(State(s): State<Shared>, Path(id): Path<String>, p: Params) -> Answer {
    mutate(&s, |i| i.update_customer(&id, &p))
}

async fn product_create(State(s): State<Shared>, p: Params) -> Answer {
    mutate(&s, |i| i.create_product(&p))
}

async fn product_get(State(s): State<Shared>, Path(id): Path<String>) -> Answer {
    let product = s.lock().products.get(&id).cloned();
    ok(product.ok_or_else(|| ApiError::no_such("product", &id, "id"))?)
}

async fn price_create(State(s): State<Shared>, p: Params) -> Answer {
    mutate(&s, |i| i.create_price(&p))
}

async fn price_get(State(s): State<Shared>, Path(id): Path<String>) -> Answer {
    ok(s.lock().price(&id, "id")?)
}

async fn session_create(State(s): State<Shared>, p: Params) -> Answer {
    ok(s.lock().create_session(&p)?)
}

async fn session_get(State(s): State<Shared>, Path(id): Path<String>) -> Answer {
    ok(s.lock().session(&id)?)
}

async fn portal_create(State(s): State<Shared>, p: Params) -> Answer {
    ok(s.lock().create_portal(&p)?)
}

async fn subscription_list(State(s): State<Shared>, p: Params) -> Answer {
    ok(s.lock().list_subscriptions(&p)?)
}

async fn subscription_get(State(s): State<Shared>, Path(id): Path<String>) -> Answer {
    ok(s.lock().subscription(&id)?)
}

async fn subscription_update(State(s): State<Shared>, Path(id): Path<String>, p: Params) -> Answer {
    mutate(&s, |i| i.update_subscription(&id, &p))
}

async fn subscription_cancel(State(s): State<Shared>, Path(id): Path<String>, p: Params) -> Answer {
    if let Some(k) = p.unknown(&["invoice_now", "prorate", "cancellation_details"]) {
        return Err(ApiError::unknown(&k));
    }
    mutate(&s, |i| i.cancel_subscription(&id))
}

async fn invoice_list(State(s): State<Shared>, p: Params) -> Answer {
    ok(s.lock().list_invoices(&p)?)
}

async fn invoice_get(State(s): State<Shared>, Path(id): Path<String>) -> Answer {
    ok(s.lock().invoice(&id)?)
}
