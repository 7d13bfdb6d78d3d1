//! The tunnel's transport, shared by both ends: the WebSocket byte stream HTTP/2 runs
//! over ([`io`]), its HTTP/2 settings, and the headers of the upgrade request. It moves
//! bytes only; what travels in them (the agent API) is `shardlyn_proto::agent_api`.

pub mod io;

/// Header carrying the agent token on the upgrade request.
pub const TOKEN_HEADER: &str = "x-agent-token";
/// Header carrying the agent's protocol version.
pub const PROTOCOL_HEADER: &str = "x-agent-protocol";
/// Header carrying the agent's version.
pub const VERSION_HEADER: &str = "x-agent-version";
