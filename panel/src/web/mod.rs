//! The web panel, served by the same binary as the API: tera pages from `templates/web/`,
//! a stylesheet and a few hand-written ES modules from `templates/web/static/`, all
//! embedded at compile time, plus xterm.js, which `panel/build.rs` fetches with `npm ci`
//! at the versions `web/package-lock.json` pins (so `cargo build` still builds the whole
//! product; npm is its one other tool).
//!
//! Pages never re-implement a rule of the API. What a page shows or does goes through
//! the `/v1` API itself: [`api`] dispatches an in-process request to the API's router
//! with its whole middleware stack (rate limits, audit, authorization), carrying an
//! access token of the browser's session. The browser's JavaScript calls `/v1` directly
//! with short-lived access tokens from `POST /web/token`.
//!
//! Sessions and CSRF (see [`session`] and [`csrf`]):
//! - Signing in on a page starts a normal API session (a refresh-token family, the same
//!   `sessions::start` the API uses). The browser gets an `HttpOnly; SameSite=Lax` cookie
//!   (`Secure` unless the panel is plain HTTP on loopback) holding the session id sealed
//!   with AES-256-GCM under the master key, so it cannot be forged; revoking the session
//!   (logout, password reset, "revoke all sessions") ends the web session too.
//! - CSRF: a double-submit token. A random token lives in its own `HttpOnly` cookie and
//!   is rendered into every form (`csrf_token`) and into `<meta name="csrf-token">` for
//!   `fetch` (`X-CSRF-Token`). Every POST must carry it; a cross-site `Origin` or
//!   `Sec-Fetch-Site` is refused as well. A new token is issued at sign-in.
//!
//! Every response carries a strict Content-Security-Policy (no inline scripts or
//! styles), `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` and
//! `X-Frame-Options: DENY`. Errors render as pages carrying the API's error code.

mod access_pages;
mod account_pages;
mod admin_pages;
mod admin_ssh_pages;
mod alert_pages;
pub mod api;
mod api_docs;
mod assets;
mod auth_pages;
mod billing_admin_pages;
mod billing_answers;
mod billing_pages;
mod credential_pages;
pub mod csrf;
mod deploy_pages;
mod dns_pages;
pub mod error;
mod instance_pages;
mod integration_pages;
mod kit;
mod maintenance_pages;
mod node_cloud_pages;
mod node_pages;
mod org_pages;
mod pages;
mod provision_pages;
mod pterodactyl_pages;
mod rule_pages;
pub mod session;
mod shell_pages;
mod ssh_pages;
pub mod templates;
#[cfg(test)]
mod typed_answers;
mod verify_pages;
mod view;
mod workload_pages;

use axum::Router;
use axum::extract::{FromRef, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::state::AppState;

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       connect-src 'self' ws: wss:; img-src 'self' data:; \
                       frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// What web handlers share: the app and the API router pages call into.
#[derive(Clone)]
pub struct WebState {
    pub app: AppState,
    /// The `/v1` API with its middleware (see [`api`]).
    pub api: Router,
}

impl FromRef<WebState> for AppState {
    fn from_ref(web: &WebState) -> Self {
        web.app.clone()
    }
}

/// The web pages, static assets and `/web/*` endpoints. `api` is the `/v1` router the
/// pages call into.
pub fn router(app: AppState, api: Router) -> Router {
    let metrics = middleware::from_fn_with_state(app.clone(), crate::metrics::middleware);
    let web = WebState { app, api };
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/nodes", get(pages::nodes))
        .route("/instances", get(pages::instances))
        .route("/instances/{id}", get(pages::instance))
        .route(
            "/setup",
            get(auth_pages::setup_form).post(auth_pages::setup),
        )
        .route(
            "/login",
            get(auth_pages::login_form).post(auth_pages::login),
        )
        .route("/login/mfa", post(auth_pages::mfa))
        .route("/login/github", post(auth_pages::github))
        .route("/logout", post(auth_pages::logout))
        .route(
            "/forgot-password",
            get(auth_pages::forgot_form).post(auth_pages::forgot),
        )
        .route(
            "/reset-password",
            get(auth_pages::reset_form).post(auth_pages::reset),
        )
        .route(
            "/verify-email",
            get(verify_pages::verify_form).post(verify_pages::verify),
        )
        .route("/verify-email/resend", post(verify_pages::resend))
        .route("/web/token", post(auth_pages::token))
        .route("/static/{file}", get(assets::serve))
        .route("/docs/api", get(api_docs::page))
        .route("/docs/api/redoc.js", get(api_docs::script))
        .route("/docs/api/init.js", get(api_docs::init))
        .merge(instance_pages::router())
        .merge(account_pages::router())
        .merge(rule_pages::router())
        .merge(alert_pages::router())
        .merge(maintenance_pages::router())
        .merge(integration_pages::router())
        .merge(credential_pages::router())
        .merge(provision_pages::router())
        .merge(dns_pages::router())
        .merge(deploy_pages::router())
        .merge(billing_pages::router())
        .merge(billing_admin_pages::router())
        .merge(access_pages::router())
        .merge(pterodactyl_pages::router())
        .layer(middleware::from_fn(security_headers))
        .layer(metrics)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(web)
}

/// Adds the security headers to every web response.
async fn security_headers(req: Request, next: Next) -> Response {
    let csp = if req.uri().path().starts_with("/docs/api") {
        api_docs::CSP
    } else {
        CSP
    };
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: browsers then send `Origin: null`, which the CSRF check uses.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether `path` belongs to the web pages (not the API): unknown paths outside `/v1`
/// asked for by a browser get an HTML 404.
#[must_use]
pub fn wants_html(path: &str, accept: Option<&str>) -> bool {
    !path.starts_with("/v1/") && path != "/v1" && accept.is_some_and(|a| a.contains("text/html"))
}
