//! The Shardlyn node agent.
//!
//! The agent dials out to the panel, serves the agent API over an HTTP/2 tunnel and
//! drives Docker. Registration, the tunnel and the runtime land with the nodes issue;
//! today the crate only reports which protocol it speaks.

/// The agent's version, as printed by `shardlyn-agent --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The panel/agent protocol version this build speaks.
#[must_use]
pub fn protocol_version() -> u32 {
    shardlyn_proto::PROTOCOL_VERSION
}

#[cfg(test)]
mod tests {
    #[test]
    fn speaks_the_proto_crate_version() {
        assert_eq!(super::protocol_version(), shardlyn_proto::PROTOCOL_VERSION);
    }
}
