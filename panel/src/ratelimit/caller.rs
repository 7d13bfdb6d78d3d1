//! Who a request counts as. A request is its client address until its credential is
//! verified; a header value nobody checked never names a bucket, so a thousand made-up
//! bearer tokens from one address are one caller, not a thousand.
//!
//! Verified credentials:
//! - an access token (JWT) whose signature and expiry check out (HMAC, no database):
//!   the bucket of its user (`user:{id}`);
//! - an API token or agent token the panel has verified before (the extractor or the
//!   tunnel reports each success to [`Known::learn`]): the bucket of that token or node
//!   (`tok:{id}`, `node:{id}`). The first request of such a token counts as its address.
//!
//! Addresses are the client IP `client_ip` resolved; IPv6 clients count per /64, the
//! smallest block a home or cloud customer is usually given.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, header};

use crate::auth::crypto::sha256_hex;
use crate::auth::extract::API_TOKEN_PREFIX;
use crate::auth::jwt::JwtKeys;
use crate::client_ip::ClientIp;

/// The header agents present their token in.
const AGENT_TOKEN_HEADER: &str = "x-agent-token";
/// Verified credentials remembered before the memory starts over.
const MAX_KNOWN: usize = 10_000;
/// How long a verified credential keeps naming its bucket without being verified again.
const KNOWN_TTL_SECS: u64 = 3600;

/// Credentials (by SHA-256) the panel has verified, and the bucket each counts in. Only
/// successful verifications add entries, so its size is bounded by real credentials;
/// it is only a hint for counting: authorization never reads it.
#[derive(Default)]
pub struct Known(RwLock<HashMap<String, (String, u64)>>);

impl Known {
    /// Remembers that `secret` was verified as `bucket` (e.g. `tok:{id}`).
    pub fn learn(&self, secret: &str, bucket: String, now: u64) {
        let digest = sha256_hex(secret);
        if let Ok(map) = self.0.read()
            && map
                .get(&digest)
                .is_some_and(|(b, at)| *b == bucket && *at == now)
        {
            return;
        }
        if let Ok(mut map) = self.0.write() {
            if map.len() >= MAX_KNOWN && !map.contains_key(&digest) {
                map.retain(|_, (_, at)| now.saturating_sub(*at) < KNOWN_TTL_SECS);
                if map.len() >= MAX_KNOWN {
                    map.clear();
                }
            }
            map.insert(digest, (bucket, now));
        }
    }

    /// The bucket of a verified `secret`, if it was verified within the last hour.
    fn bucket(&self, secret: &str, now: u64) -> Option<String> {
        let map = self.0.read().ok()?;
        let (bucket, at) = map.get(&sha256_hex(secret))?;
        (now.saturating_sub(*at) < KNOWN_TTL_SECS).then(|| bucket.clone())
    }
}

/// The key of an address: itself for IPv4, its /64 for IPv6.
#[must_use]
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// `ip:{address}` of the request's client.
pub fn address(req: &Request) -> String {
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|ClientIp(ip)| *ip)
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip())
        });
    format!("ip:{}", ip.map_or_else(|| "unknown".to_string(), ip_key))
}

/// The bucket of the request's verified credential, if it carries one.
pub fn verified(jwt: &JwtKeys, known: &Known, headers: &HeaderMap, now: u64) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(token) = header(header::AUTHORIZATION.as_str())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    {
        if token.starts_with(API_TOKEN_PREFIX) {
            return known.bucket(token, now);
        }
        return jwt.verify(token).ok().map(|c| format!("user:{}", c.sub));
    }
    header(AGENT_TOKEN_HEADER).and_then(|token| known.bucket(token, now))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key(a), "2001:db8:1:2::/64");
        assert_eq!(ip_key("::ffff:10.0.0.1".parse().expect("ip")), "10.0.0.1");
    }

    #[test]
    fn only_verified_credentials_name_a_bucket() {
        let jwt = JwtKeys::new(b"a-test-secret-of-enough-length-000");
        let known = Known::default();
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer garbage"),
        );
        assert_eq!(verified(&jwt, &known, &h, 10), None);
        let access = jwt.issue("u1", "s1").expect("jwt");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {access}")).expect("header"),
        );
        assert_eq!(verified(&jwt, &known, &h, 10).as_deref(), Some("user:u1"));
        let forged = JwtKeys::new(b"another-secret-of-enough-length-00")
            .issue("u1", "s1")
            .expect("jwt");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {forged}")).expect("header"),
        );
        assert_eq!(verified(&jwt, &known, &h, 10), None);
        let api = format!("{API_TOKEN_PREFIX}0123456789abcdef");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {api}")).expect("header"),
        );
        assert_eq!(verified(&jwt, &known, &h, 10), None);
        known.learn(&api, "tok:t1".into(), 10);
        assert_eq!(verified(&jwt, &known, &h, 11).as_deref(), Some("tok:t1"));
        // Forgotten after an hour without a new verification.
        assert_eq!(verified(&jwt, &known, &h, 10 + KNOWN_TTL_SECS), None);

        let mut agent = HeaderMap::new();
        agent.insert(
            AGENT_TOKEN_HEADER,
            HeaderValue::from_static("shardlyn_agent_x"),
        );
        assert_eq!(verified(&jwt, &known, &agent, 10), None);
        known.learn("shardlyn_agent_x", "node:n1".into(), 10);
        assert_eq!(
            verified(&jwt, &known, &agent, 10).as_deref(),
            Some("node:n1")
        );
    }
}
