//! Asking the panel about a login: [`Gate::ask`] publishes an
//! [`AuthRequest`] for the `/v1/events` stream and waits for [`answer`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use bytes::Bytes;
use http::StatusCode;
use shardlyn_proto::sftp::{AuthAnswer, AuthRequest};
use tokio::sync::{broadcast, oneshot};

use crate::api::AgentState;
use crate::error::{ApiError, ApiResult};

/// How long the panel has to answer a login.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Logins waiting for an answer at once; more are refused.
const MAX_PENDING: usize = 256;

/// The agent's side of SFTP login checks. Cheap to clone; one per agent process.
#[derive(Clone)]
pub struct Gate(Arc<Inner>);

struct Inner {
    requests: broadcast::Sender<AuthRequest>,
    pending: Mutex<HashMap<String, oneshot::Sender<AuthAnswer>>>,
    timeout: Duration,
}

impl Default for Gate {
    fn default() -> Self {
        Self::with_timeout(ANSWER_TIMEOUT)
    }
}

impl Gate {
    /// A gate waiting `timeout` for each answer.
    #[must_use]
    pub fn with_timeout(timeout: Duration) -> Self {
        Self(Arc::new(Inner {
            requests: broadcast::channel(64).0,
            pending: Mutex::default(),
            timeout,
        }))
    }

    /// The login requests, for the panel's event stream.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<AuthRequest> {
        self.0.requests.subscribe()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<AuthAnswer>>> {
        self.0
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the panel about a login (`request.id` is filled in here) and waits for its
    /// answer; a refusal when no panel listens, when too many logins wait, or on timeout.
    pub async fn ask(&self, mut request: AuthRequest) -> AuthAnswer {
        request.id = hex::encode(rand::random::<[u8; 16]>());
        let id = request.id.clone();
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.len() >= MAX_PENDING {
                return AuthAnswer::deny("too many logins waiting for the panel");
            }
            pending.insert(id.clone(), tx);
        }
        if self.0.requests.send(request).is_err() {
            self.pending().remove(&id);
            return AuthAnswer::deny("the panel is not connected");
        }
        let answer = tokio::time::timeout(self.0.timeout, rx).await;
        self.pending().remove(&id);
        match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => AuthAnswer::deny("the login check was dropped"),
            Err(_) => AuthAnswer::deny("the panel did not answer in time"),
        }
    }

    /// Delivers the panel's answer; `false` when nobody waits for `id` (any more).
    #[must_use]
    pub fn deliver(&self, id: &str, answer: AuthAnswer) -> bool {
        self.pending()
            .remove(id)
            .is_some_and(|tx| tx.send(answer).is_ok())
    }
}

/// `POST /v1/sftp/auth/{id}`: the panel's answer to a login request. 204, 404 when the
/// request is unknown or timed out, 400 for an unreadable body.
pub async fn answer(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let answer: AuthAnswer = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid answer: {e}")))?;
    if answer.allow && answer.instance.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "an allowing answer names the instance",
        ));
    }
    if state.sftp.deliver(&id, answer) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no login waits for this answer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthRequest {
        AuthRequest {
            id: String::new(),
            username: "a@b.c.01234567".into(),
            password: Some("pw".into()),
            public_key: None,
            certificate: None,
            remote_ip: "127.0.0.1".into(),
        }
    }

    #[tokio::test]
    async fn no_panel_means_no_entry() {
        let gate = Gate::default();
        let a = gate.ask(request()).await;
        assert!(!a.allow);
        assert_eq!(a.reason.as_deref(), Some("the panel is not connected"));
    }

    #[tokio::test]
    async fn an_answer_reaches_the_login_and_a_late_one_is_refused() {
        let gate = Gate::with_timeout(Duration::from_millis(300));
        let mut rx = gate.subscribe();
        let g = gate.clone();
        let panel = tokio::spawn(async move {
            let r = rx.recv().await.unwrap();
            assert_eq!(r.id.len(), 32);
            let ok = g.deliver(
                &r.id,
                AuthAnswer {
                    allow: true,
                    instance: Some("i".into()),
                    read: true,
                    ..AuthAnswer::default()
                },
            );
            assert!(ok);
            let r = rx.recv().await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(!g.deliver(&r.id, AuthAnswer::default()));
        });
        let a = gate.ask(request()).await;
        assert!(a.allow && a.read && !a.write);
        let late = gate.ask(request()).await;
        assert!(!late.allow);
        assert_eq!(
            late.reason.as_deref(),
            Some("the panel did not answer in time")
        );
        panel.await.unwrap();
    }
}
