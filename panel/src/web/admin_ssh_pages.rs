//! The SSH certificate authority's admin page (`/admin/ssh`): the CA keys (which one
//! signs, which are still trusted and until when), rotation to a new key, and every
//! certificate signed, each revocable.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::WebState;
use super::csrf::CsrfForm;
use super::error::WebResult;
use super::kit::{self, Done, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use crate::ssh::view::{CaKeyList, CaKeyView, CertList, CertView};

/// The routes of this page.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/admin/ssh", get(page))
        .route("/admin/ssh/rotate", post(rotate))
        .route("/admin/ssh/certificates/{id}/revoke", post(revoke))
}

#[derive(Debug, Serialize)]
struct SshPage {
    flash: Flash,
    keys: Vec<CaKeyView>,
    certificates: Vec<CertView>,
    algorithms: [&'static str; 4],
}

async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    flash: Flash,
) -> WebResult<Response> {
    let keys: CaKeyList = kit::read(web, browser, user, "/v1/ssh/ca/keys").await?;
    let certificates: CertList = kit::read(web, browser, user, "/v1/ssh/certificates").await?;
    let page = SshPage {
        flash,
        keys: keys.data,
        certificates: certificates.data,
        algorithms: crate::ssh::ca::ALGORITHMS,
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("SSH certificate authority", "admin"),
        "admin_ssh.html.tera",
        &page,
    )
    .await
}

/// `GET /admin/ssh`.
pub async fn page(
    State(web): State<WebState>,
    browser: Browser,
    done: Result<Query<Done>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/ssh");
    let flash = done
        .map(|Query(d)| Flash::from_done(&d))
        .unwrap_or_default();
    show(&web, &browser, &user, flash).await
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    algorithm: String,
}

/// `POST /admin/ssh/rotate`: `POST /v1/ssh/ca/keys/rotate`.
pub async fn rotate(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<RotateForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/ssh");
    let body = json!({"algorithm": form.algorithm});
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/ssh/ca/keys/rotate",
        Some(&body),
    )
    .await;
    settle(&web, &browser, &user, answer, "ca-rotated").await
}

#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /admin/ssh/certificates/{id}/revoke`.
pub async fn revoke(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/ssh");
    let path = format!("/v1/ssh/certificates/{}/revoke", plain(&id)?);
    let answer = kit::act(&web, &browser, &user, Method::POST, &path, Some(&json!({}))).await;
    settle(&web, &browser, &user, answer, "certificate-revoked").await
}

/// Back to the page with `done`, or the page with the API's refusal.
async fn settle(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    answer: WebResult<()>,
    done: &'static str,
) -> WebResult<Response> {
    match shown(answer)? {
        Ok(()) => kit::done("/admin/ssh", done),
        Err(error) if error.status == StatusCode::NOT_FOUND => Err(error),
        Err(error) => show(web, browser, user, Flash::error(error)).await,
    }
}
