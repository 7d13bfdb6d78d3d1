//! Health and readiness probes, `/metrics`, `/v1/ca` and `/v1/openapi.json`.

use std::time::Instant;

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppJson, AppResult};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The public system routes.
pub fn router() -> Routes {
    Routes::new("system")
        .get(
            "/health",
            Access::Public,
            "Basic health check (liveness)",
            live,
        )
        .get("/health/live", Access::Public, "Liveness probe", live)
        .get("/health/ready", Access::Public, "Readiness probe", ready)
        .get(
            "/health/detailed",
            Access::Public,
            "Detailed health report",
            detailed,
        )
        .get("/ready", Access::Public, "Readiness probe (alias)", ready)
        .get(
            "/metrics",
            Access::Public,
            "Prometheus metrics",
            crate::metrics::handler,
        )
        .errors(&[(
            401,
            "`[metrics] token` is set and the request does not send it as a bearer token",
        )])
        .get("/v1/ca", Access::Public, "Self-signed CA for pinning", ca)
        .errors(&[(
            404,
            "no self-signed CA: TLS is off or the certificate comes from a file",
        )])
        .get(
            "/v1/openapi.json",
            Access::Public,
            "OpenAPI 3.1 document",
            openapi,
        )
}

/// The liveness answer.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Live {
    /// Always `ok` while the process serves requests.
    pub status: String,
}

async fn live() -> AppJson<Live> {
    AppJson(Live {
        status: "ok".into(),
    })
}

struct Check {
    ok: bool,
    latency_ms: f64,
    error: Option<String>,
}

async fn check_db(state: &AppState) -> Check {
    let start = Instant::now();
    let result = state.db.ping().await;
    Check {
        ok: result.is_ok(),
        latency_ms: start.elapsed().as_secs_f64() * 1000.0,
        error: result.err().map(|e| e.to_string()),
    }
}

async fn check_redis(state: &AppState) -> Option<Check> {
    let mut conn = state.redis.clone()?;
    let start = Instant::now();
    let result: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
    Some(Check {
        ok: result.is_ok(),
        latency_ms: start.elapsed().as_secs_f64() * 1000.0,
        error: result.err().map(|e| e.to_string()),
    })
}

/// `up` or `down`.
fn up(ok: bool) -> &'static str {
    if ok { "up" } else { "down" }
}

/// The readiness answer: 200 when every dependency answers, 503 otherwise.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    pub status: String,
    pub checks: ReadyChecks,
}

/// Each dependency, `up` or `down`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReadyChecks {
    pub database: String,
    /// Absent when the panel runs without Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
}

async fn ready(State(state): State<AppState>) -> (StatusCode, AppJson<Ready>) {
    let db = check_db(&state).await;
    let redis = check_redis(&state).await;
    let ok = db.ok && redis.as_ref().is_none_or(|r| r.ok);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        AppJson(Ready {
            status: if ok { "ready" } else { "not_ready" }.into(),
            checks: ReadyChecks {
                database: up(db.ok).into(),
                redis: redis.map(|r| up(r.ok).into()),
            },
        }),
    )
}

/// The detailed health report: 200 when healthy, 503 when degraded.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Detailed {
    /// `healthy` or `degraded`.
    pub status: String,
    pub version: String,
    pub uptime_secs: u64,
    /// Whether the panel serves HTTPS itself.
    pub tls: bool,
    pub checks: DetailedChecks,
}

/// The database and Redis, each with its latency.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DetailedChecks {
    pub database: DatabaseCheck,
    pub redis: DependencyCheck,
}

/// One dependency: `up`, `down` or `disabled` (Redis not configured).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DependencyCheck {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The failure, when down.
    #[serde(default)]
    pub error: Option<String>,
}

/// The database check, with its engine and connection pool.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatabaseCheck {
    #[serde(flatten)]
    pub check: DependencyCheck,
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub pool_size: u32,
    pub pool_idle: usize,
}

impl From<Check> for DependencyCheck {
    fn from(c: Check) -> Self {
        Self {
            status: up(c.ok).into(),
            latency_ms: Some((c.latency_ms * 100.0).round() / 100.0),
            error: c.error,
        }
    }
}

async fn detailed(State(state): State<AppState>) -> (StatusCode, AppJson<Detailed>) {
    let db = check_db(&state).await;
    let redis = check_redis(&state).await;
    let ok = db.ok && redis.as_ref().is_none_or(|r| r.ok);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let redis = redis.map_or(
        DependencyCheck {
            status: "disabled".into(),
            latency_ms: None,
            error: None,
        },
        DependencyCheck::from,
    );
    (
        status,
        AppJson(Detailed {
            status: if ok { "healthy" } else { "degraded" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: state.started_at.elapsed().as_secs(),
            tls: state.config.serves_tls(),
            checks: DetailedChecks {
                database: DatabaseCheck {
                    check: db.into(),
                    backend: state.db.backend.name().into(),
                    pool_size: state.db.pool.size(),
                    pool_idle: state.db.pool.num_idle(),
                },
                redis,
            },
        }),
    )
}

/// The panel's self-signed CA, for agents and clients that pin it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CaView {
    /// The CA certificate, PEM.
    pub pem: String,
    /// SHA-256 of the certificate (DER), hex.
    pub sha256: String,
}

async fn ca(State(state): State<AppState>) -> AppResult<AppJson<CaView>> {
    let ca = state.ca.as_ref().ok_or_else(|| {
        AppError::NotFound("no self-signed CA (TLS off or a certificate from a file)".into())
    })?;
    Ok(AppJson(CaView {
        pem: ca.pem.clone(),
        sha256: ca.sha256.clone(),
    }))
}

/// The document, generated once per process from the route table (it cannot change
/// while the process runs).
async fn openapi() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(crate::app::openapi_json);
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}
