//! Unit tests of the guarded resolver: literals, names, the allow list, metadata,
//! errors and the `[outbound]` table's serde form.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;

use super::*;

fn policy(allow: &[&str]) -> Outbound {
    Outbound::new(allow.iter().map(ToString::to_string).collect()).expect("valid allow list")
}

fn denied(r: Result<Vec<SocketAddr>, OutboundError>) -> (String, Blocked) {
    match r {
        Err(OutboundError::Denied { target, reason, .. }) => (target, reason),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test]
async fn literals_are_checked_without_a_lookup() {
    let p = Outbound::default();
    for (host, want) in [
        ("127.0.0.1", Blocked::Loopback),
        ("[::1]", Blocked::Loopback),
        ("::ffff:127.0.0.1", Blocked::Loopback),
        ("[::ffff:169.254.169.254]", Blocked::Metadata),
        ("169.254.169.254", Blocked::Metadata),
        ("fd00:ec2::254", Blocked::Metadata),
        ("10.1.2.3", Blocked::Private),
        ("100.64.0.7", Blocked::SharedNat),
        ("0.0.0.0", Blocked::Unspecified),
        ("fe80::1", Blocked::LinkLocal),
    ] {
        assert_eq!(denied(p.resolve(host, 80).await).1, want, "{host}");
    }
    let addrs = p.resolve("1.1.1.1", 443).await.expect("public");
    assert_eq!(
        addrs,
        vec!["1.1.1.1:443".parse::<SocketAddr>().expect("addr")]
    );
    let addrs = p
        .resolve("[2606:4700::1111]", 443)
        .await
        .expect("public v6");
    assert_eq!(addrs[0].port(), 443);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
    let (target, reason) = denied(Outbound::default().resolve("localhost", 80).await);
    assert_eq!(reason, Blocked::Loopback);
    assert!(target == "127.0.0.1" || target == "::1", "{target}");
    let err = Outbound::default()
        .resolve("LocalHost.", 80)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "OUTBOUND_DENIED");
    assert!(err.to_string().contains("resolves to"), "{err}");

    // By name, by address (every address localhost has), by range.
    for allow in [
        &["localhost"][..],
        &["127.0.0.1", "::1"],
        &["127.0.0.0/8", "::1/128"],
    ] {
        let addrs = policy(allow)
            .resolve("localhost", 9000)
            .await
            .expect("allowed");
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 9000)
        );
    }
    // Allowing one address does not allow its neighbours.
    assert_eq!(
        denied(policy(&["127.0.0.1"]).resolve("127.0.0.2", 80).await).1,
        Blocked::Loopback
    );
}

#[tokio::test]
async fn metadata_needs_an_exact_entry() {
    let wide = policy(&[
        "169.254.0.0/16",
        "0.0.0.0/0",
        "::/0",
        "fd00::/8",
        "localhost",
    ]);
    assert_eq!(
        denied(wide.resolve("169.254.169.254", 80).await).1,
        Blocked::Metadata
    );
    assert_eq!(
        denied(wide.resolve("::ffff:169.254.169.254", 80).await).1,
        Blocked::Metadata
    );
    assert_eq!(
        denied(wide.resolve("fd00:ec2::254", 80).await).1,
        Blocked::Metadata
    );
    // The range still allows its other addresses.
    wide.resolve("169.254.1.1", 80)
        .await
        .expect("allowed by range");
    wide.resolve("10.9.9.9", 80)
        .await
        .expect("allowed by 0.0.0.0/0");
    let exact = policy(&["169.254.169.254"]);
    exact
        .resolve("169.254.169.254", 80)
        .await
        .expect("exact entry");
    exact
        .resolve("::ffff:169.254.169.254", 80)
        .await
        .expect("mapped form of the exact entry");
}

#[tokio::test]
async fn metadata_host_names_are_refused_before_any_lookup() {
    for host in [
        "metadata.google.internal",
        "METADATA.google.internal.",
        "metadata",
    ] {
        let (target, reason) = denied(Outbound::default().resolve(host, 80).await);
        assert_eq!(reason, Blocked::Metadata, "{host}");
        assert_eq!(target, normalize_host(host));
    }
    // Listed by name, the lookup happens (and fails offline or yields 169.254.169.254,
    // which still needs its exact entry).
    let named = policy(&["metadata.google.internal"]);
    let r = named.resolve("metadata.google.internal", 80).await;
    assert!(
        matches!(
            r,
            Err(OutboundError::Unresolvable { .. }
                | OutboundError::Denied {
                    reason: Blocked::Metadata,
                    ..
                })
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn urls_are_parsed_and_normalized() {
    let p = policy(&["127.0.0.1"]);
    let c = p
        .resolve_url("http://127.0.0.1:9000/bucket")
        .await
        .expect("allowed");
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 9000));
    assert!(c.is_ip_literal());
    // WHATWG forms of 127.0.0.1 are the same address.
    for url in ["http://127.1/", "http://0x7f.0.0.1/", "http://2130706433/"] {
        let c = p.resolve_url(url).await.expect(url);
        assert_eq!(c.addrs[0].ip(), IpAddr::from([127, 0, 0, 1]), "{url}");
    }
    let d = Outbound::default();
    for url in [
        "http://[::ffff:7f00:1]/",
        "https://169.254.169.254/latest",
        "http://10.0.0.1:8080/",
    ] {
        let err = d.resolve_url(url).await.expect_err(url);
        assert_eq!(err.code(), "OUTBOUND_DENIED", "{url}");
    }
    assert_eq!(
        d.resolve_url("https://1.1.1.1/x")
            .await
            .expect("public")
            .port,
        443
    );
    for bad in [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "not a url",
        "http://",
    ] {
        let err = d.resolve_url(bad).await.expect_err(bad);
        assert_eq!(err.code(), "VALIDATION_ERROR", "{bad}: {err}");
    }
}

#[tokio::test]
async fn an_unknown_name_is_unresolvable() {
    let err = Outbound::default()
        .resolve("no-such-host.invalid", 80)
        .await
        .expect_err("unresolvable");
    assert_eq!(err.code(), "OUTBOUND_UNRESOLVABLE", "{err}");
}

#[tokio::test]
async fn prechecks_refuse_what_is_known_and_pass_what_does_not_resolve() {
    let p = Outbound::default();
    p.precheck("no-such-host.invalid", 443)
        .await
        .expect("unresolvable passes");
    p.precheck_url("https://no-such-host.invalid/x")
        .await
        .expect("unresolvable passes");
    assert_eq!(
        p.precheck("localhost", 80)
            .await
            .expect_err("loopback")
            .code(),
        "OUTBOUND_DENIED"
    );
    assert_eq!(
        p.precheck_url("http://169.254.169.254/")
            .await
            .expect_err("metadata")
            .code(),
        "OUTBOUND_DENIED"
    );
    assert_eq!(
        p.precheck_url("gopher://x/")
            .await
            .expect_err("scheme")
            .code(),
        "VALIDATION_ERROR"
    );
}

#[test]
fn messages_name_the_address() {
    let err = Outbound::default()
        .check("minio.internal", "10.0.0.5".parse().expect("ip"))
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("minio.internal resolves to 10.0.0.5, a private address"),
        "{text}"
    );
    assert!(text.contains("[outbound] allow"), "{text}");
}

#[test]
fn the_table_round_trips_and_bad_entries_fail() {
    let p: Outbound = toml::from_str("allow = [\"10.0.0.5\", \"192.168.1.0/24\", \"minio.lan\"]")
        .expect("parses");
    assert_eq!(p.allow_list(), ["10.0.0.5", "192.168.1.0/24", "minio.lan"]);
    assert!(p.check("x", "192.168.1.9".parse().expect("ip")).is_ok());
    assert!(
        p.check("minio.lan", "172.16.0.1".parse().expect("ip"))
            .is_ok()
    );
    assert!(
        p.check("other.lan", "172.16.0.1".parse().expect("ip"))
            .is_err()
    );
    let back = toml::to_string(&p).expect("serializes");
    assert_eq!(toml::from_str::<Outbound>(&back).expect("again"), p);
    let from_json: Outbound = serde_json::from_str(r#"{"allow": ["::1"]}"#).expect("json");
    assert_eq!(from_json.allow_list(), ["::1"]);
    let err = toml::from_str::<Outbound>("allow = [\"10.0.0.0/40\"]").expect_err("bad");
    assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
    assert!(toml::from_str::<Outbound>("deny = []").is_err());
    let more = p
        .extended(&["::1".into(), "10.0.0.5".into()])
        .expect("extends");
    assert_eq!(more.allow_list().len(), 4);
}

proptest! {
    #[test]
    fn an_allowed_range_allows_exactly_its_addresses(base in any::<u32>(), len in 8u8..=32, probe in any::<u32>()) {
        let net = ipnet::Ipv4Net::new(base.into(), len).expect("net").trunc();
        let p = Outbound::new(vec![net.to_string()]).expect("entry");
        let ip = std::net::Ipv4Addr::from(probe);
        let blocked = ranges::classify(IpAddr::V4(ip));
        let ok = p.check("h", IpAddr::V4(ip)).is_ok();
        let want = match blocked {
            None => true,
            Some(Blocked::Metadata) => len == 32 && net.contains(&ip),
            Some(_) => net.contains(&ip),
        };
        prop_assert_eq!(ok, want);
        // The IPv4-mapped form is judged the same.
        prop_assert_eq!(p.check("h", IpAddr::V6(ip.to_ipv6_mapped())).is_ok(), want);
    }

    #[test]
    fn allow_entries_never_panic(s in "\\PC{0,40}") {
        let _ = Outbound::new(vec![s]);
    }
}
