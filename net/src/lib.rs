//! Networking shared by the panel and the agent, below every domain module (it knows
//! nothing of instances, backups or git).
//!
//! [`outbound`] owns the one guarded resolver every user-supplied outbound URL goes
//! through: it resolves a host, refuses loopback, private, link-local, CGNAT, metadata
//! and other non-public addresses unless the operator allow-lists them, and hands back
//! the checked addresses so the caller connects to exactly those.
//!
//! [`tunnel`] is the tunnel's byte stream (a WebSocket carrying HTTP/2) and its headers;
//! [`tls`] the CA pinning helpers; [`shutdown`] the SIGINT/SIGTERM future every binary
//! stops on.

pub mod outbound;
pub mod shutdown;
pub mod tls;
pub mod tunnel;
