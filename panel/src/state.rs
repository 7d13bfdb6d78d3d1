//! The one shared state, built once at start-up and cloned cheaply into handlers.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::cache::AuthCache;
use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::db::Db;
use crate::mailer::Mailer;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::tls::CaInfo;

/// Everything a request may need.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub jwt: JwtKeys,
    /// Recently authenticated callers (see `auth::cache`).
    pub auth_cache: AuthCache,
    /// Memberships, personal organizations and instance pages (see `readcache`).
    pub reads: crate::readcache::ReadCache,
    /// Seals secrets stored in the database (AES-256-GCM).
    pub master_key: [u8; 32],
    pub limiter: RateLimiter,
    pub metrics: Metrics,
    pub mailer: Arc<dyn Mailer>,
    /// The self-signed CA, when TLS mode `auto` generated one.
    pub ca: Option<CaInfo>,
    pub redis: Option<redis::aio::ConnectionManager>,
    /// The claim on the SQLite file (see `db::claim_sqlite`), released at stop.
    pub sqlite_lock: std::sync::Mutex<Option<std::fs::File>>,
    /// The event bus (in-process, or shared through Redis).
    pub events: Arc<crate::events::Bus>,
    pub started_at: Instant,
    /// Set when the process starts stopping: new requests are answered `503` with
    /// `Retry-After` during `cluster.drain_ms` (see `app::draining`).
    pub draining: std::sync::atomic::AtomicBool,
    /// This process's id among the replicas (the job lease's holder, the admin page).
    pub replica_id: String,
    /// Parsed `trusted_proxies`.
    pub trusted_proxies: Vec<crate::client_ip::Net>,
    /// The address the listener bound, once it has.
    pub bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// Agents connected to this process.
    pub tunnels: crate::tunnel::Tunnels,
    /// Open console and log WebSockets per instance.
    pub consoles: Arc<crate::instances::ops::console::Consoles>,
    /// The GitHub login client, when `[github]` is configured.
    pub github: Option<crate::auth::github::client::GithubClient>,
    /// The time jobs decide by (schedules); tests pin and advance it.
    pub clock: crate::clock::Clock,
    /// Requests sent to DNS providers (the reconciler's benchmark reads them).
    pub dns_calls: Arc<crate::dns::provider::Calls>,
}

impl App {
    /// The panel's base URL for links and agent commands (see [`Config::base_url`]).
    #[must_use]
    pub fn base_url(&self) -> String {
        self.config.base_url(self.bound.get().copied())
    }
}

/// Cheap handle on [`App`].
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl AppState {
    /// When this process started, in unix ms.
    #[must_use]
    pub fn started_at_ms(&self) -> i64 {
        let up = i64::try_from(self.started_at.elapsed().as_millis()).unwrap_or(i64::MAX);
        crate::db::now_ms().saturating_sub(up)
    }
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
