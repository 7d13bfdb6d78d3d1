//! The email verification page of open registration: `GET /verify-email?token=` is the
//! link of the verification mail; it asks to confirm (a mail scanner following the
//! link verifies nothing), and `POST /verify-email` spends the token through
//! `POST /v1/auth/verify-email` and says so. The same page mails a new link
//! (`POST /verify-email/resend`, through `POST /v1/auth/verify-email/resend`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::WebState;
use super::auth_pages::{shown, signed_out_page};
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::session::Browser;
use crate::types::Message;

#[derive(Debug, Default, Serialize)]
struct VerifyPage {
    /// The token of the link, for the confirmation form.
    token: String,
    email: String,
    /// The address was verified just now.
    verified: bool,
    notice: Option<String>,
    error: Option<WebError>,
}

#[derive(Debug, Default, Deserialize)]
pub struct VerifyQuery {
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    token: String,
}

#[derive(Debug, Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    email: String,
}

fn verify_page(
    web: &WebState,
    browser: &Browser,
    status: StatusCode,
    page: &VerifyPage,
) -> WebResult<Response> {
    signed_out_page(
        web,
        browser,
        status,
        "verify_email.html.tera",
        "Verify your email address",
        page,
    )
}

/// `GET /verify-email?token=`: the link of the verification mail.
pub async fn verify_form(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<VerifyQuery>, QueryRejection>,
) -> WebResult<Response> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let page = VerifyPage {
        token: q.token.unwrap_or_default(),
        ..VerifyPage::default()
    };
    verify_page(&web, &browser, StatusCode::OK, &page)
}

/// `POST /verify-email`: `POST /v1/auth/verify-email`.
pub async fn verify(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<VerifyForm>,
) -> WebResult<Response> {
    let body = json!({"token": form.token});
    let answer = web
        .fetch::<Message, _>(
            &browser,
            Method::POST,
            "/v1/auth/verify-email",
            None,
            Some(&body),
        )
        .await;
    let page = match shown(answer)? {
        Ok(_) => VerifyPage {
            verified: true,
            ..VerifyPage::default()
        },
        Err(error) => VerifyPage {
            error: Some(error),
            ..VerifyPage::default()
        },
    };
    let status = page.error.as_ref().map_or(StatusCode::OK, |e| e.status);
    verify_page(&web, &browser, status, &page)
}

/// `POST /verify-email/resend`: `POST /v1/auth/verify-email/resend`.
pub async fn resend(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<ResendForm>,
) -> WebResult<Response> {
    let body = json!({"email": form.email});
    let answer = web
        .fetch::<Message, _>(
            &browser,
            Method::POST,
            "/v1/auth/verify-email/resend",
            None,
            Some(&body),
        )
        .await;
    let page = match shown(answer)? {
        Ok(answer) => VerifyPage {
            notice: Some(answer.message.into_owned()),
            ..VerifyPage::default()
        },
        Err(error) => VerifyPage {
            email: form.email,
            error: Some(error),
            ..VerifyPage::default()
        },
    };
    let status = page.error.as_ref().map_or(StatusCode::OK, |e| e.status);
    verify_page(&web, &browser, status, &page)
}
