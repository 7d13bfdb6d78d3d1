//! Typed settings, loaded once: defaults < TOML file (`--config`) < `SHARDLYN_*` env
//! (`__` separates nesting, e.g. `SHARDLYN_TLS__MODE=file`) < command-line flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod net;
mod smtp;
mod system_backup;

pub use net::Net;
pub use smtp::{SmtpConfig, SmtpMode};
pub use system_backup::SystemBackupConfig;

/// A secret string whose `Debug` never shows the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret's value; call only where it is used.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Who may create an account through `POST /v1/auth/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone.
    Open,
    /// Only someone holding a pending invitation for that email.
    InviteOnly,
    /// Nobody; admins create users.
    Closed,
}

/// How the listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain HTTP on loopback binds; HTTPS with a self-signed CA on any other bind.
    Auto,
    /// Always plain HTTP (behind a TLS-terminating proxy).
    Off,
    /// HTTPS with the certificate and key at `cert_path` / `key_path`.
    File,
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::Auto,
            cert_path: None,
            key_path: None,
        }
    }
}

/// Rate-limit classes; each is a fixed window per caller (verified credential, else IP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// General API requests per caller per `api_window_secs`.
    pub api_requests: u32,
    pub api_window_secs: u32,
    /// Login, register, refresh and password-reset requests per IP per minute.
    pub login_per_minute: u32,
    /// MFA attempts per caller per minute.
    pub mfa_per_minute: u32,
    /// WebSocket upgrades per caller per minute.
    pub websocket_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            api_requests: 600,
            api_window_secs: 60,
            login_per_minute: 20,
            mfa_per_minute: 5,
            websocket_per_minute: 30,
        }
    }
}

/// Authentication policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub registration: Registration,
    pub password_min_length: usize,
    /// Lifetime of a refresh token (and so of an idle session), in seconds.
    pub refresh_ttl_secs: u64,
    /// Failed logins within `lockout_window_secs` that lock an account.
    pub lockout_threshold: u32,
    pub lockout_window_secs: u64,
    pub lockout_duration_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            registration: Registration::InviteOnly,
            password_min_length: 10,
            refresh_ttl_secs: 30 * 24 * 3600,
            lockout_threshold: 5,
            lockout_window_secs: 15 * 60,
            lockout_duration_secs: 15 * 60,
        }
    }
}

/// Instance defaults: where automatic port allocations come from and how servers stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstancesConfig {
    /// First port handed out when an instance asks for automatic ports.
    pub port_range_start: u16,
    /// Last port handed out automatically (inclusive).
    pub port_range_end: u16,
    /// Host address allocations bind to.
    pub allocation_ip: String,
    /// Seconds between a stop request and SIGKILL.
    pub stop_grace_secs: u64,
    /// Largest tus upload into an instance's files, in bytes (`Tus-Max-Size`).
    pub upload_max_bytes: u64,
    /// Seconds an unfinished tus upload is kept (`Upload-Expires`).
    pub upload_expiry_secs: u64,
}

impl Default for InstancesConfig {
    fn default() -> Self {
        Self {
            port_range_start: 25_565,
            port_range_end: 26_565,
            allocation_ip: "0.0.0.0".into(),
            stop_grace_secs: 30,
            upload_max_bytes: 16 * 1024 * 1024 * 1024,
            upload_expiry_secs: 24 * 60 * 60,
        }
    }
}

/// GitHub login (`/v1/auth/github`): an OAuth app's credentials and GitHub's endpoints.
/// Disabled while `client_id` or `client_secret` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// GitHub's authorization page.
    pub authorize_url: String,
    /// GitHub's code-for-token endpoint.
    pub token_url: String,
    /// GitHub's REST API (`/user`, `/user/emails`).
    pub api_url: String,
    /// The callback registered with the OAuth app; empty: `{base_url}/v1/auth/github/callback`.
    pub redirect_url: String,
    /// Where the browser lands after the callback, with `#github_code=...` appended.
    pub success_redirect: String,
    /// Timeout of each request to GitHub, in seconds.
    pub timeout_secs: u64,
}

impl GithubConfig {
    /// Whether GitHub login is configured.
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.client_id.is_empty() && !self.client_secret.expose().is_empty()
    }
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: Secret::default(),
            authorize_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            api_url: "https://api.github.com".into(),
            redirect_url: String::new(),
            success_redirect: "/".into(),
            timeout_secs: 10,
        }
    }
}

/// Stripe: the API key that turns billing on, the API's address (a fake's in tests) and
/// the webhook endpoint (`POST /v1/webhooks/stripe`, 404 while `webhook_secret` is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeConfig {
    /// Secret API key (`sk_live_...`, `sk_test_...`). Empty: billing is off, every
    /// organization is unlimited and the billing routes say so.
    pub secret_key: Secret,
    /// Base URL of Stripe's API (requests go to `<api_base>/v1/...`).
    pub api_base: String,
    /// The endpoint's signing secret (`whsec_...`) from Stripe's dashboard.
    pub webhook_secret: Secret,
    /// Largest age (either way) of a delivery's signed timestamp, in seconds.
    pub webhook_tolerance_secs: u64,
    /// Checkout computes tax with Stripe Tax (`automatic_tax[enabled]=true`).
    pub automatic_tax: bool,
    /// Seconds one Stripe request may take.
    pub timeout_secs: u64,
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            secret_key: Secret::default(),
            api_base: "https://api.stripe.com".into(),
            webhook_secret: Secret::default(),
            webhook_tolerance_secs: 300,
            automatic_tax: false,
            timeout_secs: 20,
        }
    }
}

/// Selling servers: dunning, suspension and the reconciliation with Stripe (`billing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// Days a `past_due` organization keeps its servers running (mails and a banner),
    /// after which they are suspended.
    pub grace_days: u64,
    /// Days after suspension when the organization's servers are deleted; 0 never.
    pub terminate_after_days: u64,
    /// Hours between two reminder mails while past due.
    pub dunning_mail_interval_hours: u64,
    /// Seconds between two passes of the dunning job (grace, suspension, termination).
    pub dunning_interval_secs: u64,
    /// Seconds between two reconciliations of every subscription with Stripe.
    pub reconcile_interval_secs: u64,
    /// Seconds between two retries of Stripe events that failed to apply.
    pub event_retry_secs: u64,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            grace_days: 7,
            terminate_after_days: 0,
            dunning_mail_interval_hours: 24,
            dunning_interval_secs: 300,
            reconcile_interval_secs: 86_400,
            event_retry_secs: 60,
        }
    }
}

/// The background job runner (schedules, see `jobs.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run background jobs in this process (turn off on API-only replicas).
    pub enabled: bool,
    /// Milliseconds between two looks for due schedules and requested runs.
    pub poll_interval_ms: u64,
    /// Seconds between two sweeps of expired resumable-upload records.
    pub upload_sweep_secs: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_ms: 1000,
            upload_sweep_secs: 60,
        }
    }
}

/// Notification integrations (see `integrations`): where Telegram's Bot API is and how
/// deliveries are retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationsConfig {
    /// Base URL of the Telegram Bot API (`{base}/bot<token>/sendMessage`).
    pub telegram_api_url: String,
    /// Milliseconds before the first retry of a failed delivery; doubled each attempt.
    pub retry_base_ms: u64,
    /// Longest wait between two attempts, in milliseconds.
    pub retry_max_ms: u64,
    /// Attempts before a delivery is given up and its integration marked unhealthy.
    pub max_attempts: u32,
    /// Seconds after which a delivery still failing is given up, whatever its attempts.
    pub give_up_after_secs: u64,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        Self {
            telegram_api_url: "https://api.telegram.org".into(),
            retry_base_ms: 15_000,
            retry_max_ms: 15 * 60_000,
            max_attempts: 8,
            give_up_after_secs: 3600,
        }
    }
}

/// Cloud nodes made with Terraform (`provision`), and what a new node downloads from this
/// panel to join it (`bootstrap`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisionConfig {
    /// The `terraform` binary; a bare name is looked up on `PATH`.
    pub terraform_bin: PathBuf,
    /// A Terraform CLI configuration file given to every run (`TF_CLI_CONFIG_FILE`), for a
    /// provider mirror; empty: Terraform's own defaults.
    pub terraform_cli_config: Option<PathBuf>,
    /// Where runs get their working directories; empty: `{data_dir}/provision`.
    pub work_dir: Option<PathBuf>,
    /// Seconds a run's lease (and its state lock) lasts unless renewed; a run whose
    /// panel died is failed, and its lock freed, once this lapses.
    pub lease_secs: u64,
    /// Seconds one Terraform command may take.
    pub run_timeout_secs: u64,
    /// The x86_64 `shardlyn-agent` binary this panel serves to new nodes; empty: the
    /// `shardlyn-agent` beside this panel's own executable.
    pub agent_binary: Option<PathBuf>,
}

impl Default for ProvisionConfig {
    fn default() -> Self {
        Self {
            terraform_bin: PathBuf::from("terraform"),
            terraform_cli_config: None,
            work_dir: None,
            lease_secs: 60,
            run_timeout_secs: 1800,
            agent_binary: None,
        }
    }
}

/// DNS records and automatic DNS (`dns`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Names this panel in the ownership markers of the records it writes
    /// (`heritage=shardlyn,owner=<owner_id>/<organization>,...`): panels sharing a zone
    /// need different ones.
    pub owner_id: String,
    /// Seconds between reconciliation passes (drift repaired, failed changes retried).
    pub reconcile_interval_secs: u64,
    /// Subdomains a server's owner may not choose.
    pub reserved_names: Vec<String>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            owner_id: "shardlyn".into(),
            reconcile_interval_secs: 300,
            reserved_names: [
                "www",
                "mail",
                "admin",
                "api",
                "panel",
                "ftp",
                "smtp",
                "imap",
                "pop",
                "ns1",
                "ns2",
                "mx",
                "webmail",
                "autodiscover",
                "cpanel",
                "root",
                "status",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

/// Cloud providers' APIs, as cloud credentials are verified against them (see
/// `credentials`). Each base URL is configurable, so a private endpoint or a test's
/// local fake can stand in; every call goes through the outbound guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudConfig {
    /// Hetzner Cloud API (`{base}/servers`).
    pub hetzner_api_url: String,
    /// Cloudflare API v4 (`{base}/user/tokens/verify`).
    pub cloudflare_api_url: String,
    /// Steam Web API (`{base}/ISteamWebAPIUtil/GetSupportedAPIList/v1/`).
    pub steam_api_url: String,
    /// AWS STS (`GetCallerIdentity`); empty: `https://sts.{region}.amazonaws.com`.
    pub aws_sts_url: String,
    /// Google's OAuth token endpoint; empty: the service account key's `token_uri`.
    pub gcp_token_url: String,
    /// OCI Identity API, `{region}` replaced by the credential's region.
    pub oci_identity_url: String,
    /// Seconds a verify call may take.
    pub timeout_secs: u64,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            hetzner_api_url: "https://api.hetzner.cloud/v1".into(),
            cloudflare_api_url: "https://api.cloudflare.com/client/v4".into(),
            steam_api_url: "https://api.steampowered.com".into(),
            aws_sts_url: String::new(),
            gcp_token_url: String::new(),
            oci_identity_url: "https://identity.{region}.oci.oraclecloud.com".into(),
            timeout_secs: 15,
        }
    }
}

/// Replicas (with `redis_url`): where this one takes requests for the agents it holds
/// from the others (see `tunnel::registry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The replica-to-replica listener (plain HTTP/2; keep it on a private network).
    pub listen: SocketAddr,
    /// The URL other replicas reach that listener at. Empty: `http://` and the address it
    /// bound, which needs `listen` on a specific address (not 0.0.0.0).
    pub advertise_url: String,
    /// Milliseconds a stopping process answers new requests `503` with `Retry-After`
    /// (while those in flight finish) before it closes, so a load balancer sends them to
    /// another replica. 0: close at once.
    pub drain_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise_url: String::new(),
            drain_ms: 0,
        }
    }
}

/// Support: the HelpScout Beacon secret and how often a user may write to support.
/// The address messages go to is a platform setting (`PUT /v1/settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupportConfig {
    /// HelpScout Beacon secret key; empty: `/v1/support/helpscout/signature` answers 404.
    pub helpscout_secret: Secret,
    /// Support messages each user may send per hour.
    pub messages_per_hour: u32,
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            helpscout_secret: Secret::default(),
            messages_per_hour: 5,
        }
    }
}

/// `GET /metrics`: public, or only for scrapers sending `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// The bearer token scrapers send; empty: `/metrics` is public.
    pub token: Secret,
}

/// Every setting of the panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means a SQLite file in the data dir.
    pub database_url: String,
    pub database_max_connections: u32,
    /// Optional Redis for shared rate limits, events and tunnel routing.
    pub redis_url: String,
    /// The URL users reach the panel at (used in emails and agent commands).
    pub public_url: String,
    /// HS256 key for access tokens; generated into the data dir when empty.
    pub jwt_secret: Secret,
    /// 32-byte hex key sealing stored secrets; generated into the data dir when empty.
    pub master_key: Secret,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// `tracing` filter, e.g. `info` or `shardlyn_panel=debug`.
    pub log_level: String,
    /// Log as JSON lines instead of text.
    pub log_json: bool,
    pub tls: TlsConfig,
    /// Reverse proxies (IPs or CIDRs) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub instances: InstancesConfig,
    pub smtp: SmtpConfig,
    pub github: GithubConfig,
    pub stripe: StripeConfig,
    pub billing: BillingConfig,
    pub support: SupportConfig,
    pub jobs: JobsConfig,
    pub cluster: ClusterConfig,
    /// What user-supplied outbound URLs (git remotes, S3 endpoints) may reach besides the
    /// public internet: `[outbound] allow = ["10.0.0.5", "192.168.1.0/24", "minio.lan"]`.
    pub outbound: shardlyn_net::outbound::Outbound,
    pub integrations: IntegrationsConfig,
    pub cloud: CloudConfig,
    pub provision: ProvisionConfig,
    pub dns: DnsConfig,
    pub metrics: MetricsConfig,
    pub system_backup: SystemBackupConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            database_max_connections: 16,
            redis_url: String::new(),
            public_url: String::new(),
            jwt_secret: Secret::default(),
            master_key: Secret::default(),
            max_body_bytes: 1024 * 1024,
            log_level: "info".into(),
            log_json: false,
            tls: TlsConfig::default(),
            trusted_proxies: Vec::new(),
            auth: AuthConfig::default(),
            rate_limit: RateLimitConfig::default(),
            instances: InstancesConfig::default(),
            smtp: SmtpConfig::default(),
            github: GithubConfig::default(),
            stripe: StripeConfig::default(),
            billing: BillingConfig::default(),
            support: SupportConfig::default(),
            jobs: JobsConfig::default(),
            cluster: ClusterConfig::default(),
            outbound: shardlyn_net::outbound::Outbound::default(),
            integrations: IntegrationsConfig::default(),
            cloud: CloudConfig::default(),
            provision: ProvisionConfig::default(),
            dns: DnsConfig::default(),
            metrics: MetricsConfig::default(),
            system_backup: SystemBackupConfig::default(),
        }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CliOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads defaults, then the TOML file, then `SHARDLYN_*` variables, then CLI flags.
    ///
    /// # Errors
    /// A missing `--config` file, a malformed file or a value of the wrong type.
    pub fn load(file: Option<&Path>, cli: &CliOverrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(path.exists(), "config file {} not found", path.display());
            figment = figment.merge(Toml::file(path));
        }
        // Only variables naming a setting: SHARDLYN_ADMIN_PASSWORD or SHARDLYN_TEST_* are
        // other tools' and must not trip `deny_unknown_fields`.
        let env = Env::prefixed("SHARDLYN_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            DOCS.iter().any(|(k, _)| k.eq_ignore_ascii_case(top))
        });
        figment = figment.merge(env).merge(Serialized::defaults(cli));
        let mut config: Config = figment.extract()?;
        // The data dir is handed to the local agent, whose volumes become Docker
        // bind-mount sources; those must be absolute (`./data` is taken for a volume name).
        config.data_dir = std::path::absolute(&config.data_dir)
            .map_err(|e| anyhow::anyhow!("data_dir {}: {e}", config.data_dir.display()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.system_backup.validate()?;
        if self.tls.mode == TlsMode::File {
            anyhow::ensure!(
                self.tls.cert_path.is_some() && self.tls.key_path.is_some(),
                "tls.mode = \"file\" needs tls.cert_path and tls.key_path"
            );
        }
        anyhow::ensure!(
            self.auth.password_min_length >= 8,
            "auth.password_min_length must be at least 8"
        );
        anyhow::ensure!(
            self.max_body_bytes >= 1024,
            "max_body_bytes must be at least 1024"
        );
        anyhow::ensure!(
            !self.dns.owner_id.is_empty()
                && self.dns.owner_id.len() <= 64
                && self
                    .dns
                    .owner_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
            "dns.owner_id must be 1 to 64 letters, digits, '-', '_' or '.'"
        );
        for proxy in &self.trusted_proxies {
            Net::parse(proxy).map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        }
        anyhow::ensure!(
            self.rate_limit.api_window_secs > 0,
            "rate_limit.api_window_secs must be positive"
        );
        anyhow::ensure!(
            self.instances.port_range_start >= 1024
                && self.instances.port_range_start <= self.instances.port_range_end,
            "instances.port_range_start must be at least 1024 and not above port_range_end"
        );
        anyhow::ensure!(
            self.instances
                .allocation_ip
                .parse::<std::net::IpAddr>()
                .is_ok(),
            "instances.allocation_ip must be an IP address"
        );
        anyhow::ensure!(
            (10..=3_600_000).contains(&self.jobs.poll_interval_ms),
            "jobs.poll_interval_ms must be between 10 and 3600000"
        );
        anyhow::ensure!(
            (1..=86_400).contains(&self.jobs.upload_sweep_secs),
            "jobs.upload_sweep_secs must be between 1 and 86400"
        );
        anyhow::ensure!(
            self.cluster.drain_ms <= 600_000,
            "cluster.drain_ms must be at most 600000 (ten minutes)"
        );
        self.smtp
            .validate()
            .map_err(|e| anyhow::anyhow!("smtp: {e}"))?;
        anyhow::ensure!(
            self.auth.registration != Registration::Open || !self.smtp.host.is_empty(),
            "auth.registration = \"open\" needs SMTP (smtp.host): a new account is verified \
             by a link mailed to its address, and without SMTP nobody could receive it; \
             configure [smtp], or use registration \"invite_only\" or \"closed\""
        );
        let token = self.metrics.token.expose();
        anyhow::ensure!(
            token.is_empty() || (token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic())),
            "metrics.token must be empty or at least 16 printable characters without spaces"
        );
        anyhow::ensure!(
            self.github.client_id.is_empty() == self.github.client_secret.expose().is_empty(),
            "github.client_id and github.client_secret must be set together"
        );
        Ok(())
    }

    /// The database URL to use: the configured one, or a SQLite file in the data dir.
    #[must_use]
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("shardlyn.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// Whether the listener is reached over HTTPS.
    #[must_use]
    pub fn serves_tls(&self) -> bool {
        match self.tls.mode {
            TlsMode::Off => false,
            TlsMode::File => true,
            TlsMode::Auto => !self.listen.ip().is_loopback(),
        }
    }

    /// The URL users and agents reach the panel at: `public_url`, or else derived from the
    /// address actually bound (`bound`, which knows the port when `listen` asked for 0).
    /// A wildcard bind is shown as `localhost`; set `public_url` for remote agents.
    #[must_use]
    pub fn base_url(&self, bound: Option<SocketAddr>) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.trim_end_matches('/').to_string();
        }
        let scheme = if self.serves_tls() { "https" } else { "http" };
        let addr = bound.unwrap_or(self.listen);
        if addr.ip().is_unspecified() {
            format!("{scheme}://localhost:{}", addr.port())
        } else {
            format!("{scheme}://{addr}")
        }
    }
}

/// One comment per setting, in the order `config example` prints them.
const DOCS: &[(&str, &str)] = &[
    (
        "listen",
        "Address and port the panel listens on. Port 0 picks a free port.",
    ),
    (
        "data_dir",
        "Directory for the SQLite database, generated keys and the TLS CA.",
    ),
    (
        "database_url",
        "Database URL. Empty: SQLite file <data_dir>/shardlyn.db. Production: postgres://user:pass@host/db",
    ),
    (
        "database_max_connections",
        "Connections kept in the database pool.",
    ),
    (
        "redis_url",
        "Optional redis://host:6379. Shares rate limits, events and tunnel routing between panel replicas.",
    ),
    (
        "public_url",
        "URL users and agents reach the panel at, e.g. https://panel.example.com. Empty: derived from listen.",
    ),
    (
        "jwt_secret",
        "Key signing access tokens. Empty: generated into <data_dir>/jwt.key (mode 0600) on first start.",
    ),
    (
        "master_key",
        "64 hex chars sealing stored secrets (AES-256-GCM). Empty: generated into <data_dir>/master.key.",
    ),
    (
        "max_body_bytes",
        "Largest request body accepted, in bytes; larger answers 413.",
    ),
    (
        "log_level",
        "tracing filter, e.g. \"info\" or \"shardlyn_panel=debug,info\".",
    ),
    ("log_json", "Log JSON lines instead of text."),
    ("tls", "TLS of the listener."),
    (
        "tls.mode",
        "\"auto\": plain HTTP on loopback, HTTPS with a self-signed CA (GET /v1/ca) elsewhere; \"off\"; \"file\".",
    ),
    ("tls.cert_path", "PEM certificate chain for mode \"file\"."),
    ("tls.key_path", "PEM private key for mode \"file\"."),
    (
        "trusted_proxies",
        "Reverse proxies, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"], whose X-Forwarded-For names the client (rate limits, audit).",
    ),
    ("auth", "Authentication policy."),
    (
        "auth.registration",
        "\"open\" (needs smtp: new accounts verify their address by a mailed link), \"invite_only\" or \"closed\".",
    ),
    (
        "auth.password_min_length",
        "Minimum password length (at least 8).",
    ),
    (
        "auth.refresh_ttl_secs",
        "Lifetime of a refresh token, in seconds.",
    ),
    (
        "auth.lockout_threshold",
        "Failed logins within lockout_window_secs that lock the account.",
    ),
    (
        "auth.lockout_window_secs",
        "Window counting failed logins, in seconds.",
    ),
    (
        "auth.lockout_duration_secs",
        "How long a locked account stays locked, in seconds.",
    ),
    (
        "rate_limit",
        "Per-caller request limits (per token, else per IP).",
    ),
    ("rate_limit.enabled", "Turn every limit on or off."),
    (
        "rate_limit.api_requests",
        "General API requests allowed per window.",
    ),
    (
        "rate_limit.api_window_secs",
        "Length of the general API window, in seconds.",
    ),
    (
        "rate_limit.login_per_minute",
        "Login, register, refresh and password-reset requests per IP per minute.",
    ),
    ("rate_limit.mfa_per_minute", "MFA attempts per minute."),
    (
        "rate_limit.websocket_per_minute",
        "WebSocket upgrades per minute.",
    ),
    ("instances", "Instance defaults."),
    (
        "instances.port_range_start",
        "First port of the range automatic allocations come from (at least 1024).",
    ),
    (
        "instances.port_range_end",
        "Last port of the automatic allocation range (inclusive).",
    ),
    (
        "instances.allocation_ip",
        "Host address allocations bind to; 0.0.0.0 for every interface.",
    ),
    (
        "instances.stop_grace_secs",
        "Seconds between a stop request and SIGKILL.",
    ),
    (
        "instances.upload_max_bytes",
        "Largest resumable (tus) upload into a server's files, in bytes.",
    ),
    (
        "instances.upload_expiry_secs",
        "Seconds an unfinished resumable upload is kept before its data is removed.",
    ),
    (
        "smtp",
        "Outgoing mail (password resets, invites, security notices, alerts). No host: mail is logged.",
    ),
    (
        "smtp.host",
        "SMTP server, e.g. \"smtp.example.com\". Empty: write messages to the log instead.",
    ),
    (
        "smtp.port",
        "Server port. Unset: 587 (starttls), 465 (tls) or 25 (plain).",
    ),
    (
        "smtp.mode",
        "\"starttls\", \"tls\" (SMTPS) or \"plain\" (loopback hosts only, unless allow_plain_remote).",
    ),
    (
        "smtp.username",
        "Login for SMTP AUTH. Empty: send without authenticating.",
    ),
    ("smtp.password", "Password for SMTP AUTH."),
    (
        "smtp.from",
        "Sender address, e.g. \"Shardlyn <noreply@example.com>\".",
    ),
    (
        "smtp.allow_plain_remote",
        "Allow mode \"plain\" to a host that is not loopback (mail and password travel in clear).",
    ),
    (
        "smtp.ca_cert_path",
        "PEM CA certificate trusted for the SMTP server besides the public roots (a private CA).",
    ),
    (
        "smtp.max_attempts",
        "Delivery attempts per message (backoff 1 s, 2 s, 4 s...) before it is logged as failed.",
    ),
    (
        "github",
        "GitHub login (OAuth app). Disabled while client_id or client_secret is empty.",
    ),
    ("github.client_id", "Client ID of the GitHub OAuth app."),
    (
        "github.client_secret",
        "Client secret of the GitHub OAuth app.",
    ),
    ("github.authorize_url", "GitHub's authorization page."),
    ("github.token_url", "GitHub's code-for-token endpoint."),
    ("github.api_url", "GitHub's REST API base URL."),
    (
        "github.redirect_url",
        "Callback URL registered with the app. Empty: <base_url>/v1/auth/github/callback.",
    ),
    (
        "github.success_redirect",
        "Where the browser lands after login; #github_code=... is appended for POST /v1/auth/github/exchange.",
    ),
    (
        "github.timeout_secs",
        "Timeout of each request to GitHub, in seconds.",
    ),
    (
        "stripe",
        "Stripe: the API key that turns billing on, the API address and the webhook endpoint (POST /v1/webhooks/stripe, 404 while webhook_secret is empty).",
    ),
    (
        "stripe.secret_key",
        "Secret API key (sk_...); empty: billing is off and organizations are unlimited.",
    ),
    ("stripe.api_base", "Base URL of Stripe's API."),
    (
        "stripe.webhook_secret",
        "Signing secret (whsec_...) of the Stripe webhook endpoint.",
    ),
    (
        "stripe.automatic_tax",
        "Checkout computes tax with Stripe Tax.",
    ),
    (
        "stripe.timeout_secs",
        "Seconds one Stripe request may take.",
    ),
    (
        "stripe.webhook_tolerance_secs",
        "Largest accepted age of a Stripe-Signature timestamp, in seconds.",
    ),
    (
        "billing",
        "Selling servers: the grace period of unpaid organizations, suspension, termination and the reconciliation with Stripe.",
    ),
    (
        "billing.grace_days",
        "Days a past-due organization keeps its servers running before they are suspended.",
    ),
    (
        "billing.terminate_after_days",
        "Days after suspension when an unpaid organization's servers are deleted; 0 never.",
    ),
    (
        "billing.dunning_mail_interval_hours",
        "Hours between two payment reminder mails while past due.",
    ),
    (
        "billing.dunning_interval_secs",
        "Seconds between two passes of the dunning job.",
    ),
    (
        "billing.reconcile_interval_secs",
        "Seconds between two reconciliations of every subscription with Stripe.",
    ),
    (
        "billing.event_retry_secs",
        "Seconds between two retries of Stripe events that failed to apply.",
    ),
    (
        "support",
        "Support: HelpScout Beacon signing and support messages (sent to the support_email platform setting).",
    ),
    (
        "support.helpscout_secret",
        "HelpScout Beacon secret key signing users' emails. Empty: the signature route answers 404.",
    ),
    (
        "support.messages_per_hour",
        "Support messages each user may send per hour.",
    ),
    (
        "jobs",
        "Background jobs (schedules). With several replicas each run still happens once.",
    ),
    (
        "jobs.enabled",
        "Run background jobs in this process; turn off on API-only replicas.",
    ),
    (
        "jobs.poll_interval_ms",
        "Milliseconds between two looks for due schedules and requested runs.",
    ),
    (
        "jobs.upload_sweep_secs",
        "Seconds between two sweeps of expired resumable-upload records.",
    ),
    (
        "cluster",
        "Replicas sharing PostgreSQL and Redis: each forwards requests for agents held by another to that one.",
    ),
    (
        "cluster.listen",
        "Address of the replica-to-replica listener (plain HTTP/2, used only with redis_url); keep it private. Port 0 picks a free port.",
    ),
    (
        "cluster.advertise_url",
        "URL other replicas reach that listener at, e.g. http://10.0.0.5:8081. Empty: http:// and the bound address.",
    ),
    (
        "cluster.drain_ms",
        "Milliseconds a stopping replica answers new requests 503 with Retry-After before it closes (a rolling restart behind a load balancer); 0 closes at once.",
    ),
    (
        "outbound",
        "Outbound requests to user-supplied URLs (git remotes, S3 backup endpoints, file pulls) never reach loopback, private, link-local, CGNAT or cloud-metadata addresses unless allowed here.",
    ),
    (
        "outbound.allow",
        "IPs, CIDR ranges and host names they may reach anyway, e.g. [\"10.0.0.5\", \"192.168.1.0/24\", \"minio.lan\", \"*.lan\"]; a metadata address (169.254.169.254) needs its exact IP. Env: SHARDLYN_OUTBOUND__ALLOW='[\"10.0.0.5\"]'. `shardlyn up` gives it to its local agent.",
    ),
    (
        "integrations",
        "Notification integrations (Discord, Slack, Telegram, email, Teams, ntfy, webhooks): delivery retries.",
    ),
    (
        "integrations.telegram_api_url",
        "Base URL of the Telegram Bot API; messages go to {base}/bot<token>/sendMessage.",
    ),
    (
        "integrations.retry_base_ms",
        "Milliseconds before the first retry of a failed delivery, doubled on each attempt (a Retry-After answer waits at least that long).",
    ),
    (
        "integrations.retry_max_ms",
        "Longest wait between two attempts of a delivery, in milliseconds.",
    ),
    (
        "integrations.max_attempts",
        "Attempts before a delivery is given up and its integration marked unhealthy.",
    ),
    (
        "integrations.give_up_after_secs",
        "Seconds after which a delivery still failing is given up, whatever its attempts.",
    ),
    (
        "cloud",
        "Cloud providers' APIs that cloud credentials are verified against (a private endpoint or a local fake may stand in); calls go through the outbound guard.",
    ),
    ("cloud.hetzner_api_url", "Hetzner Cloud API base URL."),
    ("cloud.cloudflare_api_url", "Cloudflare API v4 base URL."),
    ("cloud.steam_api_url", "Steam Web API base URL."),
    (
        "cloud.aws_sts_url",
        "AWS STS endpoint for GetCallerIdentity. Empty: https://sts.<region>.amazonaws.com.",
    ),
    (
        "cloud.gcp_token_url",
        "Google OAuth token endpoint. Empty: the token_uri of the service account key.",
    ),
    (
        "cloud.oci_identity_url",
        "OCI Identity API base URL; {region} is replaced by the credential's region.",
    ),
    (
        "cloud.timeout_secs",
        "Seconds a credential's verify call may take.",
    ),
    (
        "provision",
        "Cloud nodes made with Terraform, and the agent binary new nodes download from this panel.",
    ),
    (
        "provision.terraform_bin",
        "The terraform binary provisioning runs (a bare name is looked up on PATH).",
    ),
    (
        "provision.terraform_cli_config",
        "A Terraform CLI configuration for every run (a provider mirror); unset: Terraform's defaults.",
    ),
    (
        "provision.work_dir",
        "Where provisioning runs get their working directories; unset: {data_dir}/provision.",
    ),
    (
        "provision.lease_secs",
        "Seconds a provisioning run's lease and state lock last unless renewed.",
    ),
    (
        "provision.run_timeout_secs",
        "Seconds one Terraform command may take.",
    ),
    (
        "provision.agent_binary",
        "The x86_64 shardlyn-agent served to new nodes; unset: the one beside this executable.",
    ),
    (
        "dns",
        "DNS records at Cloudflare, PowerDNS or RFC 2136 servers, and automatic DNS for servers.",
    ),
    (
        "dns.owner_id",
        "This panel's name in the ownership markers of its records (panels sharing a zone need different ones).",
    ),
    (
        "dns.reconcile_interval_secs",
        "Seconds between DNS reconciliation passes (drift repaired, failed changes retried).",
    ),
    (
        "dns.reserved_names",
        "Subdomains a server's owner may not choose.",
    ),
    (
        "metrics",
        "Prometheus metrics at GET /metrics (see docs/operations/monitoring.md).",
    ),
    (
        "metrics.token",
        "Bearer token scrapers must send (Authorization: Bearer <token>), at least 16 characters; empty: /metrics is public. Env: SHARDLYN_METRICS__TOKEN.",
    ),
    (
        "system_backup",
        "The panel's own backup: database, generated keys and TLS CA, encrypted (age) to a key you hold.",
    ),
    (
        "system_backup.schedule",
        "Cron expression (UTC) for scheduled backups, e.g. \"0 3 * * *\". Empty: only `shardlyn backup`.",
    ),
    (
        "system_backup.keep",
        "Archives kept at the destination; older ones are deleted after each successful run.",
    ),
    (
        "system_backup.dir",
        "Directory for the archives when s3_bucket is empty. Unset: <data_dir>/system-backups.",
    ),
    (
        "system_backup.s3_bucket",
        "Send the archives to this S3 bucket instead of the directory.",
    ),
    (
        "system_backup.s3_endpoint",
        "S3 endpoint URL (MinIO, R2, Wasabi...). Empty: AWS.",
    ),
    ("system_backup.s3_region", "S3 region. Empty: us-east-1."),
    (
        "system_backup.s3_prefix",
        "Key prefix of the archives in the bucket.",
    ),
    ("system_backup.s3_access_key_id", "S3 access key id."),
    ("system_backup.s3_secret_access_key", "S3 secret key."),
    (
        "system_backup.passphrase",
        "Encrypt the archives to this passphrase (at least 12 characters; age scrypt).",
    ),
    (
        "system_backup.recipients",
        "Encrypt the archives to these age public keys (age1...). Keep the identities off the panel.",
    ),
    (
        "system_backup.pg_dump",
        "pg_dump binary. Unset: the newest /usr/lib/postgresql/*/bin/pg_dump, then PATH.",
    ),
];

/// A commented TOML file holding every setting at its default.
#[must_use]
pub fn example_toml() -> String {
    let value = toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Integer(0));
    let table = value.as_table().cloned().unwrap_or_default();
    let mut out = String::from(
        "# Shardlyn panel configuration. Every setting is shown at its default.\n\
         # Precedence: defaults < this file (--config) < SHARDLYN_* environment\n\
         # (SHARDLYN_TLS__MODE=file for tls.mode) < command-line flags.\n\n",
    );
    let mut sections = Vec::new();
    for (key, comment) in DOCS {
        if key.contains('.') {
            continue;
        }
        match table.get(*key) {
            Some(toml::Value::Table(_)) => sections.push(*key),
            Some(v) => out.push_str(&format!("# {comment}\n{key} = {v}\n\n")),
            None => out.push_str(&format!("# {comment}\n# {key} =\n\n")),
        }
    }
    for section in sections {
        let comment = DOCS.iter().find(|(k, _)| *k == section).map_or("", |d| d.1);
        out.push_str(&format!("# {comment}\n[{section}]\n"));
        let sub = table.get(section).and_then(toml::Value::as_table);
        for (key, comment) in DOCS {
            let Some(leaf) = key.strip_prefix(section).and_then(|k| k.strip_prefix('.')) else {
                continue;
            };
            match sub.and_then(|t| t.get(leaf)) {
                Some(v) => out.push_str(&format!("# {comment}\n{leaf} = {v}\n")),
                None => out.push_str(&format!("# {comment}\n# {leaf} = \"\"\n")),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_keys(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = value {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_table() {
                    out.push(key.clone());
                }
                leaf_keys(&key, v, out);
                if !v.is_table() {
                    out.push(key);
                }
            }
        }
    }

    #[test]
    fn every_setting_is_documented() {
        let value = toml::Value::try_from(Config::default()).expect("serializes");
        let mut keys = Vec::new();
        leaf_keys("", &value, &mut keys);
        for key in keys {
            assert!(
                DOCS.iter().any(|(k, _)| *k == key),
                "setting {key} has no comment in config::DOCS"
            );
        }
    }

    #[test]
    fn example_parses_back_to_the_defaults() {
        let text = example_toml();
        let parsed: Config = toml::from_str(&text).expect("example is valid TOML");
        assert_eq!(parsed, Config::default());
        assert!(text.contains("# Address and port"));
        assert!(text.contains("[rate_limit]"));
    }

    #[test]
    #[expect(clippy::result_large_err, reason = "figment::Jail's closure signature")]
    fn env_overrides_file_and_cli_overrides_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "shardlyn.toml",
                "listen = \"127.0.0.1:9000\"\nlog_level = \"debug\"\n[auth]\nregistration = \"open\"\n\
                 [smtp]\nhost = \"smtp.example.com\"\nfrom = \"panel@example.com\"\n",
            )?;
            jail.set_env("SHARDLYN_LOG_LEVEL", "warn");
            jail.set_env("SHARDLYN_AUTH__PASSWORD_MIN_LENGTH", "12");
            jail.set_env("SHARDLYN_ADMIN_PASSWORD", "not-a-setting");
            jail.set_env("SHARDLYN_TEST_POSTGRES_URL", "postgres://elsewhere");
            jail.set_env(
                "SHARDLYN_OUTBOUND__ALLOW",
                r#"["10.0.0.5", "192.168.1.0/24", "minio.lan"]"#,
            );
            let cli = CliOverrides {
                listen: Some("127.0.0.1:0".parse().expect("addr")),
                data_dir: None,
            };
            let config =
                Config::load(Some(Path::new("shardlyn.toml")), &cli).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.port(), 0);
            assert_eq!(config.log_level, "warn");
            assert_eq!(config.auth.registration, Registration::Open);
            assert_eq!(config.auth.password_min_length, 12);
            assert_eq!(
                config.outbound.allow_list(),
                ["10.0.0.5", "192.168.1.0/24", "minio.lan"]
            );
            jail.set_env("SHARDLYN_OUTBOUND__ALLOW", r#"["10.0.0.0/33"]"#);
            let err = Config::load(None, &CliOverrides::default()).expect_err("bad entry");
            assert!(format!("{err:#}").contains("10.0.0.0/33"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    #[expect(clippy::result_large_err, reason = "figment::Jail's closure signature")]
    fn open_registration_without_smtp_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SHARDLYN_AUTH__REGISTRATION", "open");
            let err = Config::load(None, &CliOverrides::default())
                .expect_err("open registration needs SMTP")
                .to_string();
            assert!(err.contains("smtp.host") && err.contains("open"), "{err}");
            jail.set_env("SHARDLYN_SMTP__HOST", "smtp.example.com");
            jail.set_env("SHARDLYN_SMTP__FROM", "panel@example.com");
            Config::load(None, &CliOverrides::default()).map_err(|e| e.to_string())?;
            Ok(())
        });
    }

    #[test]
    #[expect(clippy::result_large_err, reason = "figment::Jail's closure signature")]
    fn the_metrics_token_comes_from_the_file_or_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "shardlyn.toml",
                "[metrics]\ntoken = \"from-the-file-0123456789\"\n",
            )?;
            let file = Some(Path::new("shardlyn.toml"));
            let config = Config::load(file, &CliOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.metrics.token.expose(), "from-the-file-0123456789");
            assert!(!format!("{config:?}").contains("from-the-file"), "redacted");
            jail.set_env("SHARDLYN_METRICS__TOKEN", "from-the-env-0123456789");
            let config = Config::load(file, &CliOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.metrics.token.expose(), "from-the-env-0123456789");
            for bad in ["short", "has a space 0123456789"] {
                jail.set_env("SHARDLYN_METRICS__TOKEN", bad);
                let err = Config::load(None, &CliOverrides::default()).expect_err(bad);
                assert!(err.to_string().contains("metrics.token"), "{err}");
            }
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = Config {
            jwt_secret: Secret("hunter2hunter2".into()),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn tls_auto_is_plain_on_loopback_only() {
        let mut config = Config::default();
        assert!(!config.serves_tls());
        config.listen = "0.0.0.0:8443".parse().expect("addr");
        assert!(config.serves_tls());
        config.tls.mode = TlsMode::Off;
        assert!(!config.serves_tls());
    }
}

#[cfg(test)]
mod layering {
    /// The configuration is a leaf: every area reads it, it reads no area (only std and
    /// external crates), so loading and checking it needs nothing else of the panel.
    #[test]
    fn the_configuration_uses_no_other_module_of_the_panel() {
        let sources = [
            ("config.rs", include_str!("config.rs")),
            ("config/net.rs", include_str!("config/net.rs")),
            ("config/smtp.rs", include_str!("config/smtp.rs")),
            (
                "config/system_backup.rs",
                include_str!("config/system_backup.rs"),
            ),
        ];
        for (file, text) in sources {
            assert!(
                !text.contains(concat!("crate", "::")),
                "{file} reaches into another module of the panel"
            );
        }
    }
}
