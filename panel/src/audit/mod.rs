//! The audit log: every mutating request records actor, action, target, IP, result and
//! time. A middleware writes the row after the handler answered; extractors and handlers
//! fill in the actor and, where they know better, the action and target. Successful
//! changes are also published on the event bus (`audit`, for platform administrators).
//!
//! The stored path never holds a secret taken from the URL: a route parameter that is a
//! credential (`/v1/invites/{token}/accept`) is stored as its placeholder, and in a path
//! no route matched, a segment that looks like a token is replaced by `{redacted}`.

mod routes;
pub mod store;

use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

pub use routes::router;

use crate::auth::extract::peer_ip;
use crate::state::AppState;

#[derive(Debug, Default, Clone)]
struct AuditInfo {
    actor_id: Option<String>,
    actor_email: Option<String>,
    action: Option<String>,
    target: Option<String>,
}

/// Per-request slot the middleware reads after the handler ran.
#[derive(Debug, Clone, Default)]
pub struct AuditSlot(Arc<Mutex<AuditInfo>>);

impl AuditSlot {
    /// Records who is acting.
    pub fn set_actor(&self, id: &str, email: &str) {
        if let Ok(mut info) = self.0.lock() {
            info.actor_id = Some(id.to_string());
            info.actor_email = Some(email.to_string());
        }
    }

    /// Names the action (e.g. `user.login`) and its target id.
    pub fn set_action(&self, action: &str, target: Option<&str>) {
        if let Ok(mut info) = self.0.lock() {
            info.action = Some(action.to_string());
            info.target = target.map(str::to_string);
        }
    }

    fn take(&self) -> AuditInfo {
        self.0.lock().map(|i| i.clone()).unwrap_or_default()
    }
}

fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Route parameters that carry a credential.
const SECRET_PARAMS: &[&str] = &["{token}", "{code}", "{secret}"];

/// A segment of an unmatched path that looks like a token: 32 or more hex digits, or a
/// Shardlyn token prefix.
fn looks_secret(segment: &str) -> bool {
    (segment.len() >= 32 && segment.bytes().all(|b| b.is_ascii_hexdigit()))
        || segment.starts_with("shardlyn_")
}

/// The request path as the audit log stores it: with the route's placeholder in place of
/// every secret parameter (`route` is the matched route, if any).
fn stored_path(route: Option<&str>, path: &str) -> String {
    let Some(route) = route else {
        return path
            .split('/')
            .map(|s| if looks_secret(s) { "{redacted}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
    };
    if !SECRET_PARAMS.iter().any(|p| route.contains(p)) {
        return path.to_string();
    }
    let template: Vec<&str> = route.split('/').collect();
    let actual: Vec<&str> = path.split('/').collect();
    if template.len() != actual.len() {
        return route.to_string();
    }
    template
        .iter()
        .zip(actual)
        .map(|(t, a)| if SECRET_PARAMS.contains(t) { *t } else { a })
        .collect::<Vec<_>>()
        .join("/")
}

/// Records mutating requests once they have been answered.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if !is_mutating(&method) {
        return next.run(req).await;
    }
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let matched = req.extensions().get::<MatchedPath>();
    let path = stored_path(matched.map(MatchedPath::as_str), req.uri().path());
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let ip = peer_ip(req.extensions());
    let response = next.run(req).await;
    let info = slot.take();
    let status = response.status();
    let entry = store::NewEntry {
        actor_id: info.actor_id,
        actor_email: info.actor_email,
        action: info.action.unwrap_or_else(|| format!("{method} {route}")),
        method: method.to_string(),
        path,
        target: info.target,
        ip,
        status: i64::from(status.as_u16()),
        result: if status.is_success() || status.is_redirection() {
            "success"
        } else {
            "failure"
        },
    };
    match store::insert(&state.db.pool, &entry).await {
        Ok(stored) => published(&state, stored).await,
        Err(err) => tracing::error!(error = %err, "writing audit log entry"),
    }
    response
}

/// Publishes a recorded change on the event bus for platform administrators. Refused
/// attempts stay in the log only: anyone can make them, and a flood of them must not
/// push what happened out of the bus's replay window.
pub(crate) async fn published(state: &AppState, entry: store::Entry) {
    if entry.result != "success" {
        return;
    }
    state
        .events
        .publish(crate::events::Event::now(
            "",
            crate::events::EventData::Audit { entry },
        ))
        .await;
}

#[cfg(test)]
mod tests {
    use super::stored_path;

    #[test]
    fn secret_route_parameters_are_stored_as_placeholders() {
        let token = "ab".repeat(32);
        assert_eq!(
            stored_path(
                Some("/v1/invites/{token}/accept"),
                &format!("/v1/invites/{token}/accept")
            ),
            "/v1/invites/{token}/accept"
        );
        assert_eq!(
            stored_path(
                Some("/v1/organizations/{orgId}"),
                "/v1/organizations/0193-x"
            ),
            "/v1/organizations/0193-x"
        );
        assert_eq!(
            stored_path(None, &format!("/v1/invites/{token}/acept")),
            "/v1/invites/{redacted}/acept"
        );
        assert_eq!(
            stored_path(None, "/v1/nope/0193e0c4-6f1e-7b3a-9d8e-1a2b3c4d5e6f"),
            "/v1/nope/0193e0c4-6f1e-7b3a-9d8e-1a2b3c4d5e6f"
        );
    }
}
