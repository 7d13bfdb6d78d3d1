//! `/v1/nodes/{id}/firewall/rules`: the game ports open on a provisioned node, kept in
//! `node_firewall_rules` (the source of truth) and mirrored whole, with `set_rules`, onto
//! a second firewall per node that the panel owns through the provider's API (created
//! on first need, applied to the server, its id kept in `provision_requests`).
//! Terraform owns the base firewall (SSH, agent); it never sees this one.
//!
//! A change asked through the API is written in a transaction that is rolled back when
//! the provider refuses it, so the table and the cloud never disagree. Game ports
//! opened or closed for a server ([`instance_placed`], [`instance_removed`], called
//! after the server's own commit) are kept even when the provider's API fails: the
//! failure is logged and recorded on the request (`firewall_error`, shown with the
//! rules), and the next change sends the whole set again.
//!
//! Reading needs `nodes.read`, changing `nodes.update`; a node the panel did not
//! provision answers 409 `not_provisioned`, another organization's node 404.

use std::net::IpAddr;

use aide::OperationInput;
use aide::generate::GenContext;
use aide::openapi::Operation;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Any, AnyExecutor, Transaction};

use super::store::Node;
use crate::authz::{Authorized, perm};
use crate::cloud::hetzner::{HetznerError, Rule};
use crate::cloud::{self, Cloud, Feature, Provisioned};
use crate::db::{new_id, ts};
use crate::error::{AppError, AppJson, AppResult};
use crate::respond::{Created, NoContent};
use crate::state::AppState;

/// Where a rule lets traffic in from when none is given: anywhere.
const ANYWHERE: [&str; 2] = ["0.0.0.0/0", "::/0"];
/// Most source networks a rule takes (Hetzner's limit).
const MAX_SOURCES: usize = 100;

/// One open port range.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FirewallRule {
    pub id: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub port_start: u16,
    pub port_end: u16,
    /// The networks allowed in, in CIDR notation.
    pub source: Vec<String>,
    pub description: String,
    /// The server these are the game ports of (opened and closed with it); `null` for a
    /// rule added by hand.
    pub instance_id: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
}

/// A node's rules and whether the provider's firewall matches them.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FirewallRules {
    pub data: Vec<FirewallRule>,
    /// `hetzner`.
    pub provider: String,
    /// The provider's id of the panel-owned firewall (`null` until the first rule).
    pub firewall_id: Option<String>,
    /// Why the provider's firewall last failed to follow a change (`null`: it matches).
    pub sync_error: Option<String>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub synced_at: Option<i64>,
}

/// A rule to add.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// 1-65535.
    pub port_start: i64,
    /// 1-65535, at least `port_start` (default: `port_start`).
    pub port_end: Option<i64>,
    /// Networks allowed in, CIDR (`203.0.113.0/24`) or single addresses; default
    /// anywhere (`0.0.0.0/0`, `::/0`).
    pub source: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `{"id": "..."}` of a removal.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveRule {
    /// The rule's id.
    pub id: String,
}

/// The rule a removal names: `{"id": "..."}` in the body, or `?id=` (a client that
/// cannot send a body with DELETE). The document shows the body; a `?id=` parameter
/// there would hide the path's own `{id}`.
#[derive(Debug)]
pub struct RuleId(pub String);

impl<S: Send + Sync> FromRequest<S> for RuleId {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let in_query = req.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "id")
                .map(|(_, v)| v.into_owned())
        });
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::BadRequest(e.body_text())
            }
        })?;
        let in_body = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            let b: RemoveRule = serde_json::from_slice(&body)
                .map_err(|e| AppError::BadRequest(format!("invalid request body: {e}")))?;
            Some(b.id)
        };
        in_body
            .or(in_query)
            .filter(|id| !id.is_empty())
            .map(Self)
            .ok_or_else(|| {
                AppError::invalid_field("id", "name the rule: {\"id\": \"...\"} or ?id=")
            })
    }
}

impl OperationInput for RuleId {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        AppJson::<RemoveRule>::operation_input(ctx, op);
    }
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: String,
    protocol: String,
    port_start: i64,
    port_end: i64,
    source: String,
    description: String,
    instance_id: Option<String>,
    created_at: i64,
}

impl From<RuleRow> for FirewallRule {
    fn from(r: RuleRow) -> Self {
        Self {
            id: r.id,
            protocol: r.protocol,
            port_start: u16::try_from(r.port_start).unwrap_or_default(),
            port_end: u16::try_from(r.port_end).unwrap_or_default(),
            source: serde_json::from_str(&r.source).unwrap_or_default(),
            description: r.description,
            instance_id: r.instance_id,
            created_at: r.created_at,
        }
    }
}

/// A node's rules, by port then protocol.
async fn list<'e>(db: impl AnyExecutor<'e>, node_id: &str) -> sqlx::Result<Vec<FirewallRule>> {
    let rows: Vec<RuleRow> = sqlx::query_as(
        "SELECT id, protocol, port_start, port_end, source, description, instance_id, created_at \
         FROM node_firewall_rules WHERE node_id = $1 ORDER BY port_start, port_end, protocol, id",
    )
    .bind(node_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(FirewallRule::from).collect())
}

async fn insert<'e>(db: impl AnyExecutor<'e>, node_id: &str, r: &FirewallRule) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO node_firewall_rules (id, node_id, protocol, port_start, port_end, source, \
         description, instance_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&r.id)
    .bind(node_id)
    .bind(&r.protocol)
    .bind(i64::from(r.port_start))
    .bind(i64::from(r.port_end))
    .bind(json!(r.source).to_string())
    .bind(&r.description)
    .bind(&r.instance_id)
    .bind(r.created_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes the request's row lock, so changes of one node's firewall run one at a time
/// (each sends the whole set, so the last one to reach the provider must be the last
/// one committed).
async fn lock(tx: &mut Transaction<'static, Any>, p: &Provisioned) -> sqlx::Result<()> {
    sqlx::query("UPDATE provision_requests SET updated_at = updated_at WHERE id = $1")
        .bind(&p.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The table's rules in Hetzner's format.
fn to_hetzner(rules: &[FirewallRule]) -> Vec<Rule> {
    rules
        .iter()
        .map(|r| Rule {
            direction: "in".into(),
            protocol: r.protocol.clone(),
            port: if r.port_start == r.port_end {
                r.port_start.to_string()
            } else {
                format!("{}-{}", r.port_start, r.port_end)
            },
            source_ips: r.source.clone(),
            destination_ips: Vec::new(),
            description: (!r.description.is_empty())
                .then(|| r.description.chars().take(255).collect()),
        })
        .collect()
}

/// Sends the node's rules (as `tx` sees them) to the provider's firewall, creating it
/// (applied to the server) when there is none or it was deleted behind the panel's
/// back; records the firewall's id and the success in `tx`.
async fn push(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    p: &Provisioned,
) -> AppResult<()> {
    let Cloud::Hetzner { api, server_id } = Cloud::of(state, p, Feature::Firewall).await?;
    let rules = to_hetzner(&list(&mut **tx, &p.node_id).await?);
    let existing = p.firewall_id.as_deref().and_then(|f| f.parse::<i64>().ok());
    let updated = match existing {
        Some(id) => match api.set_rules(id, &rules).await {
            Ok(actions) => Some((id, actions)),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let firewall_id = match updated {
        Some((id, actions)) => {
            // Hetzner answers an `apply_firewall` action per resource the firewall is
            // on; none for the server: it was taken off by hand, put it back.
            let on_server = actions.iter().any(|a| {
                a.resources
                    .iter()
                    .any(|r| r.kind == "server" && r.id == server_id)
            });
            if !on_server {
                api.apply_to_server(id, server_id).await?;
            }
            id
        }
        None => {
            let name = format!("shardlyn-{}-game-ports", p.id);
            let labels = json!({"managed-by": "shardlyn", "shardlyn-request": p.id});
            api.create_firewall(&name, &labels, &rules, server_id)
                .await
                .map_err(|e: HetznerError| AppError::from(e))?
        }
    };
    sqlx::query(
        "UPDATE provision_requests SET firewall_id = $1, firewall_error = NULL, \
         firewall_synced_at = $2 WHERE id = $3",
    )
    .bind(firewall_id.to_string())
    .bind(state.clock.now_ms())
    .bind(&p.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `GET /v1/nodes/{id}/firewall/rules`.
pub async fn rules(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesRead>,
) -> AppResult<AppJson<FirewallRules>> {
    let p = cloud::require_provisioned(&state.db.pool, &node.id).await?;
    let data = list(&state.db.pool, &node.id).await?;
    Ok(AppJson(FirewallRules {
        data,
        provider: p.provider,
        firewall_id: p.firewall_id,
        sync_error: p.firewall_error,
        synced_at: p.firewall_synced_at,
    }))
}

/// A port of a rule: 1-65535.
fn port(value: i64, field: &str) -> AppResult<u16> {
    u16::try_from(value).ok().filter(|p| *p > 0).ok_or_else(|| {
        AppError::unprocessable(field, format!("{field} must be between 1 and 65535"))
    })
}

/// A source network: CIDR with no host bits set, or a single address.
fn network(text: &str, field: &str) -> AppResult<String> {
    let bad = || {
        AppError::unprocessable(
            field,
            format!("{field} must be a network in CIDR notation such as 203.0.113.0/24 or ::/0"),
        )
    };
    let text = text.trim();
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let (bits, value) = match ip {
        IpAddr::V4(v4) => (32, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (128, u128::from(v6)),
    };
    let len = match len {
        None => bits,
        Some(l) if l.bytes().all(|b| b.is_ascii_digit()) && !l.is_empty() => {
            l.parse::<u32>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    if len > bits {
        return Err(bad());
    }
    let host_bits = bits - len;
    let host = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    if value & host != 0 {
        return Err(AppError::unprocessable(
            field,
            format!("{field}: {text} has host bits set; use the network address"),
        ));
    }
    Ok(format!("{ip}/{len}"))
}

/// Checks a new rule; the field at fault is named.
fn checked(body: NewRule, now: i64) -> AppResult<FirewallRule> {
    let protocol = body.protocol.trim().to_ascii_lowercase();
    if protocol != "tcp" && protocol != "udp" {
        return Err(AppError::unprocessable(
            "protocol",
            "protocol must be tcp or udp",
        ));
    }
    let port_start = port(body.port_start, "port_start")?;
    let port_end = port(body.port_end.unwrap_or(body.port_start), "port_end")?;
    if port_end < port_start {
        return Err(AppError::unprocessable(
            "port_end",
            "port_end must be at least port_start",
        ));
    }
    let source = match body.source {
        None => ANYWHERE.iter().map(ToString::to_string).collect(),
        Some(list) if list.is_empty() => {
            return Err(AppError::unprocessable(
                "source",
                "source must name at least one network (0.0.0.0/0 and ::/0 for anywhere)",
            ));
        }
        Some(list) if list.len() > MAX_SOURCES => {
            return Err(AppError::unprocessable(
                "source",
                format!("source takes at most {MAX_SOURCES} networks"),
            ));
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, s)| network(s, &format!("source[{i}]")))
            .collect::<AppResult<Vec<_>>>()?,
    };
    let description = body.description.unwrap_or_default().trim().to_owned();
    if description.chars().count() > 255 || description.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            "description",
            "description must be at most 255 characters without control characters",
        ));
    }
    Ok(FirewallRule {
        id: new_id(),
        protocol,
        port_start,
        port_end,
        source,
        description,
        instance_id: None,
        created_at: now,
    })
}

/// `POST /v1/nodes/{id}/firewall/rules`: 201 with the rule once the provider's firewall
/// has it (nothing is kept when the provider refuses).
pub async fn add(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
    AppJson(body): AppJson<NewRule>,
) -> AppResult<Created<FirewallRule>> {
    let p = cloud::require_provisioned(&state.db.pool, &node.id).await?;
    let rule = checked(body, state.clock.now_ms())?;
    // A provider that is not written yet answers 501 before anything is written.
    Cloud::of(&state, &p, Feature::Firewall).await?;
    let mut tx = state.db.pool.begin().await?;
    lock(&mut tx, &p).await?;
    let p = cloud::provisioned(&mut *tx, &node.id)
        .await?
        .ok_or_else(|| AppError::not_found("node"))?;
    insert(&mut *tx, &node.id, &rule).await?;
    push(&state, &mut tx, &p).await?;
    tx.commit().await?;
    tracing::info!(node.id = %node.id, rule.id = %rule.id, "firewall rule added");
    Ok(Created(rule))
}

/// `DELETE /v1/nodes/{id}/firewall/rules` with `{"id": "..."}` (or `?id=`): 204 once the
/// provider's firewall no longer has it.
pub async fn remove(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesUpdate>,
    RuleId(id): RuleId,
) -> AppResult<NoContent> {
    let p = cloud::require_provisioned(&state.db.pool, &node.id).await?;
    Cloud::of(&state, &p, Feature::Firewall).await?;
    let mut tx = state.db.pool.begin().await?;
    lock(&mut tx, &p).await?;
    let p = cloud::provisioned(&mut *tx, &node.id)
        .await?
        .ok_or_else(|| AppError::not_found("node"))?;
    let removed = sqlx::query("DELETE FROM node_firewall_rules WHERE id = $1 AND node_id = $2")
        .bind(&id)
        .bind(&node.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(AppError::not_found("firewall rule"));
    }
    push(&state, &mut tx, &p).await?;
    tx.commit().await?;
    tracing::info!(node.id = %node.id, rule.id = %id, "firewall rule removed");
    Ok(NoContent)
}

/// Runs of consecutive ports, as `(start, end)`.
fn runs(mut ports: Vec<u16>) -> Vec<(u16, u16)> {
    ports.sort_unstable();
    ports.dedup();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for p in ports {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(p) => *end = p,
            _ => out.push((p, p)),
        }
    }
    out
}

/// Changes the automatic rules of a node in one transaction, then mirrors them; a
/// provider failure is recorded (and the change kept) instead of answered.
async fn change_automatic(
    state: &AppState,
    node_id: &str,
    instance_id: &str,
    open: Option<(&str, Vec<u16>)>,
) -> AppResult<()> {
    let Some(p) = cloud::provisioned(&state.db.pool, node_id).await? else {
        return Ok(());
    };
    let mut tx = state.db.pool.begin().await?;
    lock(&mut tx, &p).await?;
    let Some(p) = cloud::provisioned(&mut *tx, node_id).await? else {
        return Ok(());
    };
    sqlx::query("DELETE FROM node_firewall_rules WHERE node_id = $1 AND instance_id = $2")
        .bind(node_id)
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
    if let Some((name, ports)) = open {
        let now = state.clock.now_ms();
        for (start, end) in runs(ports) {
            for protocol in ["tcp", "udp"] {
                let rule = FirewallRule {
                    id: new_id(),
                    protocol: protocol.into(),
                    port_start: start,
                    port_end: end,
                    source: ANYWHERE.iter().map(ToString::to_string).collect(),
                    description: format!("game ports of {name}").chars().take(255).collect(),
                    instance_id: Some(instance_id.to_owned()),
                    created_at: now,
                };
                insert(&mut *tx, node_id, &rule).await?;
            }
        }
    }
    if let Err(e) = push(state, &mut tx, &p).await {
        tracing::warn!(node.id = %node_id, instance.id = %instance_id, error = %e,
            "the node's cloud firewall did not follow its servers' ports; the next change retries");
        sqlx::query("UPDATE provision_requests SET firewall_error = $1 WHERE id = $2")
            .bind(e.to_string())
            .bind(&p.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Opens the game ports (its allocations, tcp and udp) of server `instance_id` on its
/// node's cloud firewall, when the panel provisioned that node. Call it after the
/// server's row (and allocations) are committed: on a new server, and on one moved in.
/// Never fails the caller: errors are logged (and the provider's recorded).
pub async fn instance_placed(state: &AppState, instance_id: &str) {
    let outcome = async {
        let Some(instance) = crate::instances::store::find(&state.db.pool, instance_id).await?
        else {
            return Ok(());
        };
        let ports = instance.allocations.iter().map(|a| a.port).collect();
        change_automatic(
            state,
            &instance.node_id,
            instance_id,
            Some((&instance.name, ports)),
        )
        .await
    }
    .await;
    if let Err(e) = outcome {
        tracing::warn!(instance.id = %instance_id, error = %e, "opening the server's game ports");
    }
}

/// Closes the game ports of server `instance_id` on node `node_id` (deleted, or moved
/// away). Never fails the caller, as [`instance_placed`].
pub async fn instance_removed(state: &AppState, node_id: &str, instance_id: &str) {
    if let Err(e) = change_automatic(state, node_id, instance_id, None).await {
        tracing::warn!(node.id = %node_id, instance.id = %instance_id, error = %e,
            "closing the server's game ports");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_checked_and_normalised() {
        assert_eq!(
            network("203.0.113.0/24", "s").expect("v4"),
            "203.0.113.0/24"
        );
        assert_eq!(
            network("198.51.100.7", "s").expect("host"),
            "198.51.100.7/32"
        );
        assert_eq!(network("::/0", "s").expect("v6"), "::/0");
        assert_eq!(network("0.0.0.0/0", "s").expect("any"), "0.0.0.0/0");
        for bad in [
            "203.0.113.1/24",
            "10.0.0.0/33",
            "nope",
            "10.0.0.0/",
            "10.0.0.0/+8",
        ] {
            assert!(network(bad, "s").is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_group_into_runs() {
        assert_eq!(
            runs(vec![27017, 27015, 27016, 30000]),
            vec![(27015, 27017), (30000, 30000)]
        );
        assert_eq!(runs(vec![65535]), vec![(65535, 65535)]);
        assert!(runs(Vec::new()).is_empty());
    }
}
