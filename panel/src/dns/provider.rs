//! The DNS provider trait and the record model every provider speaks.
//!
//! A provider is read and written by *record set* (RRset): every record of one name and
//! type. That is PowerDNS' unit (`changetype: REPLACE`), RFC 2136's (delete the set, add
//! its records, in one UPDATE message) and what the Cloudflare client builds from its
//! per-record ids (a batch of deletes and posts). Names are fully qualified, lower case,
//! without the trailing dot; contents are as in a zone file, without the trailing dot
//! on names inside them (CNAME and SRV targets): `203.0.113.10`, `mc.example.com`,
//! `0 5 25565 mc.example.com`, and TXT as its text, unquoted.
//!
//! [`Provider`] is the one type the rest of the panel holds: an enum over the clients
//! (`cloudflare`, `powerdns`, `rfc2136`), each of which implements [`DnsProvider`].
//! Every call a provider makes is counted in [`Calls`] (the reconciler's benchmark
//! reports them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A zone as the provider names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Zone {
    /// The provider's id of the zone: Cloudflare's zone id, PowerDNS' canonical name
    /// (`example.com.`), the zone's name for RFC 2136.
    pub id: String,
    /// The zone's name, lower case, without the trailing dot (`example.com`).
    pub name: String,
}

/// Every record of one name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordSet {
    /// Fully qualified, lower case, no trailing dot (`mc.example.com`).
    pub name: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`, `SRV`, `MX`, `NS`, `SOA`... (upper case).
    #[serde(rename = "type")]
    pub record_type: String,
    pub ttl: u32,
    /// One entry per record, as in a zone file (see the module's note), sorted.
    pub contents: Vec<String>,
}

impl RecordSet {
    /// The set with its contents sorted (the order providers answer in varies).
    #[must_use]
    pub fn normalized(mut self) -> Self {
        self.name = self.name.trim_end_matches('.').to_ascii_lowercase();
        self.record_type = self.record_type.to_ascii_uppercase();
        self.contents.sort();
        self.contents.dedup();
        self
    }
}

/// One change to a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Make the set exactly this (created when absent, replaced when present).
    Upsert(RecordSet),
    /// Remove every record of this name and type (nothing when there is none).
    Delete { name: String, record_type: String },
}

impl Change {
    /// The name and type the change is about.
    #[must_use]
    pub fn key(&self) -> (&str, &str) {
        match self {
            Self::Upsert(set) => (&set.name, &set.record_type),
            Self::Delete { name, record_type } => (name, record_type),
        }
    }
}

/// What went wrong at a provider.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// It could not be reached (refused, timed out, blocked by the outbound guard).
    #[error("{provider} could not be reached: {message}")]
    Unreachable {
        provider: &'static str,
        message: String,
    },
    /// It answered with an error; `message` is what it said.
    #[error("{provider} refused: {message}")]
    Refused {
        provider: &'static str,
        /// The HTTP status (or, for RFC 2136, none: the DNS RCODE is in the message).
        status: Option<u16>,
        message: String,
    },
    /// The zone does not exist there (or this credential may not see it).
    #[error("{provider} has no zone {zone}")]
    NoZone {
        provider: &'static str,
        zone: String,
    },
}

impl From<ProviderError> for AppError {
    fn from(e: ProviderError) -> Self {
        match &e {
            ProviderError::Unreachable { .. } => AppError::coded(
                StatusCode::BAD_GATEWAY,
                "DNS_PROVIDER_UNREACHABLE",
                e.to_string(),
            ),
            ProviderError::Refused { .. } => {
                AppError::coded(StatusCode::BAD_GATEWAY, "DNS_PROVIDER_ERROR", e.to_string())
            }
            ProviderError::NoZone { .. } => AppError::NotFound(e.to_string()),
        }
    }
}

/// How many requests (HTTP calls, DNS messages) providers were sent, by kind.
#[derive(Debug, Default)]
pub struct Calls {
    /// Zone lists.
    pub zones: AtomicU64,
    /// Record lists (one per page, or one zone transfer).
    pub lists: AtomicU64,
    /// Writes (one per PATCH, batch or UPDATE message).
    pub writes: AtomicU64,
}

impl Calls {
    pub fn zone_list(&self) {
        self.zones.fetch_add(1, Ordering::Relaxed);
    }
    pub fn record_list(&self) {
        self.lists.fetch_add(1, Ordering::Relaxed);
    }
    pub fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
    /// `(zone lists, record lists, writes)` so far.
    #[must_use]
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.zones.load(Ordering::Relaxed),
            self.lists.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

/// What every DNS provider does.
pub trait DnsProvider: Send + Sync {
    /// The zones the credential may manage.
    fn zones(&self) -> impl Future<Output = Result<Vec<Zone>, ProviderError>> + Send;

    /// Every record set of `zone` (all pages; for RFC 2136 a zone transfer), normalized.
    fn records(
        &self,
        zone: &Zone,
    ) -> impl Future<Output = Result<Vec<RecordSet>, ProviderError>> + Send;

    /// Applies `changes` to `zone`, as one operation where the provider has one
    /// (a PowerDNS PATCH, a Cloudflare batch, an RFC 2136 UPDATE); all or nothing as far
    /// as the provider allows.
    fn apply(
        &self,
        zone: &Zone,
        changes: &[Change],
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
}

/// A provider client, built from a credential by [`super::client`].
pub enum Provider {
    Cloudflare(super::cloudflare::Client),
    PowerDns(super::powerdns::Client),
    Rfc2136(super::rfc2136::Client),
}

impl Provider {
    /// The provider's id, as credentials name it.
    #[must_use]
    pub fn id(&self) -> &'static str {
        match self {
            Self::Cloudflare(_) => "cloudflare",
            Self::PowerDns(_) => "powerdns",
            Self::Rfc2136(_) => "rfc2136",
        }
    }
}

impl DnsProvider for Provider {
    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        match self {
            Self::Cloudflare(c) => c.zones().await,
            Self::PowerDns(c) => c.zones().await,
            Self::Rfc2136(c) => c.zones().await,
        }
    }

    async fn records(&self, zone: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        match self {
            Self::Cloudflare(c) => c.records(zone).await,
            Self::PowerDns(c) => c.records(zone).await,
            Self::Rfc2136(c) => c.records(zone).await,
        }
    }

    async fn apply(&self, zone: &Zone, changes: &[Change]) -> Result<(), ProviderError> {
        if changes.is_empty() {
            return Ok(());
        }
        match self {
            Self::Cloudflare(c) => c.apply(zone, changes).await,
            Self::PowerDns(c) => c.apply(zone, changes).await,
            Self::Rfc2136(c) => c.apply(zone, changes).await,
        }
    }
}

/// What a provider client is built with besides its credential's fields.
#[derive(Clone)]
pub struct Context {
    /// The outbound guard every address goes through.
    pub outbound: shardlyn_net::outbound::Outbound,
    /// How long one request may take.
    pub timeout: std::time::Duration,
    /// Counted calls (shared with whoever wants the numbers).
    pub calls: Arc<Calls>,
}
