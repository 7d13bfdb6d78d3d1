//! The DNS pages (web layer, issue 18). The server renders each page's frame (the
//! organization's DNS credentials, the nodes a record may follow) from `/v1/credentials`
//! and `/v1/nodes`; the page's script (`dns.js`, `dns_auto.js`) reads and writes the
//! `/v1/dns` API itself with the session, so the pages never hold a provider's answer:
//!
//! - `/dns`: the DNS credentials (Cloudflare, PowerDNS, RFC 2136; a link to
//!   `/credentials` when there is none), each with its zones read from the provider,
//!   each zone linking to its page; the records the panel manages, with their status
//!   (and last error), origin and server, an Edit link and Delete.
//! - `/dns/zones/{credential_id}/{zone_id}`: the zone's records as the provider holds
//!   them, the panel's marked, editable and deletable; the form that creates a record
//!   (SRV from four inputs) and edits one.
//! - `/dns/auto`: the organization's auto-DNS settings; the zones of the chosen
//!   credential are read from its provider.
//!
//! The server page's Address box (its DNS name for players) is `dns_address.js`, on the
//! instance page.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::WebState;
use super::error::{WebError, WebResult};
use super::kit::{self, page_user, plain};
use super::session::{Browser, WebUser};
use crate::credentials::{CredentialList, CredentialView};
use crate::nodes::store::Node;
use crate::orgs::store::OrgWithRole;

/// The credential providers that keep DNS zones.
const DNS_PROVIDERS: &[&str] = &["cloudflare", "powerdns", "rfc2136"];

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/dns", get(index))
        .route("/dns/auto", get(auto))
        .route("/dns/zones/{credential_id}/{zone_id}", get(zone))
}

/// `?organization_id=` of `/dns` and `/dns/auto`.
#[derive(Debug, Default, Deserialize)]
pub struct OrgQuery {
    #[serde(default)]
    organization_id: String,
}

/// A DNS credential as the pages list it.
#[derive(Debug, Serialize)]
struct DnsCredential {
    id: String,
    name: String,
    /// `cloudflare`, `powerdns` or `rfc2136`.
    provider: String,
    /// `Cloudflare`, `PowerDNS`, `RFC 2136`.
    provider_name: &'static str,
    is_default: bool,
}

/// The name shown for a DNS provider.
fn provider_name(provider: &str) -> &'static str {
    match provider {
        "cloudflare" => "Cloudflare",
        "powerdns" => "PowerDNS",
        "rfc2136" => "RFC 2136 (dynamic updates)",
        _ => "DNS",
    }
}

/// The DNS credentials of a credential list, in its order.
fn dns_credentials(list: CredentialList) -> Vec<DnsCredential> {
    list.data
        .into_iter()
        .filter(|c| DNS_PROVIDERS.contains(&c.provider.as_str()))
        .map(|c| DnsCredential {
            provider_name: provider_name(&c.provider),
            id: c.id,
            name: c.name,
            provider: c.provider,
            is_default: c.is_default,
        })
        .collect()
}

/// The organization's DNS credentials (empty `org`: the personal one).
async fn credentials_of(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    org: &str,
) -> WebResult<Vec<DnsCredential>> {
    let list: CredentialList = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/credentials?{}",
            kit::query(&[("organization_id", org)])
        ),
    )
    .await?;
    Ok(dns_credentials(list))
}

#[derive(Debug, Default, Serialize)]
struct IndexPage {
    credentials: Vec<DnsCredential>,
    /// The organization shown (empty: the personal one).
    organization_id: String,
    organizations: Vec<OrgWithRole>,
}

/// `GET /dns`.
pub async fn index(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<OrgQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/dns");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let org = kit::org_param(&q.organization_id);
    let page = IndexPage {
        credentials: credentials_of(&web, &browser, &user, &org).await?,
        organizations: kit::organizations(&web, &browser, &user)
            .await
            .unwrap_or_default(),
        organization_id: org,
    };
    kit::page(
        &web,
        &browser,
        &user,
        StatusCode::OK,
        ("DNS", "dns"),
        "dns_index.html.tera",
        &page,
    )
    .await
}

/// A node a record's address may follow.
#[derive(Debug, Serialize)]
struct NodeChoice {
    id: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct ZonePage {
    credential: DnsCredential,
    organization_id: String,
    /// The zone's id at the provider (a PowerDNS zone's canonical name, a Cloudflare
    /// zone's id, an RFC 2136 zone's name).
    zone_id: String,
    /// The organization's nodes (empty without `nodes.read`).
    nodes: Vec<NodeChoice>,
}

/// A zone id from the address: what a provider could have issued (letters, digits,
/// `.`, `-`, `_`), else a 404.
fn zone_param(id: &str) -> WebResult<&str> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(id)
    } else {
        Err(WebError::not_found())
    }
}

/// `GET /dns/zones/{credential_id}/{zone_id}`: a 404 for another organization's
/// credential or one that is not a DNS provider's.
pub async fn zone(
    State(web): State<WebState>,
    browser: Browser,
    Path((credential_id, zone_id)): Path<(String, String)>,
) -> WebResult<Response> {
    let credential_id = plain(&credential_id)?;
    let zone_id = zone_param(&zone_id)?;
    let here = format!(
        "/dns/zones/{credential_id}/{}",
        form_urlencoded::byte_serialize(zone_id.as_bytes()).collect::<String>()
    );
    let user = page_user!(web, browser, &here);
    let credential: CredentialView = kit::read(
        &web,
        &browser,
        &user,
        &format!("/v1/credentials/{credential_id}"),
    )
    .await?;
    let org = credential.organization_id.clone();
    let Some(credential) = dns_credentials(CredentialList {
        data: vec![credential],
    })
    .pop() else {
        return Err(WebError::not_found());
    };
    let nodes: Vec<Node> = if super::api::is_plain_id(&org) {
        kit::read(
            &web,
            &browser,
            &user,
            &format!("/v1/nodes?{}", kit::query(&[("organization_id", &org)])),
        )
        .await
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    let title = format!("DNS zone {zone_id}");
    let page = ZonePage {
        credential,
        organization_id: org,
        zone_id: zone_id.to_owned(),
        nodes: nodes
            .into_iter()
            .map(|n| NodeChoice {
                id: n.id,
                name: n.name,
            })
            .collect(),
    };
    kit::page(
        &web,
        &browser,
        &user,
        StatusCode::OK,
        (&title, "dns"),
        "dns_zone.html.tera",
        &page,
    )
    .await
}

#[derive(Debug, Default, Serialize)]
struct AutoPage {
    credentials: Vec<DnsCredential>,
    organization_id: String,
    organizations: Vec<OrgWithRole>,
}

/// `GET /dns/auto`.
pub async fn auto(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<OrgQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/dns/auto");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let org = kit::org_param(&q.organization_id);
    let page = AutoPage {
        credentials: credentials_of(&web, &browser, &user, &org).await?,
        organizations: kit::organizations(&web, &browser, &user)
            .await
            .unwrap_or_default(),
        organization_id: org,
    };
    kit::page(
        &web,
        &browser,
        &user,
        StatusCode::OK,
        ("Automatic DNS", "dns"),
        "dns_auto.html.tera",
        &page,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_from_the_address_are_what_providers_issue() {
        for ok in [
            "example.com.",
            "023e105f4ecef8ad9ca31a8372d0c353",
            "play-1.example_x.org",
        ] {
            assert!(zone_param(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a/b", "a b", "x?y=1", &"a".repeat(256)] {
            assert!(zone_param(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_dns_credentials_are_listed() {
        let c = |id: &str, provider: &str| {
            serde_json::from_value::<CredentialView>(serde_json::json!({
                "id": id, "organization_id": "o1", "name": id, "provider": provider,
                "config": {}, "hints": {}, "is_default": false, "verified_at": null,
                "verified_ok": null, "verified_message": null, "created_by": null,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}))
            .expect("credential")
        };
        let list = CredentialList {
            data: vec![
                c("a", "hetzner"),
                c("b", "powerdns"),
                c("c", "cloudflare"),
                c("d", "rfc2136"),
                c("e", "aws"),
            ],
        };
        let shown: Vec<(String, &str)> = dns_credentials(list)
            .into_iter()
            .map(|d| (d.id, d.provider_name))
            .collect();
        assert_eq!(
            shown,
            [
                ("b".to_owned(), "PowerDNS"),
                ("c".to_owned(), "Cloudflare"),
                ("d".to_owned(), "RFC 2136 (dynamic updates)")
            ]
        );
    }
}
