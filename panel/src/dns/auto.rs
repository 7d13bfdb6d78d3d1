//! Auto-DNS: a server's A/AAAA records (its node's public addresses) and its SRV record
//! (its workload's `dns_srv_service`, its primary port) under the organization's
//! auto-DNS zone, named by its pattern (`{server}.{zone}`); made when the server is
//! placed, moved with it, removed with it. A provider that fails leaves the records
//! `pending` (or `deleting`) for the reconciler, which retries them.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::handlers::{Target, change, open, owner_of, target};
use super::names;
use super::provider::{RecordSet, Zone};
use super::store::{self, AutoConfig, Record};
use crate::auth::extract::CurrentUser;
use crate::authz::{Permission, perm};
use crate::db::{new_id, now_ms, ts};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::state::AppState;

/// The name pattern when none is set.
pub const DEFAULT_PATTERN: &str = "{server}.{zone}";
/// The record types auto-DNS may write.
const AUTO_TYPES: &[&str] = &["A", "AAAA", "SRV"];
/// The SRV record's priority and weight.
const SRV_PRIORITY: u16 = 0;
const SRV_WEIGHT: u16 = 5;

/// What auto-DNS needs to know of a server.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Facts {
    org_id: String,
    name: String,
    node_id: String,
    dns_subdomain: Option<String>,
    dns_srv_service: Option<String>,
    public_ipv4: Option<String>,
    public_ipv6: Option<String>,
    port: Option<i64>,
}

async fn facts(state: &AppState, instance_id: &str) -> sqlx::Result<Option<Facts>> {
    sqlx::query_as(
        "SELECT i.org_id, i.name, i.node_id, i.dns_subdomain, w.dns_srv_service, n.public_ipv4, \
         n.public_ipv6, (SELECT a.port FROM allocations a WHERE a.instance_id = i.id \
         ORDER BY a.is_primary DESC, a.port LIMIT 1) AS port \
         FROM instances i JOIN workloads w ON w.id = i.workload_id JOIN nodes n ON n.id = i.node_id \
         WHERE i.id = $1",
    )
    .bind(instance_id)
    .fetch_optional(&state.db.pool)
    .await
}

/// An organization's settings when auto-DNS is on and complete.
struct Active {
    config: AutoConfig,
    credential_id: String,
    zone: Zone,
    types: Vec<String>,
}

fn active(config: Option<AutoConfig>) -> Option<Active> {
    let config = config.filter(|c| c.enabled)?;
    let credential_id = config.credential_id.clone()?;
    let zone = Zone {
        id: config.zone_id.clone()?,
        name: config.zone_name.clone()?,
    };
    let types = serde_json::from_str(&config.record_types).unwrap_or_default();
    Some(Active {
        config,
        credential_id,
        zone,
        types,
    })
}

/// The fully qualified name `subdomain` gets under `pattern` in `zone`.
fn name_for(pattern: &str, subdomain: &str, zone: &str) -> AppResult<String> {
    let raw = pattern
        .replace("{server}", subdomain)
        .replace("{zone}", zone);
    names::fqdn(&format!("{}.", raw.trim_end_matches('.')), zone)
}

/// The server's subdomain: the one its owner chose, else its name as a label (with a
/// piece of its id when another server has that name already).
async fn subdomain_of(
    state: &AppState,
    a: &Active,
    f: &Facts,
    instance_id: &str,
) -> AppResult<String> {
    if let Some(chosen) = f.dns_subdomain.clone().filter(|s| !s.is_empty()) {
        return Ok(chosen);
    }
    let label = names::label_of(&f.name);
    let name = name_for(&a.config.name_pattern, &label, &a.zone.name)?;
    if store::name_taken(
        &state.db.pool,
        &a.credential_id,
        &a.zone.id,
        &name,
        instance_id,
    )
    .await?
    {
        let short: String = instance_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(6)
            .collect();
        let base: String = label.chars().take(56).collect();
        return Ok(format!(
            "{}-{}",
            base.trim_end_matches('-'),
            short.to_ascii_lowercase()
        ));
    }
    Ok(label)
}

/// The record sets a server should have.
fn desired(a: &Active, f: &Facts, name: &str) -> Vec<RecordSet> {
    let ttl = u32::try_from(a.config.ttl).unwrap_or(names::TTL_DEFAULT);
    let wants = |t: &str| a.types.iter().any(|x| x == t);
    let mut sets = Vec::new();
    let mut address = false;
    for (t, value) in [("A", &f.public_ipv4), ("AAAA", &f.public_ipv6)] {
        if let Some(v) = value.as_ref().filter(|_| wants(t)) {
            sets.push(RecordSet {
                name: name.to_owned(),
                record_type: t.into(),
                ttl,
                contents: vec![v.clone()],
            });
            address = true;
        }
    }
    if let (true, true, Some(service), Some(port)) =
        (wants("SRV"), address, f.dns_srv_service.as_ref(), f.port)
    {
        sets.push(RecordSet {
            name: format!("{service}.{name}"),
            record_type: "SRV".into(),
            ttl,
            contents: vec![format!("{SRV_PRIORITY} {SRV_WEIGHT} {port} {name}")],
        });
    }
    sets
}

/// Makes the server's records what they should be. Records it has that it should no
/// longer have (a type switched off, another name) are removed.
///
/// # Errors
/// Database failures, a credential gone; a provider error or a clash is recorded on
/// the rows (`pending`/`failed`), not answered.
pub async fn sync_instance(state: &AppState, instance_id: &str) -> AppResult<()> {
    let Some(f) = facts(state, instance_id).await? else {
        return Ok(());
    };
    let Some(a) = active(store::auto_config(&state.db.pool, &f.org_id).await?) else {
        return Ok(());
    };
    let sub = subdomain_of(state, &a, &f, instance_id).await?;
    let name = name_for(&a.config.name_pattern, &sub, &a.zone.name)?;
    let want = desired(&a, &f, &name);
    let existing: Vec<Record> = store::of_instance(&state.db.pool, instance_id)
        .await?
        .into_iter()
        .filter(|r| r.credential_id == a.credential_id && r.zone_id == a.zone.id)
        .collect();
    let gone: Vec<&Record> = existing
        .iter()
        .filter(|r| {
            !want
                .iter()
                .any(|s| s.name == r.name && s.record_type == r.record_type)
        })
        .collect();
    let removes: Vec<(String, String)> = gone
        .iter()
        .map(|r| (r.name.clone(), r.record_type.clone()))
        .collect();
    let (credential, provider) = open(state, &f.org_id, &a.credential_id).await?;
    let t = Target {
        credential,
        provider,
        zone: a.zone.clone(),
    };
    let outcome = change(&t, &owner_of(state, &f.org_id), &want, &removes).await;
    let now = now_ms();
    let (status, error) = match &outcome {
        Ok(()) => ("synced", None),
        Err(e) if e.code() == "DNS_RECORD_CLASH" => ("failed", Some(e.to_string())),
        Err(e) => ("pending", Some(e.to_string())),
    };
    if let Some(e) = &error {
        tracing::warn!(instance.id = %instance_id, error = %e, "auto-DNS change not applied");
    }
    for r in gone {
        if outcome.is_ok() {
            store::delete(&state.db.pool, &r.id).await?;
        } else {
            store::set_status(&state.db.pool, &r.id, "deleting", error.as_deref(), now).await?;
        }
    }
    for set in want {
        let content = set.contents.join("\n");
        let node_id = matches!(set.record_type.as_str(), "A" | "AAAA").then(|| f.node_id.clone());
        match existing
            .iter()
            .find(|r| r.name == set.name && r.record_type == set.record_type)
        {
            Some(r) => {
                let mut r = r.clone();
                r.content = content;
                r.ttl = i64::from(set.ttl);
                r.node_id = node_id;
                r.status = status.into();
                r.last_error.clone_from(&error);
                r.checked_at = Some(now);
                r.updated_at = now;
                store::update(&state.db.pool, &r).await?;
            }
            None => {
                let r = Record {
                    id: new_id(),
                    org_id: f.org_id.clone(),
                    credential_id: a.credential_id.clone(),
                    zone_id: a.zone.id.clone(),
                    zone_name: a.zone.name.clone(),
                    record_type: set.record_type.clone(),
                    name: set.name.clone(),
                    content,
                    ttl: i64::from(set.ttl),
                    node_id,
                    instance_id: Some(instance_id.to_owned()),
                    origin: "auto".into(),
                    status: status.into(),
                    last_error: error.clone(),
                    checked_at: Some(now),
                    created_by: None,
                    created_at: now,
                    updated_at: now,
                };
                if let Err(e) = store::insert(&state.db.pool, &r).await {
                    // Another record of the panel holds the set (a manual one).
                    tracing::warn!(instance.id = %instance_id, name = %r.name, error = %e,
                        "auto-DNS record not recorded");
                }
            }
        }
    }
    Ok(())
}

/// A server was created or moved in, or its port or subdomain changed: its records are
/// made or updated. Never fails the caller: errors are logged, provider failures left
/// `pending` for the reconciler.
pub async fn instance_placed(state: &AppState, instance_id: &str) {
    if let Err(e) = sync_instance(state, instance_id).await {
        tracing::warn!(instance.id = %instance_id, error = %e, "auto-DNS");
    }
}

/// A server is about to be deleted: its records are removed at the provider (those a
/// provider refused stay `deleting` for the reconciler). Call it before the row goes.
pub async fn instance_removed(state: &AppState, instance_id: &str) {
    let outcome = async {
        let rows = store::of_instance(&state.db.pool, instance_id).await?;
        remove_rows(state, &rows).await
    }
    .await;
    if let Err(e) = outcome {
        tracing::warn!(instance.id = %instance_id, error = %e, "auto-DNS removal");
    }
}

/// Removes `rows` at their providers (one change per zone) and forgets them; rows whose
/// provider failed are left `deleting`.
async fn remove_rows(state: &AppState, rows: &[Record]) -> AppResult<()> {
    let mut zones: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.credential_id.as_str(), r.zone_id.as_str()))
        .collect();
    zones.sort_unstable();
    zones.dedup();
    for (credential_id, zone_id) in zones {
        let here: Vec<&Record> = rows
            .iter()
            .filter(|r| r.credential_id == credential_id && r.zone_id == zone_id)
            .collect();
        let first = here[0];
        let now = now_ms();
        for r in &here {
            store::set_status(&state.db.pool, &r.id, "deleting", None, now).await?;
        }
        let removes: Vec<(String, String)> = here
            .iter()
            .map(|r| (r.name.clone(), r.record_type.clone()))
            .collect();
        let outcome = match super::handlers::target_of(state, first).await {
            Ok(t) => change(&t, &owner_of(state, &first.org_id), &[], &removes).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                for r in &here {
                    store::delete(&state.db.pool, &r.id).await?;
                }
            }
            Err(e) => {
                let message = e.to_string();
                for r in &here {
                    store::set_status(&state.db.pool, &r.id, "deleting", Some(&message), now)
                        .await?;
                }
            }
        }
    }
    Ok(())
}

/// A node's public addresses changed: the manual records that follow it take the new
/// address, and its servers' auto records are made again.
pub async fn node_changed(state: &AppState, node_id: &str) {
    let outcome = async {
        let Some((org_id,)) =
            sqlx::query_as::<_, (String,)>("SELECT org_id FROM nodes WHERE id = $1")
                .bind(node_id)
                .fetch_optional(&state.db.pool)
                .await?
        else {
            return Ok::<_, AppError>(());
        };
        let addresses = super::handlers::node_addresses(state, node_id, &org_id)
            .await?
            .unwrap_or_default();
        for r in store::of_node(&state.db.pool, node_id).await? {
            if r.origin != "manual" {
                continue;
            }
            follow(state, r, &addresses).await?;
        }
        let servers: Vec<(String,)> = sqlx::query_as("SELECT id FROM instances WHERE node_id = $1")
            .bind(node_id)
            .fetch_all(&state.db.pool)
            .await?;
        for (id,) in servers {
            sync_instance(state, &id).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        tracing::warn!(node.id = %node_id, error = %e, "DNS records following the node");
    }
}

/// A manual record that follows a node takes its address (`pending` when the provider
/// fails; `failed` when the node has no address of its family).
async fn follow(
    state: &AppState,
    mut r: Record,
    (v4, v6): &(Option<String>, Option<String>),
) -> AppResult<()> {
    let now = now_ms();
    let address = if r.record_type == "AAAA" { v6 } else { v4 };
    let Some(address) = address else {
        store::set_status(
            &state.db.pool,
            &r.id,
            "failed",
            Some("the node it follows has no public address of this family"),
            now,
        )
        .await?;
        return Ok(());
    };
    r.content.clone_from(address);
    let t = super::handlers::target_of(state, &r).await?;
    match change(&t, &owner_of(state, &r.org_id), &[r.set()], &[]).await {
        Ok(()) => {
            r.status = "synced".into();
            r.last_error = None;
        }
        Err(e) => {
            r.status = if e.code() == "DNS_RECORD_CLASH" {
                "failed"
            } else {
                "pending"
            }
            .into();
            r.last_error = Some(e.to_string());
        }
    }
    r.checked_at = Some(now);
    r.updated_at = now;
    store::update(&state.db.pool, &r).await?;
    Ok(())
}

/// Checks a subdomain a server's owner chose for server `instance_id` of `org_id`:
/// its form, the reserved names, and that no other record of the panel has the name
/// it makes under the auto-DNS pattern.
///
/// # Errors
/// 400 `dns_subdomain`; 409 `DNS_SUBDOMAIN_TAKEN`.
pub async fn check_subdomain(
    state: &AppState,
    org_id: &str,
    instance_id: &str,
    given: &str,
) -> AppResult<String> {
    let sub = names::subdomain(given, "dns_subdomain")?;
    let first = sub.split('.').next().unwrap_or_default();
    if state
        .config
        .dns
        .reserved_names
        .iter()
        .any(|r| r.eq_ignore_ascii_case(first) || r.eq_ignore_ascii_case(&sub))
    {
        return Err(AppError::invalid_field(
            "dns_subdomain",
            format!("{sub} is reserved; choose another subdomain"),
        ));
    }
    if let Some(a) = active(store::auto_config(&state.db.pool, org_id).await?) {
        let name = name_for(&a.config.name_pattern, &sub, &a.zone.name).map_err(|_| {
            AppError::invalid_field(
                "dns_subdomain",
                "the subdomain makes no valid name in the zone",
            )
        })?;
        if store::name_taken(
            &state.db.pool,
            &a.credential_id,
            &a.zone.id,
            &name,
            instance_id,
        )
        .await?
        {
            return Err(AppError::coded(
                StatusCode::CONFLICT,
                "DNS_SUBDOMAIN_TAKEN",
                format!("{name} is taken by another record"),
            ));
        }
    }
    Ok(sub)
}

/// Saves the subdomain server `instance_id`'s owner chose (checked with
/// [`check_subdomain`]; `None` goes back to its name) and moves its records to it.
///
/// # Errors
/// Database failures.
pub async fn set_subdomain(
    state: &AppState,
    instance_id: &str,
    subdomain: Option<&str>,
) -> AppResult<()> {
    sqlx::query("UPDATE instances SET dns_subdomain = $1 WHERE id = $2")
        .bind(subdomain)
        .bind(instance_id)
        .execute(&state.db.pool)
        .await?;
    instance_placed(state, instance_id).await;
    Ok(())
}

/// An organization's auto-DNS settings.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AutoConfigView {
    pub organization_id: String,
    /// New servers get records.
    pub enabled: bool,
    /// The `cloudflare`, `powerdns` or `rfc2136` credential records are written with.
    pub credential_id: Option<String>,
    pub zone_id: Option<String>,
    pub zone_name: Option<String>,
    /// `{server}` is the server's subdomain (its name as a DNS label unless its owner
    /// chose one), `{zone}` the zone's name.
    pub name_pattern: String,
    /// Any of `A`, `AAAA` (the node's public addresses) and `SRV` (where the server's
    /// workload names an SRV service).
    pub record_types: Vec<String>,
    pub ttl: i64,
    /// Subdomains servers' owners may not choose.
    pub reserved_names: Vec<String>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub updated_at: Option<i64>,
}

fn view_of(state: &AppState, org_id: &str, c: Option<AutoConfig>) -> AutoConfigView {
    let reserved_names = state.config.dns.reserved_names.clone();
    match c {
        Some(c) => AutoConfigView {
            organization_id: c.org_id,
            enabled: c.enabled,
            credential_id: c.credential_id,
            zone_id: c.zone_id,
            zone_name: c.zone_name,
            name_pattern: c.name_pattern,
            record_types: serde_json::from_str(&c.record_types).unwrap_or_default(),
            ttl: c.ttl,
            reserved_names,
            updated_at: Some(c.updated_at),
        },
        None => AutoConfigView {
            organization_id: org_id.to_owned(),
            enabled: false,
            credential_id: None,
            zone_id: None,
            zone_name: None,
            name_pattern: DEFAULT_PATTERN.into(),
            record_types: AUTO_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            ttl: i64::from(names::TTL_DEFAULT),
            reserved_names,
            updated_at: None,
        },
    }
}

/// `GET /v1/dns/auto-config`.
pub async fn get_config(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<AutoConfigView>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::DnsRead::KEY,
    )
    .await?;
    let c = store::auto_config(&state.db.pool, &member.org_id).await?;
    Ok(AppJson(view_of(&state, &member.org_id, c)))
}

/// New auto-DNS settings.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoConfigBody {
    pub organization_id: Option<String>,
    pub enabled: bool,
    /// Required when enabled.
    pub credential_id: Option<String>,
    /// Required when enabled: a zone of the credential (`GET /v1/dns/zones`).
    pub zone_id: Option<String>,
    /// Must hold `{server}`; `{server}.{zone}` by default.
    pub name_pattern: Option<String>,
    /// Any of `A`, `AAAA`, `SRV` (all by default).
    pub record_types: Option<Vec<String>>,
    /// Seconds, 60 to 86400 (300 by default).
    pub ttl: Option<i64>,
}

/// `PUT /v1/dns/auto-config`: the zone is checked at the provider.
pub async fn put_config(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<AutoConfigBody>,
) -> AppResult<AppJson<AutoConfigView>> {
    let requested =
        crate::orgs::scope::requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), perm::DnsWrite::KEY).await?;
    let ttl = names::ttl(body.ttl)?;
    let pattern = body
        .name_pattern
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_PATTERN)
        .to_ascii_lowercase();
    if !pattern.contains("{server}") || pattern.len() > 200 {
        return Err(AppError::invalid_field(
            "name_pattern",
            "name_pattern must hold {server} (like {server}.{zone} or {server}.play.{zone})",
        ));
    }
    let mut types: Vec<String> = Vec::new();
    for t in body
        .record_types
        .clone()
        .unwrap_or_else(|| AUTO_TYPES.iter().map(|t| (*t).to_owned()).collect())
    {
        let t = t.trim().to_ascii_uppercase();
        if !AUTO_TYPES.contains(&t.as_str()) {
            return Err(AppError::invalid_field(
                "record_types",
                "record_types holds A, AAAA and SRV only",
            ));
        }
        if !types.contains(&t) {
            types.push(t);
        }
    }
    if types.is_empty() {
        return Err(AppError::invalid_field(
            "record_types",
            "record_types needs at least one type",
        ));
    }
    let credential_id = body.credential_id.clone().filter(|s| !s.trim().is_empty());
    let zone_id = body.zone_id.clone().filter(|s| !s.trim().is_empty());
    let mut zone = None;
    match (&credential_id, &zone_id) {
        (Some(c), Some(z)) => {
            let t = target(&state, &member.org_id, c, z).await?;
            name_for(&pattern, "server", &t.zone.name).map_err(|_| {
                AppError::invalid_field(
                    "name_pattern",
                    format!(
                        "name_pattern must make names inside the zone {}",
                        t.zone.name
                    ),
                )
            })?;
            zone = Some(t.zone);
        }
        (None, _) if body.enabled => {
            return Err(AppError::invalid_field(
                "credential_id",
                "credential_id is required to enable auto-DNS",
            ));
        }
        (_, None) if body.enabled => {
            return Err(AppError::invalid_field(
                "zone_id",
                "zone_id is required to enable auto-DNS",
            ));
        }
        (Some(c), None) => {
            open(&state, &member.org_id, c).await?;
        }
        _ => {}
    }
    let c = AutoConfig {
        org_id: member.org_id.clone(),
        enabled: body.enabled,
        credential_id,
        zone_id: zone.as_ref().map(|z| z.id.clone()),
        zone_name: zone.map(|z| z.name),
        name_pattern: pattern,
        record_types: serde_json::to_string(&types).unwrap_or_else(|_| "[]".into()),
        ttl: i64::from(ttl),
        updated_at: now_ms(),
    };
    store::save_auto_config(&state.db.pool, &c).await?;
    Ok(AppJson(view_of(&state, &member.org_id, Some(c))))
}
