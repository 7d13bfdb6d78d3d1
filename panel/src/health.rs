//! Health and readiness probes, `/metrics`, `/v1/ca` and `/v1/openapi.json`.

use std::time::Instant;

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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

fn check_json(c: &Check) -> Value {
    json!({
        "status": if c.ok { "up" } else { "down" },
        "latency_ms": (c.latency_ms * 100.0).round() / 100.0,
        "error": c.error,
    })
}

async fn ready(State(state): State<AppState>) -> (StatusCode, AppJson<Value>) {
    let db = check_db(&state).await;
    let redis = check_redis(&state).await;
    let ok = db.ok && redis.as_ref().is_none_or(|r| r.ok);
    let mut checks = json!({"database": if db.ok { "up" } else { "down" }});
    if let Some(r) = &redis {
        checks["redis"] = json!(if r.ok { "up" } else { "down" });
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        AppJson(json!({"status": if ok { "ready" } else { "not_ready" }, "checks": checks})),
    )
}

async fn detailed(State(state): State<AppState>) -> (StatusCode, AppJson<Value>) {
    let db = check_db(&state).await;
    let redis = check_redis(&state).await;
    let ok = db.ok && redis.as_ref().is_none_or(|r| r.ok);
    let mut database = check_json(&db);
    database["backend"] = json!(state.db.backend.name());
    database["pool_size"] = json!(state.db.pool.size());
    database["pool_idle"] = json!(state.db.pool.num_idle());
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        AppJson(json!({
            "status": if ok { "healthy" } else { "degraded" },
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": state.started_at.elapsed().as_secs(),
            "tls": state.config.serves_tls(),
            "checks": {
                "database": database,
                "redis": redis.as_ref().map_or(json!({"status": "disabled"}), check_json),
            }
        })),
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
