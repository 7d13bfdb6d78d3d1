//! Signing in and out on pages: first run, login (with the MFA step and GitHub), forgot
//! and reset password, logout, and `POST /web/token` for the pages' JavaScript. Each
//! posts to the matching `/v1/auth/*` endpoint; what they add is the session cookie.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::WebState;
use super::csrf::{self, CsrfForm};
use super::error::{WebError, WebResult};
use super::session::{self, Browser};
use super::view::{csrf_of, html, layout, needs_bootstrap, redirect, safe_next};
use crate::auth::bootstrap::BootstrapResponse;
use crate::auth::jwt::ACCESS_TTL_SECS;
use crate::auth::login::LoginResponse;
use crate::auth::sessions::TokenPair;
use crate::error::AppError;
use crate::types::Message;

/// A form's failure shown on the form itself: a client error re-renders the form with
/// its message; anything else is an error page.
pub(super) fn shown<T>(result: WebResult<T>) -> WebResult<Result<T, WebError>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.status.is_client_error() => Ok(Err(e)),
        Err(e) => Err(e),
    }
}

/// After the API answered a sign-in with tokens: the session cookie, a new CSRF token,
/// and on to `next`. An answer asking for MFA shows the code form instead.
fn signed_in(
    web: &WebState,
    browser: &Browser,
    answer: LoginResponse,
    next: &str,
) -> WebResult<Response> {
    let tokens = match answer {
        LoginResponse::Tokens(tokens) => tokens,
        LoginResponse::Mfa(mfa) => {
            let page = MfaPage {
                challenge_token: mfa.challenge_token,
                error: None,
                next: safe_next(next).to_owned(),
            };
            return mfa_page(web, browser, StatusCode::OK, &page);
        }
    };
    let session = session::start_cookie(&web.app, &tokens.access_token)?;
    let (_, csrf) = csrf::fresh(&web.app)?;
    redirect(safe_next(next), [session].into_iter().chain(csrf))
}

// --- first run ---------------------------------------------------------------------

#[derive(Debug, Default, Serialize)]
struct SetupPage {
    email: String,
    name: String,
    error: Option<WebError>,
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn setup_page(
    web: &WebState,
    browser: &Browser,
    status: StatusCode,
    page: &SetupPage,
) -> WebResult<Response> {
    signed_out_page(
        web,
        browser,
        status,
        "setup.html.tera",
        "Set up Shardlyn",
        page,
    )
}

/// `GET /setup`: the first-admin form, while no user exists.
pub async fn setup_form(State(web): State<WebState>, browser: Browser) -> WebResult<Response> {
    if !needs_bootstrap(&web, &browser).await? {
        return redirect("/login", []);
    }
    setup_page(&web, &browser, StatusCode::OK, &SetupPage::default())
}

/// `POST /setup`: `POST /v1/auth/bootstrap`, then signed in.
pub async fn setup(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<SetupForm>,
) -> WebResult<Response> {
    let name = form.name.trim();
    let body = json!({
        "email": form.email,
        "password": form.password,
        "name": (!name.is_empty()).then_some(name),
    });
    let answer = web
        .fetch::<BootstrapResponse, _>(
            &browser,
            Method::POST,
            "/v1/auth/bootstrap",
            None,
            Some(&body),
        )
        .await;
    match shown(answer)? {
        Ok(answer) => signed_in(&web, &browser, LoginResponse::Tokens(answer.tokens), "/"),
        Err(error) => {
            let page = SetupPage {
                email: form.email,
                name: form.name,
                error: Some(error.clone()),
            };
            setup_page(&web, &browser, error.status, &page)
        }
    }
}

// --- login -------------------------------------------------------------------------

#[derive(Debug, Default, Serialize)]
struct LoginPage {
    email: String,
    error: Option<WebError>,
    notice: Option<&'static str>,
    github: bool,
    next: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    reset: Option<String>,
    signed_out: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

fn login_page(
    web: &WebState,
    browser: &Browser,
    status: StatusCode,
    mut page: LoginPage,
) -> WebResult<Response> {
    page.github = web.app.github.is_some();
    signed_out_page(web, browser, status, "login.html.tera", "Sign in", &page)
}

/// A page of the signed-out flows: `template` in the plain layout titled `title`,
/// with a fresh CSRF token for its form.
pub(super) fn signed_out_page<P: Serialize>(
    web: &WebState,
    browser: &Browser,
    status: StatusCode,
    template: &str,
    title: &str,
    page: &P,
) -> WebResult<Response> {
    let (token, cookies) = csrf_of(web, browser)?;
    html(
        status,
        template,
        &layout(title, "", &token, None),
        page,
        cookies,
    )
}

/// `GET /login`.
pub async fn login_form(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> WebResult<Response> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let next = safe_next(q.next.as_deref().unwrap_or("/")).to_owned();
    if session::current(&web.app, &browser).await?.is_some() {
        return redirect(&next, []);
    }
    if needs_bootstrap(&web, &browser).await? {
        return redirect("/setup", []);
    }
    let notice = if q.reset.is_some() {
        Some("Your password was changed. Sign in with the new one.")
    } else if q.signed_out.is_some() {
        Some("You are signed out.")
    } else {
        None
    };
    let page = LoginPage {
        notice,
        next,
        ..LoginPage::default()
    };
    login_page(&web, &browser, StatusCode::OK, page)
}

/// `POST /login`: `POST /v1/auth/login`.
pub async fn login(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<LoginForm>,
) -> WebResult<Response> {
    let body = json!({"email": form.email, "password": form.password});
    let answer = web
        .fetch::<LoginResponse, _>(&browser, Method::POST, "/v1/auth/login", None, Some(&body))
        .await;
    match shown(answer)? {
        Ok(answer) => signed_in(&web, &browser, answer, &form.next),
        Err(error) => {
            let status = error.status;
            let page = LoginPage {
                email: form.email,
                error: Some(error),
                next: safe_next(&form.next).to_owned(),
                ..LoginPage::default()
            };
            login_page(&web, &browser, status, page)
        }
    }
}

// --- MFA and GitHub ----------------------------------------------------------------

#[derive(Debug, Serialize)]
struct MfaPage {
    challenge_token: String,
    error: Option<WebError>,
    next: String,
}

#[derive(Debug, Deserialize)]
pub struct MfaForm {
    #[serde(default)]
    challenge_token: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

fn mfa_page(
    web: &WebState,
    browser: &Browser,
    status: StatusCode,
    page: &MfaPage,
) -> WebResult<Response> {
    signed_out_page(
        web,
        browser,
        status,
        "mfa.html.tera",
        "Two-factor authentication",
        page,
    )
}

/// `POST /login/mfa`: `POST /v1/auth/mfa/challenge`.
pub async fn mfa(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<MfaForm>,
) -> WebResult<Response> {
    let body = json!({"challenge_token": form.challenge_token, "code": form.code});
    let answer = web
        .fetch::<TokenPair, _>(
            &browser,
            Method::POST,
            "/v1/auth/mfa/challenge",
            None,
            Some(&body),
        )
        .await;
    match shown(answer)? {
        Ok(tokens) => signed_in(&web, &browser, LoginResponse::Tokens(tokens), &form.next),
        Err(error) => {
            let status = error.status;
            let page = MfaPage {
                challenge_token: form.challenge_token,
                error: Some(error),
                next: safe_next(&form.next).to_owned(),
            };
            mfa_page(&web, &browser, status, &page)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct GithubForm {
    #[serde(default)]
    code: String,
}

/// `POST /login/github`: the code GitHub's callback left in the URL fragment (posted by
/// `app.js`) for `POST /v1/auth/github/exchange`.
pub async fn github(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<GithubForm>,
) -> WebResult<Response> {
    let body = json!({"code": form.code});
    let answer = web
        .fetch::<LoginResponse, _>(
            &browser,
            Method::POST,
            "/v1/auth/github/exchange",
            None,
            Some(&body),
        )
        .await;
    match shown(answer)? {
        Ok(answer) => signed_in(&web, &browser, answer, "/"),
        Err(error) => {
            let status = error.status;
            let page = LoginPage {
                error: Some(error),
                next: "/".into(),
                ..LoginPage::default()
            };
            login_page(&web, &browser, status, page)
        }
    }
}

// --- logout and tokens -------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /logout`: `POST /v1/auth/logout` (revokes the session), and the cookie goes.
pub async fn logout(
    State(web): State<WebState>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    if let Some(user) = session::current(&web.app, &browser).await? {
        web.fetch::<serde::de::IgnoredAny, ()>(
            &browser,
            Method::POST,
            "/v1/auth/logout",
            Some(&user.access),
            None,
        )
        .await?;
    }
    redirect("/login?signed_out=1", [session::clear_cookie(&web.app)?])
}

/// The answer of `POST /web/token`: the access part of the API's token pair.
#[derive(Debug, Serialize)]
struct AccessToken {
    access_token: String,
    expires_in: i64,
    token_type: &'static str,
}

/// `POST /web/token` (header `X-CSRF-Token`): a 15-minute access token of the browser's
/// session, for the page's JavaScript to call the API. Answers in the API's JSON shapes.
pub async fn token(State(web): State<WebState>, browser: Browser) -> Response {
    if csrf::check(&browser, browser.header(csrf::HEADER)).is_err() {
        return AppError::coded(
            StatusCode::FORBIDDEN,
            "CSRF_FAILED",
            "missing or invalid X-CSRF-Token header",
        )
        .into_response();
    }
    let user = match session::current(&web.app, &browser).await {
        Ok(Some(user)) => user,
        Ok(None) => return AppError::unauthorized("not signed in").into_response(),
        Err(e) => return e.into_response(),
    };
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(AccessToken {
            access_token: user.access,
            expires_in: ACCESS_TTL_SECS,
            token_type: "Bearer",
        }),
    )
        .into_response()
}

// --- password reset ----------------------------------------------------------------

#[derive(Debug, Default, Serialize)]
struct ForgotPage {
    email: String,
    notice: Option<String>,
    error: Option<WebError>,
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

fn forgot_page(
    web: &WebState,
    browser: &Browser,
    status: StatusCode,
    page: &ForgotPage,
) -> WebResult<Response> {
    signed_out_page(
        web,
        browser,
        status,
        "forgot.html.tera",
        "Forgot password",
        page,
    )
}

/// `GET /forgot-password`.
pub async fn forgot_form(State(web): State<WebState>, browser: Browser) -> WebResult<Response> {
    forgot_page(&web, &browser, StatusCode::OK, &ForgotPage::default())
}

/// `POST /forgot-password`: `POST /v1/auth/forgot-password`.
pub async fn forgot(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<ForgotForm>,
) -> WebResult<Response> {
    let body = json!({"email": form.email});
    let answer = web
        .fetch::<Message, _>(
            &browser,
            Method::POST,
            "/v1/auth/forgot-password",
            None,
            Some(&body),
        )
        .await;
    let page = match shown(answer)? {
        Ok(answer) => ForgotPage {
            notice: Some(answer.message.into_owned()),
            ..ForgotPage::default()
        },
        Err(error) => ForgotPage {
            email: form.email,
            error: Some(error),
            notice: None,
        },
    };
    let status = page.error.as_ref().map_or(StatusCode::OK, |e| e.status);
    forgot_page(&web, &browser, status, &page)
}

#[derive(Debug, Default, Serialize)]
struct ResetPage {
    token: String,
    error: Option<WebError>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

fn reset_page(
    web: &WebState,
    browser: &Browser,
    status: StatusCode,
    page: &ResetPage,
) -> WebResult<Response> {
    signed_out_page(
        web,
        browser,
        status,
        "reset.html.tera",
        "Choose a new password",
        page,
    )
}

/// `GET /reset-password?token=`: the link of the reset mail.
pub async fn reset_form(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<ResetQuery>, QueryRejection>,
) -> WebResult<Response> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let page = ResetPage {
        token: q.token.unwrap_or_default(),
        error: None,
    };
    reset_page(&web, &browser, StatusCode::OK, &page)
}

/// `POST /reset-password`: `POST /v1/auth/reset-password`.
pub async fn reset(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<ResetForm>,
) -> WebResult<Response> {
    let body = crate::auth::password_reset::ResetRequest {
        token: form.token.clone(),
        new_password: form.new_password,
    };
    let answer = web
        .fetch::<Message, _>(
            &browser,
            Method::POST,
            "/v1/auth/reset-password",
            None,
            Some(&body),
        )
        .await;
    match shown(answer)? {
        Ok(_) => redirect("/login?reset=1", []),
        Err(error) => {
            let status = error.status;
            let page = ResetPage {
                token: form.token,
                error: Some(error),
            };
            reset_page(&web, &browser, status, &page)
        }
    }
}
