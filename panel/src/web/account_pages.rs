//! The account page (`/account`): password, two-factor authentication (enrollment with
//! its QR code, recovery codes shown once, disabling), API tokens (the secret shown
//! once), active sessions and SSH certificates (`ssh_pages`). Each form posts here and
//! goes through the `/v1` API.
//!
//! [`router`] also carries the organization, node, workload and admin pages.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::WebState;
use super::csrf::CsrfForm;
use super::error::WebResult;
use super::kit::{self, Done, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use super::{admin_pages, node_pages, org_pages, workload_pages};
use crate::api_tokens::{CreateToken, Created, TokenView};
use crate::auth::mfa::{CodeRequest, EnrollResponse, MfaStatus, RecoveryCodes};
use crate::auth::sessions::SessionView;
use crate::users::store::User;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/account", get(account))
        .route("/account/password", post(password))
        .route("/account/mfa/enroll", post(mfa_enroll))
        .route("/account/mfa/verify", post(mfa_verify))
        .route("/account/mfa/disable", post(mfa_disable))
        .route("/account/tokens", post(token_create))
        .route("/account/tokens/{id}/revoke", post(token_revoke))
        .route("/account/sessions/{id}/revoke", post(session_revoke))
        .merge(super::ssh_pages::router())
        .merge(org_pages::router())
        .merge(node_pages::router())
        .merge(workload_pages::router())
        .merge(admin_pages::router())
}

/// A new MFA seed waiting for its first code.
#[derive(Debug, Serialize)]
struct Enroll {
    /// The QR code as a `data:` URI (an `<img>`, allowed by the CSP).
    qr: String,
    secret: String,
    otpauth_uri: String,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct AccountPage {
    pub(super) flash: Flash,
    me: Option<User>,
    mfa: Option<MfaStatus>,
    tokens: Vec<TokenView>,
    sessions: Vec<SessionView>,
    /// Enrollment started: the QR code and the code form.
    enroll: Option<Enroll>,
    /// A code was wrong: the code form again, without the QR code.
    verify_again: bool,
    /// Shown once, right after enrollment.
    recovery_codes: Vec<String>,
    /// A new API token, its secret shown once.
    new_token: Option<Created>,
    /// The user's SSH certificates (`ssh_pages`).
    pub(super) certificates: Vec<crate::ssh::view::CertView>,
    /// A certificate just signed, to copy.
    pub(super) new_certificate: Option<crate::ssh::view::Signed>,
}

/// Renders the account page with what the API says now, plus `extra`.
pub(super) async fn show(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    mut extra: AccountPage,
) -> WebResult<Response> {
    extra.me = Some(kit::read(web, browser, user, "/v1/users/me").await?);
    extra.mfa = Some(kit::read(web, browser, user, "/v1/auth/mfa/status").await?);
    extra.tokens = kit::read(web, browser, user, "/v1/api-tokens").await?;
    extra.sessions = kit::read(web, browser, user, "/v1/users/me/sessions").await?;
    let certificates: crate::ssh::view::CertList =
        kit::read(web, browser, user, "/v1/ssh/certificates").await?;
    extra.certificates = certificates.data;
    kit::page(
        web,
        browser,
        user,
        extra.flash.status(),
        ("Account", "account"),
        "account.html.tera",
        &extra,
    )
    .await
}

/// `GET /account`.
pub async fn account(
    State(web): State<WebState>,
    browser: Browser,
    done: Result<Query<Done>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let flash = done
        .map(|Query(d)| Flash::from_done(&d))
        .unwrap_or_default();
    show(
        &web,
        &browser,
        &user,
        AccountPage {
            flash,
            ..AccountPage::default()
        },
    )
    .await
}

/// Shows the API's answer to a form: on success `ok`, on a client error the page with it.
async fn after(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    answer: WebResult<()>,
    ok: impl FnOnce() -> WebResult<Response>,
) -> WebResult<Response> {
    match shown(answer)? {
        Ok(()) => ok(),
        Err(error) => {
            let page = AccountPage {
                flash: Flash::error(error),
                ..AccountPage::default()
            };
            show(web, browser, user, page).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// `POST /account/password`: `POST /v1/users/me/password`.
pub async fn password(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<PasswordForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let answer = if form.new_password == form.confirm_password {
        let body =
            json!({"current_password": form.current_password, "new_password": form.new_password});
        kit::act(
            &web,
            &browser,
            &user,
            Method::POST,
            "/v1/users/me/password",
            Some(&body),
        )
        .await
    } else {
        Err(super::error::WebError::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "the new password and its confirmation differ",
        ))
    };
    after(&web, &browser, &user, answer, || {
        kit::done("/account", "password")
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /account/mfa/enroll`: `POST /v1/auth/mfa/enroll`; shows the QR code.
pub async fn mfa_enroll(
    State(web): State<WebState>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let answer: WebResult<EnrollResponse> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/auth/mfa/enroll",
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(v) => {
            let enroll = Enroll {
                qr: format!(
                    "data:image/svg+xml;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&v.qr_svg)
                ),
                secret: v.secret,
                otpauth_uri: v.otpauth_uri,
            };
            let page = AccountPage {
                enroll: Some(enroll),
                ..AccountPage::default()
            };
            show(&web, &browser, &user, page).await
        }
        Err(error) => {
            let page = AccountPage {
                flash: Flash::error(error),
                ..AccountPage::default()
            };
            show(&web, &browser, &user, page).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /account/mfa/verify`: `POST /v1/auth/mfa/verify`; shows the recovery codes
/// once.
pub async fn mfa_verify(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<CodeForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let body = CodeRequest {
        code: form.code.trim().to_string(),
    };
    let answer: WebResult<RecoveryCodes> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/auth/mfa/verify",
        Some(&body),
    )
    .await;
    let page = match shown(answer)? {
        Ok(v) => AccountPage {
            flash: Flash {
                notice: Some("Two-factor authentication is on.".into()),
                error: None,
            },
            recovery_codes: v.recovery_codes,
            ..AccountPage::default()
        },
        Err(error) => AccountPage {
            verify_again: error.code != "CONFLICT",
            flash: Flash::error(error),
            ..AccountPage::default()
        },
    };
    show(&web, &browser, &user, page).await
}

/// `POST /account/mfa/disable`: `POST /v1/auth/mfa/disable` with a code.
pub async fn mfa_disable(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<CodeForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let body = CodeRequest {
        code: form.code.trim().to_owned(),
    };
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/auth/mfa/disable",
        Some(&body),
    )
    .await;
    after(&web, &browser, &user, answer, || {
        kit::done("/account", "mfa-disabled")
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    /// Days until it expires; empty for never.
    #[serde(default)]
    expires_days: String,
}

/// The lifetime in seconds of a token form's `expires_days` (empty: never).
fn expires_in(days: &str) -> Result<Option<i64>, super::error::WebError> {
    let days = days.trim();
    if days.is_empty() || days == "never" {
        return Ok(None);
    }
    days.parse::<i64>()
        .ok()
        .filter(|d| (1..=3650).contains(d))
        .map(|d| Some(d * 86_400))
        .ok_or_else(|| {
            super::error::WebError::new(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "expiry must be a number of days between 1 and 3650, or never",
            )
        })
}

/// `POST /account/tokens`: `POST /v1/api-tokens`; shows the secret once.
pub async fn token_create(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<TokenForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let answer = match expires_in(&form.expires_days) {
        Ok(expires_in) => {
            let body = CreateToken {
                name: form.name,
                expires_in,
            };
            kit::write(
                &web,
                &browser,
                &user,
                Method::POST,
                "/v1/api-tokens",
                Some(&body),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let page = match shown(answer)? {
        Ok(created) => AccountPage {
            new_token: Some(created),
            ..AccountPage::default()
        },
        Err(error) => AccountPage {
            flash: Flash::error(error),
            ..AccountPage::default()
        },
    };
    show(&web, &browser, &user, page).await
}

/// `POST /account/tokens/{id}/revoke`: `DELETE /v1/api-tokens/{id}`.
pub async fn token_revoke(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let path = format!("/v1/api-tokens/{}", plain(&id)?);
    revoke(&web, &browser, &path, "token-revoked").await
}

/// `POST /account/sessions/{id}/revoke`: `DELETE /v1/users/me/sessions/{id}`.
pub async fn session_revoke(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let path = format!("/v1/users/me/sessions/{}", plain(&id)?);
    revoke(&web, &browser, &path, "session-revoked").await
}

/// `DELETE path` for the signed-in user, then back to the account page with `done`.
async fn revoke(
    web: &WebState,
    browser: &Browser,
    path: &str,
    done: &'static str,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/account");
    let answer = kit::act(web, browser, &user, Method::DELETE, path, None::<&()>).await;
    after(web, browser, &user, answer, || kit::done("/account", done)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_expiry_is_days_or_never() {
        assert_eq!(expires_in("").ok(), Some(None));
        assert_eq!(expires_in("never").ok(), Some(None));
        assert_eq!(expires_in("30").ok(), Some(Some(30 * 86_400)));
        assert!(expires_in("0").is_err());
        assert!(expires_in("x").is_err());
        assert!(expires_in("99999").is_err());
    }
}
