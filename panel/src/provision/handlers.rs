//! `/v1/provision*` and `/v1/nodes/{id}/resize`. Reading needs `provision.read`,
//! planning, applying and destroying `provision.write`, resizing `nodes.power`; another
//! organization's request answers 404.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::store::{self, Request, Run};
use super::{Kind, PROVIDERS, runner};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, Permission, perm};
use crate::billing::limits::{self, Ask, Limit};
use crate::db::{new_id, ts};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::nodes::store::Node;
use crate::orgs::scope::{OrgQuery, scoped};
use crate::state::AppState;

/// Most requests an organization keeps (destroyed ones included).
const MAX_PER_ORG: i64 = 500;

/// A Terraform run, as shown.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunView {
    pub id: String,
    /// `plan`, `apply`, `destroy` or `resize`.
    pub kind: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// Why it failed.
    pub message: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub started_at: i64,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub finished_at: Option<i64>,
}

impl From<Run> for RunView {
    fn from(r: Run) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            status: r.status,
            message: r.message,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

/// A provision request, as shown.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestView {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub provider: String,
    pub region: String,
    pub instance_type: String,
    pub image: String,
    pub credential_id: Option<String>,
    /// `pending`, `planning`, `planned` (awaiting approval), `applying`, `applied` (the
    /// server exists; its agent has not connected yet), `provisioned`, `resizing`,
    /// `failed`, `destroying` or `destroyed`.
    pub status: String,
    /// Why it failed (the provider's or Terraform's message).
    pub status_message: Option<String>,
    /// What the plan awaiting approval does: `counts` per action and each `changes`.
    pub plan: Option<Value>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub planned_at: Option<i64>,
    /// Price per hour and per month of the instance type, from the planner's table.
    pub price_hourly: Option<String>,
    pub price_monthly: Option<String>,
    /// The provider's id of the server.
    pub server_id: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// The node its agent registered as.
    pub node_id: Option<String>,
    /// The latest Terraform runs, newest first.
    pub runs: Vec<RunView>,
    pub created_by: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

impl RequestView {
    fn of(r: Request, runs: Vec<Run>) -> Self {
        Self {
            plan: r
                .plan_summary
                .as_deref()
                .filter(|_| r.status == "planned" || r.status == "applying")
                .and_then(|s| serde_json::from_str(s).ok()),
            id: r.id,
            organization_id: r.org_id,
            name: r.name,
            provider: r.provider,
            region: r.region,
            instance_type: r.instance_type,
            image: r.image,
            credential_id: r.credential_id,
            status: r.status,
            status_message: r.status_message,
            planned_at: r.planned_at,
            price_hourly: r.price_hourly,
            price_monthly: r.price_monthly,
            server_id: r.server_id,
            ipv4: r.ipv4,
            ipv6: r.ipv6,
            node_id: r.node_id,
            runs: runs.into_iter().take(10).map(RunView::from).collect(),
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The request `id` as it is now, with its runs.
async fn view(state: &AppState, id: &str) -> AppResult<RequestView> {
    let r = store::find(&state.db.pool, id)
        .await?
        .ok_or_else(|| AppError::not_found("provision request"))?;
    let runs = store::runs(&state.db.pool, id).await?;
    Ok(RequestView::of(r, runs))
}

/// `{"data": [request...]}`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestList {
    pub data: Vec<RequestView>,
}

/// An organization's requests, newest first.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
) -> AppResult<AppJson<RequestList>> {
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::ProvisionRead::KEY,
    )
    .await?;
    let rows = store::list(&state.db.pool, &member.org_id).await?;
    Ok(AppJson(RequestList {
        data: rows
            .into_iter()
            .map(|r| RequestView::of(r, Vec::new()))
            .collect(),
    }))
}

/// A provider that can make nodes.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    /// The image used when a request names none.
    pub default_image: String,
    /// Whether this panel can create nodes there end to end today.
    pub available: bool,
    /// Why not, when not.
    pub note: Option<String>,
}

/// `{"data": [provider...]}`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderList {
    pub data: Vec<ProviderInfo>,
}

/// The providers with a Terraform module.
pub async fn providers(_user: CurrentUser) -> AppJson<ProviderList> {
    AppJson(ProviderList {
        data: PROVIDERS
            .iter()
            .map(|(id, name, image)| ProviderInfo {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                default_image: (*image).to_owned(),
                available: true,
                note: (*id != "hetzner").then(|| {
                    "its module is checked for format and interface only; power and \
                     firewall control answer 501 until done"
                        .to_owned()
                }),
            })
            .collect(),
    })
}

/// A new request.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The organization (the personal one by default).
    pub organization_id: Option<String>,
    /// The server's name: a hostname label (letters, digits, `-`), also the node's.
    pub name: String,
    /// `hetzner`, `aws`, `gcp` or `oci`.
    pub provider: String,
    /// The provider's region or location (`fsn1`).
    pub region: String,
    /// The provider's instance type (`cx32`); x86_64 only.
    pub instance_type: String,
    /// The OS image; the provider's Debian by default.
    pub image: Option<String>,
    /// The credential that pays; the organization's default for the provider when left
    /// out.
    pub credential_id: Option<String>,
}

/// A hostname label: 1 to 63 of `a-z`, `0-9` and `-`, not at either end.
fn hostname_of(name: &str) -> AppResult<String> {
    let name = name.trim().to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(AppError::invalid_field(
            "name",
            "name must be a hostname: 1 to 63 letters, digits and dashes, not starting or ending with a dash",
        ));
    }
    Ok(name)
}

/// A provider's word (region, type, image): 1 to 100 of letters, digits, `.`, `_`,
/// `-`, `/`, `:`.
fn word_of(field: &str, value: &str) -> AppResult<String> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.len() <= 100
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':'));
    if !ok {
        return Err(AppError::invalid_field(
            field,
            format!("{field} must be 1 to 100 letters, digits, '.', '_', '-', '/' or ':'"),
        ));
    }
    Ok(v.to_owned())
}

/// Checks `instance_type` against the planner's table: known, and x86_64 (no ARM agent
/// build exists yet).
fn check_type(provider: &str, instance_type: &str) -> AppResult<()> {
    match crate::planner::instance_type(provider, instance_type) {
        None => Err(AppError::invalid_field(
            "instance_type",
            format!("{provider} has no instance type {instance_type:?} in the price table"),
        )),
        Some(t) if !t.available() => Err(AppError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ARM_UNAVAILABLE",
            format!(
                "{instance_type} is an ARM type: no ARM agent build exists yet; choose an x86 type"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Creates a request (`pending`); `plan` is the next step. The node it will make must
/// fit the organization's plan (402 `PLAN_LIMIT`, no request kept).
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<CreateBody>,
) -> AppResult<(StatusCode, AppJson<RequestView>)> {
    let requested =
        crate::orgs::scope::requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(
        &state,
        &user,
        requested.as_deref(),
        perm::ProvisionWrite::KEY,
    )
    .await?;
    let name = hostname_of(&body.name)?;
    let Some((provider, _, default_image)) = PROVIDERS.iter().find(|(id, ..)| *id == body.provider)
    else {
        return Err(AppError::invalid_field(
            "provider",
            format!(
                "provider must be one of {}",
                PROVIDERS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let region = word_of("region", &body.region)?;
    let instance_type = word_of("instance_type", &body.instance_type)?;
    check_type(provider, &instance_type)?;
    let image = word_of("image", body.image.as_deref().unwrap_or(default_image))?;
    let pool = &state.db.pool;
    let credentials = crate::credentials::store::list(pool, &member.org_id, Some(provider)).await?;
    let credential = match &body.credential_id {
        Some(id) => credentials.iter().find(|c| &c.id == id).ok_or_else(|| {
            AppError::invalid_field(
                "credential_id",
                format!("the organization has no {provider} credential {id:?}"),
            )
        })?,
        None => credentials
            .iter()
            .find(|c| c.is_default)
            .or_else(|| credentials.first())
            .ok_or_else(|| {
                AppError::coded(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "NO_CREDENTIAL",
                    format!("add a {provider} credential to the organization first"),
                )
            })?,
    };
    if store::count(pool, &member.org_id).await? >= MAX_PER_ORG {
        return Err(AppError::Conflict(format!(
            "an organization keeps at most {MAX_PER_ORG} provision requests"
        )));
    }
    let now = state.clock.now_ms();
    let r = Request {
        id: new_id(),
        org_id: member.org_id.clone(),
        name,
        provider: (*provider).to_owned(),
        region,
        instance_type,
        image,
        credential_id: Some(credential.id.clone()),
        status: "pending".into(),
        status_message: None,
        sealed_vars: None,
        sealed_plan: None,
        plan_summary: None,
        planned_at: None,
        price_hourly: None,
        price_monthly: None,
        server_id: None,
        ipv4: None,
        ipv6: None,
        firewall_id: None,
        node_id: None,
        created_by: Some(user.user.id.clone()),
        created_at: now,
        updated_at: now,
    };
    // A request will make a node: it counts against the plan's node cap from now on,
    // checked with the organization held so concurrent requests queue.
    let mut tx = limits::lock(&state, &r.org_id).await?;
    limits::check(&mut tx, &state, &r.org_id, &[Ask::new(Limit::Nodes, 1)]).await?;
    store::insert(&mut *tx, &r).await?;
    tx.commit().await?;
    tracing::info!(provision.id = %r.id, provider = %r.provider, "provision request created");
    let mut v = RequestView::of(r, Vec::new());
    if let Some((h, m)) = super::price_of(
        &state,
        &v.organization_id,
        &v.provider,
        &v.region,
        &v.instance_type,
    )
    .await
    {
        v.price_hourly = Some(h);
        v.price_monthly = Some(m);
    }
    Ok((StatusCode::CREATED, AppJson(v)))
}

/// One request, with its latest runs.
pub async fn get(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Request, perm::ProvisionRead>,
) -> AppResult<AppJson<RequestView>> {
    Ok(AppJson(view(&state, &resource.id).await?))
}

/// Plans the request (again): `terraform plan` in the background; the request is
/// `planning`, then `planned` with the plan's summary and price, or `failed`.
pub async fn plan(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Request, perm::ProvisionWrite>,
) -> AppResult<(StatusCode, AppJson<RequestView>)> {
    runner::start(&state, &resource, Kind::Plan, None).await?;
    Ok((
        StatusCode::ACCEPTED,
        AppJson(view(&state, &resource.id).await?),
    ))
}

/// Applies exactly the plan awaiting approval, in the background.
pub async fn apply(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Request, perm::ProvisionWrite>,
) -> AppResult<(StatusCode, AppJson<RequestView>)> {
    if resource.status != "planned" || resource.sealed_plan.is_none() {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "NOT_PLANNED",
            format!(
                "only a planned request can be applied; this one is {}",
                resource.status
            ),
        ));
    }
    runner::start(&state, &resource, Kind::Apply, None).await?;
    Ok((
        StatusCode::ACCEPTED,
        AppJson(view(&state, &resource.id).await?),
    ))
}

/// Whether Terraform keeps a state for the request (something may exist at the
/// provider).
async fn has_state(state: &AppState, id: &str) -> AppResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM provision_states WHERE request_id = $1",
    )
    .bind(id)
    .fetch_one(&state.db.pool)
    .await?;
    Ok(n > 0)
}

/// Discards a request that created nothing (204), or destroys what it created in the
/// background (202): refused while its node hosts servers (409 listing them).
pub async fn delete(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Request, perm::ProvisionWrite>,
) -> AppResult<(StatusCode, AppJson<Option<RequestView>>)> {
    let created_something = match resource.status.as_str() {
        "destroyed" => false,
        "pending" | "planned" | "failed" => has_state(&state, &resource.id).await?,
        "planning" | "applying" | "destroying" | "resizing" => {
            return Err(AppError::coded(
                StatusCode::CONFLICT,
                "RUN_IN_PROGRESS",
                format!(
                    "the request is {}: wait for its run to end",
                    resource.status
                ),
            ));
        }
        _ => true,
    };
    if !created_something {
        super::revoke_tokens(&state, &resource.id).await?;
        store::delete(&state.db.pool, &resource.id).await?;
        tracing::info!(provision.id = %resource.id, "provision request discarded");
        return Ok((StatusCode::NO_CONTENT, AppJson(None)));
    }
    if let Some(node_id) = &resource.node_id {
        super::refuse_while_hosting(&state, node_id).await?;
    }
    runner::start(&state, &resource, Kind::Destroy, None).await?;
    Ok((
        StatusCode::ACCEPTED,
        AppJson(Some(view(&state, &resource.id).await?)),
    ))
}

/// `?run_id=&after=` of a log read.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct LogQuery {
    /// The run; the latest one when left out.
    pub run_id: Option<String>,
    /// Lines after this number (0: from the start).
    pub after: Option<i64>,
}

/// One line of a run's log.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogLineView {
    pub seq: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub at: i64,
    /// Terraform's `-json` line (or a line of its own output, or the panel's note).
    pub line: String,
}

/// A run's log from a position.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogView {
    /// The run (none yet: empty).
    pub run: Option<RunView>,
    pub lines: Vec<LogLineView>,
    /// Ask again with `after` = this for what follows.
    pub next: i64,
    /// The run ended and every line was read.
    pub done: bool,
}

/// A run's log (the latest run's by default), from `after`: the web page polls it while
/// the run goes.
pub async fn logs(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Request, perm::ProvisionRead>,
    AppQuery(q): AppQuery<LogQuery>,
) -> AppResult<AppJson<LogView>> {
    let pool = &state.db.pool;
    let run = match &q.run_id {
        Some(id) => Some(
            store::run(pool, id)
                .await?
                .filter(|r| r.request_id == resource.id)
                .ok_or_else(|| AppError::not_found("run"))?,
        ),
        None => store::runs(pool, &resource.id).await?.into_iter().next(),
    };
    let after = q.after.unwrap_or(0).max(0);
    let Some(run) = run else {
        return Ok(AppJson(LogView {
            run: None,
            lines: Vec::new(),
            next: 0,
            done: true,
        }));
    };
    const PAGE: i64 = 500;
    let lines = store::log_of_run(pool, &run.id, after, PAGE).await?;
    let next = lines.last().map_or(after, |l| l.seq);
    let done = run.status != "running" && i64::try_from(lines.len()).unwrap_or(PAGE) < PAGE;
    Ok(AppJson(LogView {
        run: Some(run.into()),
        lines: lines
            .into_iter()
            .map(|l| LogLineView {
                seq: l.seq,
                at: l.at,
                line: l.line,
            })
            .collect(),
        next,
        done,
    }))
}

/// A new instance type for a provisioned node.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeBody {
    /// The provider's instance type (`cx42`).
    pub instance_type: String,
}

/// Resizes a provisioned node: a provisioning run that plans and applies the new
/// instance type (Terraform owns the server, its type included), in the background.
pub async fn resize(
    State(state): State<AppState>,
    Authorized { resource: node, .. }: Authorized<Node, perm::NodesPower>,
    AppJson(body): AppJson<ResizeBody>,
) -> AppResult<(StatusCode, AppJson<RequestView>)> {
    let request = store::for_node(&state.db.pool, &node.id)
        .await?
        .ok_or_else(|| {
            AppError::coded(
                StatusCode::CONFLICT,
                "NOT_PROVISIONED",
                "this node was not provisioned by the panel: resize it at its provider",
            )
        })?;
    let instance_type = word_of("instance_type", &body.instance_type)?;
    check_type(&request.provider, &instance_type)?;
    if instance_type == request.instance_type {
        return Err(AppError::invalid_field(
            "instance_type",
            format!("the node already is a {instance_type}"),
        ));
    }
    runner::start(&state, &request, Kind::Resize, Some(instance_type)).await?;
    Ok((
        StatusCode::ACCEPTED,
        AppJson(view(&state, &request.id).await?),
    ))
}
