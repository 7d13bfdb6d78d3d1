//! Building the state and running the listener (plain HTTP or TLS) until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::cache::AuthCache;
use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::db::Db;
use crate::mailer::Mailer;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::state::{App, AppState};
use crate::tls::{self, CaInfo, TlsSetup};

/// Connects to the stores, migrates, loads keys: everything but the listener.
///
/// # Errors
/// Unreachable database or Redis, unwritable data dir, failed migration.
pub async fn build_state(
    config: Config,
    mailer: Arc<dyn Mailer>,
    ca: Option<CaInfo>,
) -> anyhow::Result<AppState> {
    let keys = crate::secrets::load(&config)?;
    let url = config.effective_database_url();
    if let Some(path) = crate::db::sqlite_path(&url) {
        anyhow::ensure!(
            config.redis_url.is_empty(),
            "redis_url is set but the database is SQLite ({}): Redis is for several panel \
             replicas, and they need a shared PostgreSQL database. Remove redis_url, or set \
             database_url = \"postgres://...\"",
            path.display()
        );
    }
    let db = Db::connect(&url, config.database_max_connections).await?;
    db.migrate().await?;
    // The composition root: the tunnel announces connections to the areas.
    let tunnels = crate::tunnel::Tunnels::new(vec![
        crate::nodes::presence::tunnel_listener(),
        crate::instances::ops::presence::tunnel_listener(),
    ]);
    // Everything Redis holds (the event stream, the tunnel registry, rate-limit
    // counters) lives under the cluster's prefix.
    let (redis, events, limiter) = if config.redis_url.is_empty() {
        let limiter = RateLimiter::local(config.rate_limit.clone());
        (None, crate::events::Bus::local(), limiter)
    } else {
        let client = redis::Client::open(config.redis_url.as_str()).context("parsing redis_url")?;
        // Bounded: while Redis is away a request must not wait on it (rate limits fail
        // open, publishing logs and moves on) beyond a second.
        let bounded = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(Duration::from_secs(1))
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let conn = redis::aio::ConnectionManager::new_with_config(client.clone(), bounded)
            .await
            .context("connecting to redis")?;
        // Replicas of one panel share its database, and so this id: panels that share
        // only the Redis server keep their keys apart.
        let cluster = crate::settings::store::cluster_id(&db.pool).await?;
        let prefix = format!("shardlyn:{cluster}:");
        let events = crate::events::Bus::redis(client, conn.clone(), format!("{prefix}events"))
            .await
            .context("reading the event stream from redis")?;
        tunnels.set_registry(Arc::new(crate::tunnel::Registry::new(
            conn.clone(),
            prefix.clone(),
            &keys.jwt_secret,
        )));
        let limiter = RateLimiter::redis(config.rate_limit.clone(), conn.clone(), prefix);
        (Some(conn), events, limiter)
    };
    let trusted_proxies = config
        .trusted_proxies
        .iter()
        .filter_map(|p| crate::client_ip::Net::parse(p).ok())
        .collect();
    let github = crate::auth::github::client::GithubClient::from_config(&config.github)?;
    let state = AppState(Arc::new(App {
        jwt: JwtKeys::new(keys.jwt_secret.as_bytes()),
        auth_cache: AuthCache::new(true),
        reads: crate::readcache::ReadCache::new(true),
        master_key: keys.master_key,
        limiter,
        metrics: Metrics::default(),
        mailer,
        ca,
        redis,
        events,
        sqlite_lock: std::sync::Mutex::new(None),
        db,
        config,
        started_at: Instant::now(),
        replica_id: crate::db::new_id(),
        draining: std::sync::atomic::AtomicBool::new(false),
        trusted_proxies,
        bound: std::sync::OnceLock::new(),
        tunnels,
        consoles: Arc::default(),
        github,
        clock: crate::clock::Clock::default(),
        dns_calls: Arc::default(),
    }));
    if state.redis.is_some() {
        tokio::spawn(share_invalidations(state.clone()));
    }
    Ok(state)
}

/// With replicas: tells the others when this one's caches are invalidated (a credential
/// ended, a cached table changed), applies theirs, and keeps the caches off while the
/// event bus cannot hear them (they would miss the others' invalidations).
async fn share_invalidations(state: AppState) {
    use crate::events::{Event, EventData};
    let origin = crate::db::new_id();
    let mut callers = state.auth_cache.watch_local();
    let mut reads = crate::readcache::watch_local();
    let mut heard = state.events.subscribe();
    let mut healthy = state.events.healthy();
    loop {
        tokio::select! {
            () = state.events.closed() => return,
            changed = callers.changed() => {
                if changed.is_err() {
                    return;
                }
                let data = EventData::CallersInvalidated { origin: origin.clone() };
                state.events.publish(Event::now("", data)).await;
            }
            changed = reads.changed() => {
                if changed.is_err() {
                    return;
                }
                let data = EventData::ReadsInvalidated { origin: origin.clone() };
                state.events.publish(Event::now("", data)).await;
            }
            changed = healthy.changed() => {
                if changed.is_err() {
                    return;
                }
                let up = *healthy.borrow_and_update();
                state.auth_cache.set_enabled(up);
                state.reads.set_enabled(up);
            }
            received = heard.recv() => match received {
                Ok(logged) => match &logged.event.data {
                    EventData::CallersInvalidated { origin: from } if *from != origin => {
                        state.auth_cache.invalidate_from_peer();
                    }
                    EventData::ReadsInvalidated { origin: from } if *from != origin => {
                        state.reads.invalidate_from_peer();
                    }
                    _ => {}
                },
                // Missed events may have held an invalidation.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    state.auth_cache.invalidate_from_peer();
                    state.reads.invalidate_from_peer();
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Prepares TLS, builds the state and starts listening: what `shardlyn serve` does.
///
/// # Errors
/// As [`build_state`] and [`start`].
pub async fn launch(config: Config, mailer: Arc<dyn Mailer>) -> anyhow::Result<Running> {
    // One serving process per SQLite file, claimed before anything migrates it.
    let claim = crate::db::sqlite_path(&config.effective_database_url())
        .map(|path| crate::db::claim_sqlite(&path))
        .transpose()?;
    let tls = tls::prepare(&config)?;
    let state = build_state(config, mailer, tls.as_ref().and_then(|t| t.ca.clone())).await?;
    if let Ok(mut held) = state.sqlite_lock.lock() {
        *held = claim;
    }
    start(state, tls).await
}

/// A panel listening in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    jobs: crate::jobs::Jobs,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and waits.
    ///
    /// # Errors
    /// The server task failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        // New requests are sent elsewhere (503, Retry-After) while those in flight
        // finish; a load balancer retries them on another replica.
        let drain = self.state.config.cluster.drain_ms;
        if drain > 0 {
            self.state
                .draining
                .store(true, std::sync::atomic::Ordering::Release);
            tracing::info!(drain_ms = drain, "draining before stopping");
            tokio::time::sleep(Duration::from_millis(drain)).await;
        }
        // Background jobs first: runs in flight finish while the tunnels are still up.
        self.jobs.stop().await;
        // Event streams never finish by themselves: end them so shutdown need not wait.
        self.state.events.close();
        let _ = self.shutdown.send(true);
        let served = self.task.await.context("server task panicked")?;
        // The SQLite file is free for the next process now, even while tasks of this
        // one still hold the state.
        if let Ok(mut lock) = self.state.sqlite_lock.lock() {
            lock.take();
        }
        // Agents connected here lose their tunnel now; say so instead of waiting for the
        // heartbeat window to pass.
        for conn in self.state.tunnels.list() {
            self.state.tunnels.disconnect(&conn.node_id);
            let _ = crate::nodes::store::mark_seen(
                &self.state.db.pool,
                &conn.node_id,
                &conn.version,
                false,
            )
            .await;
        }
        served
    }
}

/// Binds the configured address and serves in a background task.
///
/// # Errors
/// The address cannot be bound or the TLS material is invalid.
pub async fn start(state: AppState, tls: Option<TlsSetup>) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(state.config.listen)
        .await
        .with_context(|| format!("binding {}", state.config.listen))?;
    let addr = listener.local_addr()?;
    let _ = state.bound.set(addr);
    let app = crate::app::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (shutdown, mut rx) = tokio::sync::watch::channel(false);
    let task = match tls {
        None => tokio::spawn(async move {
            // Consoles and the tunnel carry many small writes: no Nagle delay on them.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
                .context("serving HTTP")
        }),
        Some(tls) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem(tls.cert_pem, tls.key_pem)
                .await
                .context("loading the TLS certificate and key")?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                let _ = rx.wait_for(|stop| *stop).await;
                stopper.graceful_shutdown(Some(Duration::from_secs(30)));
            });
            let std_listener = listener.into_std()?;
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .acceptor(axum_server::accept::NoDelayAcceptor::new());
            tokio::spawn(async move {
                axum_server::from_tcp(std_listener)
                    .acceptor(acceptor)
                    .handle(handle)
                    .serve(app)
                    .await
                    .context("serving HTTPS")
            })
        }
    };
    if state.tunnels.registry().is_some() {
        start_replica_listener(&state, shutdown.subscribe()).await?;
    }
    let jobs = crate::jobs::Jobs::start(&state);
    Ok(Running {
        addr,
        state,
        shutdown,
        task,
        jobs,
    })
}

/// Binds `cluster.listen`, where the other replicas reach the agents this one holds
/// (see `tunnel::registry`), and records its URL.
async fn start_replica_listener(
    state: &AppState,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let cluster = &state.config.cluster;
    let listener = TcpListener::bind(cluster.listen)
        .await
        .with_context(|| format!("binding cluster.listen {}", cluster.listen))?;
    let bound = listener.local_addr()?;
    let url = if cluster.advertise_url.is_empty() {
        anyhow::ensure!(
            !bound.ip().is_unspecified(),
            "cluster.listen is {bound}: set cluster.advertise_url to the address other \
             replicas reach this one at"
        );
        format!("http://{bound}")
    } else {
        cluster.advertise_url.trim_end_matches('/').to_owned()
    };
    if let Some(registry) = state.tunnels.registry() {
        registry.set_me(url.clone());
        let record = crate::tunnel::registry::ReplicaRecord {
            id: state.replica_id.clone(),
            url: url.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: state.started_at_ms(),
        };
        tokio::spawn(crate::tunnel::registry::announce_until_stopped(
            registry.clone(),
            record,
            stop.clone(),
        ));
    }
    tracing::info!(url = %url, "replica listener up");
    tokio::spawn(crate::tunnel::registry::serve(
        listener,
        state.clone(),
        stop,
    ));
    Ok(())
}

/// SIGINT/SIGTERM as a future, shared with the agent (see its docs).
pub use shardlyn_net::shutdown::shutdown_signal;
