//! The audit log: every mutating request records actor, action, target, IP, result and
//! time. A middleware writes the row after the handler answered; extractors and handlers
//! fill in the actor and, where they know better, the action and target.

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

/// Records mutating requests once they have been answered.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if !is_mutating(&method) {
        return next.run(req).await;
    }
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
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
    if let Err(err) = store::insert(&state.db.pool, &entry).await {
        tracing::error!(error = %err, "writing audit log entry");
    }
    response
}
