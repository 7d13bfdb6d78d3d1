//! Node CRUD, cordon and allocation settings; who may reach which node (and which of its
//! containers).

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::store::{self, Node, PortRange};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, perm};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::orgs::validate_name;
use crate::state::AppState;

/// The nodes of the scoped organization.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<OrgQuery>,
) -> AppResult<AppJson<Vec<Node>>> {
    let member = scoped(&state, &user, q.organization_id.as_deref(), "nodes.read").await?;
    Ok(AppJson(store::list(&state.db.pool, &member.org_id).await?))
}

/// One node.
pub async fn get(
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesRead>,
) -> AppResult<AppJson<Node>> {
    Ok(AppJson(node))
}

/// What an update changes: a field left out stays as it is; `null` puts the allocation
/// settings back to the panel's defaults.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNode {
    #[serde(default)]
    name: Option<String>,
    /// The address new servers' ports are allocated on, e.g. `10.0.0.7`.
    #[serde(default, deserialize_with = "present")]
    allocation_ip: Option<Option<String>>,
    /// The range automatic ports of new servers come from (1024-65535), e.g.
    /// `{"start": 27000, "end": 27999}`: agents that share a machine need ranges of
    /// their own.
    #[serde(default, deserialize_with = "present")]
    port_range: Option<Option<PortRange>>,
    /// The node's public IPv4 address, what its servers' automatic A records point at,
    /// e.g. `203.0.113.10`; `null` clears it. Must be a public unicast address.
    #[serde(default, deserialize_with = "present")]
    public_ipv4: Option<Option<String>>,
    /// The node's public IPv6 address, for AAAA records, e.g. `2001:db8::10`; `null`
    /// clears it. Must be a global unicast address.
    #[serde(default, deserialize_with = "present")]
    public_ipv6: Option<Option<String>>,
}

/// A field that was sent, `null` or not.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Renames a node, sets its allocation address and port range and its public
/// addresses (a change of those updates the DNS records that follow the node).
pub async fn update(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
    AppJson(body): AppJson<UpdateNode>,
) -> AppResult<AppJson<Node>> {
    // Everything is checked before anything is written.
    let name = body.name.as_deref().map(validate_name).transpose()?;
    let ip = match body.allocation_ip {
        None => node.allocation_ip.clone(),
        Some(None) => None,
        Some(Some(ip)) => Some(valid_ip(&ip)?),
    };
    let range = match body.port_range {
        None => node.port_range,
        Some(None) => None,
        Some(Some(range)) => Some(valid_range(range)?),
    };
    let ipv4 = match body.public_ipv4 {
        None => node.public_ipv4.clone(),
        Some(None) => None,
        Some(Some(ip)) => Some(public_ipv4(&ip).ok_or_else(|| {
            AppError::invalid_field(
                "public_ipv4",
                format!(
                    "public_ipv4: `{}` is not a public unicast IPv4 address",
                    ip.trim()
                ),
            )
        })?),
    };
    let ipv6 = match body.public_ipv6 {
        None => node.public_ipv6.clone(),
        Some(None) => None,
        Some(Some(ip)) => Some(public_ipv6(&ip).ok_or_else(|| {
            AppError::invalid_field(
                "public_ipv6",
                format!(
                    "public_ipv6: `{}` is not a global unicast IPv6 address",
                    ip.trim()
                ),
            )
        })?),
    };
    let pool = &state.db.pool;
    if let Some(name) = name {
        store::rename(pool, &node.id, &name).await?;
    }
    let mut updated = store::set_allocation(pool, &node.id, ip.as_deref(), range).await?;
    if ipv4 != node.public_ipv4 || ipv6 != node.public_ipv6 {
        updated =
            store::set_public_addresses(pool, &node.id, ipv4.as_deref(), ipv6.as_deref()).await?;
        crate::dns::auto::node_changed(&state, &node.id).await;
    }
    Ok(AppJson(reloaded(updated)?))
}

/// `text` as a public unicast IPv4 address in canonical form, or `None`: private,
/// shared (CGNAT), loopback, link-local, unspecified, multicast, reserved and
/// broadcast addresses are refused. The RFC 5737 documentation ranges
/// (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) are accepted, since tests and
/// documentation use them.
#[must_use]
pub fn public_ipv4(text: &str) -> Option<String> {
    let ip: Ipv4Addr = text.trim().parse().ok()?;
    let [a, b, c, _] = ip.octets();
    let refused = ip.is_unspecified()
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || a == 0 // "this network"
        || a >= 240 // reserved, and the broadcast address
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)); // benchmarking (RFC 2544)
    (!refused || ip.is_documentation()).then(|| ip.to_string())
}

/// `text` as a global unicast IPv6 address in canonical form, or `None`: only the
/// global unicast space 2000::/3 is accepted (which holds the documentation prefix
/// 2001:db8::/32), so the unspecified and loopback addresses, IPv4-mapped,
/// unique-local, link-local and multicast addresses are refused.
#[must_use]
pub fn public_ipv6(text: &str) -> Option<String> {
    let ip: Ipv6Addr = text.trim().parse().ok()?;
    (ip.segments()[0] & 0xe000 == 0x2000).then(|| ip.to_string())
}

fn valid_ip(ip: &str) -> AppResult<String> {
    ip.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| {
            AppError::invalid_field("allocation_ip", "allocation_ip must be an IP address")
        })
}

fn valid_range(range: PortRange) -> AppResult<PortRange> {
    if range.start < 1024 || range.start > range.end {
        return Err(AppError::invalid_field(
            "port_range",
            "port_range must run from start to end, both between 1024 and 65535",
        ));
    }
    Ok(range)
}

/// The node after an update of its row (gone meanwhile: 404).
fn reloaded(node: Option<Node>) -> AppResult<Node> {
    node.ok_or_else(|| AppError::not_found("node"))
}

/// Deletes a node and cuts its tunnel; its agent token stops working. A node that
/// still has instances is kept (409), and so is one the panel provisioned (409: its
/// provision request destroys it with its cloud server).
pub async fn delete(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesDelete>,
) -> AppResult<StatusCode> {
    let id = node.id;
    if let Some(request) = crate::provision::store::for_node(&state.db.pool, &id).await? {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "PROVISIONED_NODE",
            format!(
                "the panel provisioned this node: destroy it with DELETE /v1/provision/{} \
                 so its cloud server goes too",
                request.id
            ),
        ));
    }
    let instances = crate::instances::store::count_on_node(&state.db.pool, &id).await?;
    if instances > 0 {
        return Err(AppError::Conflict(format!(
            "the node still has {instances} instance(s): delete or move them first"
        )));
    }
    // A cloud node's costs stop here; its ledger entries stay (cloud costs).
    crate::billing::costs::on_node_deleted(&state, &id, state.clock.now_ms()).await;
    store::delete(&state.db.pool, &id).await?;
    state.tunnels.disconnect(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_cordon(state: &AppState, node: &Node, on: bool) -> AppResult<AppJson<Node>> {
    Ok(AppJson(reloaded(
        store::set_cordoned(&state.db.pool, &node.id, on).await?,
    )?))
}

/// Stops placing new instances on a node.
pub async fn cordon(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
) -> AppResult<AppJson<Node>> {
    set_cordon(&state, &node, true).await
}

/// Allows placement again.
pub async fn uncordon(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
) -> AppResult<AppJson<Node>> {
    set_cordon(&state, &node, false).await
}

/// The caller's reach on a node's agent: `all` for platform admins, so the agent reaches
/// every container and process of the node; everybody else reaches only the containers
/// Shardlyn created there and the processes inside them.
#[must_use]
pub fn node_scope(user: &CurrentUser) -> shardlyn_proto::agent_api::Scope {
    shardlyn_proto::agent_api::Scope {
        all: user.user.is_admin,
    }
}

#[cfg(test)]
mod tests {
    use super::{public_ipv4, public_ipv6};

    #[test]
    fn only_public_addresses_pass() {
        for ip in [
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "::1",
            "2001:db8::1",
            "1.2.3",
            "",
        ] {
            assert_eq!(public_ipv4(ip), None, "{ip}");
        }
        assert_eq!(
            public_ipv4(" 203.0.113.10 ").as_deref(),
            Some("203.0.113.10")
        );
        assert_eq!(public_ipv4("192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(public_ipv4("198.51.100.7").as_deref(), Some("198.51.100.7"));
        assert_eq!(public_ipv4("1.1.1.1").as_deref(), Some("1.1.1.1"));
        for ip in [
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:1.1.1.1",
            "1.1.1.1",
            "nonsense",
        ] {
            assert_eq!(public_ipv6(ip), None, "{ip}");
        }
        assert_eq!(
            public_ipv6("2001:DB8:0::10").as_deref(),
            Some("2001:db8::10")
        );
        assert_eq!(public_ipv6("2a01:4f8::1").as_deref(), Some("2a01:4f8::1"));
    }
}
