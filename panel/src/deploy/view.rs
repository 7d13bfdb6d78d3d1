//! What the API answers about deployments.

use serde::{Deserialize, Serialize};

use super::store::{Deployment, Step};
use crate::types::Timestamp;

/// One step of a deployment: `workload`, `limits`, `place`, `create`, `dns`, `install`
/// or `start`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepView {
    pub name: String,
    /// `pending`, `running`, `succeeded`, `skipped` or `failed`.
    pub status: String,
    /// What it did, why it was skipped, or why it failed.
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

impl From<Step> for StepView {
    fn from(s: Step) -> Self {
        Self {
            name: s.name,
            status: s.status,
            message: s.message,
            started_at: s.started_at.map(Timestamp),
            finished_at: s.finished_at.map(Timestamp),
        }
    }
}

/// One deployment.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeploymentView {
    pub id: String,
    pub organization_id: String,
    /// The template id (`GET /v1/templates`).
    pub template: String,
    /// The server's name.
    pub name: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub steps: Vec<StepView>,
    /// The variables asked for (the others keep the template's defaults).
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// The node asked for, then the node chosen.
    pub node_id: Option<String>,
    pub subdomain: Option<String>,
    pub workload_id: Option<String>,
    /// The server made (`null` again after a failure removed it).
    pub instance_id: Option<String>,
    pub dns_record_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&Deployment> for DeploymentView {
    fn from(d: &Deployment) -> Self {
        Self {
            id: d.id.clone(),
            organization_id: d.org_id.clone(),
            template: d.template.clone(),
            name: d.name.clone(),
            status: d.status.clone(),
            steps: d.steps().into_iter().map(StepView::from).collect(),
            variables: serde_json::from_str(&d.variables).unwrap_or_default(),
            node_id: d.node_id.clone(),
            subdomain: d.subdomain.clone(),
            workload_id: d.workload_id.clone(),
            instance_id: d.instance_id.clone(),
            dns_record_id: d.dns_record_id.clone(),
            error: d.error.clone(),
            created_by: d.created_by.clone(),
            created_at: Timestamp(d.created_at),
            updated_at: Timestamp(d.updated_at),
        }
    }
}
