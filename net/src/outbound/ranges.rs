//! Which addresses are not public: the IANA special-purpose ranges an outbound request
//! from the panel or an agent must not reach on a user's say-so, and the cloud-metadata
//! endpoints. Pure functions over `std::net` types, no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// A cloud instance-metadata service (169.254.169.254, fd00:ec2::254...).
    Metadata,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, IPv6 unique-local (fc00::/7) and site-local, local-use NAT64.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// Shared address space of carrier-grade NAT, 100.64.0.0/10.
    SharedNat,
    /// 0.0.0.0, ::.
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// TEST-NET-1/2/3, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18.0.0/15, 2001:2::/48.
    Benchmarking,
    /// Anything else not routable on the internet: 0.0.0.0/8, 192.0.0.0/24, 240.0.0.0/4,
    /// IPv4-compatible and Teredo IPv6, IPv6 outside 2000::/3...
    Reserved,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Metadata => "a cloud metadata address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::SharedNat => "a carrier-grade NAT address",
            Self::Unspecified => "the unspecified address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Reserved => "a reserved address",
        })
    }
}

/// Cloud instance-metadata endpoints: AWS/GCP/Azure/OpenStack/Oracle (169.254.169.254),
/// AWS ECS task metadata, Alibaba Cloud, AWS over IPv6.
const METADATA: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

/// Host names of metadata services, refused before any lookup.
pub const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata"];

/// The address in its plainest form: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// as the IPv4 address it reaches.
#[must_use]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` (in any form) is a cloud-metadata address.
#[must_use]
pub fn is_metadata(ip: IpAddr) -> bool {
    METADATA.contains(&canonical(ip))
}

/// Why `ip` must not be reached, or `None` for a public address.
#[must_use]
pub fn classify(ip: IpAddr) -> Option<Blocked> {
    if is_metadata(ip) {
        return Some(Blocked::Metadata);
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    if METADATA.contains(&IpAddr::V4(ip)) {
        return Some(Blocked::Metadata);
    }
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => Blocked::Unspecified,
        _ if ip.is_broadcast() => Blocked::Broadcast,
        (127, ..) => Blocked::Loopback,
        (10, ..) | (192, 168, _) => Blocked::Private,
        (172, b, _) if b & 0xf0 == 16 => Blocked::Private,
        (100, b, _) if b & 0xc0 == 64 => Blocked::SharedNat,
        (169, 254, _) => Blocked::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Blocked::Documentation,
        (198, b, _) if b & 0xfe == 18 => Blocked::Benchmarking,
        (a, ..) if a & 0xf0 == 224 => Blocked::Multicast,
        // "This network", IETF protocol assignments, the 6to4 relay anycast, class E.
        (0, ..) | (192, 0, 0) | (192, 88, 99) => Blocked::Reserved,
        (a, ..) if a >= 240 => Blocked::Reserved,
        _ => return None,
    })
}

/// The IPv4 address in the last 32 bits of `ip`.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let in_net = |prefix: &[u16], bits: u32| {
        // Compares the first `bits` bits of `ip` with `prefix` (segments, zero-padded).
        let mut want = [0u16; 8];
        want[..prefix.len()].copy_from_slice(prefix);
        let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
        u128::from(ip) & mask == u128::from(Ipv6Addr::from(want)) & mask
    };
    Some(match () {
        () if ip.is_unspecified() => Blocked::Unspecified,
        () if ip.is_loopback() => Blocked::Loopback,
        // IPv4-compatible (::a.b.c.d, deprecated): what the embedded address is, else
        // reserved, as nothing routes these.
        () if in_net(&[], 96) => classify_v4(low_v4(ip)).unwrap_or(Blocked::Reserved),
        // NAT64 well-known prefix: a gateway translates to the embedded IPv4 address.
        () if in_net(&[0x64, 0xff9b], 96) => return classify_v4(low_v4(ip)),
        () if in_net(&[0x64, 0xff9b, 1], 48) => Blocked::Private,
        // 6to4: the IPv4 address in bits 16..48 is the one reached.
        () if in_net(&[0x2002], 16) => {
            let v4 = Ipv4Addr::new(
                (s[1] >> 8) as u8,
                (s[1] & 0xff) as u8,
                (s[2] >> 8) as u8,
                (s[2] & 0xff) as u8,
            );
            return classify_v4(v4);
        }
        () if in_net(&[0x2001, 0xdb8], 32) || in_net(&[0x3fff], 20) => Blocked::Documentation,
        () if in_net(&[0x2001, 2, 0], 48) => Blocked::Benchmarking,
        // Teredo, ORCHID and ORCHIDv2.
        () if in_net(&[0x2001, 0], 32)
            || in_net(&[0x2001, 0x10], 28)
            || in_net(&[0x2001, 0x20], 28) =>
        {
            Blocked::Reserved
        }
        () if in_net(&[0xfc00], 7) || in_net(&[0xfec0], 10) => Blocked::Private,
        () if in_net(&[0xfe80], 10) => Blocked::LinkLocal,
        () if in_net(&[0xff00], 8) => Blocked::Multicast,
        // Only 2000::/3 is global unicast.
        () if !in_net(&[0x2000], 3) => Blocked::Reserved,
        () => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn why(s: &str) -> Option<Blocked> {
        classify(s.parse().expect("an address"))
    }

    #[test]
    fn ipv4_special_ranges_are_refused() {
        for (ip, want) in [
            ("127.0.0.1", Blocked::Loopback),
            ("127.255.255.254", Blocked::Loopback),
            ("10.0.0.5", Blocked::Private),
            ("172.16.0.1", Blocked::Private),
            ("172.31.255.255", Blocked::Private),
            ("192.168.1.10", Blocked::Private),
            ("169.254.1.1", Blocked::LinkLocal),
            ("169.254.169.254", Blocked::Metadata),
            ("169.254.170.2", Blocked::Metadata),
            ("100.100.100.200", Blocked::Metadata),
            ("100.64.0.1", Blocked::SharedNat),
            ("100.127.255.255", Blocked::SharedNat),
            ("0.0.0.0", Blocked::Unspecified),
            ("0.1.2.3", Blocked::Reserved),
            ("224.0.0.1", Blocked::Multicast),
            ("239.255.255.250", Blocked::Multicast),
            ("255.255.255.255", Blocked::Broadcast),
            ("240.0.0.1", Blocked::Reserved),
            ("192.0.0.8", Blocked::Reserved),
            ("192.88.99.1", Blocked::Reserved),
            ("192.0.2.1", Blocked::Documentation),
            ("198.51.100.7", Blocked::Documentation),
            ("203.0.113.9", Blocked::Documentation),
            ("198.18.0.1", Blocked::Benchmarking),
            ("198.19.255.255", Blocked::Benchmarking),
        ] {
            assert_eq!(why(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_ipv4_is_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "198.17.1.1",
            "198.20.0.1",
            "192.0.1.1",
            "223.255.255.255",
            "11.0.0.1",
        ] {
            assert_eq!(why(ip), None, "{ip}");
        }
    }

    #[test]
    fn ipv6_special_ranges_are_refused() {
        for (ip, want) in [
            ("::1", Blocked::Loopback),
            ("::", Blocked::Unspecified),
            ("fd00::1", Blocked::Private),
            ("fc12:3456::1", Blocked::Private),
            ("fec0::1", Blocked::Private),
            ("fe80::1", Blocked::LinkLocal),
            ("febf::1", Blocked::LinkLocal),
            ("ff02::1", Blocked::Multicast),
            ("fd00:ec2::254", Blocked::Metadata),
            ("2001:db8::1", Blocked::Documentation),
            ("3fff::1", Blocked::Documentation),
            ("2001:2::1", Blocked::Benchmarking),
            ("2001::1", Blocked::Reserved),
            ("2001:10::1", Blocked::Reserved),
            ("100::1", Blocked::Reserved),
            ("64:ff9b:1::1", Blocked::Private),
            ("4000::1", Blocked::Reserved),
        ] {
            assert_eq!(why(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn embedded_ipv4_is_judged_by_what_it_reaches() {
        for (ip, want) in [
            ("::ffff:127.0.0.1", Some(Blocked::Loopback)),
            ("::ffff:7f00:1", Some(Blocked::Loopback)),
            ("::ffff:10.1.2.3", Some(Blocked::Private)),
            ("::ffff:169.254.169.254", Some(Blocked::Metadata)),
            ("::ffff:100.64.0.1", Some(Blocked::SharedNat)),
            ("::ffff:0.0.0.0", Some(Blocked::Unspecified)),
            ("::ffff:1.1.1.1", None),
            ("::127.0.0.1", Some(Blocked::Loopback)),
            ("::1.1.1.1", Some(Blocked::Reserved)),
            ("64:ff9b::127.0.0.1", Some(Blocked::Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(Blocked::Metadata)),
            ("64:ff9b::1.1.1.1", None),
            ("2002:7f00:1::1", Some(Blocked::Loopback)),
            ("2002:a00:1::", Some(Blocked::Private)),
            ("2002:101:101::1", None),
        ] {
            assert_eq!(why(ip), want, "{ip}");
        }
    }

    #[test]
    fn public_ipv6_is_allowed() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860::1",
        ] {
            assert_eq!(why(ip), None, "{ip}");
        }
    }

    proptest! {
        #[test]
        fn a_mapped_address_is_judged_like_its_ipv4(raw in any::<u32>()) {
            let v4 = Ipv4Addr::from(raw);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            prop_assert_eq!(classify(mapped), classify(IpAddr::V4(v4)));
            prop_assert_eq!(canonical(mapped), IpAddr::V4(v4));
        }

        #[test]
        fn nat64_and_6to4_are_judged_like_their_ipv4(raw in any::<u32>(), tail in any::<u64>()) {
            let v4 = Ipv4Addr::from(raw);
            let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(raw));
            prop_assert_eq!(classify(IpAddr::V6(nat64)), classify(IpAddr::V4(v4)));
            let six_to_four = Ipv6Addr::from(
                (0x2002_u128 << 112) | (u128::from(raw) << 80) | u128::from(tail),
            );
            prop_assert_eq!(classify(IpAddr::V6(six_to_four)), classify(IpAddr::V4(v4)));
        }

        #[test]
        fn std_non_global_ipv4_is_always_refused(raw in any::<u32>()) {
            let v4 = Ipv4Addr::from(raw);
            if v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
                || v4.is_multicast() || v4.is_broadcast() || v4.is_documentation()
            {
                prop_assert!(classify(IpAddr::V4(v4)).is_some(), "{}", v4);
            }
        }

        #[test]
        fn ipv6_outside_global_unicast_is_refused(raw in any::<u128>()) {
            let v6 = Ipv6Addr::from(raw);
            let global_unicast = raw >> 125 == 1;
            let nat64 = raw >> 32 == 0x0064_ff9b_u128 << 64;
            let mapped = v6.to_ipv4_mapped().is_some();
            if !global_unicast && !nat64 && !mapped {
                prop_assert!(classify(IpAddr::V6(v6)).is_some(), "{}", v6);
            }
        }
    }
}
