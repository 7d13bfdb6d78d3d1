//! The instance JSON shape.
//!
//! `variables` shows every variable of the workload's egg with its value; the value of a
//! variable the egg marks not `user_viewable` is `null` unless the caller holds
//! `instances.secrets`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use shardlyn_proto::egg::Egg;
use shardlyn_proto::instance::{Allocation, DesiredState, InstanceState, Limits};

use super::input::current_value;
use super::store::Instance;
use crate::types::Timestamp;

/// An instance as the API shows it (and as the web pages read it back).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Instance")]
pub struct InstanceView {
    pub id: String,
    pub organization_id: String,
    pub node_id: String,
    pub workload_id: String,
    pub name: String,
    pub description: String,
    pub image: String,
    /// Last state reported by the agent.
    pub state: InstanceState,
    /// What the panel keeps the server at.
    pub desired_state: DesiredState,
    pub limits: Limits,
    /// Primary first.
    pub allocations: Vec<AllocationView>,
    /// Every variable of the workload's egg with its value; `null` for a variable the
    /// egg hides from users when the caller lacks `instances.secrets`.
    pub variables: BTreeMap<String, Option<String>>,
    pub installed_at: Option<Timestamp>,
    pub created_by: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One port of an instance.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "InstanceAllocation")]
pub struct AllocationView {
    pub ip: String,
    pub port: u16,
    pub primary: bool,
}

impl From<&Allocation> for AllocationView {
    fn from(a: &Allocation) -> Self {
        Self {
            ip: a.ip.clone(),
            port: a.port,
            primary: a.primary,
        }
    }
}

impl InstanceView {
    /// The view of `instance`, whose workload runs `egg`; `secrets` shows the values of
    /// variables that are not user-viewable.
    #[must_use]
    pub fn new(instance: &Instance, egg: &Egg, secrets: bool) -> Self {
        let variables = egg
            .variables
            .iter()
            .map(|v| {
                let value = (secrets || v.user_viewable)
                    .then(|| current_value(v, &instance.variables).to_owned());
                (v.env_variable.clone(), value)
            })
            .collect();
        Self {
            id: instance.id.clone(),
            organization_id: instance.org_id.clone(),
            node_id: instance.node_id.clone(),
            workload_id: instance.workload_id.clone(),
            name: instance.name.clone(),
            description: instance.description.clone(),
            image: instance.image.clone(),
            state: instance.state,
            desired_state: instance.desired_state,
            limits: instance.limits.clone(),
            allocations: instance
                .allocations
                .iter()
                .map(AllocationView::from)
                .collect(),
            variables,
            installed_at: instance.installed_at.map(Timestamp),
            created_by: instance.created_by.clone(),
            created_at: Timestamp(instance.created_at),
            updated_at: Timestamp(instance.updated_at),
        }
    }
}
