//! Workload CRUD and export.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shardlyn_proto::egg::export_egg_json;

use super::input::{egg_from_shape, organization_field, srv_field};
use super::store::{self, NewWorkload, Source, Workload};
use super::view::{SummaryBody, WorkloadBody, WorkloadInput};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, perm};
use crate::db::new_id;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::pagination::{Page, PageParams};
use crate::respond::Created;
use crate::state::AppState;

/// `{"data": [summary...], "pagination": {...}}` for one organization.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<AppJson<Page<SummaryBody>>> {
    let (limit, offset) = page.limit_offset()?;
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        "workloads.read",
    )
    .await?;
    let rows = store::list(&state.db.pool, &member.org_id, limit, offset).await?;
    let total = store::count(&state.db.pool, &member.org_id).await?;
    let data: Vec<SummaryBody> = rows.into_iter().map(SummaryBody).collect();
    Ok(AppJson(Page::new(data, page, total)))
}

/// Creates a workload from the workload shape (`source: "api"`).
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(WorkloadInput(body)): AppJson<WorkloadInput>,
) -> AppResult<Created<WorkloadBody>> {
    let requested =
        crate::orgs::scope::requested_org(organization_field(&body)?, org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), "workloads.write").await?;
    let egg = egg_from_shape(&body)?;
    let srv = srv_field(&body)?.flatten();
    let workload = store::insert(
        &state.db.pool,
        &new_id(),
        &NewWorkload {
            org_id: &member.org_id,
            source: Source::Api,
            template: None,
            egg: &egg,
            dns_srv_service: srv.as_deref(),
            created_by: &user.user.id,
        },
    )
    .await?;
    Ok(Created(WorkloadBody(workload)))
}

/// One workload.
pub async fn get(
    Authorized {
        resource: workload, ..
    }: Authorized<Workload, perm::WorkloadsRead>,
) -> AppResult<AppJson<WorkloadBody>> {
    Ok(AppJson(WorkloadBody(workload)))
}

/// Replaces a workload's definition with the workload shape; a `dns_srv_service` left
/// out stays as it was (`null` clears it).
pub async fn update(
    State(state): State<AppState>,
    Authorized {
        resource: workload, ..
    }: Authorized<Workload, perm::WorkloadsWrite>,
    AppJson(WorkloadInput(body)): AppJson<WorkloadInput>,
) -> AppResult<AppJson<WorkloadBody>> {
    if let Some(org) = organization_field(&body)?
        && org != workload.org_id
    {
        return Err(AppError::invalid_field(
            "organization_id",
            "a workload cannot move to another organization",
        ));
    }
    let egg = egg_from_shape(&body)?;
    let srv = srv_field(&body)?.unwrap_or(workload.dns_srv_service);
    let updated = store::update_egg(&state.db.pool, &workload.id, &egg, srv.as_deref())
        .await?
        .ok_or_else(|| AppError::not_found("workload"))?;
    Ok(AppJson(WorkloadBody(updated)))
}

/// Deletes a workload that no instance runs (409 otherwise).
pub async fn delete(
    State(state): State<AppState>,
    Authorized {
        resource: workload, ..
    }: Authorized<Workload, perm::WorkloadsWrite>,
) -> AppResult<StatusCode> {
    let instances =
        crate::instances::store::count_for_workload(&state.db.pool, &workload.id).await?;
    if instances > 0 {
        return Err(AppError::Conflict(format!(
            "{instances} instance(s) still run this workload: delete them first"
        )));
    }
    if !store::delete(&state.db.pool, &workload.id).await? {
        return Err(AppError::not_found("workload"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The workload as a PTDL_v2 egg file, `exported_at` set to now as Pterodactyl does.
pub async fn export(
    Authorized {
        resource: workload, ..
    }: Authorized<Workload, perm::WorkloadsRead>,
) -> AppResult<Response> {
    let mut egg = workload.egg;
    egg.exported_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
    let disposition = format!(
        "attachment; filename=\"egg-{}.json\"",
        super::slug(&egg.name)
    );
    let mut response = export_egg_json(&egg).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
