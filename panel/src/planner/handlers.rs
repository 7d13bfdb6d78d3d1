//! `/v1/planner/*`: the requests, their checks and answers. Planning reads the fleet, so
//! every route but `templates` needs `nodes.read` in the organization (`organization_id`
//! in the body or the query; the personal organization by default).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::advise::{self, TypeOption};
use super::catalog::{self, Template};
use super::fit::{self, Demand, NodeRoom, Outcome};
use super::{fleet, refresh};
use crate::auth::extract::CurrentUser;
use crate::authz::{Permission, perm};
use crate::db::ts;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, requested_org, scoped};
use crate::state::AppState;

const MAX_MEMORY_MB: i64 = 16 * 1024 * 1024;
const MAX_DISK_MB: i64 = 1024 * 1024 * 1024;
const MAX_CPU: f64 = 1024.0;
const MAX_COUNT: i64 = 1000;
const MAX_PORTS: usize = 64;
const MAX_PORT_COUNT: i64 = 1024;

/// A workload to place.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestFitBody {
    /// The organization (the personal one by default).
    pub organization_id: Option<String>,
    /// Memory, MB (1 to 16777216).
    pub memory_mb: i64,
    /// CPU in cores, fractional allowed: `0.5` is half a core, `2` two (a server's
    /// `cpu_percent` 100 is one core). More than 0, at most 1024.
    pub cpu: f64,
    /// Disk, MB; give this or `disk_gb`.
    pub disk_mb: Option<i64>,
    /// Disk, GB (1024 MB); give this or `disk_mb`.
    pub disk_gb: Option<i64>,
    /// Ports that must be free on the node (at most 64).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Further free ports the node's range must have (default 1 when `ports` is empty,
    /// else 0; at most 1024).
    pub port_count: Option<i64>,
}

/// The demand as the planner read it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DemandView {
    pub memory_mb: i64,
    /// Cores.
    pub cpu: f64,
    pub disk_mb: i64,
    pub ports: Vec<u16>,
    pub port_count: i64,
}

impl From<&Demand> for DemandView {
    fn from(d: &Demand) -> Self {
        #[expect(clippy::cast_precision_loss, reason = "millicores")]
        let cpu = d.cpu_millis as f64 / 1000.0;
        Self {
            memory_mb: d.memory_mb,
            cpu,
            disk_mb: d.disk_mb,
            ports: d.ports.clone(),
            port_count: d.port_count,
        }
    }
}

/// The chosen node.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChosenNode {
    pub id: String,
    pub name: String,
    /// Mean share of memory, disk (and CPU when known) in use after placement, percent.
    pub score: f64,
}

/// How one node fared.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeReason {
    pub node_id: String,
    pub node_name: String,
    pub fits: bool,
    /// Its score when it fits (percent in use after placement; higher is tighter).
    pub score: Option<f64>,
    /// Why it was rejected: `NODE_OFFLINE`, `NODE_CORDONED`, `NO_CAPACITY_REPORTED`,
    /// `INSUFFICIENT_MEMORY`, `INSUFFICIENT_DISK`, `INSUFFICIENT_CPU`, `PORT_TAKEN`,
    /// `PORTS_EXHAUSTED`.
    pub code: Option<String>,
    /// The reason in a sentence.
    pub reason: String,
    pub instances: i64,
    /// Whether this is the node chosen.
    pub chosen: bool,
    /// A platform node (shared; `instances` counts only the organization's own).
    #[serde(default)]
    pub platform: bool,
}

/// The node chosen for a workload and why.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SuggestFit {
    /// The best fit (`null`: no node can take it).
    pub node: Option<ChosenNode>,
    pub demand: DemandView,
    /// Every node of the organization, best first, with why it was or was not chosen.
    pub reasons: Vec<NodeReason>,
    /// When no node fits: the cheapest type that would, of the first provider that has
    /// one (Hetzner first; prices of different providers are in different currencies,
    /// so they are not compared).
    pub recommendation: Option<TypeOption>,
    /// When no node fits: the cheapest type per provider.
    pub options: Vec<TypeOption>,
    pub message: String,
}

fn percent(score: i64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "per-mille")]
    let p = score as f64 / 10.0;
    p
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid_field(field, message)
}

/// The demand of a request, checked.
fn demand_of(
    memory_mb: i64,
    cpu: f64,
    disk_mb: Option<i64>,
    disk_gb: Option<i64>,
    ports: Vec<u16>,
    port_count: Option<i64>,
) -> AppResult<Demand> {
    if !(1..=MAX_MEMORY_MB).contains(&memory_mb) {
        return Err(invalid(
            "memory_mb",
            format!("memory_mb must be between 1 and {MAX_MEMORY_MB}"),
        ));
    }
    if !cpu.is_finite() || cpu <= 0.0 || cpu > MAX_CPU {
        return Err(invalid(
            "cpu",
            "cpu must be more than 0 and at most 1024 cores (0.5 is half a core)",
        ));
    }
    let disk_mb = match (disk_mb, disk_gb) {
        (Some(_), Some(_)) => return Err(invalid("disk_mb", "give disk_mb or disk_gb, not both")),
        (Some(mb), None) => mb,
        (None, Some(gb)) => gb.checked_mul(1024).unwrap_or(i64::MAX),
        (None, None) => return Err(invalid("disk_mb", "disk_mb or disk_gb is required")),
    };
    if !(1..=MAX_DISK_MB).contains(&disk_mb) {
        return Err(invalid(
            "disk_mb",
            format!("disk must be between 1 MB and {MAX_DISK_MB} MB (1 PiB)"),
        ));
    }
    if ports.len() > MAX_PORTS || ports.contains(&0) {
        return Err(invalid(
            "ports",
            "ports must be at most 64 ports between 1 and 65535",
        ));
    }
    let port_count = port_count.unwrap_or(i64::from(ports.is_empty()));
    if !(0..=MAX_PORT_COUNT).contains(&port_count) {
        return Err(invalid(
            "port_count",
            "port_count must be between 0 and 1024",
        ));
    }
    #[expect(clippy::cast_possible_truncation, reason = "at most 1024 cores")]
    let cpu_millis = (cpu * 1000.0).round().max(1.0) as i64;
    let mut ports = ports;
    ports.sort_unstable();
    ports.dedup();
    Ok(Demand {
        memory_mb,
        cpu_millis,
        disk_mb,
        ports,
        port_count,
    })
}

fn reasons(rooms: &[NodeRoom], outcomes: &[Outcome], chosen: Option<usize>) -> Vec<NodeReason> {
    let mut out: Vec<(Option<i64>, NodeReason)> = rooms
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(i, (r, o))| {
            let (fits, score, code, reason) = match o {
                Outcome::Fits { score } => (
                    true,
                    Some(percent(*score)),
                    None,
                    format!(
                        "fits: {}% of its memory, disk{} in use after placement, {} instances",
                        percent(*score),
                        if r.cpu_total_millis.is_some() {
                            " and CPU"
                        } else {
                            ""
                        },
                        r.instances
                    ),
                ),
                Outcome::Rejected { code, reason } => {
                    (false, None, Some((*code).to_owned()), reason.clone())
                }
            };
            (
                o.score(),
                NodeReason {
                    node_id: r.id.clone(),
                    node_name: r.name.clone(),
                    fits,
                    score,
                    code,
                    reason,
                    instances: r.instances,
                    chosen: Some(i) == chosen,
                    platform: r.platform,
                },
            )
        })
        .collect();
    out.sort_by(|a, b| {
        b.1.chosen
            .cmp(&a.1.chosen)
            .then(b.0.cmp(&a.0))
            .then(a.1.node_name.cmp(&b.1.node_name))
    });
    out.into_iter().map(|(_, r)| r).collect()
}

/// Suggest-fit over an organization's fleet (what the route and the web form use).
///
/// # Errors
/// Database failures; those of [`advise::options`] when no node fits.
pub async fn suggest(state: &AppState, org_id: &str, d: &Demand) -> AppResult<SuggestFit> {
    let rooms = fleet::load(state, org_id).await?;
    let (chosen, outcomes) = fit::best(&rooms, d);
    let reasons = reasons(&rooms, &outcomes, chosen);
    if let Some(i) = chosen {
        let r = &rooms[i];
        let score = percent(outcomes[i].score().unwrap_or_default());
        return Ok(SuggestFit {
            node: Some(ChosenNode {
                id: r.id.clone(),
                name: r.name.clone(),
                score,
            }),
            demand: d.into(),
            message: format!(
                "{} is the tightest fit ({score}% in use after placement)",
                r.name
            ),
            reasons,
            recommendation: None,
            options: Vec::new(),
        });
    }
    let (options, message) = match advise::options(state, org_id, d, 1, None, None).await {
        Ok(o) => {
            let message = match o.options.first() {
                Some(b) => format!(
                    "no node fits; the cheapest {} type that would is {} at {} {} a month",
                    b.provider, b.instance_type, b.monthly, b.currency
                ),
                None => "no node fits and no instance type is available".to_owned(),
            };
            (o.options, message)
        }
        Err(AppError::Coded { message, .. }) => (
            Vec::new(),
            format!("no node fits, and no instance type would: {message}"),
        ),
        Err(e) => return Err(e),
    };
    Ok(SuggestFit {
        node: None,
        demand: d.into(),
        reasons,
        recommendation: options.first().cloned(),
        options,
        message,
    })
}

/// `POST /v1/planner/suggest-fit`.
pub async fn suggest_fit(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<SuggestFitBody>,
) -> AppResult<AppJson<SuggestFit>> {
    let requested = requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), perm::NodesRead::KEY).await?;
    let d = demand_of(
        body.memory_mb,
        body.cpu,
        body.disk_mb,
        body.disk_gb,
        body.ports,
        body.port_count,
    )?;
    Ok(AppJson(suggest(&state, &member.org_id, &d).await?))
}

/// A capacity question: can the fleet hold `count` copies, and if not what to buy.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendBody {
    pub organization_id: Option<String>,
    /// Memory of one copy, MB.
    pub memory_mb: i64,
    /// CPU of one copy, cores (fractional allowed).
    pub cpu: f64,
    /// Disk of one copy, GB; or `disk_mb`.
    pub disk_gb: Option<i64>,
    pub disk_mb: Option<i64>,
    /// Free ports each copy needs (default 1).
    pub port_count: Option<i64>,
    /// Copies (1 to 1000, default 1).
    pub count: Option<i64>,
    /// `hetzner`, `aws`, `gcp` or `oci` (default: each).
    pub provider: Option<String>,
    /// A region of the provider's table (default: each type's cheapest).
    pub region: Option<String>,
}

/// Where one copy went.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Placement {
    pub node_id: String,
    pub node_name: String,
}

/// The answer to a capacity question.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Recommendation {
    /// Every copy fits on the fleet as it is.
    pub fleet_fits: bool,
    pub count: i64,
    pub placed: i64,
    pub unplaced: i64,
    /// Where the placed copies would go (first-fit-decreasing, each on its best fit).
    pub placements: Vec<Placement>,
    pub demand: DemandView,
    /// When copies are left over: the cheapest available type per provider for them.
    pub options: Vec<TypeOption>,
    /// The first provider's option (Hetzner first); providers are not compared, their
    /// currencies differ.
    pub cheapest: Option<TypeOption>,
    /// ARM types that would fit but cannot be used yet (no ARM agent build).
    pub unavailable: Vec<TypeOption>,
    /// Providers left out and why; price-table notes.
    pub notes: Vec<String>,
    pub message: String,
}

async fn recommend_inner(
    state: &AppState,
    org_id: &str,
    d: &Demand,
    count: i64,
    provider: Option<&str>,
    region: Option<&str>,
) -> AppResult<Recommendation> {
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(invalid("count", "count must be between 1 and 1000"));
    }
    if let Some(p) = provider
        && !catalog::PROVIDERS.contains(&p)
    {
        return Err(advise::unknown_provider(p));
    }
    let rooms = fleet::load(state, org_id).await?;
    let copies = vec![d.clone(); usize::try_from(count).unwrap_or(1)];
    let placed = fit::place_all(&rooms, &copies);
    let placements: Vec<Placement> = placed
        .iter()
        .flatten()
        .map(|&i| Placement {
            node_id: rooms[i].id.clone(),
            node_name: rooms[i].name.clone(),
        })
        .collect();
    let n_placed = i64::try_from(placements.len()).unwrap_or(0);
    let unplaced = count - n_placed;
    let mut rec = Recommendation {
        fleet_fits: unplaced == 0,
        count,
        placed: n_placed,
        unplaced,
        placements,
        demand: d.into(),
        options: Vec::new(),
        cheapest: None,
        unavailable: Vec::new(),
        notes: Vec::new(),
        message: String::new(),
    };
    if unplaced == 0 {
        rec.message = format!("the fleet holds all {count} copies");
        return Ok(rec);
    }
    let o = advise::options(state, org_id, d, unplaced, provider, region).await?;
    rec.cheapest = o.options.first().cloned();
    rec.message = match &rec.cheapest {
        Some(b) => format!(
            "the fleet holds {n_placed} of {count}; {} × {} ({}) would hold the other {unplaced} for {} {} a month",
            b.nodes_needed, b.instance_type, b.provider, b.total_monthly, b.currency
        ),
        None => format!("the fleet holds {n_placed} of {count}; no available type fits"),
    };
    rec.options = o.options;
    rec.unavailable = o.unavailable;
    rec.notes = o.notes;
    Ok(rec)
}

/// `POST /v1/planner/recommend`.
pub async fn recommend(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<RecommendBody>,
) -> AppResult<AppJson<Recommendation>> {
    let requested = requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), perm::NodesRead::KEY).await?;
    let d = demand_of(
        body.memory_mb,
        body.cpu,
        body.disk_mb,
        body.disk_gb,
        Vec::new(),
        Some(body.port_count.unwrap_or(1)),
    )?;
    Ok(AppJson(
        recommend_inner(
            &state,
            &member.org_id,
            &d,
            body.count.unwrap_or(1),
            body.provider.as_deref(),
            body.region.as_deref(),
        )
        .await?,
    ))
}

/// A capacity question sized from a bundled template.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    pub organization_id: Option<String>,
    /// A template id of `GET /v1/planner/templates`.
    pub template: String,
    /// Players (1 to 10000): memory grows past the template's `players_included`.
    pub players: Option<u32>,
    pub count: Option<i64>,
    pub provider: Option<String>,
    pub region: Option<String>,
}

/// The answer sized from a template.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateRecommendation {
    pub template: Template,
    pub players: Option<u32>,
    #[serde(flatten)]
    pub recommendation: Recommendation,
}

/// `POST /v1/planner/recommend-for-template`.
pub async fn recommend_for_template(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<TemplateBody>,
) -> AppResult<AppJson<TemplateRecommendation>> {
    let requested = requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), perm::NodesRead::KEY).await?;
    let template = catalog::templates()
        .templates
        .iter()
        .find(|t| t.id == body.template)
        .ok_or_else(|| {
            AppError::coded(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNKNOWN_TEMPLATE",
                format!(
                    "template {} is not bundled: GET /v1/planner/templates lists them",
                    body.template
                ),
            )
        })?;
    if body.players.is_some_and(|p| !(1..=10_000).contains(&p)) {
        return Err(invalid("players", "players must be between 1 and 10000"));
    }
    let ports: Vec<u16> = Vec::new();
    let mut distinct: Vec<u16> = template.ports.iter().map(|p| p.port).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let d = demand_of(
        template.memory_for(body.players),
        template.cpu_cores,
        None,
        Some(template.disk_gb),
        ports,
        Some(i64::try_from(distinct.len()).unwrap_or(1)),
    )?;
    let recommendation = recommend_inner(
        &state,
        &member.org_id,
        &d,
        body.count.unwrap_or(1),
        body.provider.as_deref(),
        body.region.as_deref(),
    )
    .await?;
    Ok(AppJson(TemplateRecommendation {
        template: template.clone(),
        players: body.players,
        recommendation,
    }))
}

/// `?provider=&region=` of the pricing route.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct PricingQuery {
    /// Only this provider's table.
    pub provider: Option<String>,
    /// Only this region's prices.
    pub region: Option<String>,
}

/// One provider's price table as served.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PricingView {
    pub provider: String,
    /// The table's version (`YYYY-MM-DD.N` bundled, `api-<ms>` read from the API).
    pub version: String,
    /// The day the prices were read (`YYYY-MM-DD`).
    pub read_on: String,
    /// `bundled` (the table kept in the repository) or `hetzner_api` (read with the
    /// organization's Hetzner credential, kept an hour).
    pub source: String,
    /// Where the prices were read: the pages cited, or the API's address.
    pub reference: String,
    /// When the table was read from the API.
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub refreshed_at: Option<i64>,
    /// Why the bundled table is served although a credential exists.
    pub fallback_note: Option<String>,
    pub currency: String,
    pub note: String,
    pub regions: Vec<catalog::Region>,
    pub types: Vec<catalog::InstanceType>,
}

/// `{"data": [table...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PricingList {
    pub data: Vec<PricingView>,
}

/// `GET /v1/planner/pricing`.
pub async fn pricing(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(q): AppQuery<PricingQuery>,
) -> AppResult<AppJson<PricingList>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::NodesRead::KEY,
    )
    .await?;
    let providers: Vec<&str> = match q.provider.as_deref().filter(|p| !p.is_empty()) {
        Some(p) if catalog::PROVIDERS.contains(&p) => vec![p],
        Some(p) => return Err(advise::unknown_provider(p)),
        None => catalog::PROVIDERS.to_vec(),
    };
    let region = q.region.as_deref().filter(|r| !r.is_empty());
    let mut data = Vec::new();
    for p in providers {
        let Some(s) = refresh::table(&state, &member.org_id, p).await else {
            continue;
        };
        let mut table = s.table;
        if let Some(r) = region {
            if !table.has_region(r) {
                continue;
            }
            table.regions.retain(|x| x.id == r);
            for t in &mut table.types {
                t.prices.retain(|k, _| k == r);
            }
            table.types.retain(|t| !t.prices.is_empty());
        }
        data.push(PricingView {
            provider: table.provider,
            version: table.version,
            read_on: table.read_on,
            source: s.origin.to_owned(),
            reference: table.source,
            refreshed_at: s.refreshed_at,
            fallback_note: s.note,
            currency: table.currency,
            note: table.note,
            regions: table.regions,
            types: table.types,
        });
    }
    if data.is_empty()
        && let Some(r) = region
    {
        return Err(AppError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_REGION",
            format!("region {r} is in no price table asked for"),
        ));
    }
    Ok(AppJson(PricingList { data }))
}

/// The bundled templates.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateList {
    pub version: String,
    pub note: String,
    pub data: Vec<Template>,
}

/// `GET /v1/planner/templates`.
pub async fn templates(_user: CurrentUser) -> AppJson<TemplateList> {
    let t = catalog::templates();
    AppJson(TemplateList {
        version: t.version.clone(),
        note: t.note.clone(),
        data: t.templates.clone(),
    })
}
