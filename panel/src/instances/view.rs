//! The instance JSON shape.
//!
//! `variables` shows every variable of the workload's egg with its value; the value of a
//! variable the egg marks not `user_viewable` is `null` unless the caller holds
//! `instances.secrets`.

use std::collections::BTreeMap;

use serde::Serialize;
use shardlyn_proto::egg::Egg;
use shardlyn_proto::instance::{Allocation, Limits};

use super::input::current_value;
use super::store::{Instance, desired_str};
use crate::db::ts;

/// An instance as the API shows it.
#[derive(Debug, Serialize)]
pub struct InstanceView<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub node_id: &'a str,
    pub workload_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub image: &'a str,
    /// Last state reported by the agent: `installing`, `install_failed`, `offline`,
    /// `starting`, `running` or `stopping`.
    pub state: &'static str,
    /// `running` or `stopped`.
    pub desired_state: &'static str,
    pub limits: &'a Limits,
    /// Primary first.
    pub allocations: Vec<AllocationView<'a>>,
    pub variables: BTreeMap<&'a str, Option<&'a str>>,
    #[serde(with = "ts::option")]
    pub installed_at: Option<i64>,
    pub created_by: Option<&'a str>,
    #[serde(with = "ts")]
    pub created_at: i64,
    #[serde(with = "ts")]
    pub updated_at: i64,
}

/// `{"ip", "port", "primary"}`.
#[derive(Debug, Serialize)]
pub struct AllocationView<'a> {
    pub ip: &'a str,
    pub port: u16,
    pub primary: bool,
}

impl<'a> From<&'a Allocation> for AllocationView<'a> {
    fn from(a: &'a Allocation) -> Self {
        Self {
            ip: &a.ip,
            port: a.port,
            primary: a.primary,
        }
    }
}

impl<'a> InstanceView<'a> {
    /// The view of `instance`, whose workload runs `egg`; `secrets` shows the values of
    /// variables that are not user-viewable.
    #[must_use]
    pub fn new(instance: &'a Instance, egg: &'a Egg, secrets: bool) -> Self {
        let variables = egg
            .variables
            .iter()
            .map(|v| {
                let value =
                    (secrets || v.user_viewable).then(|| current_value(v, &instance.variables));
                (v.env_variable.as_str(), value)
            })
            .collect();
        Self {
            id: &instance.id,
            organization_id: &instance.org_id,
            node_id: &instance.node_id,
            workload_id: &instance.workload_id,
            name: &instance.name,
            description: &instance.description,
            image: &instance.image,
            state: instance.state.as_str(),
            desired_state: desired_str(instance.desired_state),
            limits: &instance.limits,
            allocations: instance
                .allocations
                .iter()
                .map(AllocationView::from)
                .collect(),
            variables,
            installed_at: instance.installed_at,
            created_by: instance.created_by.as_deref(),
            created_at: instance.created_at,
            updated_at: instance.updated_at,
        }
    }
}
