//! The operator's allow list (`[outbound] allow`): IP addresses, CIDR ranges and host
//! names (`minio.lan`, or `*.lan` for every name under `lan`) that outbound requests
//! may reach although they are not public. Parsing and matching only.

use std::net::IpAddr;

use ipnet::IpNet;

use super::ranges::canonical;

/// One parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    /// One address or a range (an address is a full-length prefix).
    Net(IpNet),
    /// Exactly this host name (lowercase, no trailing dot).
    Host(String),
    /// Every name ending in this suffix (`.lan` for `*.lan`), not the suffix itself.
    Suffix(String),
}

/// A host name in the form entries are compared in: lowercase, without the trailing
/// dot of a fully qualified name and without IPv6 brackets.
#[must_use]
pub fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether `name` is a syntactically valid DNS host name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Entry {
    /// Parses `10.0.0.5`, `192.168.1.0/24`, `fd00::/8`, `minio.lan` or `*.lan`.
    pub(super) fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("an empty entry".into());
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Self::Net(IpNet::from(canonical(ip))));
        }
        if text.contains('/') {
            let net: IpNet = text
                .parse()
                .map_err(|_| format!("{text:?} is not an IP range (CIDR)"))?;
            return Ok(Self::Net(net.trunc()));
        }
        let name = normalize_host(text);
        if let Some(suffix) = name.strip_prefix("*.") {
            if valid_name(suffix) {
                return Ok(Self::Suffix(format!(".{suffix}")));
            }
        } else if valid_name(&name) {
            return Ok(Self::Host(name));
        }
        Err(format!(
            "{text:?} is neither an IP address, a CIDR range nor a host name"
        ))
    }

    /// Whether this entry names `host` (normalized).
    pub(super) fn names(&self, host: &str) -> bool {
        match self {
            Self::Host(h) => h == host,
            Self::Suffix(s) => host.ends_with(s.as_str()),
            Self::Net(_) => false,
        }
    }

    /// Whether this entry covers `ip`; with `exact`, only an entry for that one address
    /// does (how cloud-metadata addresses are allowed).
    pub(super) fn covers(&self, ip: IpAddr, exact: bool) -> bool {
        let Self::Net(net) = self else {
            return false;
        };
        let ip = canonical(ip);
        net.contains(&ip) && (!exact || net.prefix_len() == net.max_prefix_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn entries_parse() {
        assert_eq!(
            Entry::parse("10.0.0.5"),
            Ok(Entry::Net("10.0.0.5/32".parse().expect("net")))
        );
        assert_eq!(
            Entry::parse(" 192.168.1.7/24 "),
            Ok(Entry::Net("192.168.1.0/24".parse().expect("net")))
        );
        assert_eq!(
            Entry::parse("[::1]"),
            Ok(Entry::Net("::1/128".parse().expect("net")))
        );
        assert_eq!(
            Entry::parse("::ffff:10.0.0.5"),
            Ok(Entry::Net("10.0.0.5/32".parse().expect("net")))
        );
        assert_eq!(
            Entry::parse("MinIO.lan."),
            Ok(Entry::Host("minio.lan".into()))
        );
        assert_eq!(Entry::parse("*.lan"), Ok(Entry::Suffix(".lan".into())));
        for bad in [
            "",
            "  ",
            "10.0.0.0/33",
            "fd00::/129",
            "a b",
            "*.",
            "-x.lan",
            "http://x",
            "x..y",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entries_match() {
        let net = Entry::parse("192.168.1.0/24").expect("entry");
        assert!(net.covers(ip("192.168.1.200"), false));
        assert!(net.covers(ip("::ffff:192.168.1.200"), false));
        assert!(!net.covers(ip("192.168.2.1"), false));
        assert!(!net.covers(ip("192.168.1.1"), true), "a range is not exact");
        let one = Entry::parse("169.254.169.254").expect("entry");
        assert!(one.covers(ip("169.254.169.254"), true));
        assert!(one.covers(ip("::ffff:169.254.169.254"), true));
        let suffix = Entry::parse("*.lan").expect("entry");
        assert!(suffix.names("minio.lan"));
        assert!(!suffix.names("lan"));
        assert!(!suffix.names("minio.lan.evil.com"));
        assert!(!suffix.names("evillan"));
        assert!(Entry::parse("minio.lan").expect("entry").names("minio.lan"));
        assert!(
            !Entry::parse("minio.lan")
                .expect("entry")
                .names("x.minio.lan")
        );
    }
}
