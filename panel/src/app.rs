//! The route table of the whole API and the middleware stack around it.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;

use crate::error::AppError;
use crate::routes::Routes;
use crate::state::AppState;
use crate::{
    admin, api_tokens, audit, auth, backups, files, git, health, instances, nodes, orgs, ratelimit,
    schedules, settings, sftp, support, tunnel, uploads, users, webhooks, workloads,
};

/// Every endpoint of the panel, area by area.
#[must_use]
pub fn routes() -> Routes {
    Routes::new("root")
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(api_tokens::router())
        .merge(orgs::router())
        .merge(audit::router())
        .merge(workloads::router())
        .merge(nodes::router())
        .merge(tunnel::router())
        .merge(instances::router())
        .merge(instances::ops::router())
        .merge(files::router())
        .merge(uploads::router())
        .merge(backups::router())
        .merge(webhooks::router())
        .merge(crate::integrations::router())
        .merge(crate::credentials::router())
        .merge(crate::dns::router())
        .merge(crate::pterodactyl::router())
        .merge(crate::billing::router())
        .merge(crate::billing::costs::router())
        .merge(crate::planner::router())
        .merge(crate::provision::router())
        .merge(schedules::router())
        .merge(crate::migrations::router())
        .merge(crate::ssh::router())
        .merge(crate::ssh::shell::router())
        .merge(git::router())
        .merge(settings::router())
        .merge(support::router())
        .merge(admin::router())
        .merge(crate::system_backup::router())
        .merge(sftp::router())
        .merge(crate::events::stream::router())
        .merge(crate::alerts::router())
        .merge(crate::bootstrap::router())
        .merge(crate::deploy::router())
}

/// The OpenAPI document of [`routes`], pretty-printed as `docs/openapi.json` holds it.
#[must_use]
pub fn openapi_json() -> String {
    let mut text = serde_json::to_string_pretty(&routes().openapi()).unwrap_or_default();
    text.push('\n');
    text
}

async fn not_found(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if crate::web::wants_html(uri.path(), accept) {
        return crate::web::error::WebError::not_found().into_response();
    }
    AppError::NotFound("no such route".into()).into_response()
}

async fn method_not_allowed() -> axum::response::Response {
    use axum::response::IntoResponse;
    let body =
        shardlyn_proto::ErrorBody::new("METHOD_NOT_ALLOWED", "method not allowed on this route");
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Everything the panel serves: the API and, next to it, the web pages (which call
/// into their own copy of the API router, see `web::api`).
pub fn router(state: AppState) -> Router {
    let web = crate::web::router(state.clone(), api(state.clone()));
    api(state.clone())
        .merge(web)
        .layer(middleware::from_fn_with_state(state, draining))
        .layer(middleware::from_fn(crate::unread_body::middleware))
}

/// While the process drains before it stops, every new request (health probes too, so
/// the load balancer takes it out) is answered `503 DRAINING` with `Retry-After: 1`.
async fn draining(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !state.draining.load(std::sync::atomic::Ordering::Acquire) {
        return next.run(req).await;
    }
    let mut response = crate::error::AppError::coded(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "DRAINING",
        "this panel replica is restarting: retry (another replica answers)",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

/// The API with its middleware: metrics (outermost), rate limits, audit, body limit.
pub fn api(state: AppState) -> Router {
    routes()
        .into_router(&state)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            audit::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::client_ip::middleware,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
