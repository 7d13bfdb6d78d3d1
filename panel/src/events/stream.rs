//! `GET /v1/events`: the bus as Server-Sent Events, for the caller's organizations and
//! filtered by what the caller may read there (an instance's state needs
//! `instances.read`, a node's status `nodes.read`).
//!
//! API clients send their bearer token; browsers (an `EventSource` sends no headers) their
//! session cookie. Every event carries its id; a client that reconnects with
//! `Last-Event-ID` (browsers do it by themselves) gets what it missed from the
//! cluster-wide window ([`super::REPLAY_WINDOW`] events), or a `resync` event when that
//! window has passed, after which it should reload what it shows. A revocation
//! (logout, suspension, password change, token deletion) ends the revoked caller's
//! streams; a stream on an access token ends when the token expires.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aide::OperationInput;
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as ApiResponse, SchemaObject};
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::{Event, EventId, Logged, Replay};
use crate::auth::extract::{API_TOKEN_PREFIX, CurrentUser, authenticate_token, bearer};
use crate::error::{AppError, AppQuery, AppResult};
use crate::orgs::permissions::{Membership, load_membership};
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::web::session::{self, Browser};

/// How long a stream trusts what it learned of the caller's memberships.
const MEMBERSHIP_TTL: Duration = Duration::from_secs(10);
/// How often the caller's credential is checked again even without a revocation
/// anywhere (an API token's own expiry).
const RECHECK: Duration = Duration::from_secs(60);
/// Comment lines that keep proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The events routes.
pub fn router() -> Routes {
    Routes::new("events")
        .get(
            "/v1/events",
            Access::Stream,
            "Live events of the caller's organizations (Server-Sent Events)",
            events,
        )
        .errors(&[(400, "`Last-Event-ID` is not an event id")])
}

/// The caller of a stream and how they proved it (proved again after a revocation).
pub struct Listener {
    current: CurrentUser,
    proof: Proof,
}

enum Proof {
    Token(String),
    Cookie(Browser),
}

impl Listener {
    /// The caller, if the proof still holds.
    async fn recheck(&self, state: &AppState) -> AppResult<Option<CurrentUser>> {
        match &self.proof {
            Proof::Token(token) => match authenticate_token(state, token).await {
                Ok(current) => Ok(Some(current)),
                Err(AppError::Unauthorized(_)) => Ok(None),
                Err(other) => Err(other),
            },
            Proof::Cookie(browser) => session::current(state, browser)
                .await
                .map(|web| web.map(|w| w.current))
                .map_err(|_| AppError::Unavailable("checking the session failed".into())),
        }
    }

    /// When the credential itself ends (an access token's expiry), in unix ms.
    fn expires_at(&self, state: &AppState) -> Option<i64> {
        match &self.proof {
            Proof::Token(token) if !token.starts_with(API_TOKEN_PREFIX) => state
                .jwt
                .verify(token)
                .ok()
                .map(|c| c.exp.saturating_mul(1000)),
            _ => None,
        }
    }
}

impl FromRequestParts<AppState> for Listener {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            let current = CurrentUser::from_request_parts(parts, state).await?;
            let token = bearer(parts)?.to_owned();
            return Ok(Self {
                current,
                proof: Proof::Token(token),
            });
        }
        let browser = Browser::from_parts(parts);
        let web = session::current(state, &browser)
            .await
            .map_err(|_| AppError::Unavailable("checking the session failed".into()))?
            .ok_or_else(|| AppError::unauthorized("missing bearer token or session cookie"))?;
        Ok(Self {
            current: web.current,
            proof: Proof::Cookie(browser),
        })
    }
}

impl OperationInput for Listener {
    fn operation_input(_: &mut GenContext, op: &mut Operation) {
        crate::openapi::mark_credential(op, "stream");
    }
}

/// Where to resume.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The id of the last event seen, for clients that cannot send the `Last-Event-ID`
    /// header (the header wins when both are sent).
    #[serde(default)]
    pub last_event_id: Option<String>,
}

/// The `resync` event's data: what was missed cannot be replayed.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Resync {
    pub reason: &'static str,
}

/// The stream: `event: <type>`, `id: <event id>`, `data: <Event as JSON>`.
pub struct EventStream(Response);

impl IntoResponse for EventStream {
    fn into_response(self) -> Response {
        self.0
    }
}

impl aide::OperationOutput for EventStream {
    type Inner = Event;

    fn operation_response(ctx: &mut GenContext, _: &mut Operation) -> Option<ApiResponse> {
        let schema = ctx.schema.subschema_for::<Event>();
        Some(ApiResponse {
            description: "`text/event-stream`: one SSE event per bus event, named by its \
                          `type` (`instance_state`, `node_status`), its `id` to resume from, \
                          its `data` the event as JSON; `resync` (no id) when events were \
                          missed that cannot be replayed."
                .into(),
            content: IndexMap::from_iter([(
                "text/event-stream".to_owned(),
                MediaType {
                    schema: Some(SchemaObject {
                        json_schema: schema,
                        example: None,
                        external_docs: None,
                    }),
                    ..MediaType::default()
                },
            )]),
            ..ApiResponse::default()
        })
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, ApiResponse)> {
        Self::operation_response(ctx, op)
            .map(|r| vec![(Some(200), r)])
            .unwrap_or_default()
    }
}

/// `GET /v1/events`.
pub async fn events(
    State(state): State<AppState>,
    listener: Listener,
    headers: HeaderMap,
    AppQuery(query): AppQuery<EventsQuery>,
) -> AppResult<EventStream> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id);
    let after = match last.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(text.parse::<EventId>().map_err(|()| {
            AppError::Validation("Last-Event-ID must be an event id such as 1700000000000-0".into())
        })?),
    };
    // Subscribe before reading the replay, so nothing falls between the two.
    let live = state.events.subscribe();
    let replay = match after {
        None => Replay::Events(Vec::new()),
        Some(id) => state
            .events
            .replay(id)
            .await
            .map_err(|e| AppError::Unavailable(format!("reading missed events: {e}")))?,
    };
    let (tx, rx) = mpsc::channel::<SseEvent>(256);
    tokio::spawn(follow(state, listener, replay, live, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    let sse = Sse::new(body).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    let mut response = sse.into_response();
    // Proxies such as nginx buffer responses unless told not to.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(EventStream(response))
}

/// What the caller may hear, learned lazily per organization.
struct Audience {
    user: CurrentUser,
    memberships: HashMap<String, Option<Membership>>,
    /// Whether the caller is a platform administrator, as last read.
    admin: Option<bool>,
    learned_at: tokio::time::Instant,
}

impl Audience {
    async fn hears(&mut self, state: &AppState, event: &Event) -> bool {
        if event.data.is_internal() {
            return false;
        }
        if self.learned_at.elapsed() > MEMBERSHIP_TTL {
            self.memberships.clear();
            self.admin = None;
            self.learned_at = tokio::time::Instant::now();
        }
        if event.data.is_platform() {
            return self.is_admin(state).await;
        }
        let org = &event.organization_id;
        if !self.memberships.contains_key(org) {
            let found = match load_membership(state, org, &self.user.user.id).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "loading a membership for an event stream");
                    None
                }
            };
            self.memberships.insert(org.clone(), found);
        }
        let Some(Some(m)) = self.memberships.get(org) else {
            return false;
        };
        // An organization that requires MFA shows nothing to members without it.
        if m.require_mfa && !self.user.user.mfa_enabled {
            return false;
        }
        m.can(event.data.permission())
    }

    /// Whether the caller is a platform administrator now (read again after
    /// [`MEMBERSHIP_TTL`], so a demotion takes effect).
    async fn is_admin(&mut self, state: &AppState) -> bool {
        if let Some(admin) = self.admin {
            return admin;
        }
        let admin = match crate::users::store::find(&state.db.pool, &self.user.user.id).await {
            Ok(found) => found.is_some_and(|u| u.is_admin && !u.suspended),
            Err(e) => {
                tracing::warn!(error = %e, "reading an event stream caller's role");
                false
            }
        };
        self.admin = Some(admin);
        admin
    }
}

fn sse_event(logged: &Logged) -> Option<SseEvent> {
    SseEvent::default()
        .event(logged.event.data.name())
        .id(logged.id.to_string())
        .json_data(&logged.event)
        .ok()
}

fn resync(reason: &'static str) -> SseEvent {
    SseEvent::default()
        .event("resync")
        .json_data(Resync { reason })
        .unwrap_or_default()
}

/// Feeds one stream: the replay, then live events, until the client leaves, the caller's
/// credential ends, or the panel stops.
async fn follow(
    state: AppState,
    listener: Listener,
    replay: Replay,
    mut live: broadcast::Receiver<Arc<Logged>>,
    tx: mpsc::Sender<SseEvent>,
) {
    let mut audience = Audience {
        user: listener.current.clone(),
        memberships: HashMap::new(),
        admin: None,
        learned_at: tokio::time::Instant::now(),
    };
    let mut last: Option<EventId> = None;
    match replay {
        Replay::Gone => {
            if tx
                .send(resync("the events since Last-Event-ID are no longer kept"))
                .await
                .is_err()
            {
                return;
            }
        }
        Replay::Events(events) => {
            for logged in events {
                last = Some(logged.id);
                if audience.hears(&state, &logged.event).await
                    && let Some(e) = sse_event(&logged)
                    && tx.send(e).await.is_err()
                {
                    return;
                }
            }
        }
    }
    let mut revocations = state.auth_cache.watch();
    let expiry = listener.expires_at(&state).map(|at| {
        let left = u64::try_from(at - crate::db::now_ms()).unwrap_or(0);
        tokio::time::Instant::now() + Duration::from_millis(left)
    });
    let expired = async move {
        match expiry {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.reset();
    loop {
        let logged = tokio::select! {
            () = tx.closed() => return,
            () = state.events.closed() => return,
            () = &mut expired => return,
            changed = revocations.changed() => {
                if changed.is_err() || !still_valid(&state, &listener).await {
                    return;
                }
                continue;
            }
            _ = recheck.tick() => {
                if !still_valid(&state, &listener).await {
                    return;
                }
                continue;
            }
            received = live.recv() => match received {
                Ok(logged) => logged,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if tx.send(resync("this stream fell behind")).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        // The replay may already have sent what arrived live meanwhile.
        if last.is_some_and(|seen| logged.id <= seen) {
            continue;
        }
        if audience.hears(&state, &logged.event).await
            && let Some(e) = sse_event(&logged)
            && tx.send(e).await.is_err()
        {
            return;
        }
    }
}

/// Whether the stream's caller may still listen; a database hiccup keeps it open.
async fn still_valid(state: &AppState, listener: &Listener) -> bool {
    match listener.recheck(state).await {
        Ok(found) => found.is_some(),
        Err(e) => {
            tracing::warn!(error = %e, "checking an event stream's caller again");
            true
        }
    }
}
