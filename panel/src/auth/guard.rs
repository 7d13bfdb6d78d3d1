//! The access class of a route, enforced by the router: every endpoint runs behind the
//! guard of the class the route table declares for it, so a handler that forgot its
//! credential extractor still cannot be reached without the credential. The guard runs
//! the same extractor the handler takes (`CurrentUser`, `SessionUser`, `AdminUser`,
//! `SessionAdmin`, `AgentNode`), which keeps what it proved in the request's extensions:
//! the handler's extraction then costs nothing.

use axum::extract::{FromRequestParts, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use super::extract::{AdminUser, AgentNode, CurrentUser, SessionAdmin, SessionUser};
use crate::error::AppError;
use crate::routes::Access;
use crate::state::AppState;

/// `handler` behind the guard of `access`.
pub fn layer(
    handler: MethodRouter<AppState>,
    access: Access,
    state: &AppState,
) -> MethodRouter<AppState> {
    match access {
        // Consoles prove who they are after the upgrade; their handler checks.
        Access::Public | Access::Socket => handler,
        _ => handler.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |axum::extract::State(state): axum::extract::State<AppState>,
                  req: Request,
                  next: Next| guard(state, access, req, next),
        )),
    }
}

async fn guard(state: AppState, access: Access, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    if let Err(refused) = check(&state, access, &mut parts).await {
        return refused.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

async fn check(
    state: &AppState,
    access: Access,
    parts: &mut axum::http::request::Parts,
) -> Result<(), AppError> {
    match access {
        Access::Public | Access::Socket => Ok(()),
        Access::User => CurrentUser::from_request_parts(parts, state)
            .await
            .map(drop),
        Access::Session => SessionUser::from_request_parts(parts, state)
            .await
            .map(drop),
        Access::Admin => AdminUser::from_request_parts(parts, state).await.map(drop),
        Access::Stream => crate::events::stream::Listener::from_request_parts(parts, state)
            .await
            .map(drop),
        Access::SessionAdmin => SessionAdmin::from_request_parts(parts, state)
            .await
            .map(drop),
        Access::Agent => AgentNode::from_request_parts(parts, state).await.map(drop),
    }
}
