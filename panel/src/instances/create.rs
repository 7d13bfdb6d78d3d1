//! `POST /v1/instances`: validate, place, check the plan's limits, reserve ports and
//! insert in one transaction, then push the spec to the node.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use shardlyn_proto::instance::{Allocation, DesiredState, InstanceState};

use super::handlers::{push_spec, render};
use super::input::{self, CreateInstance, PortRequest};
use super::placement;
use super::spec::has_install;
use super::store::{self, NewInstance};
use super::view::InstanceView;
use crate::audit::AuditSlot;
use crate::auth::extract::CurrentUser;
use crate::authz::{self, perm};
use crate::db::new_id;
use crate::error::{AppError, AppJson, AppResult};
use crate::orgs::permissions::Role;
use crate::respond::Created;
use crate::state::AppState;
use crate::workloads::store::Workload;

/// How often automatic ports are chosen again after losing a race for them.
const AUTO_PORT_ATTEMPTS: usize = 5;

/// Whether a member may change variables that are not `user_editable`.
pub(super) fn may_edit_locked(role: Role) -> bool {
    matches!(role, Role::Owner | Role::Admin)
}

/// Creates an instance in the workload's organization.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    audit: Option<Extension<AuditSlot>>,
    AppJson(body): AppJson<CreateInstance>,
) -> AppResult<Created<InstanceView>> {
    let (workload, member) =
        authz::load::<Workload, perm::InstancesCreate>(&state, &user.user, &body.workload_id)
            .await?;
    crate::billing::dunning::refuse_if_org_suspended(&state, &workload.org_id).await?;
    let egg = &workload.egg;
    let name = input::check_name(&body.name)?;
    let description = input::check_description(body.description.as_deref().unwrap_or(""))?;
    let image = input::image(egg, body.image.as_deref())?;
    let limits = input::limits(&Default::default(), body.limits.as_ref())?;
    let ports = input::ports(body.ports.as_deref(), body.port_count)?;
    let variables = input::variables(
        egg,
        &Default::default(),
        body.variables.as_ref(),
        may_edit_locked(member.role),
        true,
    )?;
    let node = match body.node_id.as_deref() {
        Some(id) => placement::named(&state, &workload.org_id, id).await?,
        None => placement::choose(&state, &workload.org_id, &limits).await?,
    };
    let id = new_id();
    let new = NewInstance {
        id: &id,
        org_id: &workload.org_id,
        node_id: &node.id,
        workload_id: &workload.id,
        name: &name,
        description: &description,
        image: &image,
        variables: &variables,
        limits: &limits,
        state: if has_install(egg) {
            InstanceState::Installing
        } else {
            InstanceState::Offline
        },
        desired_state: if body.start_on_completion.unwrap_or(false) {
            DesiredState::Running
        } else {
            DesiredState::Stopped
        },
        created_by: &user.user.id,
    };
    let instance = insert_placed(&state, &new, &ports, egg).await?;
    if let Some(Extension(slot)) = &audit {
        slot.set_action("instance.create", Some(&id));
    }
    Ok(Created(render(
        &instance,
        egg,
        member.can("instances.secrets"),
    )))
}

/// Inserts a validated, placed instance with its ports (the plan checked in the same
/// transaction), opens its firewall and DNS, and pushes its spec to the node: what
/// `POST /v1/instances` does once it has checked the request, for the paths that create
/// servers on someone's behalf (a Pterodactyl import).
///
/// # Errors
/// As `POST /v1/instances`: 402 `PLAN_LIMIT`, 409 `PORT_IN_USE` / `NO_PORT_AVAILABLE`,
/// database failures.
pub async fn insert_placed(
    state: &AppState,
    new: &NewInstance<'_>,
    ports: &PortRequest,
    egg: &shardlyn_proto::egg::Egg,
) -> AppResult<store::Instance> {
    insert_with_ports(state, new, ports).await?;
    crate::nodes::firewall::instance_placed(state, new.id).await;
    crate::dns::auto::instance_placed(state, new.id).await;
    let mut instance = store::find(&state.db.pool, new.id)
        .await?
        .ok_or_else(|| AppError::not_found("instance"))?;
    push_spec(state, &mut instance, egg).await;
    Ok(instance)
}

/// Inserts the instance and its allocations in one transaction. Explicit ports that are
/// taken fail with 409 `PORT_IN_USE`; automatic ones are chosen again a few times when a
/// concurrent create took them first.
async fn insert_with_ports(
    state: &AppState,
    new: &NewInstance<'_>,
    ports: &PortRequest,
) -> AppResult<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (node_ip, node_range) =
            crate::nodes::store::allocation(&state.db.pool, new.node_id).await?;
        let wanted = match ports {
            PortRequest::Explicit(list) => list.clone(),
            PortRequest::Auto(n) => free_ports(state, new.node_id, node_range, *n).await?,
        };
        let ip = node_ip.unwrap_or_else(|| state.config.instances.allocation_ip.clone());
        let allocations: Vec<Allocation> = wanted
            .iter()
            .enumerate()
            .map(|(i, port)| Allocation {
                ip: ip.clone(),
                port: *port,
                primary: i == 0,
            })
            .collect();
        match insert_once(state, new, &allocations).await? {
            None => return Ok(()),
            Some(port) => {
                if matches!(ports, PortRequest::Auto(_)) && attempt < AUTO_PORT_ATTEMPTS {
                    continue;
                }
                return Err(AppError::coded(
                    StatusCode::CONFLICT,
                    "PORT_IN_USE",
                    format!("port {port} is already allocated on this node"),
                ));
            }
        }
    }
}

/// One insert attempt; `Some(port)` when that port was taken (nothing is kept). The
/// organization is held (`billing::limits::lock`) and its plan checked in the same
/// transaction, so concurrent creates queue and a refused one makes nothing.
async fn insert_once(
    state: &AppState,
    new: &NewInstance<'_>,
    allocations: &[Allocation],
) -> AppResult<Option<u16>> {
    let mut tx = crate::billing::limits::lock(state, new.org_id).await?;
    super::quota::check(&mut tx, state, new.org_id, None, new.limits).await?;
    store::insert(&mut *tx, new).await?;
    for allocation in allocations {
        match store::insert_allocation(&mut *tx, new.node_id, new.id, allocation).await {
            Ok(()) => {}
            Err(e) if store::is_port_taken(&e) => return Ok(Some(allocation.port)),
            Err(e) => return Err(e.into()),
        }
    }
    tx.commit().await?;
    crate::readcache::changed();
    Ok(None)
}

/// The lowest `n` ports of the node's range (or the panel's) that are free on the node.
async fn free_ports(
    state: &AppState,
    node_id: &str,
    range: Option<crate::nodes::store::PortRange>,
    n: usize,
) -> AppResult<Vec<u16>> {
    let cfg = &state.config.instances;
    let (start, end) = range.map_or((cfg.port_range_start, cfg.port_range_end), |r| {
        (r.start, r.end)
    });
    let taken = store::ports_in_range(&state.db.pool, node_id, start, end).await?;
    let free: Vec<u16> = (start..=end)
        .filter(|p| taken.binary_search(p).is_err())
        .take(n)
        .collect();
    if free.len() < n {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "NO_PORT_AVAILABLE",
            format!("no {n} free ports left in {start}-{end} on this node"),
        ));
    }
    Ok(free)
}
