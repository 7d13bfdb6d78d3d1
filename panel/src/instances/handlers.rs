//! Instance list, get, update and delete (create is in `create.rs`).

use std::collections::HashMap;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use shardlyn_proto::egg::Egg;

use super::create::may_edit_locked;
use super::input::{self, UpdateInstance};
use super::ops::sync;
use super::spec::spec_from;
use super::store::{self, Instance, Settings};
use super::view::InstanceView;
use crate::audit::AuditSlot;
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, perm};
use crate::error::{AppError, AppJson, AppPath, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::pagination::{Page, PageParams};
use crate::respond::{NoContent, RenderedJson};
use crate::state::AppState;
use crate::workloads::store::{self as workloads, Workload};

/// Renders one instance.
pub(super) fn render(instance: &Instance, egg: &Egg, secrets: bool) -> InstanceView {
    InstanceView::new(instance, egg, secrets)
}

/// The workload an instance runs (a database invariant: workloads in use stay).
async fn workload_of(state: &AppState, instance: &Instance) -> AppResult<Workload> {
    workloads::of_instance(&state.db.pool, instance)
        .await?
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "workload {} of instance {} is missing",
                instance.workload_id,
                instance.id
            ))
        })
}

/// Sends the instance's spec to its node and records the state the agent answers. A
/// node that is offline gets it when its agent connects; a failed push is logged and
/// retried the same way, the instance is kept.
pub(super) async fn push_spec(state: &AppState, instance: &mut Instance, egg: &Egg) {
    let spec = spec_from(instance, egg, &state.config.instances);
    match sync::push(state, &instance.node_id, &spec).await {
        Ok(None) => {}
        Ok(Some(status)) => {
            match sync::record_state(
                state,
                &instance.node_id,
                &instance.id,
                status.state,
                status.state_version,
            )
            .await
            {
                Ok(true) => instance.state = status.state,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(instance.id = %instance.id, error = %e, "recording the agent's state");
                }
            }
        }
        Err(e) => {
            tracing::warn!(
                instance.id = %instance.id,
                node.id = %instance.node_id,
                error = %e,
                "pushing the instance spec failed; it is pushed again when the agent connects"
            );
        }
    }
}

/// `?node_id=` on the list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct NodeFilter {
    pub node_id: Option<String>,
}

/// `{"data": [instance...], "pagination": {...}}` for one organization, newest first.
/// A page is rendered once and served from the read cache until an instance, allocation,
/// workload or membership changes (see `readcache`); the caller's permission is checked
/// on every request.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(filter): AppQuery<NodeFilter>,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<RenderedJson<Page<InstanceView>>> {
    let (limit, offset) = page.limit_offset()?;
    let member = match scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        "instances.read",
    )
    .await
    {
        // A member limited to named servers lists those it may see.
        Err(AppError::Forbidden(why)) => {
            let member = scoped(&state, &user, org.organization_id.as_deref(), "org.read").await?;
            if !member.is_scoped() {
                return Err(AppError::Forbidden(why));
            }
            return list_granted(&state, &member, page).await;
        }
        other => other?,
    };
    let node = filter.node_id.as_deref().filter(|n| !n.is_empty());
    let secrets = member.can("instances.secrets");
    let key = (
        member.org_id.clone(),
        node.unwrap_or_default().to_owned(),
        limit,
        offset,
        secrets,
    );
    if let Some(body) = state.reads.instance_page(&key) {
        return Ok(RenderedJson::from_rendered(body));
    }
    let stamp = state.reads.stamp();
    let pool = &state.db.pool;
    let rows = store::list(pool, &member.org_id, node, limit, offset).await?;
    let total = store::count(pool, &member.org_id, node).await?;
    let mut eggs: HashMap<String, Workload> = HashMap::new();
    for i in &rows {
        if !eggs.contains_key(&i.workload_id) {
            eggs.insert(i.workload_id.clone(), workload_of(&state, i).await?);
        }
    }
    let data = rows
        .iter()
        .filter_map(|i| eggs.get(&i.workload_id).map(|w| (i, w)))
        .map(|(i, w)| render(i, &w.egg, secrets))
        .collect();
    let rendered = RenderedJson::render(&Page::new(data, page, total))?;
    if let Some(stamp) = stamp {
        state
            .reads
            .put_instance_page(key, rendered.body().clone(), stamp);
    }
    Ok(rendered)
}

/// The instance list of a member limited to named servers: theirs, each rendered with
/// that server's grant (secrets only where it holds `instances.secrets`). Not cached: the
/// cached pages are per organization.
async fn list_granted(
    state: &AppState,
    member: &crate::orgs::permissions::Membership,
    page: PageParams,
) -> AppResult<RenderedJson<Page<InstanceView>>> {
    let (limit, offset) = page.limit_offset()?;
    let mut mine = Vec::new();
    for id in member.servers() {
        if let Some(instance) = store::find(&state.db.pool, id).await? {
            mine.push(instance);
        }
    }
    mine.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let total = i64::try_from(mine.len()).unwrap_or(i64::MAX);
    let mut data = Vec::new();
    for instance in mine
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
    {
        let secrets = member
            .on_server(&instance.id)
            .is_some_and(|m| m.can("instances.secrets"));
        let workload = workload_of(state, instance).await?;
        data.push(render(instance, &workload.egg, secrets));
    }
    RenderedJson::render(&Page::new(data, page, total))
}

/// One instance.
pub async fn get(
    State(state): State<AppState>,
    Authorized {
        resource: instance,
        membership: member,
        ..
    }: Authorized<Instance, perm::InstancesRead>,
) -> AppResult<AppJson<InstanceView>> {
    let workload = workload_of(&state, &instance).await?;
    Ok(AppJson(render(
        &instance,
        &workload.egg,
        member.can("instances.secrets"),
    )))
}

/// Changes name, description, image, variables or limits; the agent gets the new spec,
/// which takes effect at the next start. Limits that grow must fit the organization's
/// plan (402 `PLAN_LIMIT`, nothing changed); shrinking always passes.
pub async fn update(
    State(state): State<AppState>,
    Authorized {
        resource: instance,
        membership: member,
        ..
    }: Authorized<Instance, perm::InstancesUpdate>,
    audit: Option<Extension<AuditSlot>>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<UpdateInstance>,
) -> AppResult<AppJson<InstanceView>> {
    let workload = workload_of(&state, &instance).await?;
    let egg = &workload.egg;
    let name = match &body.name {
        Some(n) => input::check_name(n)?,
        None => instance.name.clone(),
    };
    let description = match &body.description {
        Some(d) => input::check_description(d)?,
        None => instance.description.clone(),
    };
    let image = match &body.image {
        Some(i) => input::image(egg, Some(i))?,
        None => instance.image.clone(),
    };
    let limits = input::limits(&instance.limits, body.limits.as_ref())?;
    let variables = input::variables(
        egg,
        &instance.variables,
        body.variables.as_ref(),
        may_edit_locked(member.role),
        false,
    )?;
    let subdomain = match &body.dns_subdomain {
        Some(Some(s)) if !s.trim().is_empty() => Some(Some(
            crate::dns::auto::check_subdomain(&state, &instance.org_id, &id, s).await?,
        )),
        Some(_) => Some(None),
        None => None,
    };
    let settings = Settings {
        name: &name,
        description: &description,
        image: &image,
        variables: &variables,
        limits: &limits,
    };
    if super::quota::grows(&instance.limits, &limits) {
        // Growing is checked against the plan with the organization held, from the
        // limits stored now (a concurrent change may have moved them).
        let mut tx = crate::billing::limits::lock(&state, &instance.org_id).await?;
        let stored = store::limits_of(&mut *tx, &id)
            .await?
            .ok_or_else(|| AppError::not_found("instance"))?;
        super::quota::check(&mut tx, &state, &instance.org_id, Some(&stored), &limits).await?;
        if !store::update_settings(&mut *tx, &id, &settings).await? {
            return Err(AppError::not_found("instance"));
        }
        tx.commit().await?;
    } else if !store::update_settings(&state.db.pool, &id, &settings).await? {
        return Err(AppError::not_found("instance"));
    }
    let mut updated = store::find(&state.db.pool, &id)
        .await?
        .ok_or_else(|| AppError::not_found("instance"))?;
    push_spec(&state, &mut updated, egg).await;
    if let Some(subdomain) = subdomain {
        crate::dns::auto::set_subdomain(&state, &id, subdomain.as_deref()).await?;
    } else if name != instance.name {
        // Its records are named after it unless its owner chose a subdomain.
        crate::dns::auto::instance_placed(&state, &id).await;
    }
    if let Some(Extension(slot)) = &audit {
        slot.set_action("instance.update", Some(&id));
    }
    Ok(AppJson(render(
        &updated,
        egg,
        member.can("instances.secrets"),
    )))
}

/// `?force=true` on delete.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DeleteQuery {
    #[serde(default)]
    pub force: bool,
}

/// Deletes an instance: its container and files on the node first, then the row (its
/// allocations go with it). While the node is offline this answers 409 `NODE_OFFLINE`
/// unless `?force=true`, which leaves whatever is on the node behind.
pub async fn delete(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesDelete>,
    audit: Option<Extension<AuditSlot>>,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<DeleteQuery>,
) -> AppResult<NoContent> {
    match sync::remove(&state, &instance.node_id, &instance.id).await {
        Ok(true) => {}
        Ok(false) if q.force => {
            tracing::warn!(instance.id = %id, "deleting an instance whose node is offline (force)");
        }
        Ok(false) => {
            return Err(AppError::coded(
                StatusCode::CONFLICT,
                "NODE_OFFLINE",
                "the instance's node is offline, so its files cannot be removed; \
                 retry when it is back or delete with ?force=true",
            ));
        }
        Err(e) if q.force => {
            tracing::warn!(instance.id = %id, error = %e, "removing from the node failed (force)");
        }
        Err(e) => return Err(e),
    }
    crate::backups::forget_remote(&state, &instance).await;
    crate::dns::auto::instance_removed(&state, &id).await;
    if !store::delete(&state.db.pool, &id).await? {
        return Err(AppError::not_found("instance"));
    }
    crate::nodes::firewall::instance_removed(&state, &instance.node_id, &id).await;
    if let Some(Extension(slot)) = &audit {
        slot.set_action("instance.delete", Some(&id));
    }
    Ok(NoContent)
}
