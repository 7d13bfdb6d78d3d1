//! Test harness: a real panel on `127.0.0.1:0` over a fresh SQLite file or a fresh
//! PostgreSQL database, with typed helpers for the common flows.
//!
//! `both_engines!` turns one async test body into a `sqlite` and a `postgres` test.

pub mod agent;
pub mod bench;
pub mod bind;
pub mod cloudboot;
pub mod cloudflare;
pub mod console;
pub mod debroot;
pub mod docker;
pub mod fake_pterodactyl;
pub mod fake_stripe;
pub mod hetzner;
pub mod lb;
pub mod mariadb;
pub mod moto;
pub mod pdns;
pub mod shell;
pub mod smtp;
pub mod sse;
pub mod sshd;
pub mod stripe;
pub mod terraform;
pub mod wings;

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use shardlyn_panel::config::{Config, Registration};
use shardlyn_panel::mailer::MemoryMailer;
use shardlyn_panel::server::{self, Running};
use shardlyn_panel::state::AppState;

/// The password every helper-made account uses.
pub const PASSWORD: &str = "correct-horse-battery";

/// The `[outbound] allow` list of test panels and the agents the harness starts: the
/// loopback fakes (git daemon, moto S3...) tests talk to.
pub const LOOPBACK_ALLOW: &[&str] = &["127.0.0.1", "::1", "localhost"];

/// [`LOOPBACK_ALLOW`] as an allow list.
#[must_use]
/// A path inside this crate's directory, read at run time: cargo and nextest set
/// `CARGO_MANIFEST_DIR` for the test process, and a binary built from another clone
/// that shares the target directory must not read (or write) that clone's files.
pub fn crate_path(relative: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    dir.join(relative)
}

pub fn loopback_allow() -> Vec<String> {
    LOOPBACK_ALLOW.iter().map(ToString::to_string).collect()
}

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on (`scripts/dev-services` starts it).
#[must_use]
pub fn postgres_admin_url() -> String {
    std::env::var("SHARDLYN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://shardlyn:shardlyn@127.0.0.1:5432/postgres".into())
}

/// The Redis server of the tests.
#[must_use]
pub fn redis_url() -> String {
    std::env::var("SHARDLYN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh, empty database URL for `engine` inside `dir`.
///
/// # Panics
/// When PostgreSQL is not reachable: run `scripts/dev-services`.
pub async fn fresh_database(engine: Engine, dir: &std::path::Path) -> String {
    match engine {
        Engine::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("test.db").display()),
        Engine::Postgres => {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let admin = postgres_admin_url();
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} is not reachable ({e}); run scripts/dev-services")
                });
            drop_stale_databases(&mut conn).await;
            let now = unix_now();
            let name = format!("shardlyn_test_{now}_{}", uuid::Uuid::new_v4().simple());
            // The name is ours: a fixed prefix, a Unix time and a UUID in hex.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Test databases outlive their test (a test process may be killed at any point), so
/// each new one first drops those made more than six hours ago, by the time in their
/// name; names without one come from older harnesses and go too. Another test process
/// may be dropping the same one: failures are ignored.
async fn drop_stale_databases(conn: &mut sqlx::AnyConnection) {
    use sqlx::Row;
    let cutoff = unix_now() - 6 * 3600;
    let Ok(rows) =
        sqlx::query("SELECT datname::text FROM pg_database WHERE datname LIKE 'shardlyn_test_%'")
            .fetch_all(&mut *conn)
            .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String, _>(0) else {
            continue;
        };
        let made = name
            .strip_prefix("shardlyn_test_")
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(secs, _)| secs.parse::<i64>().ok());
        let hex_only = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if hex_only && made.is_none_or(|t| t < cutoff) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut *conn)
            .await;
        }
    }
}

/// A configuration for tests: loopback port 0, open registration, generous limits.
#[must_use]
pub fn test_config(dir: &std::path::Path, database_url: String) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        database_url,
        database_max_connections: 8,
        ..Config::default()
    };
    config.auth.registration = Registration::Open;
    config.rate_limit.api_requests = 100_000;
    config.rate_limit.login_per_minute = 10_000;
    config.rate_limit.mfa_per_minute = 10_000;
    // Console tests open dozens of sockets a minute; `ratelimit.rs` checks this limit.
    config.rate_limit.websocket_per_minute = 10_000;
    config.outbound =
        shardlyn_net::outbound::Outbound::new(loopback_allow()).expect("loopback allow list");
    config
}

/// A running panel and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub mailer: Arc<MemoryMailer>,
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    running: Option<Running>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Asserts the status, printing the body when it differs.
    ///
    /// # Panics
    /// On a different status.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an error envelope with this status and code.
    ///
    /// # Panics
    /// When the status, the code or the envelope's shape differ.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.body["code"], code,
            "unexpected code; body: {}",
            self.text
        );
        assert!(
            self.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "error envelope without message: {}",
            self.text
        );
        self
    }

    /// A header as a string.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

/// With `SHARDLYN_TEST_LOG` set (an `EnvFilter`, `shardlyn_agent=debug`), the logs of
/// the panel and of in-process agents go to the test's output (shown when it fails).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("SHARDLYN_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Starts a panel on `engine` with the test configuration.
pub async fn spawn_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, |_| {}).await
}

/// Starts a panel on `engine`, letting the test adjust the configuration first.
///
/// # Panics
/// When the panel cannot start.
pub async fn spawn_app_with(engine: Engine, adjust: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(engine, dir.path()).await;
    let mut config = test_config(dir.path(), url);
    adjust(&mut config);
    start_with_config(engine, dir, config).await
}

/// `n` panel replicas on one fresh PostgreSQL database and the test Redis, sharing their
/// keys as replicas must (each with its own data directory and replica listener).
///
/// # Panics
/// When a replica cannot start.
pub async fn replicas(n: usize, adjust: impl Fn(&mut Config)) -> Vec<TestApp> {
    let first = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(Engine::Postgres, first.path()).await;
    let mut dirs = vec![first];
    dirs.extend((1..n).map(|_| tempfile::tempdir().expect("tempdir")));
    let mut apps = Vec::with_capacity(n);
    for dir in dirs {
        let mut config = test_config(dir.path(), url.clone());
        config.redis_url = redis_url();
        config.jwt_secret =
            shardlyn_panel::config::Secret("replicas-share-this-jwt-secret-0123456789".into());
        config.master_key = shardlyn_panel::config::Secret("11".repeat(32));
        adjust(&mut config);
        apps.push(start_with_config(Engine::Postgres, dir, config).await);
    }
    apps
}

/// Starts a panel with exactly `config`, keeping `dir` alive as long as the app.
///
/// # Panics
/// When the panel cannot start.
pub async fn start_with_config(engine: Engine, dir: tempfile::TempDir, config: Config) -> TestApp {
    let mailer = Arc::new(MemoryMailer::default());
    let tls = config.serves_tls();
    // With `smtp.host` set (the mail tests), mail goes over SMTP and `mailer` stays empty.
    let transport: Arc<dyn shardlyn_panel::mailer::Mailer> = if config.smtp.host.is_empty() {
        mailer.clone()
    } else {
        shardlyn_panel::mailer::from_config(&config.smtp).expect("smtp config")
    };
    let running = server::launch(config, transport)
        .await
        .expect("panel starts");
    let scheme = if tls { "https" } else { "http" };
    let base = format!("{scheme}://127.0.0.1:{}", running.addr.port());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(tls)
        .build()
        .expect("client");
    TestApp {
        base,
        client,
        state: running.state.clone(),
        mailer,
        engine,
        dir,
        running: Some(running),
    }
}

impl TestApp {
    /// Stops the server gracefully.
    ///
    /// # Panics
    /// When the server task failed.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean shutdown");
        }
    }

    /// Stops the server and hands back its data directory (to start again on it).
    ///
    /// # Panics
    /// When the server task failed.
    pub async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean shutdown");
        }
        let TestApp { dir, .. } = self;
        dir
    }

    /// Sends a request; `body` is sent as JSON when given.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        read(req.send().await.expect("request reaches the panel")).await
    }

    /// Sends raw bytes with a content type.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request reaches the panel")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(&body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::PUT, path, token, Some(&body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Creates the first admin through `/v1/auth/bootstrap`.
    ///
    /// # Panics
    /// When bootstrap fails.
    pub async fn bootstrap_admin(&self) -> Session {
        let email = "admin@example.com";
        let r = self
            .post(
                "/v1/auth/bootstrap",
                None,
                json!({"email": email, "password": PASSWORD, "name": "Admin"}),
            )
            .await
            .expect(201);
        Session {
            user_id: r.body["user"]["id"].as_str().expect("id").into(),
            email: email.into(),
            access: r.body["access_token"].as_str().expect("access").into(),
            refresh: r.body["refresh_token"].as_str().expect("refresh").into(),
        }
    }

    /// Registers a user and logs them in. The address is marked verified as following
    /// the mailed link would (`tests/api/verify_email.rs` follows the link itself); the
    /// verification mail is still sent.
    ///
    /// # Panics
    /// When registration or login fails.
    pub async fn register(&self, email: &str) -> Session {
        let r = self
            .post(
                "/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .expect(201);
        let id = r.body["id"].as_str().expect("user id");
        shardlyn_panel::users::store::mark_email_verified(&self.state.db.pool, id)
            .await
            .expect("mark the address verified");
        self.login(email, PASSWORD).await
    }

    /// Logs in.
    ///
    /// # Panics
    /// When login fails.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let r = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await
            .expect(200);
        let access = r.body["access_token"].as_str().expect("access").to_string();
        let me = self.get("/v1/users/me", Some(&access)).await.expect(200);
        Session {
            user_id: me.body["id"].as_str().expect("id").into(),
            email: email.into(),
            access,
            refresh: r.body["refresh_token"].as_str().expect("refresh").into(),
        }
    }

    /// Creates an organization owned by `token`'s user; returns its id.
    ///
    /// # Panics
    /// When creation fails.
    pub async fn create_org(&self, token: &str, name: &str) -> String {
        let r = self
            .post("/v1/organizations", Some(token), json!({"name": name}))
            .await
            .expect(201);
        r.body["id"].as_str().expect("id").into()
    }

    /// Mints an API token for `token`'s user.
    ///
    /// # Panics
    /// When creation fails.
    pub async fn api_token(&self, token: &str, name: &str, expires_in: Option<i64>) -> String {
        let r = self
            .post(
                "/v1/api-tokens",
                Some(token),
                json!({"name": name, "expires_in": expires_in}),
            )
            .await
            .expect(201);
        r.body["token"].as_str().expect("token").into()
    }

    /// Adds `user_id` to `org_id` with `role`, as the database would after an accepted invite.
    ///
    /// # Panics
    /// On a database failure.
    pub async fn add_member(&self, org_id: &str, user_id: &str, role: &str) {
        shardlyn_panel::orgs::store::upsert_member(&self.state.db.pool, org_id, user_id, role)
            .await
            .expect("add member");
    }
}

async fn read(response: reqwest::Response) -> Resp {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// One test body, run once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_engines {
    ($( $(#[$meta:meta])* async fn $name:ident($engine:ident) $body:block )*) => { $(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($engine: $crate::Engine) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { run($crate::Engine::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run($crate::Engine::Postgres).await }
        }
    )* };
}

/// Nodes without a running agent, for tests of placement and instances.
impl TestApp {
    /// Registers a node in `org_id` (the caller's personal organization when `None`)
    /// through a registration token and `/v1/agent/register`, without starting the
    /// agent; returns the node id. The node is offline until [`Self::mark_node_online`].
    ///
    /// # Panics
    /// When the token cannot be created or registration fails.
    pub async fn register_node(&self, token: &str, org_id: Option<&str>, name: &str) -> String {
        let dir = self
            .dir
            .path()
            .join(format!("agent-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("agent dir");
        let body = json!({"name": name, "organization_id": org_id});
        agent::register_agent(self, token, body, &dir).await.node_id
    }

    /// Makes a node count as online (connected, seen now) and records a metrics sample
    /// with these totals, as a heartbeat would.
    ///
    /// # Panics
    /// On a database failure.
    pub async fn mark_node_online(
        &self,
        node_id: &str,
        memory_total_bytes: i64,
        disk_total_bytes: i64,
    ) {
        let now = shardlyn_panel::db::now_ms();
        let pool = &self.state.db.pool;
        sqlx::query("UPDATE nodes SET connected = 1, last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(node_id)
            .execute(pool)
            .await
            .expect("mark node online");
        sqlx::query(
            "INSERT INTO node_metrics (node_id, at, cpu_percent, memory_used_bytes, memory_total_bytes, \
             disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes) \
             VALUES ($1, $2, 1.0, 0, $3, 0, $4, 0, 0)",
        )
        .bind(node_id)
        .bind(now)
        .bind(memory_total_bytes)
        .bind(disk_total_bytes)
        .execute(pool)
        .await
        .expect("insert node metrics");
    }

    /// Makes a node count as offline.
    ///
    /// # Panics
    /// On a database failure.
    pub async fn mark_node_offline(&self, node_id: &str) {
        sqlx::query("UPDATE nodes SET connected = 0 WHERE id = $1")
            .bind(node_id)
            .execute(&self.state.db.pool)
            .await
            .expect("mark node offline");
    }
}
