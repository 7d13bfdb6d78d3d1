//! The one guarded resolver for every user-supplied outbound URL (git remotes, S3
//! endpoints, file pulls, and any integration URL to come).
//!
//! [`Outbound`] holds the operator's allow list (`[outbound] allow` in the panel's
//! config and the agent's `settings.toml`, or `SHARDLYN_OUTBOUND__ALLOW` as a JSON list).
//! [`Outbound::resolve`] resolves a host and refuses it when any of its addresses is not
//! public ([`ranges::classify`]: loopback, private, link-local, CGNAT, unspecified,
//! multicast, broadcast, documentation, reserved, IPv4-mapped/NAT64/6to4 forms of
//! those, and cloud metadata) unless an entry allows it:
//!
//! * an IP or CIDR entry allows the addresses it covers;
//! * a host-name entry (`minio.lan`, `*.lan`) allows whatever that name resolves to;
//! * a cloud-metadata address (169.254.169.254, fd00:ec2::254...) is allowed only by an
//!   entry naming exactly that address, never by a range or a host name; the metadata
//!   host names (`metadata.google.internal`) are refused before any lookup unless listed.
//!
//! It returns the checked socket addresses: callers connect to exactly those
//! ([`Checked::pin`], [`PinnedConnector`]) and follow no redirect, so a second DNS
//! answer cannot send the request elsewhere (no rebinding window).

mod allow;
#[cfg(feature = "object-store")]
mod connector;
pub mod ranges;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use allow::Entry;
pub use allow::normalize_host;
#[cfg(feature = "object-store")]
pub use connector::PinnedConnector;
pub use ranges::Blocked;

/// Longest a host name lookup may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an outbound request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The host is or resolves to an address that is not allowed: 422 `OUTBOUND_DENIED`.
    #[error("{}", denied_message(host, target, *reason))]
    Denied {
        /// The host as given.
        host: String,
        /// The refused address (or the host name itself for a metadata name).
        target: String,
        reason: Blocked,
    },
    /// The host name does not resolve: 422 `OUTBOUND_UNRESOLVABLE`.
    #[error("cannot resolve {host}: {detail}")]
    Unresolvable { host: String, detail: String },
    /// The URL is unusable (scheme, no host): 422 `VALIDATION_ERROR`.
    #[error("{0}")]
    InvalidUrl(String),
}

fn denied_message(host: &str, target: &str, reason: Blocked) -> String {
    let what = if host == target {
        format!("{host} is {reason}")
    } else {
        format!("{host} resolves to {target}, {reason}")
    };
    format!(
        "refusing to connect: {what}; an operator can allow it with [outbound] allow \
         (SHARDLYN_OUTBOUND__ALLOW)"
    )
}

impl OutboundError {
    /// The stable error code of the JSON envelope.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Denied { .. } => "OUTBOUND_DENIED",
            Self::Unresolvable { .. } => "OUTBOUND_UNRESOLVABLE",
            Self::InvalidUrl(_) => "VALIDATION_ERROR",
        }
    }
}

/// An allow-list entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbound.allow: {0}")]
pub struct AllowListError(String);

/// The outbound policy: the operator's allow list, parsed. Deserializes from (and
/// serializes to) the `[outbound]` table, `{ allow = [...] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawOutbound", into = "RawOutbound")]
pub struct Outbound {
    allow: Vec<String>,
    entries: Vec<Entry>,
}

/// The `[outbound]` table as written.
#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawOutbound {
    allow: Vec<String>,
}

impl TryFrom<RawOutbound> for Outbound {
    type Error = AllowListError;
    fn try_from(raw: RawOutbound) -> Result<Self, Self::Error> {
        Self::new(raw.allow)
    }
}

impl From<Outbound> for RawOutbound {
    fn from(o: Outbound) -> Self {
        Self { allow: o.allow }
    }
}

/// A host resolved and checked for an http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub url: url::Url,
    /// The host, normalized (lowercase, no brackets).
    pub host: String,
    pub port: u16,
    /// The allowed addresses to connect to (at least one).
    pub addrs: Vec<SocketAddr>,
}

impl Outbound {
    /// A policy allowing the entries of `allow` besides the public internet.
    ///
    /// # Errors
    /// An entry that is neither an IP address, a CIDR range nor a host name.
    pub fn new(allow: Vec<String>) -> Result<Self, AllowListError> {
        let entries = allow
            .iter()
            .map(|e| Entry::parse(e).map_err(AllowListError))
            .collect::<Result<_, _>>()?;
        Ok(Self { allow, entries })
    }

    /// The allow list as configured.
    #[must_use]
    pub fn allow_list(&self) -> &[String] {
        &self.allow
    }

    /// This policy with `more` entries allowed too (duplicates skipped).
    ///
    /// # Errors
    /// As [`Outbound::new`].
    pub fn extended(&self, more: &[String]) -> Result<Self, AllowListError> {
        let mut allow = self.allow.clone();
        for e in more {
            if !allow.contains(e) {
                allow.push(e.clone());
            }
        }
        Self::new(allow)
    }

    fn names(&self, host: &str) -> bool {
        self.entries.iter().any(|e| e.names(host))
    }

    /// Checks one address reached for `host` (as given in the URL).
    ///
    /// # Errors
    /// [`OutboundError::Denied`].
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        let Some(reason) = ranges::classify(ip) else {
            return Ok(());
        };
        let exact = reason == Blocked::Metadata;
        let named = !exact && self.names(&normalize_host(host));
        if named || self.entries.iter().any(|e| e.covers(ip, exact)) {
            return Ok(());
        }
        Err(OutboundError::Denied {
            host: host.to_owned(),
            target: ranges::canonical(ip).to_string(),
            reason,
        })
    }

    /// Resolves `host` and checks every address it has; the allowed socket addresses
    /// (deduplicated, in resolver order). A host with any refused address is refused.
    ///
    /// # Errors
    /// [`OutboundError::Denied`], [`OutboundError::Unresolvable`],
    /// [`OutboundError::InvalidUrl`] for an empty host.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let name = normalize_host(host);
        if name.is_empty() {
            return Err(OutboundError::InvalidUrl("the URL has no host".into()));
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            self.check(host, ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if ranges::METADATA_HOSTS.contains(&name.as_str()) && !self.names(&name) {
            return Err(OutboundError::Denied {
                host: host.to_owned(),
                target: name,
                reason: Blocked::Metadata,
            });
        }
        let unresolvable = |detail: String| OutboundError::Unresolvable {
            host: host.to_owned(),
            detail,
        };
        let found = tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((name.as_str(), port)),
        )
        .await
        .map_err(|_| unresolvable("the lookup timed out".into()))?
        .map_err(|e| unresolvable(e.to_string()))?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in found {
            self.check(host, addr.ip())?;
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(unresolvable("no address".into()));
        }
        Ok(addrs)
    }

    /// Parses an `http`/`https` URL, resolves and checks its host.
    ///
    /// # Errors
    /// As [`Outbound::resolve`]; [`OutboundError::InvalidUrl`] for another scheme or an
    /// unparsable URL.
    pub async fn resolve_url(&self, raw: &str) -> Result<Checked, OutboundError> {
        let url = url::Url::parse(raw)
            .map_err(|e| OutboundError::InvalidUrl(format!("invalid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::InvalidUrl(
                "only http and https URLs are allowed".into(),
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => normalize_host(d),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(OutboundError::InvalidUrl("the URL has no host".into())),
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = self.resolve(&host, port).await?;
        Ok(Checked {
            url,
            host,
            port,
            addrs,
        })
    }
}

impl Outbound {
    /// The check made when a URL is saved (a git remote, an S3 endpoint): refuses a host
    /// that is or resolves to a refused address, but lets through one that does not
    /// resolve now (the machine using it may resolve it; it is checked, and pinned,
    /// again each time it is used).
    ///
    /// # Errors
    /// [`OutboundError::Denied`], [`OutboundError::InvalidUrl`].
    pub async fn precheck(&self, host: &str, port: u16) -> Result<(), OutboundError> {
        match self.resolve(host, port).await {
            Ok(_) | Err(OutboundError::Unresolvable { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// [`Outbound::precheck`] of an http(s) URL.
    ///
    /// # Errors
    /// As [`Outbound::precheck`].
    pub async fn precheck_url(&self, raw: &str) -> Result<(), OutboundError> {
        match self.resolve_url(raw).await {
            Ok(_) | Err(OutboundError::Unresolvable { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Checked {
    /// Whether the URL names an IP address rather than a host name.
    #[must_use]
    pub fn is_ip_literal(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }

    /// `builder` made to connect only to the checked addresses and to follow no
    /// redirect (a redirect answer is returned to the caller as is).
    pub fn pin(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let builder = builder.redirect(reqwest::redirect::Policy::none());
        if self.is_ip_literal() {
            builder
        } else {
            builder.resolve_to_addrs(&self.host, &self.addrs)
        }
    }
}

#[cfg(test)]
mod tests;
