//! The client's address. Directly connected clients are their peer address; behind a
//! reverse proxy listed in `trusted_proxies`, the address is taken from
//! `X-Forwarded-For`, walking from the right past trusted hops, so a client cannot forge it.
//! Rate limits, lockouts and the audit log all read the result.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

pub use crate::config::Net;
use crate::state::AppState;

/// The resolved client address, stored in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The client address for a peer and an `X-Forwarded-For` value.
#[must_use]
pub fn resolve(peer: IpAddr, forwarded: Option<&str>, trusted: &[Net]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(forwarded) = forwarded else {
        return peer;
    };
    let mut client = peer;
    for hop in forwarded.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// Resolves the client address once per request.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = resolve(peer.ip(), forwarded, &state.trusted_proxies);
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn cidr_blocks_match() {
        let net = Net::parse("10.0.0.0/8").expect("net");
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.9.9.9")));
        assert!(Net::parse("::1").expect("v6").contains(ip("::1")));
        assert!(
            Net::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        for bad in ["nope", "10.0.0.0/33", "::/129", ""] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted = vec![
            Net::parse("127.0.0.1").expect("net"),
            Net::parse("10.0.0.0/8").expect("net"),
        ];
        // Direct client: the header is ignored, whatever it says.
        assert_eq!(
            resolve(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Behind the proxy: the right-most untrusted hop, not a forged left-most one.
        assert_eq!(
            resolve(
                ip("127.0.0.1"),
                Some("6.6.6.6, 198.51.100.7, 10.0.0.5"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(resolve(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
        assert_eq!(
            resolve(ip("127.0.0.1"), Some("garbage"), &trusted),
            ip("127.0.0.1")
        );
        // No trusted proxies configured: always the peer.
        assert_eq!(
            resolve(ip("127.0.0.1"), Some("1.2.3.4"), &[]),
            ip("127.0.0.1")
        );
    }
}
