//! Prometheus metrics at `/metrics`: requests by matched path and status, a latency
//! histogram, the database pool's connections and the tunnel heartbeat's round trip,
//! and the panel's own health ([`health`]). With `[metrics] token` set, only a scraper
//! sending `Authorization: Bearer <token>` reads them.

mod counts;
pub mod health;

use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::auth::crypto::{digest_eq, sha256_hex};
use crate::error::AppError;
use crate::state::AppState;

pub use health::DeliveryOutcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    path: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    ])
}

/// The panel's metric registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    pool: Family<PoolLabels, Gauge>,
    heartbeat: Histogram,
    /// The panel's health: tunnels, nodes, jobs, deliveries, the database.
    pub health: health::Health,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("shardlyn");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        let heartbeat = Histogram::new([
            0.000_25, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            5.0, 10.0,
        ]);
        registry.register(
            "http_requests",
            "HTTP requests by method, matched path and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and matched path",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            pool.clone(),
        );
        registry.register(
            "tunnel_heartbeat_seconds",
            "Round trip of the tunnel heartbeat (GET /v1/metrics on the agent)",
            heartbeat.clone(),
        );
        let health = health::Health::default();
        health.register(&mut registry);
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            pool,
            heartbeat,
            health,
        }
    }
}

impl Metrics {
    /// Records one heartbeat round trip through an agent tunnel.
    pub fn observe_heartbeat(&self, elapsed: std::time::Duration) {
        self.heartbeat.observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with every gauge read afresh from `state`.
    pub async fn scrape(&self, state: &AppState) -> String {
        self.health.refresh(state).await;
        self.render(state)
    }

    /// The text exposition, with pool gauges refreshed from `state` (the health gauges
    /// as last read, see [`Metrics::scrape`]).
    #[must_use]
    pub fn render(&self, state: &AppState) -> String {
        let size = i64::from(state.db.pool.size());
        let idle = i64::try_from(state.db.pool.num_idle()).unwrap_or(0);
        self.pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(idle);
        self.pool
            .get_or_create(&PoolLabels { state: "active" })
            .set(size - idle);
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

/// Counts and times every request.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    state
        .metrics
        .latency
        .get_or_create(&LatencyLabels {
            method: method.clone(),
            path: path.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            path,
            status,
        })
        .inc();
    response
}

/// Whether `headers` carry `Authorization: Bearer <token>` (compared in constant time,
/// through digests so the length does not show either).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    digest_eq(&sha256_hex(given.trim()), &sha256_hex(token))
}

/// `GET /metrics`: public, or with `[metrics] token` set, 401 `UNAUTHORIZED` unless the
/// request sends it as a bearer token.
pub async fn handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = state.config.metrics.token.expose();
    if !token.is_empty() && !bearer_matches(&headers, token) {
        let mut refused = AppError::unauthorized(
            "/metrics needs Authorization: Bearer <token>, the [metrics] token of the panel's configuration",
        )
        .into_response();
        refused.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return refused;
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.scrape(&state).await,
    )
        .into_response()
}
