//! The pages a customer's browser sees: the hosted Checkout page (a "Pay" button,
//! `id="pay"`, that completes the session and redirects to its `success_url`), the
//! billing portal (a link back, `id="return"`) and hosted invoices. No key is needed,
//! as on Stripe's own pages.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::Shared;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/checkout/{id}", get(checkout_page))
        .route("/checkout/{id}/pay", post(checkout_pay))
        .route("/portal/{id}", get(portal_page))
        .route("/invoice/{id}", get(invoice_page))
        .route("/invoice/{id}/pdf", get(invoice_pdf))
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><main>{body}</main></body></html>",
        esc(title)
    )
}

fn gone(message: &str) -> Response {
    (
        StatusCode::GONE,
        Html(page(
            "Stripe",
            &format!("<p id=\"error\">{}</p>", esc(message)),
        )),
    )
        .into_response()
}

fn money(amount: i64, currency: &str) -> String {
    format!(
        "{}.{:02} {}",
        amount / 100,
        amount % 100,
        currency.to_uppercase()
    )
}

async fn checkout_page(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let inner = s.lock();
    let Ok(session) = inner.session(&id) else {
        return gone("Something went wrong: this Checkout Session does not exist.");
    };
    if session["status"] != "open" {
        return gone("This Checkout Session is no longer active.");
    }
    let mut lines = String::new();
    if let Some(plan) = inner.session_plans.get(&id) {
        for (price_id, quantity) in &plan.lines {
            let Some(price) = inner.prices.get(price_id) else {
                continue;
            };
            let product = price["product"].as_str().unwrap_or_default();
            let name = inner
                .products
                .get(product)
                .and_then(|p| p["name"].as_str())
                .unwrap_or(product);
            let every = price["recurring"]["interval"].as_str().unwrap_or("once");
            lines.push_str(&format!(
                "<li class=\"line\">{quantity} × {} — {} per {}</li>",
                esc(name),
                money(
                    price["unit_amount"].as_i64().unwrap_or(0),
                    price["currency"].as_str().unwrap_or("")
                ),
                esc(every)
            ));
        }
    }
    let cancel = session["cancel_url"]
        .as_str()
        .map(|u| format!("<a id=\"cancel\" href=\"{}\">Back</a>", esc(u)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Subscribe</h1><ul id=\"lines\">{lines}</ul>\
         <p id=\"total\">{}</p>\
         <form method=\"post\" action=\"/checkout/{id}/pay\">\
         <button id=\"pay\" type=\"submit\">Pay</button></form>{cancel}",
        money(
            session["amount_total"].as_i64().unwrap_or(0),
            session["currency"].as_str().unwrap_or("")
        ),
        id = esc(&id),
    );
    Html(page("Checkout", &body)).into_response()
}

async fn checkout_pay(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let outcome = s.lock().complete_session(&id);
    match outcome {
        Ok((session, events)) => {
            s.dispatch(events);
            let target = session["success_url"]
                .as_str()
                .unwrap_or("/")
                .replace("{CHECKOUT_SESSION_ID}", &id);
            (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
        }
        Err(e) => gone(&e.message),
    }
}

async fn portal_page(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let inner = s.lock();
    let Some(portal) = inner.portals.get(&id) else {
        return gone("This billing portal session does not exist.");
    };
    let customer = portal["customer"].as_str().unwrap_or_default();
    let subs: String = inner
        .subscriptions
        .iter()
        .filter(|sub| sub["customer"] == customer)
        .map(|sub| {
            format!(
                "<li class=\"subscription\">{} {}</li>",
                esc(sub["id"].as_str().unwrap_or("")),
                esc(sub["status"].as_str().unwrap_or(""))
            )
        })
        .collect();
    let back = portal["return_url"]
        .as_str()
        .map(|u| format!("<a id=\"return\" href=\"{}\">Return</a>", esc(u)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Billing portal</h1><p id=\"customer\">{}</p><ul>{subs}</ul>{back}",
        esc(customer)
    );
    Html(page("Billing portal", &body)).into_response()
}

async fn invoice_page(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let Ok(invoice) = s.lock().invoice(&id) else {
        return gone("This invoice does not exist.");
    };
    let body = format!(
        "<h1>Invoice {}</h1><p id=\"status\">{}</p><p id=\"amount\">{}</p>",
        esc(invoice["number"].as_str().unwrap_or("")),
        esc(invoice["status"].as_str().unwrap_or("")),
        money(
            invoice["amount_due"].as_i64().unwrap_or(0),
            invoice["currency"].as_str().unwrap_or("")
        )
    );
    Html(page("Invoice", &body)).into_response()
}

async fn invoice_pdf(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    if s.lock().invoice(&id).is_err() {
        return gone("This invoice does not exist.");
    }
    (
        [(header::CONTENT_TYPE, "application/pdf")],
        format!("%PDF-1.4\n% fake Stripe invoice {id}\n%%EOF\n"),
    )
        .into_response()
}
