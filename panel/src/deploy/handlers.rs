//! `POST /v1/deploy` (checks what can be checked before anything is made, then starts
//! the job), `GET /v1/deploy` and `GET /v1/deploy/{id}`.
//!
//! Creating needs `deploy.write`; the server is then made as the caller through
//! `POST /v1/instances`' own handler, which checks `instances.create` again (both are
//! admin keys by default; a member granted one without the other sees the `create` step
//! fail with the 403's message). Reading needs `instances.read`: whoever sees the
//! organization's servers sees how they were deployed.

use std::collections::BTreeMap;

use axum::extract::State;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use shardlyn_proto::egg::Egg;
use shardlyn_proto::instance::Limits;

use super::runner::{self, STEPS};
use super::store::{self, Deployment, Step};
use super::view::DeploymentView;
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, OrgScoped, Permission, perm};
use crate::billing::limits::{Ask, Limit};
use crate::db::new_id;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::permissions::Role;
use crate::orgs::scope::{OrgQuery, requested_org, scoped};
use crate::pagination::{Page, PageParams};
use crate::respond::Accepted;
use crate::state::AppState;
use crate::workloads::store::Workload;
use crate::workloads::templates::Template;

/// Body of `POST /v1/deploy`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// A template id, as listed by `GET /v1/templates`.
    pub template: String,
    /// The server's name.
    pub name: String,
    /// The organization (the caller's personal one when absent).
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Env name → value; the others keep the template's defaults.
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    /// Where to place the server; the planner's choice when absent.
    #[serde(default)]
    pub node_id: Option<String>,
    /// The server's DNS name under the organization's auto-DNS zone.
    #[serde(default)]
    pub subdomain: Option<String>,
}

/// A 422 of the instance checks, answered as the 400 this route gives for a bad field.
fn as_400(e: AppError) -> AppError {
    match e {
        AppError::Unprocessable { field, message } => {
            AppError::invalid_field(field.unwrap_or_default(), message)
        }
        other => other,
    }
}

/// The template `id` when the caller may deploy it: the `testing` category only while
/// the platform setting shows it.
///
/// # Errors
/// 400 on `template` for an unknown or hidden template.
pub async fn deployable(state: &AppState, id: &str) -> AppResult<&'static Template> {
    let shown = match Template::find(id) {
        Some(t) if t.category != crate::workloads::templates::TESTING => Some(t),
        Some(t) if crate::workloads::templates::shows_testing(state).await? => Some(t),
        _ => None,
    };
    shown.ok_or_else(|| {
        AppError::invalid_field(
            "template",
            format!("no template `{id}` (see GET /v1/templates)"),
        )
    })
}

/// The organization's workload made from `template`, if it has one (the oldest).
///
/// # Errors
/// Database failures.
pub async fn workload_from(
    state: &AppState,
    org_id: &str,
    template: &str,
) -> AppResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM workloads WHERE org_id = $1 AND template = $2 \
         ORDER BY created_at, id LIMIT 1",
    )
    .bind(org_id)
    .bind(template)
    .fetch_optional(&state.db.pool)
    .await?)
}

/// Refuses with 402 `PLAN_LIMIT` one more server of the size a deployment makes, when
/// the organization's plan has no room for it (nothing is written).
///
/// # Errors
/// 402 `PLAN_LIMIT`; database failures.
pub async fn check_room(state: &AppState, org_id: &str) -> AppResult<()> {
    let limits = Limits::default();
    let mut tx = crate::billing::limits::lock(state, org_id).await?;
    let asks = [
        Ask::new(Limit::Servers, 1),
        Ask::new(Limit::MemoryMb, limits.memory_mb),
        Ask::new(Limit::CpuPercent, limits.cpu_percent),
        Ask::new(Limit::DiskMb, limits.disk_mb),
    ];
    crate::billing::limits::check(&mut tx, state, org_id, &asks).await?;
    tx.rollback().await?;
    Ok(())
}

/// Starts a deployment: 202 with it, its steps pending. What can be refused before
/// anything is made is refused here: the template, the name, the variables, the node,
/// the subdomain and the plan's room.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<CreateDeployment>,
) -> AppResult<Accepted<DeploymentView>> {
    let requested = requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), perm::DeployWrite::KEY).await?;
    let org_id = member.org_id.clone();
    crate::billing::dunning::refuse_if_org_suspended(&state, &org_id).await?;
    let template = deployable(&state, body.template.trim()).await?;
    let name = crate::instances::input::check_name(&body.name).map_err(as_400)?;
    let egg: Egg = match workload_from(&state, &org_id, template.id).await? {
        Some(id) => <Workload as OrgScoped>::find(&state, &id)
            .await?
            .map(|w| w.egg)
            .ok_or_else(|| AppError::not_found("workload"))?,
        None => template.egg()?,
    };
    let given = body.variables.unwrap_or_default();
    crate::instances::input::variables(
        &egg,
        &BTreeMap::new(),
        Some(&given),
        matches!(member.role, Role::Owner | Role::Admin),
        true,
    )
    .map_err(as_400)?;
    let node_id = match body.node_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => Some(
            crate::instances::placement::named(&state, &org_id, id)
                .await?
                .id,
        ),
        _ => None,
    };
    let subdomain = match body.subdomain.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Some(
            crate::dns::auto::check_subdomain(&state, &org_id, "", s)
                .await
                .map_err(|e| rename_field(e, "dns_subdomain", "subdomain"))?,
        ),
        _ => None,
    };
    check_room(&state, &org_id).await?;
    let now = state.clock.now_ms();
    let steps: Vec<Step> = STEPS
        .iter()
        .map(|n| Step {
            name: (*n).to_owned(),
            status: "pending".into(),
            message: None,
            started_at: None,
            finished_at: None,
        })
        .collect();
    let d = Deployment {
        id: new_id(),
        org_id,
        template: template.id.to_owned(),
        name,
        variables: Value::Object(given).to_string(),
        node_id,
        subdomain,
        status: "pending".into(),
        steps: serde_json::to_string(&steps).map_err(|e| AppError::Internal(e.into()))?,
        workload_id: None,
        workload_made: false,
        instance_id: None,
        dns_record_id: None,
        error: None,
        created_by: user.user.id.clone(),
        lease_owner: Some(state.replica_id.clone()),
        lease_until: Some(now + runner::LEASE_MS),
        created_at: now,
        updated_at: now,
    };
    store::insert(&state.db.pool, &d).await?;
    tokio::spawn(runner::run(state.clone(), d.id.clone()));
    Ok(Accepted(DeploymentView::from(&d)))
}

/// A 400 of `from` named `to` instead (the DNS checks name the instance's field).
fn rename_field(e: AppError, from: &str, to: &str) -> AppError {
    match e {
        AppError::InvalidField {
            field: Some(f),
            message,
        } if f == from => AppError::invalid_field(to, message.replace(from, to)),
        other => other,
    }
}

/// `{"data": [deployment...], "pagination": {...}}` of one organization, newest first.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<AppJson<Page<DeploymentView>>> {
    let (limit, offset) = page.limit_offset()?;
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::InstancesRead::KEY,
    )
    .await?;
    let rows = store::list(&state.db.pool, &member.org_id, limit, offset).await?;
    let total = store::count(&state.db.pool, &member.org_id).await?;
    let data = rows.iter().map(DeploymentView::from).collect();
    Ok(AppJson(Page::new(data, page, total)))
}

/// One deployment with its steps.
pub async fn get(
    Authorized { resource: d, .. }: Authorized<Deployment, perm::InstancesRead>,
) -> AppResult<AppJson<DeploymentView>> {
    Ok(AppJson(DeploymentView::from(&d)))
}
