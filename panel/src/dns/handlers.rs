//! `/v1/dns/*`: zones and records read from the provider, and the records the panel
//! manages. Reading needs `dns.read`, writing `dns.write`. A change is applied at the
//! provider first and recorded only when it succeeded; a provider's error is answered
//! (502) with its message; a set the panel did not make is never overwritten (409
//! `DNS_RECORD_CLASH`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::names;
use super::owner;
use super::provider::{DnsProvider, Provider, RecordSet, Zone};
use super::store::{self, Record};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, Permission, perm};
use crate::credentials::store::Credential;
use crate::db::{new_id, now_ms, ts};
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::respond::NoContent;
use crate::state::AppState;

/// A DNS credential's client and the zone being worked on.
pub struct Target {
    pub credential: Credential,
    pub provider: Provider,
    pub zone: Zone,
}

/// The owner of `org_id`'s records in this panel.
#[must_use]
pub fn owner_of(state: &AppState, org_id: &str) -> String {
    owner::owner(&state.config.dns.owner_id, org_id)
}

/// Credential `id` of organization `org_id`, as a DNS provider's client.
///
/// # Errors
/// 404 `credential` (unknown, or another organization's); 400 `credential_id` when it
/// is not a DNS provider's.
pub async fn open(state: &AppState, org_id: &str, id: &str) -> AppResult<(Credential, Provider)> {
    let credential = crate::credentials::store::find(&state.db.pool, id)
        .await?
        .filter(|c| c.org_id == org_id)
        .ok_or_else(|| AppError::not_found("credential"))?;
    let parts = crate::credentials::open_parts(state, &credential)?;
    let provider = super::client(state, &credential.provider, &parts)?;
    Ok((credential, provider))
}

/// [`open`], and the zone `zone_id` as the provider lists it.
///
/// # Errors
/// As [`open`]; 404 `zone` when the provider has no such zone for this credential;
/// 502 for a provider error.
pub async fn target(
    state: &AppState,
    org_id: &str,
    credential_id: &str,
    zone_id: &str,
) -> AppResult<Target> {
    let (credential, provider) = open(state, org_id, credential_id).await?;
    let zone = provider
        .zones()
        .await?
        .into_iter()
        .find(|z| z.id == zone_id || z.name == names::zone_name(zone_id))
        .ok_or_else(|| AppError::not_found("zone"))?;
    Ok(Target {
        credential,
        provider,
        zone,
    })
}

/// A target for a stored record (its zone as recorded, without asking the provider).
///
/// # Errors
/// As [`open`].
pub async fn target_of(state: &AppState, r: &Record) -> AppResult<Target> {
    let (credential, provider) = open(state, &r.org_id, &r.credential_id).await?;
    Ok(Target {
        credential,
        provider,
        zone: Zone {
            id: r.zone_id.clone(),
            name: r.zone_name.clone(),
        },
    })
}

/// Removes `removes` (ours) and writes `writes` (as ours) in `target`'s zone, in one
/// provider operation after one read of the zone.
///
/// # Errors
/// 409 `DNS_RECORD_CLASH` (nothing written); 502 for a provider error.
pub async fn change(
    target: &Target,
    owner: &str,
    writes: &[RecordSet],
    removes: &[(String, String)],
) -> AppResult<()> {
    let sets = target.provider.records(&target.zone).await?;
    let changes = owner::plan(&sets, owner, writes, removes).map_err(|clash| {
        AppError::coded(StatusCode::CONFLICT, "DNS_RECORD_CLASH", clash.to_string())
    })?;
    target.provider.apply(&target.zone, &changes).await?;
    Ok(())
}

/// A record the panel manages.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordView {
    pub id: String,
    pub organization_id: String,
    pub credential_id: String,
    /// `cloudflare`, `powerdns` or `rfc2136`.
    pub provider: String,
    pub zone_id: String,
    pub zone_name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    /// Fully qualified (`mc.example.com`).
    pub name: String,
    /// As in a zone file; SRV `priority weight port target`.
    pub content: String,
    pub ttl: i64,
    /// The node whose public address the record follows.
    pub node_id: Option<String>,
    /// The server auto-DNS made it for.
    pub instance_id: Option<String>,
    /// `manual` or `auto`.
    pub origin: String,
    /// `synced`, `pending` (to be written), `deleting` (to be removed), `drifted`
    /// (found changed or gone and put back) or `failed` (the provider refused).
    pub status: String,
    pub last_error: Option<String>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub checked_at: Option<i64>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

impl RecordView {
    fn of(r: Record, provider: &str) -> Self {
        Self {
            id: r.id,
            organization_id: r.org_id,
            credential_id: r.credential_id,
            provider: provider.to_owned(),
            zone_id: r.zone_id,
            zone_name: r.zone_name,
            record_type: r.record_type,
            name: r.name,
            content: r.content,
            ttl: r.ttl,
            node_id: r.node_id,
            instance_id: r.instance_id,
            origin: r.origin,
            status: r.status,
            last_error: r.last_error,
            checked_at: r.checked_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The providers of an organization's credentials, by id.
async fn providers_of(state: &AppState, org_id: &str) -> AppResult<Vec<(String, String)>> {
    Ok(
        crate::credentials::store::list(&state.db.pool, org_id, None)
            .await?
            .into_iter()
            .map(|c| (c.id, c.provider))
            .collect(),
    )
}

async fn view(state: &AppState, r: Record) -> AppResult<RecordView> {
    let provider = crate::credentials::store::find(&state.db.pool, &r.credential_id)
        .await?
        .map(|c| c.provider)
        .unwrap_or_default();
    Ok(RecordView::of(r, &provider))
}

/// A zone as listed, with the credential it was read with.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ZoneView {
    pub credential_id: String,
    pub provider: String,
    pub id: String,
    pub name: String,
}

/// A credential whose zones could not be read.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ZoneError {
    pub credential_id: String,
    pub message: String,
}

/// `{"data": [zone...], "errors": [...]}`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ZoneList {
    pub data: Vec<ZoneView>,
    /// Credentials whose provider answered with an error (their message).
    pub errors: Vec<ZoneError>,
}

/// `?credential_id=` of the zone routes.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct CredentialQuery {
    /// The DNS credential to read with (every DNS credential of the organization when
    /// left out, for the zone list).
    pub credential_id: Option<String>,
}

/// `GET /v1/dns/zones`: the zones of one DNS credential, or of all of them.
pub async fn zones(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(q): AppQuery<CredentialQuery>,
) -> AppResult<AppJson<ZoneList>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::DnsRead::KEY,
    )
    .await?;
    let ids: Vec<String> = match q.credential_id.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => vec![id.to_owned()],
        None => providers_of(&state, &member.org_id)
            .await?
            .into_iter()
            .filter(|(_, p)| super::PROVIDERS.contains(&p.as_str()))
            .map(|(id, _)| id)
            .collect(),
    };
    let single = q.credential_id.is_some();
    let mut out = ZoneList {
        data: Vec::new(),
        errors: Vec::new(),
    };
    for id in ids {
        let (credential, provider) = open(&state, &member.org_id, &id).await?;
        match provider.zones().await {
            Ok(zones) => out.data.extend(zones.into_iter().map(|z| ZoneView {
                credential_id: credential.id.clone(),
                provider: credential.provider.clone(),
                id: z.id,
                name: z.name,
            })),
            Err(e) if single => return Err(e.into()),
            Err(e) => out.errors.push(ZoneError {
                credential_id: credential.id.clone(),
                message: e.to_string(),
            }),
        }
    }
    Ok(AppJson(out))
}

/// One record set of a zone, as its provider holds it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ZoneRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub ttl: u32,
    pub contents: Vec<String>,
    /// The panel made it (its ownership marker says so).
    pub managed: bool,
    /// The panel's record of it, when it has one.
    pub record_id: Option<String>,
}

/// A zone's records as the provider holds them.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ZoneRecords {
    pub zone: Zone,
    pub data: Vec<ZoneRecord>,
}

/// `GET /v1/dns/zones/{zoneId}/records?credential_id=`: read from the provider; the
/// ownership markers are left out, the sets they name are `managed`.
pub async fn zone_records(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(zone_id): AppPath<String>,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(q): AppQuery<CredentialQuery>,
) -> AppResult<AppJson<ZoneRecords>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::DnsRead::KEY,
    )
    .await?;
    let Some(credential_id) = q.credential_id.filter(|s| !s.is_empty()) else {
        return Err(AppError::invalid_field(
            "credential_id",
            "credential_id is required: the DNS credential the zone is read with",
        ));
    };
    let t = target(&state, &member.org_id, &credential_id, &zone_id).await?;
    let sets = t.provider.records(&t.zone).await?;
    let ours = store::of_zone(&state.db.pool, &t.credential.id, &t.zone.id).await?;
    let me = owner_of(&state, &member.org_id);
    let zone_view = owner::ZoneView::new(&sets);
    let mut data: Vec<ZoneRecord> = sets
        .iter()
        .filter(|s| !s.name.starts_with(&format!("{}.", owner::PREFIX)))
        .map(|s| ZoneRecord {
            managed: zone_view.owns(&me, &s.name, &s.record_type),
            record_id: ours
                .iter()
                .find(|r| r.name == s.name && r.record_type == s.record_type)
                .map(|r| r.id.clone()),
            name: s.name.clone(),
            record_type: s.record_type.clone(),
            ttl: s.ttl,
            contents: s.contents.clone(),
        })
        .collect();
    data.sort_by(|a, b| (&a.name, &a.record_type).cmp(&(&b.name, &b.record_type)));
    Ok(AppJson(ZoneRecords { zone: t.zone, data }))
}

/// `{"data": [record...]}`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordList {
    pub data: Vec<RecordView>,
}

/// `?credential_id=&zone_id=&instance_id=&node_id=` of the record list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RecordQuery {
    pub credential_id: Option<String>,
    pub zone_id: Option<String>,
    /// The records auto-DNS made for this server.
    pub instance_id: Option<String>,
    /// The records that follow this node's address.
    pub node_id: Option<String>,
}

/// `GET /v1/dns/records`: the records the panel manages.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(q): AppQuery<RecordQuery>,
) -> AppResult<AppJson<RecordList>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::DnsRead::KEY,
    )
    .await?;
    let rows = store::list(
        &state.db.pool,
        &member.org_id,
        &store::Filter {
            credential_id: q.credential_id.as_deref(),
            zone_id: q.zone_id.as_deref(),
            instance_id: q.instance_id.as_deref(),
            node_id: q.node_id.as_deref(),
        },
    )
    .await?;
    let providers = providers_of(&state, &member.org_id).await?;
    let provider = |id: &str| {
        providers
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    Ok(AppJson(RecordList {
        data: rows
            .into_iter()
            .map(|r| {
                let p = provider(&r.credential_id);
                RecordView::of(r, &p)
            })
            .collect(),
    }))
}

/// `GET /v1/dns/records/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Record, perm::DnsRead>,
) -> AppResult<AppJson<RecordView>> {
    Ok(AppJson(view(&state, resource).await?))
}

/// A new record.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The organization (the personal one by default).
    pub organization_id: Option<String>,
    /// A `cloudflare`, `powerdns` or `rfc2136` credential.
    pub credential_id: String,
    /// The zone's id as `GET /v1/dns/zones` lists it.
    pub zone_id: String,
    /// `A`, `AAAA`, `CNAME`, `TXT` or `SRV`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// Relative to the zone (`mc`, `@` for the zone itself) or fully qualified in it.
    pub name: String,
    /// As in a zone file; SRV `priority weight port target`. Left out for an A or AAAA
    /// record that follows `node_id`.
    pub content: Option<String>,
    /// Seconds, 60 to 86400 (300 by default).
    pub ttl: Option<i64>,
    /// An A or AAAA record follows this node's public address.
    pub node_id: Option<String>,
}

/// The content of a record that follows `node_id`: the node's public address of the
/// record's family.
async fn node_content(
    state: &AppState,
    org_id: &str,
    node_id: &str,
    record_type: &str,
) -> AppResult<String> {
    if !matches!(record_type, "A" | "AAAA") {
        return Err(AppError::invalid_field(
            "node_id",
            "only A and AAAA records follow a node's address",
        ));
    }
    let (v4, v6) = node_addresses(state, node_id, org_id)
        .await?
        .ok_or_else(|| AppError::invalid_field("node_id", "no such node"))?;
    let address = if record_type == "A" { v4 } else { v6 };
    address.ok_or_else(|| {
        AppError::invalid_field(
            "node_id",
            format!(
                "the node has no public {} address: set it on the node first",
                if record_type == "A" { "IPv4" } else { "IPv6" }
            ),
        )
    })
}

/// A node's public addresses, if it belongs to `org_id`.
///
/// # Errors
/// Database failures.
pub async fn node_addresses(
    state: &AppState,
    node_id: &str,
    org_id: &str,
) -> sqlx::Result<Option<(Option<String>, Option<String>)>> {
    sqlx::query_as("SELECT public_ipv4, public_ipv6 FROM nodes WHERE id = $1 AND org_id = $2")
        .bind(node_id)
        .bind(org_id)
        .fetch_optional(&state.db.pool)
        .await
}

/// `POST /v1/dns/records`: written at the provider with its ownership marker, then
/// recorded.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<CreateBody>,
) -> AppResult<(StatusCode, AppJson<RecordView>)> {
    let requested =
        crate::orgs::scope::requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), perm::DnsWrite::KEY).await?;
    let record_type = names::record_type(&body.record_type)?;
    let ttl = names::ttl(body.ttl)?;
    if body.credential_id.trim().is_empty() {
        return Err(AppError::invalid_field(
            "credential_id",
            "credential_id is required",
        ));
    }
    if body.zone_id.trim().is_empty() {
        return Err(AppError::invalid_field("zone_id", "zone_id is required"));
    }
    let node_id = body.node_id.clone().filter(|n| !n.is_empty());
    let t = target(&state, &member.org_id, &body.credential_id, &body.zone_id).await?;
    let name = names::fqdn(&body.name, &t.zone.name)?;
    let given = match (&body.content, &node_id) {
        (Some(c), node) if !c.trim().is_empty() => {
            // A record that follows a node must be one it can follow.
            if let Some(node) = node {
                node_content(&state, &member.org_id, node, record_type).await?;
            }
            c.clone()
        }
        (_, Some(node)) => node_content(&state, &member.org_id, node, record_type).await?,
        _ => return Err(AppError::invalid_field("content", "content is required")),
    };
    let content = names::content(record_type, &given, &name, &t.zone.name)?;
    if store::find_set(
        &state.db.pool,
        &t.credential.id,
        &t.zone.id,
        &name,
        record_type,
    )
    .await?
    .is_some()
    {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "DNS_RECORD_EXISTS",
            format!("the panel already manages the {record_type} record of {name}: edit that one"),
        ));
    }
    let now = now_ms();
    let r = Record {
        id: new_id(),
        org_id: member.org_id.clone(),
        credential_id: t.credential.id.clone(),
        zone_id: t.zone.id.clone(),
        zone_name: t.zone.name.clone(),
        record_type: record_type.to_owned(),
        name,
        content,
        ttl: i64::from(ttl),
        node_id,
        instance_id: None,
        origin: "manual".into(),
        status: "synced".into(),
        last_error: None,
        checked_at: Some(now),
        created_by: Some(user.user.id.clone()),
        created_at: now,
        updated_at: now,
    };
    change(&t, &owner_of(&state, &member.org_id), &[r.set()], &[]).await?;
    store::insert(&state.db.pool, &r)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) if db.is_unique_violation() => AppError::coded(
                StatusCode::CONFLICT,
                "DNS_RECORD_EXISTS",
                "the panel already manages this record",
            ),
            e => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        AppJson(RecordView::of(r, &t.credential.provider)),
    ))
}

/// A change to a record (its zone and type stay).
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    pub name: Option<String>,
    pub content: Option<String>,
    pub ttl: Option<i64>,
    /// Follow this node's address; `""` stops following (the content stays).
    pub node_id: Option<String>,
}

/// `PUT /v1/dns/records/{id}`: the provider first, then the row.
pub async fn update(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Record, perm::DnsWrite>,
    AppJson(body): AppJson<UpdateBody>,
) -> AppResult<AppJson<RecordView>> {
    let before = resource;
    let mut r = before.clone();
    if let Some(name) = &body.name {
        r.name = names::fqdn(name, &r.zone_name)?;
    }
    if let Some(ttl) = body.ttl {
        r.ttl = i64::from(names::ttl(Some(ttl))?);
    }
    if let Some(node) = &body.node_id {
        r.node_id = Some(node.clone()).filter(|n| !n.is_empty());
    }
    match (&body.content, &r.node_id) {
        (Some(c), _) if !c.trim().is_empty() => {
            r.content = names::content(&r.record_type, c, &r.name, &r.zone_name)?;
        }
        (Some(_), None) => return Err(AppError::invalid_field("content", "content is required")),
        (_, Some(node)) => {
            let c = node_content(&state, &r.org_id, node, &r.record_type).await?;
            r.content = names::content(&r.record_type, &c, &r.name, &r.zone_name)?;
        }
        (None, None) => {
            r.content = names::content(&r.record_type, &r.content, &r.name, &r.zone_name)?;
        }
    }
    if r.name != before.name
        && store::find_set(
            &state.db.pool,
            &r.credential_id,
            &r.zone_id,
            &r.name,
            &r.record_type,
        )
        .await?
        .is_some()
    {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "DNS_RECORD_EXISTS",
            format!(
                "the panel already manages the {} record of {}",
                r.record_type, r.name
            ),
        ));
    }
    let t = target_of(&state, &before).await?;
    let removes = if r.name == before.name {
        Vec::new()
    } else {
        vec![(before.name.clone(), before.record_type.clone())]
    };
    change(&t, &owner_of(&state, &r.org_id), &[r.set()], &removes).await?;
    let now = now_ms();
    r.status = "synced".into();
    r.last_error = None;
    r.checked_at = Some(now);
    r.updated_at = now;
    store::update(&state.db.pool, &r).await?;
    Ok(AppJson(RecordView::of(r, &t.credential.provider)))
}

/// `DELETE /v1/dns/records/{id}`: removed at the provider (when it is still ours
/// there), then forgotten.
pub async fn delete(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Record, perm::DnsWrite>,
) -> AppResult<NoContent> {
    let t = target_of(&state, &resource).await?;
    change(
        &t,
        &owner_of(&state, &resource.org_id),
        &[],
        &[(resource.name.clone(), resource.record_type.clone())],
    )
    .await?;
    store::delete(&state.db.pool, &resource.id).await?;
    Ok(NoContent)
}

impl crate::authz::OrgScoped for Record {
    const NAME: &'static str = "record";

    async fn find(state: &AppState, id: &str) -> AppResult<Option<Self>> {
        Ok(store::find_any(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}
