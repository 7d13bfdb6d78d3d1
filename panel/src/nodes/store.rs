//! SQL for `nodes` and `node_registration_tokens`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sqlx::{AnyExecutor, AnyPool};

use crate::auth::crypto::{digest_eq, sha256_hex};
use crate::db::row::Flag;
use crate::db::{now_ms, ts};
use crate::tunnel::HEARTBEAT;

/// Prefix of every agent token.
pub const AGENT_TOKEN_PREFIX: &str = "shardlyn_agent_";

/// A node as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Node {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub hostname: String,
    pub agent_version: String,
    /// `online` while heartbeats arrive, `offline` after three missed ones.
    pub status: Cow<'static, str>,
    pub cordoned: bool,
    /// The address new servers' ports are allocated on (`null`: the panel's
    /// `instances.allocation_ip`).
    pub allocation_ip: Option<String>,
    /// The range automatic ports of new servers come from (`null`: the panel's
    /// `instances.port_range_start`..`port_range_end`).
    pub port_range: Option<PortRange>,
    /// The node's public IPv4 address: what its servers' automatic A records point at
    /// (`null`: none known). Set by hand, or from the Terraform outputs of the
    /// provision request that made the node.
    pub public_ipv4: Option<String>,
    /// The node's public IPv6 address, for AAAA records (`null`: none known).
    pub public_ipv6: Option<String>,
    /// Whether the node is the platform's: shared by every organization whose plan has
    /// the `platform` pool (set by platform admins, `PUT /v1/admin/nodes/{id}/platform`).
    #[serde(default)]
    pub platform: bool,
    /// The name tenants of a platform node see (`null`: the node's name).
    #[serde(default)]
    pub public_name: Option<String>,
    /// Where a platform node is, as tenants see it, e.g. `Falkenstein, DE`.
    #[serde(default)]
    pub location: Option<String>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub last_seen_at: Option<i64>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

macro_rules! node_columns {
    () => {
        "id, org_id, name, hostname, agent_version, cordoned, connected, allocation_ip, \
         port_range_start, port_range_end, public_ipv4, public_ipv6, platform, public_name, \
         location, last_seen_at, created_at, updated_at"
    };
}

/// A node row; [`Node`]'s status is worked out from `connected` and `last_seen_at`.
#[derive(sqlx::FromRow)]
struct NodeRow {
    id: String,
    org_id: String,
    name: String,
    hostname: String,
    agent_version: String,
    #[sqlx(try_from = "Flag")]
    cordoned: bool,
    #[sqlx(try_from = "Flag")]
    connected: bool,
    allocation_ip: Option<String>,
    port_range_start: Option<i64>,
    port_range_end: Option<i64>,
    public_ipv4: Option<String>,
    public_ipv6: Option<String>,
    #[sqlx(try_from = "Flag")]
    platform: bool,
    public_name: Option<String>,
    location: Option<String>,
    last_seen_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<NodeRow> for Node {
    fn from(row: NodeRow) -> Self {
        let window = i64::try_from(HEARTBEAT.as_millis() * 3).unwrap_or(30_000);
        let online = row.connected && row.last_seen_at.is_some_and(|at| now_ms() - at < window);
        Self {
            id: row.id,
            organization_id: row.org_id,
            name: row.name,
            hostname: row.hostname,
            agent_version: row.agent_version,
            status: Cow::Borrowed(if online { "online" } else { "offline" }),
            cordoned: row.cordoned,
            allocation_ip: row.allocation_ip,
            port_range: match (row.port_range_start, row.port_range_end) {
                (Some(start), Some(end)) => Some(PortRange {
                    start: u16::try_from(start).unwrap_or(u16::MAX),
                    end: u16::try_from(end).unwrap_or(u16::MAX),
                }),
                _ => None,
            },
            public_ipv4: row.public_ipv4,
            public_ipv6: row.public_ipv6,
            platform: row.platform,
            public_name: row.public_name,
            location: row.location,
            last_seen_at: row.last_seen_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A node row with its agent token's digest.
#[derive(sqlx::FromRow)]
struct TokenNodeRow {
    #[sqlx(flatten)]
    node: NodeRow,
    token_hash: String,
}

/// Inserts a node with its agent token's digest.
pub async fn insert<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    org_id: &str,
    name: &str,
    hostname: &str,
    agent_token: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let prefix = &agent_token[AGENT_TOKEN_PREFIX.len()..AGENT_TOKEN_PREFIX.len() + 8];
    sqlx::query(
        "INSERT INTO nodes (id, org_id, name, hostname, token_prefix, token_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id)
    .bind(org_id)
    .bind(name)
    .bind(hostname)
    .bind(prefix)
    .bind(sha256_hex(agent_token))
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Node `id` if it belongs to organization `org_id` (one the caller was authorized in).
///
/// # Errors
/// Database failures.
pub async fn find_in_org(
    pool: &AnyPool,
    org_id: &str,
    id: &str,
) -> Result<Option<Node>, sqlx::Error> {
    Ok(find(pool, id)
        .await?
        .filter(|n| n.organization_id == org_id))
}

/// A node by id, unchecked: requests reach a node through [`crate::authz`].
async fn find<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<Option<Node>, sqlx::Error> {
    Ok(sqlx::query_as::<_, NodeRow>(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(Node::from))
}

/// Whether node `id` exists (for `shardlyn up`, which keeps its local agent's node;
/// reveals nothing of the node).
///
/// # Errors
/// Database failures.
pub async fn exists(pool: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    Ok(find(pool, id).await?.is_some())
}

/// The nodes of an organization, by name.
pub async fn list<'e>(db: impl AnyExecutor<'e>, org_id: &str) -> Result<Vec<Node>, sqlx::Error> {
    Ok(sqlx::query_as::<_, NodeRow>(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE org_id = $1 ORDER BY name, id"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Node::from)
    .collect())
}

/// The nodes servers of organization `org_id` may be placed on, by name: its own when
/// `own`, and every platform node when `platform` (see [`super::platform`]).
///
/// # Errors
/// Database failures.
pub async fn list_pool<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    own: bool,
    platform: bool,
) -> Result<Vec<Node>, sqlx::Error> {
    Ok(sqlx::query_as::<_, NodeRow>(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE ($2 = 1 AND org_id = $1) OR ($3 = 1 AND platform = 1) \
         ORDER BY name, id"
    ))
    .bind(org_id)
    .bind(i64::from(own))
    .bind(i64::from(platform))
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Node::from)
    .collect())
}

/// Every node of every organization (`platform_only`: the platform's), by name; for
/// platform admins.
///
/// # Errors
/// Database failures.
pub async fn list_all<'e>(
    db: impl AnyExecutor<'e>,
    platform_only: bool,
) -> Result<Vec<Node>, sqlx::Error> {
    Ok(sqlx::query_as::<_, NodeRow>(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE platform = 1 OR $1 = 0 ORDER BY name, id"
    ))
    .bind(i64::from(platform_only))
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Node::from)
    .collect())
}

/// A node by id whatever its organization: for platform admins and for placement on
/// platform nodes, which check what the caller may see themselves.
///
/// # Errors
/// Database failures.
pub async fn find_any(pool: &AnyPool, id: &str) -> Result<Option<Node>, sqlx::Error> {
    find(pool, id).await
}

/// Marks a node as the platform's (or not) with the name and location tenants see; the
/// row as it is now.
///
/// # Errors
/// Database failures.
pub async fn set_platform(
    pool: &AnyPool,
    id: &str,
    platform: bool,
    public_name: Option<&str>,
    location: Option<&str>,
) -> Result<Option<Node>, sqlx::Error> {
    sqlx::query(
        "UPDATE nodes SET platform = $1, public_name = $2, location = $3, updated_at = $4 \
         WHERE id = $5",
    )
    .bind(i64::from(platform))
    .bind(public_name)
    .bind(location)
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await?;
    find(pool, id).await
}

/// The node an agent token belongs to (constant-time digest comparison).
pub async fn find_by_agent_token(pool: &AnyPool, token: &str) -> Result<Option<Node>, sqlx::Error> {
    let Some(prefix) = token
        .strip_prefix(AGENT_TOKEN_PREFIX)
        .and_then(|s| s.get(..8))
    else {
        return Ok(None);
    };
    let digest = sha256_hex(token);
    let rows: Vec<TokenNodeRow> = sqlx::query_as(concat!(
        "SELECT ",
        node_columns!(),
        ", token_hash FROM nodes WHERE token_prefix = $1"
    ))
    .bind(prefix)
    .fetch_all(pool)
    .await?;
    for row in rows {
        if digest_eq(&row.token_hash, &digest) {
            return Ok(Some(row.node.into()));
        }
    }
    Ok(None)
}

/// Records a heartbeat (or a disconnect when `connected` is false). The node's
/// organization when this changed whether it counts as online (a heartbeat of a node
/// that was offline, or unseen for the whole window; a disconnect of an online one).
pub async fn mark_seen(
    pool: &AnyPool,
    id: &str,
    version: &str,
    connected: bool,
) -> Result<Option<String>, sqlx::Error> {
    let now = now_ms();
    let window = i64::try_from(HEARTBEAT.as_millis() * 3).unwrap_or(30_000);
    let flipped: Option<String> = sqlx::query_scalar(
        "UPDATE nodes SET last_seen_at = $1, connected = $2, agent_version = $3 \
         WHERE id = $4 AND (connected <> $2 OR last_seen_at IS NULL OR last_seen_at < $5) \
         RETURNING org_id",
    )
    .bind(now)
    .bind(i64::from(connected))
    .bind(version)
    .bind(id)
    .bind(now - window)
    .fetch_optional(pool)
    .await?;
    if flipped.is_none() {
        sqlx::query(
            "UPDATE nodes SET last_seen_at = $1, connected = $2, agent_version = $3 WHERE id = $4",
        )
        .bind(now)
        .bind(i64::from(connected))
        .bind(version)
        .bind(id)
        .execute(pool)
        .await?;
    }
    Ok(flipped)
}

/// Renames a node; the row as it is now.
pub async fn rename(pool: &AnyPool, id: &str, name: &str) -> Result<Option<Node>, sqlx::Error> {
    sqlx::query("UPDATE nodes SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    find(pool, id).await
}

/// Sets the node's allocation address and port range (`None`: the panel's defaults);
/// the row as it is now.
pub async fn set_allocation(
    pool: &AnyPool,
    id: &str,
    ip: Option<&str>,
    range: Option<PortRange>,
) -> Result<Option<Node>, sqlx::Error> {
    sqlx::query(
        "UPDATE nodes SET allocation_ip = $1, port_range_start = $2, port_range_end = $3, \
         updated_at = $4 WHERE id = $5",
    )
    .bind(ip)
    .bind(range.map(|r| i64::from(r.start)))
    .bind(range.map(|r| i64::from(r.end)))
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await?;
    find(pool, id).await
}

/// Sets the node's public addresses (`None`: unknown); the row as it is now.
pub async fn set_public_addresses(
    pool: &AnyPool,
    id: &str,
    ipv4: Option<&str>,
    ipv6: Option<&str>,
) -> Result<Option<Node>, sqlx::Error> {
    sqlx::query(
        "UPDATE nodes SET public_ipv4 = $1, public_ipv6 = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(ipv4)
    .bind(ipv6)
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await?;
    find(pool, id).await
}

/// Fills the public addresses a node has none of (an address already set, by hand or
/// earlier, stays); whether anything changed.
pub async fn fill_public_addresses(
    pool: &AnyPool,
    id: &str,
    ipv4: Option<&str>,
    ipv6: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let mut changed = false;
    let statements = [
        (
            "UPDATE nodes SET public_ipv4 = $1, updated_at = $2 \
             WHERE id = $3 AND public_ipv4 IS NULL",
            ipv4,
        ),
        (
            "UPDATE nodes SET public_ipv6 = $1, updated_at = $2 \
             WHERE id = $3 AND public_ipv6 IS NULL",
            ipv6,
        ),
    ];
    for (sql, value) in statements {
        let Some(value) = value else { continue };
        let done = sqlx::query(sql)
            .bind(value)
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await?;
        changed |= done.rows_affected() > 0;
    }
    Ok(changed)
}

/// The allocation address and port range of a node, where it sets its own.
pub async fn allocation(
    pool: &AnyPool,
    id: &str,
) -> Result<(Option<String>, Option<PortRange>), sqlx::Error> {
    Ok(find(pool, id)
        .await?
        .map(|n| (n.allocation_ip, n.port_range))
        .unwrap_or_default())
}

/// Sets whether new instances may be placed on a node; the row as it is now.
pub async fn set_cordoned(
    pool: &AnyPool,
    id: &str,
    cordoned: bool,
) -> Result<Option<Node>, sqlx::Error> {
    sqlx::query("UPDATE nodes SET cordoned = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(cordoned))
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    find(pool, id).await
}

/// Deletes a node.
pub async fn delete<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM nodes WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    // Its instances and allocations go with it.
    crate::readcache::changed();
    Ok(())
}

impl crate::authz::OrgScoped for Node {
    const NAME: &'static str = "node";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.organization_id
    }
}
