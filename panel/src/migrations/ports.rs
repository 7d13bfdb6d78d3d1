//! A moved server's ports on its new node: each kept when it is free there, otherwise
//! the lowest free one of the node's range (as for creation).

use shardlyn_proto::instance::Allocation;

use crate::error::{AppError, AppResult};
use crate::instances::{Instance, store as instances};
use crate::state::AppState;

/// The allocations `instance` gets on `node_id`, and the ports that changed
/// (`old->new`, comma separated; empty when every port was kept).
///
/// # Errors
/// 409 `NO_PORT_AVAILABLE` when the node's range has no free port left.
pub async fn on_target(
    state: &AppState,
    instance: &Instance,
    node_id: &str,
) -> AppResult<(Vec<Allocation>, String)> {
    let (node_ip, range) = crate::nodes::store::allocation(&state.db.pool, node_id).await?;
    let cfg = &state.config.instances;
    let (start, end) = range.map_or((cfg.port_range_start, cfg.port_range_end), |r| {
        (r.start, r.end)
    });
    let ip = node_ip.unwrap_or_else(|| cfg.allocation_ip.clone());
    let mut taken = instances::ports_in_range(&state.db.pool, node_id, 1, u16::MAX).await?;
    let mut out = Vec::with_capacity(instance.allocations.len());
    let mut changed = Vec::new();
    for allocation in &instance.allocations {
        let port = if taken.binary_search(&allocation.port).is_err() {
            allocation.port
        } else {
            let free = (start..=end)
                .find(|p| taken.binary_search(p).is_err())
                .ok_or_else(|| {
                    AppError::coded(
                        axum::http::StatusCode::CONFLICT,
                        "NO_PORT_AVAILABLE",
                        format!(
                            "port {} is taken on the target and no port of {start}-{end} is free",
                            allocation.port
                        ),
                    )
                })?;
            changed.push(format!("{}->{free}", allocation.port));
            free
        };
        if let Err(at) = taken.binary_search(&port) {
            taken.insert(at, port);
        }
        out.push(Allocation {
            ip: ip.clone(),
            port,
            primary: allocation.primary,
        });
    }
    Ok((out, changed.join(",")))
}
