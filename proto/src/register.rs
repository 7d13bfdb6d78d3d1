//! `POST /v1/agent/register`: what an agent sends to trade a single-use registration
//! token for its node identity, and what the panel answers (both ends read these types);
//! and the agent's `GET /v1/health` answer.

use serde::{Deserialize, Serialize};

/// The agent's registration request.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentRegistration {
    /// The single-use token minted by `POST /v1/nodes/register-token`.
    pub token: String,
    /// The machine's host name (the node's name when the token named none).
    #[serde(default)]
    pub hostname: Option<String>,
    /// The agent's version.
    #[serde(default)]
    pub version: Option<String>,
    /// The tunnel protocol the agent speaks; refused when the panel speaks another.
    #[serde(default)]
    pub protocol: Option<u32>,
}

/// The node identity the agent keeps: its id and its own token (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Registered {
    pub node_id: String,
    pub agent_token: String,
    pub organization_id: String,
}

/// `GET /v1/health` of the agent API: who answers and which protocol it speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentHealth {
    /// Always `ok` when the agent answers at all.
    pub status: String,
    pub node_id: String,
    /// The agent's version.
    pub version: String,
    /// [`crate::PROTOCOL_VERSION`] of the agent.
    pub protocol: u32,
}
