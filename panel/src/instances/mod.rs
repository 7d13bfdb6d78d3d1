//! Instances: game servers placed on nodes, built from a workload (egg).

pub mod ops;

use crate::routes::Routes;

/// `/v1/instances` CRUD.
pub fn router() -> Routes {
    Routes::new("instances")
}
