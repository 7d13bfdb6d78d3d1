//! SSH certificates on the account page: a form signs a certificate for a pasted public
//! key (`POST /v1/ssh/certificate`, shown once to copy), for nodes or for one server's
//! SFTP, and each certificate of the list can be revoked
//! (`POST /v1/ssh/certificates/{id}/revoke`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::WebState;
use super::account_pages::{AccountPage, show};
use super::csrf::CsrfForm;
use super::error::WebResult;
use super::kit::{self, Flash, page_user, plain, shown};
use crate::ssh::view::{CertView, Signed};

/// The certificate routes of the account page.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/account/ssh-certificates", post(sign))
        .route("/account/ssh-certificates/{id}/revoke", post(revoke))
}

#[derive(Debug, Deserialize)]
pub struct SignForm {
    #[serde(default)]
    public_key: String,
    /// Logins, separated by spaces or commas.
    #[serde(default)]
    logins: String,
    #[serde(default)]
    validity_hours: String,
    /// Empty: every node the user may reach.
    #[serde(default)]
    node_id: String,
    /// A server to sign an SFTP certificate for instead (logins and node are then
    /// ignored).
    #[serde(default)]
    instance_id: String,
}

/// The API body of the form: the API checks every field.
#[derive(Debug, Serialize)]
struct SignBody<'a> {
    public_key: &'a str,
    principals: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validity_hours: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance_id: Option<&'a str>,
}

fn body_of(form: &SignForm) -> SignBody<'_> {
    let instance_id = Some(form.instance_id.trim()).filter(|s| !s.is_empty());
    if instance_id.is_some() {
        return SignBody {
            public_key: form.public_key.trim(),
            principals: Vec::new(),
            validity_hours: form.validity_hours.trim().parse().ok(),
            node_id: None,
            instance_id,
        };
    }
    SignBody {
        public_key: form.public_key.trim(),
        principals: form
            .logins
            .split([' ', ','])
            .filter(|l| !l.is_empty())
            .collect(),
        validity_hours: form.validity_hours.trim().parse().ok(),
        node_id: Some(form.node_id.trim()).filter(|s| !s.is_empty()),
        instance_id: None,
    }
}

/// `POST /account/ssh-certificates`: signs, then shows the certificate once.
pub async fn sign(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<SignForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let answer = kit::write::<Signed, _>(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/ssh/certificate",
        Some(&body_of(&form)),
    )
    .await;
    let mut page = AccountPage::default();
    match shown(answer)? {
        Ok(signed) => page.new_certificate = Some(signed),
        Err(error) => page.flash = Flash::error(error),
    }
    show(&web, &browser, &user, page).await
}

/// `POST /account/ssh-certificates/{id}/revoke`.
pub async fn revoke(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<super::account_pages::NoFields>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let path = format!("/v1/ssh/certificates/{}/revoke", plain(&id)?);
    let answer =
        kit::write::<CertView, Value>(&web, &browser, &user, Method::POST, &path, Some(&json!({})))
            .await;
    match shown(answer)? {
        Ok(_) => kit::done("/account", "certificate-revoked"),
        Err(error) => {
            let mut page = AccountPage::default();
            page.flash = Flash::error(error);
            show(&web, &browser, &user, page).await
        }
    }
}
