//! DNS records and automatic DNS for game servers (issue 18): `/v1/dns/*`.
//!
//! - `provider`: the [`DnsProvider`] trait every provider implements, by record set,
//!   and [`Provider`], the enum the panel holds; `cloudflare` (API v4), `powerdns`
//!   (the Authoritative server's HTTP API) and `rfc2136` (dynamic updates signed with
//!   TSIG, records read by a zone transfer) are the clients.
//! - `names`: record names, contents per type and TTLs, checked with the field named.
//! - `owner`: the ownership markers (`_shardlyn-owner.<name>` TXT records) that keep
//!   the panel off records it did not make.
//! - `store`: SQL of `dns_records` and `dns_auto_configs`.
//! - `handlers`: zones and records from the provider, records CRUD.
//! - `auto`: auto-DNS (a server's A/AAAA and SRV records follow it).
//! - `reconcile`: the job that repairs drift and retries what a provider refused.

pub mod auto;
pub mod cloudflare;
pub mod handlers;
pub mod names;
pub mod owner;
pub mod powerdns;
pub mod provider;
pub mod reconcile;
pub mod rfc2136;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

pub use provider::{Change, DnsProvider, Provider, ProviderError, RecordSet, Zone};

use crate::credentials::providers::Parts;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The credential providers that are DNS providers.
pub const PROVIDERS: &[&str] = &["cloudflare", "powerdns", "rfc2136"];

/// The client of a DNS credential of `provider` with fields `parts`.
///
/// # Errors
/// 400 `credential_id` when the credential is not a DNS provider's; 400 naming the
/// credential's field when it cannot make a client.
pub fn client(state: &AppState, provider: &str, parts: &Parts) -> AppResult<Provider> {
    let ctx = provider::Context {
        outbound: state.config.outbound.clone(),
        timeout: Duration::from_secs(state.config.cloud.timeout_secs.max(1)),
        calls: Arc::clone(&state.dns_calls),
    };
    Ok(match provider {
        "cloudflare" => Provider::Cloudflare(cloudflare::Client::new(ctx, parts, &state.config)?),
        "powerdns" => Provider::PowerDns(powerdns::Client::new(ctx, parts, &state.config)?),
        "rfc2136" => Provider::Rfc2136(rfc2136::Client::new(ctx, parts, &state.config)?),
        other => {
            return Err(AppError::invalid_field(
                "credential_id",
                format!(
                    "a {other} credential is not a DNS provider's (cloudflare, powerdns or rfc2136)"
                ),
            ));
        }
    })
}

/// The verify call of a PowerDNS or RFC 2136 credential: its zones, then (RFC 2136)
/// a zone transfer of the first, which proves the TSIG key.
pub async fn verify(
    state: &AppState,
    provider: &str,
    parts: &Parts,
) -> crate::credentials::providers::Verified {
    use crate::credentials::providers::Verified;
    let client = match client(state, provider, parts) {
        Ok(c) => c,
        Err(e) => {
            return Verified {
                ok: false,
                status: None,
                message: e.to_string(),
            };
        }
    };
    let outcome = async {
        let zones = client.zones().await?;
        if let (Provider::Rfc2136(_), Some(first)) = (&client, zones.first()) {
            let sets = client.records(first).await?;
            return Ok::<_, ProviderError>(format!(
                "the TSIG key transfers {} ({} record sets)",
                first.name,
                sets.len()
            ));
        }
        Ok(format!(
            "{} zone{} visible",
            zones.len(),
            if zones.len() == 1 { "" } else { "s" }
        ))
    }
    .await;
    match outcome {
        Ok(message) => Verified {
            ok: true,
            status: Some(200),
            message,
        },
        Err(e) => Verified {
            ok: false,
            status: match &e {
                ProviderError::Refused { status, .. } => *status,
                _ => None,
            },
            message: e.to_string(),
        },
    }
}

/// The DNS routes.
pub fn router() -> crate::routes::Routes {
    use crate::routes::{Access, Routes};
    const PROVIDER: (u16, &str) = (
        502,
        "The DNS provider refused or could not be reached (its message)",
    );
    const CLASH: (u16, &str) = (
        409,
        "DNS_RECORD_CLASH: a record the panel did not make holds the name; DNS_RECORD_EXISTS",
    );
    Routes::new("dns")
        .get("/v1/dns/zones", Access::User, "List zones", handlers::zones)
        .errors(&[(404, "No such credential"), PROVIDER])
        .get(
            "/v1/dns/zones/{zoneId}/records",
            Access::User,
            "List zone records",
            handlers::zone_records,
        )
        .errors(&[(404, "No such credential or zone"), PROVIDER])
        .get(
            "/v1/dns/records",
            Access::User,
            "List all records",
            handlers::list,
        )
        .post(
            "/v1/dns/records",
            Access::User,
            "Create record",
            handlers::create,
        )
        .errors(&[(404, "No such credential or zone"), CLASH, PROVIDER])
        .get(
            "/v1/dns/records/{id}",
            Access::User,
            "Get record",
            handlers::get,
        )
        .put(
            "/v1/dns/records/{id}",
            Access::User,
            "Update record",
            handlers::update,
        )
        .errors(&[CLASH, PROVIDER])
        .delete(
            "/v1/dns/records/{id}",
            Access::User,
            "Delete record",
            handlers::delete,
        )
        .errors(&[PROVIDER])
        .get(
            "/v1/dns/auto-config",
            Access::User,
            "Get auto-DNS config",
            auto::get_config,
        )
        .put(
            "/v1/dns/auto-config",
            Access::User,
            "Update auto-DNS config",
            auto::put_config,
        )
        .errors(&[(404, "No such credential or zone"), PROVIDER])
}
