//! Wire types shared by the panel, the agent and API clients.
//!
//! This crate does no I/O: it only names what crosses a socket, so a change to a
//! shape breaks every side at compile time.

use serde::{Deserialize, Serialize};

pub mod agent_api;
pub mod backup;
pub mod egg;
pub mod files;
pub mod git;
pub mod instance;
pub mod inventory;
pub mod metrics;
pub mod register;
pub mod rules;
pub mod sftp;
pub mod shell;
pub mod ssh;
pub mod transfer;
pub mod upload;
pub mod version;

/// Protocol version spoken between panel and agent; the handshake refuses other majors.
pub const PROTOCOL_VERSION: u32 = 1;

/// The error envelope every `/v1` endpoint (panel and agent) answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    /// Human-readable message.
    pub error: String,
    /// Stable machine-readable code, e.g. `NOT_FOUND`.
    pub code: String,
    /// On a `VALIDATION_ERROR` about the input: the field it is about, as a JSON path
    /// such as `variables[3].env_variable` (null for the document as a whole), so a form
    /// can show the message next to it. Absent on other errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Option<String>>,
    /// On a 402 `PLAN_LIMIT`: the limit of the organization's plan the change would
    /// pass (`servers`, `memory_mb`, `cpu_percent`, `disk_mb`, `nodes`,
    /// `backups_per_server`, `members`). Absent on other errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// On a 402 `PLAN_LIMIT`: what the organization uses now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<i64>,
    /// On a 402 `PLAN_LIMIT`: what the plan allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<i64>,
}

impl ErrorBody {
    /// Builds an envelope from a code and a message.
    pub fn new(code: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            code: code.into(),
            field: None,
            limit: None,
            usage: None,
            cap: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_serializes_to_the_contract_shape() {
        let body = ErrorBody::new("NOT_FOUND", "instance not found");
        let json = serde_json::to_value(&body).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"error": "instance not found", "code": "NOT_FOUND"})
        );
    }
}
