//! Rate limits: fixed windows per caller, in-process by default and shared through Redis
//! when `redis_url` is set (in-process again for 5 s after Redis fails, so no request
//! waits on a Redis known to be down). Every limited response carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset`; a refusal is a 429 with `Retry-After`.
//!
//! A caller is its client address until its credential is verified ([`caller`]); the
//! in-process table is bounded ([`table`]).

mod caller;
mod table;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use table::MAX_KEYS;

use crate::config::RateLimitConfig;
use crate::error::AppError;
use crate::state::AppState;

/// The verdict for one request.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds at which the window resets.
    pub reset: u64,
}

enum Store {
    Local(table::Table),
    Redis {
        conn: redis::aio::ConnectionManager,
        /// `shardlyn:<cluster id>:`, so panels that share only the Redis server keep
        /// their counters apart.
        prefix: String,
        /// Counts in-process while Redis is away (until `down_until`, unix ms), so a
        /// request does not wait on a Redis that is known to be down.
        fallback: table::Table,
        down_until: AtomicU64,
    },
}

/// How long the limiter counts in-process after Redis failed, before it tries again.
const REDIS_RETRY_MS: u64 = 5_000;

/// Counts requests per key and window.
pub struct RateLimiter {
    store: Store,
    config: RateLimitConfig,
    /// Credentials verified by this process, and the bucket each counts in.
    known: caller::Known,
}

impl RateLimiter {
    /// An in-process limiter.
    #[must_use]
    pub fn local(config: RateLimitConfig) -> Self {
        Self {
            store: Store::Local(table::Table::new(MAX_KEYS)),
            config,
            known: caller::Known::default(),
        }
    }

    /// A limiter whose counters live in Redis under `prefix` (the cluster's key
    /// prefix), shared by every panel replica of the cluster.
    #[must_use]
    pub fn redis(
        config: RateLimitConfig,
        conn: redis::aio::ConnectionManager,
        prefix: String,
    ) -> Self {
        Self {
            store: Store::Redis {
                conn,
                prefix,
                fallback: table::Table::new(MAX_KEYS),
                down_until: AtomicU64::new(0),
            },
            config,
            known: caller::Known::default(),
        }
    }

    /// Records that `secret` (an API or agent token) was verified and names `bucket`
    /// (`tok:{id}`, `node:{id}`): its later requests count there instead of at their
    /// address. Called by whoever verified it.
    pub fn learn(&self, secret: &str, bucket: String) {
        if !self.config.enabled {
            return;
        }
        self.known.learn(secret, bucket, unix_now());
    }

    /// How many keys the in-process table holds (`None` with Redis): for tests and
    /// metrics; never more than [`MAX_KEYS`] plus one overflow key per class.
    #[must_use]
    pub fn local_keys(&self) -> Option<usize> {
        match &self.store {
            Store::Local(table) => Some(table.len()),
            Store::Redis { .. } => None,
        }
    }

    /// Counts one hit of `key` in a window of `window` seconds allowing `limit` hits.
    pub async fn hit(&self, key: &str, limit: u32, window: u64) -> Decision {
        let now = unix_now();
        let window = window.max(1);
        let start = now - now % window;
        let reset = start + window;
        let local = |table: &table::Table| table.hit(key, reset, now);
        let count = match &self.store {
            Store::Local(table) => local(table),
            Store::Redis {
                conn,
                prefix,
                fallback,
                down_until,
            } => {
                let now_ms = unix_now_ms();
                if now_ms < down_until.load(Ordering::Acquire) {
                    local(fallback)
                } else {
                    let redis_key = format!("{prefix}rl:{key}:{start}");
                    let mut conn = conn.clone();
                    let result: Result<(u32,), redis::RedisError> = redis::pipe()
                        .atomic()
                        .incr(&redis_key, 1)
                        .expire(&redis_key, i64::try_from(window + 1).unwrap_or(i64::MAX))
                        .ignore()
                        .query_async(&mut conn)
                        .await;
                    match result {
                        Ok((count,)) => Some(count),
                        Err(err) => {
                            // A Redis outage must not take the API down with it: count
                            // in-process for a while.
                            tracing::warn!(error = %err, "rate limiter: redis unavailable, counting in-process");
                            down_until.store(now_ms + REDIS_RETRY_MS, Ordering::Release);
                            local(fallback)
                        }
                    }
                }
            }
        };
        let Some(count) = count else {
            return Decision {
                allowed: true,
                limit,
                remaining: limit,
                reset,
            };
        };
        Decision {
            allowed: count <= limit,
            limit,
            remaining: limit.saturating_sub(count),
            reset,
        }
    }
}

fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

fn unix_now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// The limit class of a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Login,
    Mfa,
    WebSocket,
    Api,
}

impl Class {
    fn of(path: &str, headers: &HeaderMap) -> Option<Self> {
        if !path.starts_with("/v1/") {
            return None;
        }
        if path.starts_with("/v1/auth/mfa/") {
            return Some(Self::Mfa);
        }
        const LOGIN: [&str; 8] = [
            "/v1/auth/login",
            "/v1/auth/register",
            "/v1/auth/refresh",
            "/v1/auth/forgot-password",
            "/v1/auth/reset-password",
            "/v1/auth/bootstrap",
            "/v1/auth/verify-email",
            "/v1/auth/verify-email/resend",
        ];
        if LOGIN.contains(&path) {
            return Some(Self::Login);
        }
        let upgrade = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        Some(if upgrade { Self::WebSocket } else { Self::Api })
    }

    fn limits(self, c: &RateLimitConfig) -> (u32, u64, &'static str) {
        match self {
            Self::Login => (c.login_per_minute, 60, "login"),
            Self::Mfa => (c.mfa_per_minute, 60, "mfa"),
            Self::WebSocket => (c.websocket_per_minute, 60, "ws"),
            Self::Api => (c.api_requests, u64::from(c.api_window_secs), "api"),
        }
    }
}

/// The bucket of a request: its address for the login class (those routes are how a
/// credential is obtained), else its verified credential, else its address.
fn caller_key(state: &AppState, class: Class, req: &Request) -> String {
    if class != Class::Login
        && let Some(bucket) =
            caller::verified(&state.jwt, &state.limiter.known, req.headers(), unix_now())
    {
        return bucket;
    }
    caller::address(req)
}

fn set_headers(headers: &mut HeaderMap, d: Decision) {
    for (name, value) in [
        ("x-ratelimit-limit", d.limit.to_string()),
        ("x-ratelimit-remaining", d.remaining.to_string()),
        ("x-ratelimit-reset", d.reset.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

/// Applies the limit of the request's class.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let config = &state.limiter.config;
    if !config.enabled {
        return next.run(req).await;
    }
    let Some(class) = Class::of(req.uri().path(), req.headers()) else {
        return next.run(req).await;
    };
    let (limit, window, name) = class.limits(config);
    let key = format!("{name}:{}", caller_key(&state, class, &req));
    let decision = state.limiter.hit(&key, limit, window).await;
    let mut response = if decision.allowed {
        next.run(req).await
    } else {
        let retry_after = decision.reset.saturating_sub(unix_now()).max(1);
        AppError::RateLimited { retry_after }.into_response()
    };
    set_headers(response.headers_mut(), decision);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_window_counts_down_and_refuses() {
        let limiter = RateLimiter::local(RateLimitConfig::default());
        let first = limiter.hit("k", 2, 3600).await;
        assert!(first.allowed);
        assert_eq!(first.remaining, 1);
        assert!(limiter.hit("k", 2, 3600).await.allowed);
        let third = limiter.hit("k", 2, 3600).await;
        assert!(!third.allowed);
        assert_eq!(third.remaining, 0);
        assert!(limiter.hit("other", 2, 3600).await.allowed);
    }

    #[test]
    fn classes_follow_the_path() {
        let h = HeaderMap::new();
        assert_eq!(Class::of("/v1/auth/login", &h), Some(Class::Login));
        assert_eq!(Class::of("/v1/auth/mfa/challenge", &h), Some(Class::Mfa));
        assert_eq!(Class::of("/v1/users/me", &h), Some(Class::Api));
        assert_eq!(Class::of("/health", &h), None);
        let mut ws = HeaderMap::new();
        ws.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(
            Class::of("/v1/instances/x/console", &ws),
            Some(Class::WebSocket)
        );
    }
}
