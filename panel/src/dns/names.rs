//! What a record may be: its type, its name inside its zone, its content per type and
//! its TTL, each checked with the field named on error.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{AppError, AppResult};

/// The record types the panel writes.
pub const TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "SRV"];

/// The shortest and longest TTL accepted, in seconds.
pub const TTL_MIN: u32 = 60;
pub const TTL_MAX: u32 = 86_400;
/// The TTL of a record that names none.
pub const TTL_DEFAULT: u32 = 300;

/// The longest TXT value, in bytes (eight 255-byte strings).
const TXT_MAX: usize = 2040;

/// `type`: one of [`TYPES`], any case.
///
/// # Errors
/// 400 `type`.
pub fn record_type(given: &str) -> AppResult<&'static str> {
    let upper = given.trim().to_ascii_uppercase();
    TYPES.iter().copied().find(|t| *t == upper).ok_or_else(|| {
        AppError::invalid_field("type", format!("type must be one of {}", TYPES.join(", ")))
    })
}

/// `ttl`: [`TTL_DEFAULT`] when absent, else within [`TTL_MIN`]..=[`TTL_MAX`].
///
/// # Errors
/// 400 `ttl`.
pub fn ttl(given: Option<i64>) -> AppResult<u32> {
    let Some(t) = given else {
        return Ok(TTL_DEFAULT);
    };
    u32::try_from(t)
        .ok()
        .filter(|t| (TTL_MIN..=TTL_MAX).contains(t))
        .ok_or_else(|| {
            AppError::invalid_field("ttl", format!("ttl must be {TTL_MIN} to {TTL_MAX} seconds"))
        })
}

/// A domain name's labels are fine: 1 to 63 letters, digits, hyphens and underscores,
/// not starting or ending with a hyphen; 253 characters at most. `wildcard` allows `*`
/// as the first label.
fn valid_host(name: &str, wildcard: bool) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    name.split('.').enumerate().all(|(i, label)| {
        if wildcard && i == 0 && label == "*" {
            return true;
        }
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A zone's name as given by a provider or a person: lower case, no trailing dot.
#[must_use]
pub fn zone_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` (normalized) is `zone` or inside it.
#[must_use]
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// `name` inside `zone`: relative (`mc`, `@` for the zone itself) or fully qualified
/// (`mc.example.com`, with or without the trailing dot). Answers the fully qualified
/// name, lower case, without the trailing dot.
///
/// # Errors
/// 400 `name`: not a domain name, outside the zone, or under the ownership prefix.
pub fn fqdn(name: &str, zone: &str) -> AppResult<String> {
    let bad = |why: &str| AppError::invalid_field("name", why.to_owned());
    let given = name.trim().to_ascii_lowercase();
    let absolute = given.ends_with('.');
    let given = given.trim_end_matches('.');
    let full = if given.is_empty() || given == "@" {
        zone.to_owned()
    } else if in_zone(given, zone) {
        given.to_owned()
    } else if absolute {
        return Err(bad(&format!("name must be inside the zone {zone}")));
    } else {
        format!("{given}.{zone}")
    };
    if !valid_host(&full, true) {
        return Err(bad(
            "name must be a domain name: labels of letters, digits, hyphens and underscores, \
             63 characters each, 253 in all",
        ));
    }
    if full
        .split('.')
        .any(|l| l.eq_ignore_ascii_case(super::owner::PREFIX))
    {
        return Err(bad(&format!(
            "names under {} hold the panel's ownership markers",
            super::owner::PREFIX
        )));
    }
    Ok(full)
}

/// A target name inside a record's content (CNAME, SRV): a host name, normalized.
fn target(given: &str, field: &str) -> AppResult<String> {
    let t = given.trim().trim_end_matches('.').to_ascii_lowercase();
    if valid_host(&t, false) {
        Ok(t)
    } else {
        Err(AppError::invalid_field(
            field,
            format!("{field} must name a host (like mc.example.com)"),
        ))
    }
}

/// `content` for a record of `record_type` at `name` in `zone`, normalized:
/// an IPv4 address (A), an IPv6 address (AAAA, compressed), a host (CNAME, not at the
/// zone's apex), text (TXT), `priority weight port target` (SRV, numbers 0 to 65535).
///
/// # Errors
/// 400 `content` saying what the type takes.
pub fn content(record_type: &str, given: &str, name: &str, zone: &str) -> AppResult<String> {
    let bad = |why: &str| AppError::invalid_field("content", why.to_owned());
    let given = given.trim();
    match record_type {
        "A" => given
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| bad("content of an A record is an IPv4 address (203.0.113.10)")),
        "AAAA" => given
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| bad("content of an AAAA record is an IPv6 address (2001:db8::10)")),
        "CNAME" => {
            if name == zone {
                return Err(AppError::invalid_field(
                    "name",
                    "a CNAME cannot sit at the zone's apex",
                ));
            }
            let t = target(given, "content")?;
            if t == name {
                return Err(bad("a CNAME cannot point at itself"));
            }
            Ok(t)
        }
        "TXT" => {
            if given.is_empty() || given.len() > TXT_MAX {
                return Err(bad(&format!(
                    "content of a TXT record is 1 to {TXT_MAX} bytes of text"
                )));
            }
            if given.chars().any(|c| c.is_control() || !c.is_ascii()) {
                return Err(bad(
                    "content of a TXT record is printable ASCII text (no control characters)",
                ));
            }
            Ok(given.to_owned())
        }
        "SRV" => srv(given),
        other => Err(AppError::invalid_field(
            "type",
            format!("type {other} is not written by the panel"),
        )),
    }
}

/// The parts of an SRV record's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Srv<'a> {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: &'a str,
}

/// Splits normalized SRV content (`priority weight port target`).
#[must_use]
pub fn split_srv(content: &str) -> Option<Srv<'_>> {
    let mut parts = content.split_whitespace();
    let srv = Srv {
        priority: parts.next()?.parse().ok()?,
        weight: parts.next()?.parse().ok()?,
        port: parts.next()?.parse().ok()?,
        target: parts.next()?,
    };
    parts.next().is_none().then_some(srv)
}

fn srv(given: &str) -> AppResult<String> {
    let bad = || {
        AppError::invalid_field(
            "content",
            "content of an SRV record is `priority weight port target`, \
             like `0 5 25565 mc.example.com` (numbers 0 to 65535)",
        )
    };
    let parts: Vec<&str> = given.split_whitespace().collect();
    let [priority, weight, port, host] = parts.as_slice() else {
        return Err(bad());
    };
    let number = |s: &str| s.parse::<u16>().map_err(|_| bad());
    let (priority, weight, port) = (number(priority)?, number(weight)?, number(port)?);
    let host = target(host, "content")?;
    Ok(format!("{priority} {weight} {port} {host}"))
}

/// The service part of an SRV name: `_service._proto` (`_minecraft._tcp`).
#[must_use]
pub fn valid_srv_service(service: &str) -> bool {
    let mut labels = service.split('.');
    let (Some(svc), Some(proto), None) = (labels.next(), labels.next(), labels.next()) else {
        return false;
    };
    let svc_ok = svc.strip_prefix('_').is_some_and(|s| {
        !s.is_empty()
            && s.len() <= 62
            && !s.starts_with('-')
            && !s.ends_with('-')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    svc_ok && matches!(proto, "_tcp" | "_udp")
}

/// A server's name as a DNS label: lower case letters, digits and hyphens, 63 at most.
#[must_use]
pub fn label_of(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "server".to_owned()
    } else {
        out
    }
}

/// A subdomain a person chose: one or more labels of letters, digits and hyphens.
///
/// # Errors
/// 400 `field`.
pub fn subdomain(given: &str, field: &str) -> AppResult<String> {
    let s = given.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = valid_host(&s, false) && s.len() <= 120 && s.split('.').all(|l| !l.contains('_'));
    if ok {
        Ok(s)
    } else {
        Err(AppError::invalid_field(
            field,
            format!("{field} must be labels of letters, digits and hyphens (like `mc` or `eu.mc`)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_fully_qualified_inside_their_zone() {
        let z = "example.com";
        assert_eq!(fqdn("mc", z).expect("relative"), "mc.example.com");
        assert_eq!(fqdn("@", z).expect("apex"), "example.com");
        assert_eq!(
            fqdn("MC.Example.com.", z).expect("absolute"),
            "mc.example.com"
        );
        assert_eq!(
            fqdn("_minecraft._tcp.mc", z).expect("srv"),
            "_minecraft._tcp.mc.example.com"
        );
        assert_eq!(fqdn("*.play", z).expect("wildcard"), "*.play.example.com");
        for bad in [
            "mc.other.org.",
            "-mc",
            "a..b",
            "mc!",
            "_shardlyn-owner.mc",
            "x*",
        ] {
            let e = fqdn(bad, z).expect_err(bad);
            assert!(e.to_string().contains("name"), "{bad}: {e}");
        }
        assert!(fqdn(&"a".repeat(64), z).is_err());
    }

    #[test]
    fn contents_are_checked_per_type_and_normalized() {
        let (n, z) = ("mc.example.com", "example.com");
        assert_eq!(
            content("A", " 203.0.113.10 ", n, z).expect("a"),
            "203.0.113.10"
        );
        assert!(content("A", "203.0.113.256", n, z).is_err());
        assert_eq!(
            content("AAAA", "2001:DB8:0:0::10", n, z).expect("aaaa"),
            "2001:db8::10"
        );
        assert!(content("AAAA", "203.0.113.10", n, z).is_err());
        assert_eq!(
            content("CNAME", "Play.Example.com.", n, z).expect("cname"),
            "play.example.com"
        );
        assert!(content("CNAME", "x.example.com", z, z).is_err());
        assert_eq!(
            content("SRV", "0 5 25565 mc.example.com.", n, z).expect("srv"),
            "0 5 25565 mc.example.com"
        );
        for bad in [
            "0 5 mc.example.com",
            "0 5 70000 mc",
            "a b c d",
            "0 5 25565 mc 1",
        ] {
            assert!(content("SRV", bad, n, z).is_err(), "{bad}");
        }
        assert_eq!(
            content("TXT", "v=spf1 -all", n, z).expect("txt"),
            "v=spf1 -all"
        );
        assert!(content("TXT", "", n, z).is_err());
        assert!(content("TXT", "a\u{7}b", n, z).is_err());
        assert_eq!(record_type("srv").expect("type"), "SRV");
        assert!(record_type("MX").is_err());
        assert_eq!(ttl(None).expect("default"), 300);
        assert!(ttl(Some(59)).is_err());
        assert!(ttl(Some(86_401)).is_err());
        assert_eq!(
            split_srv("1 2 3 t.example.com"),
            Some(Srv {
                priority: 1,
                weight: 2,
                port: 3,
                target: "t.example.com"
            })
        );
    }

    #[test]
    fn server_names_become_labels_and_srv_services_are_checked() {
        assert_eq!(label_of("My Survival Server!"), "my-survival-server");
        assert_eq!(label_of("  ---  "), "server");
        assert_eq!(label_of(&"x".repeat(80)).len(), 63);
        assert!(valid_srv_service("_minecraft._tcp"));
        assert!(valid_srv_service("_rust._udp"));
        assert!(!valid_srv_service("_minecraft._sctp"));
        assert!(!valid_srv_service("minecraft._tcp"));
        assert!(!valid_srv_service("_minecraft"));
        assert_eq!(subdomain("EU.mc", "dns_subdomain").expect("ok"), "eu.mc");
        assert!(subdomain("_x", "dns_subdomain").is_err());
    }
}
