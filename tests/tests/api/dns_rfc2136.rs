//! The RFC 2136 DNS provider (`panel/src/dns/rfc2136.rs`: UPDATE messages and AXFR,
//! signed with TSIG) against real servers: a private BIND 9 (`shardlyn_tests::bind`)
//! and PowerDNS (`shardlyn_tests::pdns`, its RFC 2136 listener). What the client wrote
//! is checked with `dig` and with an independent client, dnspython
//! (`tests/support/dns_check.py`), which also writes records the client must read.
//!
//! Then the `/v1/dns` API over an `rfc2136` credential, on both engines.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::credentials::providers::Parts;
use shardlyn_panel::dns::provider::{Calls, Context};
use shardlyn_panel::dns::rfc2136::Client;
use shardlyn_panel::dns::{Change, DnsProvider, ProviderError, RecordSet, Zone};
use shardlyn_tests::bind::Bind;

fn venv_python() -> std::path::PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    std::path::Path::new(&home).join(".cache/shardlyn/venv/bin/python")
}

/// The fields of a credential for `server` with `key`/`secret` over `zones`.
fn parts(server: &str, zones: &str, key: &str, secret: &str) -> Parts {
    let mut p = Parts::default();
    p.public.insert("server".into(), json!(server));
    p.public.insert("zones".into(), json!(zones));
    p.public.insert("tsig_key_name".into(), json!(key));
    p.secrets.insert("tsig_secret".into(), json!(secret));
    p
}

fn context(outbound: shardlyn_net::outbound::Outbound) -> (Context, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    (
        Context {
            outbound,
            timeout: Duration::from_secs(5),
            calls: calls.clone(),
        },
        calls,
    )
}

fn loopback() -> shardlyn_net::outbound::Outbound {
    shardlyn_net::outbound::Outbound::new(shardlyn_tests::loopback_allow()).expect("allow list")
}

fn client_with(parts: &Parts) -> (Client, Arc<Calls>) {
    let (ctx, calls) = context(loopback());
    let config = shardlyn_panel::config::Config::default();
    (Client::new(ctx, parts, &config).expect("client"), calls)
}

fn bind_client(bind: &Bind) -> (Client, Arc<Calls>) {
    client_with(&parts(
        &bind.addr.to_string(),
        &format!("{},{}", bind.zones.join(","), bind.locked),
        &bind.key_name,
        &bind.secret,
    ))
}

fn zone(name: &str) -> Zone {
    Zone {
        id: name.into(),
        name: name.into(),
    }
}

fn set(name: &str, kind: &str, ttl: u32, contents: &[&str]) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: kind.into(),
        ttl,
        contents: contents.iter().map(ToString::to_string).collect(),
    }
    .normalized()
}

fn find<'a>(sets: &'a [RecordSet], name: &str, kind: &str) -> Option<&'a RecordSet> {
    sets.iter()
        .find(|s| s.name == name && s.record_type == kind)
}

/// dnspython's `dns_check.py` with the server and key of `bind`-like fields.
fn dns_check(
    args: &[&str],
    server: std::net::SocketAddr,
    key: &str,
    secret: &str,
    zone: &str,
) -> (bool, Value) {
    let out = Command::new(venv_python())
        .arg(shardlyn_tests::crate_path("support/dns_check.py"))
        .args(args)
        .args(["--server", &server.ip().to_string()])
        .args(["--port", &server.port().to_string()])
        .args(["--key", key, "--secret", secret, "--zone", zone])
        .output()
        .expect("the venv's python runs (scripts/dev-services installs dnspython)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "dns_check.py printed no JSON: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), value)
}

/// dnspython's AXFR of `zone` as record sets.
fn dnspython_axfr(bind: &Bind, zone: &str) -> Vec<RecordSet> {
    let (ok, v) = dns_check(&["axfr"], bind.addr, &bind.key_name, &bind.secret, zone);
    assert!(ok, "{v}");
    serde_json::from_value::<Vec<RecordSet>>(v["sets"].clone())
        .expect("record sets")
        .into_iter()
        .map(RecordSet::normalized)
        .collect()
}

fn sorted(mut sets: Vec<RecordSet>) -> Vec<RecordSet> {
    sets.sort_by(|a, b| (&a.name, &a.record_type).cmp(&(&b.name, &b.record_type)));
    sets
}

const LONG_TXT_LEN: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2136_bind_every_type_written_in_one_update_and_read_by_axfr() {
    let bind = Bind::start().await;
    let (client, calls) = bind_client(&bind);
    let zones = client.zones().await.expect("zones");
    assert_eq!(
        zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>(),
        vec!["shardlyn.test", "second.test", "locked.test"]
    );
    assert_eq!(calls.snapshot(), (0, 0, 0), "zones() asks no server");
    let z = zone("shardlyn.test");
    let long = "v=".to_owned() + &"x".repeat(LONG_TXT_LEN);
    let wanted = vec![
        set(
            "mc.shardlyn.test",
            "A",
            120,
            &["203.0.113.10", "203.0.113.11"],
        ),
        set("mc.shardlyn.test", "AAAA", 120, &["2001:db8::10"]),
        set("play.shardlyn.test", "CNAME", 300, &["mc.shardlyn.test"]),
        set(
            "_shardlyn-owner.mc.shardlyn.test",
            "TXT",
            300,
            &[
                "heritage=shardlyn,owner=p1,type=A",
                "heritage=shardlyn,owner=p1,type=AAAA",
            ],
        ),
        set(
            "note.shardlyn.test",
            "TXT",
            300,
            &["hello world, with spaces", &long],
        ),
        set(
            "_minecraft._tcp.mc.shardlyn.test",
            "SRV",
            60,
            &["0 5 25565 mc.shardlyn.test"],
        ),
    ];
    let changes: Vec<Change> = wanted.iter().cloned().map(Change::Upsert).collect();
    client.apply(&z, &changes).await.expect("one update");
    assert_eq!(calls.snapshot(), (0, 0, 1), "one UPDATE message");

    // dig sees what was written.
    assert_eq!(
        bind.dig("mc.shardlyn.test", "A"),
        vec!["203.0.113.10", "203.0.113.11"]
    );
    assert_eq!(bind.dig("mc.shardlyn.test", "AAAA"), vec!["2001:db8::10"]);
    assert_eq!(
        bind.dig("play.shardlyn.test", "CNAME"),
        vec!["mc.shardlyn.test."]
    );
    assert_eq!(
        bind.dig("_minecraft._tcp.mc.shardlyn.test", "SRV"),
        vec!["0 5 25565 mc.shardlyn.test."]
    );
    let note = bind.dig("note.shardlyn.test", "TXT");
    assert!(
        note.contains(&"\"hello world, with spaces\"".to_string()),
        "{note:?}"
    );
    assert!(
        note.iter()
            .any(|l| l.starts_with("\"v=xxx") && l.contains("\" \"")),
        "the 302-byte TXT is two strings: {note:?}"
    );

    // Our AXFR reads it back, one record list counted.
    let sets = client.records(&z).await.expect("records");
    assert_eq!(calls.snapshot(), (0, 1, 1));
    for w in &wanted {
        assert_eq!(find(&sets, &w.name, &w.record_type), Some(w), "{sets:#?}");
    }
    assert!(find(&sets, "shardlyn.test", "SOA").is_some(), "SOA kept");
    assert_eq!(
        find(&sets, "www.shardlyn.test", "A").map(|s| s.contents.clone()),
        Some(vec!["192.0.2.1".to_string()])
    );
    // ...and exactly what dnspython's independent AXFR reads.
    assert_eq!(sorted(sets), sorted(dnspython_axfr(&bind, "shardlyn.test")));

    // Replace (new contents and TTL), delete, in one more message.
    client
        .apply(
            &z,
            &[
                Change::Upsert(set("mc.shardlyn.test", "A", 60, &["198.51.100.7"])),
                Change::Delete {
                    name: "play.shardlyn.test".into(),
                    record_type: "CNAME".into(),
                },
                Change::Delete {
                    name: "note.shardlyn.test".into(),
                    record_type: "TXT".into(),
                },
                Change::Upsert(set(
                    "_minecraft._tcp.mc.shardlyn.test",
                    "SRV",
                    60,
                    &[
                        "0 5 25566 mc.shardlyn.test",
                        "10 5 25567 backup.shardlyn.test",
                    ],
                )),
                // Deleting what does not exist is no error.
                Change::Delete {
                    name: "nothing.shardlyn.test".into(),
                    record_type: "A".into(),
                },
            ],
        )
        .await
        .expect("second update");
    assert_eq!(calls.snapshot(), (0, 1, 2));
    assert_eq!(bind.dig("mc.shardlyn.test", "A"), vec!["198.51.100.7"]);
    assert_eq!(
        bind.dig("mc.shardlyn.test", "AAAA"),
        vec!["2001:db8::10"],
        "untouched"
    );
    assert!(bind.dig("play.shardlyn.test", "CNAME").is_empty());
    assert!(bind.dig("note.shardlyn.test", "TXT").is_empty());
    assert_eq!(
        bind.dig("_minecraft._tcp.mc.shardlyn.test", "SRV"),
        vec![
            "0 5 25566 mc.shardlyn.test.",
            "10 5 25567 backup.shardlyn.test."
        ]
    );
    let theirs = dnspython_axfr(&bind, "shardlyn.test");
    assert_eq!(
        find(&theirs, "mc.shardlyn.test", "A"),
        Some(&set("mc.shardlyn.test", "A", 60, &["198.51.100.7"]))
    );
    assert!(find(&theirs, "play.shardlyn.test", "CNAME").is_none());
    assert_eq!(
        sorted(client.records(&z).await.expect("records")),
        sorted(theirs)
    );

    // The second zone is untouched by all this.
    let second = client
        .records(&zone("second.test"))
        .await
        .expect("second zone");
    assert!(
        second.iter().all(|s| !s.name.starts_with("mc.")),
        "{second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2136_reads_what_dnspython_wrote() {
    let bind = Bind::start().await;
    let (ok, v) = dns_check(
        &[
            "update",
            "--replace",
            "_minecraft._tcp.srv.second.test",
            "SRV",
            "90",
            "5 10 19132 host.second.test",
            "--replace",
            "txt.second.test",
            "TXT",
            "120",
            "first string",
            "--replace",
            "txt.second.test",
            "TXT",
            "120",
            "second \"quoted\" string",
            "--replace",
            "v6.second.test",
            "AAAA",
            "90",
            "2001:db8:0:0::1",
            "--replace",
            "alias.second.test",
            "CNAME",
            "90",
            "www.second.test",
        ],
        bind.addr,
        &bind.key_name,
        &bind.secret,
        "second.test",
    );
    assert!(ok, "dnspython's update: {v}");
    let (client, _) = bind_client(&bind);
    let sets = client.records(&zone("second.test")).await.expect("records");
    assert_eq!(
        find(&sets, "_minecraft._tcp.srv.second.test", "SRV"),
        Some(&set(
            "_minecraft._tcp.srv.second.test",
            "SRV",
            90,
            &["5 10 19132 host.second.test"]
        ))
    );
    assert_eq!(
        find(&sets, "txt.second.test", "TXT"),
        Some(&set(
            "txt.second.test",
            "TXT",
            120,
            &["first string", "second \"quoted\" string"]
        ))
    );
    assert_eq!(
        find(&sets, "v6.second.test", "AAAA"),
        Some(&set("v6.second.test", "AAAA", 90, &["2001:db8::1"]))
    );
    assert_eq!(
        find(&sets, "alias.second.test", "CNAME"),
        Some(&set("alias.second.test", "CNAME", 90, &["www.second.test"]))
    );
    // And dnspython, told to delete, is seen by the next transfer.
    let (ok, v) = dns_check(
        &["update", "--delete", "txt.second.test", "TXT"],
        bind.addr,
        &bind.key_name,
        &bind.secret,
        "second.test",
    );
    assert!(ok, "{v}");
    let sets = client.records(&zone("second.test")).await.expect("records");
    assert!(find(&sets, "txt.second.test", "TXT").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2136_wrong_secret_is_refused_and_changes_nothing() {
    let bind = Bind::start().await;
    // A valid base64 secret of the right length, but not the server's.
    let wrong = "c2hhcmRseW4td3Jvbmctc2VjcmV0LTAxMjM0NTY3ODk=";
    assert_ne!(wrong, bind.secret);
    let (client, calls) = client_with(&parts(
        &bind.addr.to_string(),
        "shardlyn.test",
        &bind.key_name,
        wrong,
    ));
    let z = zone("shardlyn.test");
    let err = client
        .apply(
            &z,
            &[Change::Upsert(set(
                "evil.shardlyn.test",
                "A",
                60,
                &["192.0.2.66"],
            ))],
        )
        .await
        .expect_err("a wrong key is refused");
    let ProviderError::Refused {
        status, message, ..
    } = &err
    else {
        panic!("not Refused: {err:?}");
    };
    assert_eq!(*status, None);
    assert!(
        message.contains("NOTAUTH") && message.contains("BADSIG"),
        "{message}"
    );
    assert_eq!(
        calls.snapshot(),
        (0, 0, 1),
        "the refused write was still sent once"
    );
    assert!(
        bind.dig("evil.shardlyn.test", "A").is_empty(),
        "nothing written"
    );
    // The transfer is refused as well, naming the rcode.
    let err = client.records(&z).await.expect_err("AXFR with a wrong key");
    assert!(
        matches!(&err, ProviderError::Refused { message, .. } if message.contains("NOTAUTH")),
        "{err:?}"
    );
    // An unknown key name: BADKEY.
    let (client, _) = client_with(&parts(
        &bind.addr.to_string(),
        "shardlyn.test",
        "no-such-key",
        &bind.secret,
    ));
    let err = client
        .apply(
            &z,
            &[Change::Upsert(set(
                "evil.shardlyn.test",
                "A",
                60,
                &["192.0.2.66"],
            ))],
        )
        .await
        .expect_err("an unknown key is refused");
    assert!(
        matches!(&err, ProviderError::Refused { message, .. } if message.contains("NOTAUTH") && message.contains("BADKEY")),
        "{err:?}"
    );
    assert!(bind.dig("evil.shardlyn.test", "A").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2136_zone_without_update_rights_is_refused_and_others_are_no_zone() {
    let bind = Bind::start().await;
    let (client, _) = bind_client(&bind);
    let locked = zone(&bind.locked);
    let err = client
        .apply(
            &locked,
            &[Change::Upsert(set(
                "mc.locked.test",
                "A",
                60,
                &["192.0.2.5"],
            ))],
        )
        .await
        .expect_err("no update rights");
    assert!(
        matches!(&err, ProviderError::Refused { status: None, message, .. } if message.contains("REFUSED")),
        "{err:?}"
    );
    assert!(bind.dig("mc.locked.test", "A").is_empty());
    // It may still be read.
    let sets = client.records(&locked).await.expect("transfer allowed");
    assert!(find(&sets, "www.locked.test", "A").is_some(), "{sets:?}");
    // A zone the credential does not name: NoZone, without asking the server.
    let err = client
        .records(&zone("example.org"))
        .await
        .expect_err("not ours");
    assert!(matches!(err, ProviderError::NoZone { .. }), "{err:?}");
    // A name outside the zone is refused before anything is sent.
    let err = client
        .apply(
            &zone("shardlyn.test"),
            &[Change::Upsert(set(
                "mc.second.test",
                "A",
                60,
                &["192.0.2.5"],
            ))],
        )
        .await
        .expect_err("outside the zone");
    assert!(matches!(err, ProviderError::Refused { .. }), "{err:?}");
    assert!(bind.dig("mc.second.test", "A").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2136_stopped_server_and_blocked_address_are_unreachable() {
    let mut bind = Bind::start().await;
    let (client, _) = bind_client(&bind);
    client.records(&zone("shardlyn.test")).await.expect("up");
    bind.stop();
    let err = client
        .apply(
            &zone("shardlyn.test"),
            &[Change::Upsert(set(
                "mc.shardlyn.test",
                "A",
                60,
                &["192.0.2.5"],
            ))],
        )
        .await
        .expect_err("server down");
    assert!(matches!(err, ProviderError::Unreachable { .. }), "{err:?}");
    let err = client
        .records(&zone("shardlyn.test"))
        .await
        .expect_err("server down");
    assert!(matches!(err, ProviderError::Unreachable { .. }), "{err:?}");

    // Loopback not allowed by the outbound guard: nothing is sent.
    let bind = Bind::start().await;
    let (ctx, calls) = context(shardlyn_net::outbound::Outbound::default());
    let guarded = Client::new(
        ctx,
        &parts(
            &bind.addr.to_string(),
            "shardlyn.test",
            &bind.key_name,
            &bind.secret,
        ),
        &shardlyn_panel::config::Config::default(),
    )
    .expect("client");
    let err = guarded
        .records(&zone("shardlyn.test"))
        .await
        .expect_err("guarded");
    assert!(
        matches!(&err, ProviderError::Unreachable { message, .. } if message.contains("refusing")),
        "{err:?}"
    );
    assert_eq!(calls.snapshot(), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2136_updates_powerdns_too() {
    let pdns = shardlyn_tests::pdns::Pdns::start().await;
    pdns.create_zone("rfc.test").await;
    let secret = pdns.add_tsig_key("rfc-key").await;
    pdns.allow_tsig("rfc.test", "rfc-key").await;
    let (client, calls) = client_with(&parts(
        &pdns.dns_addr.to_string(),
        "rfc.test",
        "rfc-key",
        &secret,
    ));
    let z = zone("rfc.test");
    client
        .apply(
            &z,
            &[
                Change::Upsert(set("mc.rfc.test", "A", 120, &["203.0.113.20"])),
                Change::Upsert(set(
                    "_minecraft._tcp.mc.rfc.test",
                    "SRV",
                    120,
                    &["0 5 25565 mc.rfc.test"],
                )),
                Change::Upsert(set(
                    "_shardlyn-owner.mc.rfc.test",
                    "TXT",
                    120,
                    &["heritage=shardlyn,owner=p,type=A"],
                )),
            ],
        )
        .await
        .expect("PowerDNS takes the update");
    assert_eq!(pdns.dig("mc.rfc.test", "A"), vec!["203.0.113.20"]);
    assert_eq!(
        pdns.dig("_minecraft._tcp.mc.rfc.test", "SRV"),
        vec!["0 5 25565 mc.rfc.test."]
    );
    let sets = client
        .records(&z)
        .await
        .expect("PowerDNS transfers with TSIG");
    assert_eq!(
        find(&sets, "_shardlyn-owner.mc.rfc.test", "TXT"),
        Some(&set(
            "_shardlyn-owner.mc.rfc.test",
            "TXT",
            120,
            &["heritage=shardlyn,owner=p,type=A"]
        ))
    );
    assert_eq!(calls.snapshot(), (0, 1, 1));
    client
        .apply(
            &z,
            &[
                Change::Upsert(set(
                    "mc.rfc.test",
                    "A",
                    60,
                    &["203.0.113.21", "203.0.113.22"],
                )),
                Change::Delete {
                    name: "_minecraft._tcp.mc.rfc.test".into(),
                    record_type: "SRV".into(),
                },
            ],
        )
        .await
        .expect("replace and delete");
    assert_eq!(
        pdns.dig("mc.rfc.test", "A"),
        vec!["203.0.113.21", "203.0.113.22"]
    );
    assert!(pdns.dig("_minecraft._tcp.mc.rfc.test", "SRV").is_empty());
    // A wrong secret: PowerDNS refuses, nothing changes.
    let (bad, _) = client_with(&parts(
        &pdns.dns_addr.to_string(),
        "rfc.test",
        "rfc-key",
        "c2hhcmRseW4td3Jvbmctc2VjcmV0LTAxMjM0NTY3ODk=",
    ));
    let err = bad
        .apply(
            &z,
            &[Change::Upsert(set("mc.rfc.test", "A", 60, &["192.0.2.66"]))],
        )
        .await
        .expect_err("wrong key");
    // PowerDNS 4.7 answers a bad signature with REFUSED (BIND with NOTAUTH/BADSIG).
    assert!(
        matches!(&err, ProviderError::Refused { message, .. } if message.contains("REFUSED") || message.contains("NOTAUTH")),
        "{err:?}"
    );
    assert_eq!(
        pdns.dig("mc.rfc.test", "A"),
        vec!["203.0.113.21", "203.0.113.22"]
    );
}

async fn personal_org(app: &shardlyn_tests::TestApp, token: &str) -> String {
    let r = app.get("/v1/organizations", Some(token)).await.expect(200);
    r.body[0]["id"].as_str().expect("personal org").to_string()
}

shardlyn_tests::both_engines! {
    async fn rfc2136_credential_zones_and_records_through_the_api(engine) {
        let mut bind = Bind::start().await;
        let app = shardlyn_tests::spawn_app(engine).await;
        let owner = app.register("rfc2136@example.com").await;
        let t = Some(owner.access.as_str());
        let org = personal_org(&app, &owner.access).await;

        // Fields are checked, naming the field.
        for (change, field) in [
            (json!({"server": "not a host:53"}), "config.server"),
            (json!({"server": "127.0.0.1:70000"}), "config.server"),
            (json!({"zones": "ok.test, bad..zone"}), "config.zones"),
            (json!({"tsig_key_name": "two words"}), "config.tsig_key_name"),
            (json!({"tsig_algorithm": "hmac-md5"}), "config.tsig_algorithm"),
            (json!({"tsig_secret": "%%% not base64"}), "config.tsig_secret"),
        ] {
            let mut config = bind.credential_config();
            for (k, v) in change.as_object().expect("object") {
                config[k] = v.clone();
            }
            let r = app
                .post("/v1/credentials", t, json!({"organization_id": org, "name": "ns", "provider": "rfc2136", "config": config}))
                .await
                .expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{}", r.text);
        }

        // Created and verified (verify transfers the first zone with the key).
        let cred = app
            .post("/v1/credentials", t, json!({"organization_id": org, "name": "BIND", "provider": "rfc2136", "config": bind.credential_config()}))
            .await
            .expect(201)
            .body;
        assert!(!cred.to_string().contains(&bind.secret), "the secret is never answered: {cred}");
        let cid = cred["id"].as_str().expect("id").to_string();
        let v = app.post(&format!("/v1/credentials/{cid}/verify"), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| m.contains("shardlyn.test")), "{v}");

        // Zones: the credential's, with and without credential_id.
        let zones = app.get(&format!("/v1/dns/zones?credential_id={cid}"), t).await.expect(200).body;
        let names: Vec<&str> = zones["data"].as_array().expect("data").iter().filter_map(|z| z["name"].as_str()).collect();
        assert_eq!(names, vec!["shardlyn.test", "second.test", "locked.test"], "{zones}");
        assert_eq!(zones["data"][0]["provider"], "rfc2136");
        assert_eq!(zones["data"][0]["id"], "shardlyn.test");
        let all = app.get("/v1/dns/zones", t).await.expect(200).body;
        assert!(all["data"].as_array().is_some_and(|d| d.iter().any(|z| z["credential_id"] == cid.as_str())), "{all}");

        // Create an A record and an SRV record: written by UPDATE, seen by dig.
        let a = app
            .post("/v1/dns/records", t, json!({"credential_id": cid, "zone_id": "shardlyn.test", "type": "A", "name": "mc", "content": "203.0.113.5", "ttl": 120}))
            .await
            .expect(201)
            .body;
        assert_eq!(a["name"], "mc.shardlyn.test", "{a}");
        assert_eq!(a["provider"], "rfc2136");
        assert_eq!(a["status"], "synced", "{a}");
        assert_eq!(bind.dig("mc.shardlyn.test", "A"), vec!["203.0.113.5"]);
        let marker = bind.dig("_shardlyn-owner.mc.shardlyn.test", "TXT");
        assert!(marker.iter().any(|l| l.contains("heritage=shardlyn") && l.contains("type=A")), "{marker:?}");
        let srv = app
            .post("/v1/dns/records", t, json!({"credential_id": cid, "zone_id": "shardlyn.test", "type": "SRV", "name": "_minecraft._tcp.mc", "content": "0 5 25565 mc.shardlyn.test", "ttl": 120}))
            .await
            .expect(201)
            .body;
        assert_eq!(bind.dig("_minecraft._tcp.mc.shardlyn.test", "SRV"), vec!["0 5 25565 mc.shardlyn.test."]);

        // The zone as the server holds it: ours managed, the rest not; markers hidden.
        let zr = app.get(&format!("/v1/dns/zones/shardlyn.test/records?credential_id={cid}"), t).await.expect(200).body;
        let rows = zr["data"].as_array().expect("data");
        let row = |name: &str, kind: &str| rows.iter().find(|r| r["name"] == name && r["type"] == kind).cloned();
        assert_eq!(row("mc.shardlyn.test", "A").map(|r| r["managed"].clone()), Some(json!(true)), "{zr}");
        assert_eq!(row("mc.shardlyn.test", "A").map(|r| r["record_id"].clone()), Some(a["id"].clone()));
        assert_eq!(row("www.shardlyn.test", "A").map(|r| r["managed"].clone()), Some(json!(false)), "{zr}");
        assert!(rows.iter().all(|r| !r["name"].as_str().unwrap_or_default().starts_with("_shardlyn-owner.")), "{zr}");

        // A name the server holds and the panel did not make: 409, nothing written.
        app.post("/v1/dns/records", t, json!({"credential_id": cid, "zone_id": "shardlyn.test", "type": "A", "name": "www", "content": "198.51.100.1"}))
            .await
            .expect_error(409, "DNS_RECORD_CLASH");
        assert_eq!(bind.dig("www.shardlyn.test", "A"), vec!["192.0.2.1"]);
        app.post("/v1/dns/records", t, json!({"credential_id": cid, "zone_id": "shardlyn.test", "type": "A", "name": "mc", "content": "198.51.100.1"}))
            .await
            .expect_error(409, "DNS_RECORD_EXISTS");

        // Update the content and TTL.
        let aid = a["id"].as_str().expect("id").to_string();
        let up = app.put(&format!("/v1/dns/records/{aid}"), t, json!({"content": "203.0.113.6", "ttl": 300})).await.expect(200).body;
        assert_eq!(up["content"], "203.0.113.6", "{up}");
        assert_eq!(bind.dig("mc.shardlyn.test", "A"), vec!["203.0.113.6"]);

        // The zone the key may not write: the server's REFUSED, as a 502.
        let r = app
            .post("/v1/dns/records", t, json!({"credential_id": cid, "zone_id": "locked.test", "type": "A", "name": "mc", "content": "192.0.2.9"}))
            .await
            .expect_error(502, "DNS_PROVIDER_ERROR");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("REFUSED")), "{}", r.text);
        assert!(bind.dig("mc.locked.test", "A").is_empty());

        // Delete: the records and their markers go.
        app.delete(&format!("/v1/dns/records/{aid}"), t).await.expect(204);
        assert!(bind.dig("mc.shardlyn.test", "A").is_empty());
        let marker = bind.dig("_shardlyn-owner.mc.shardlyn.test", "TXT");
        assert!(!marker.iter().any(|l| l.contains("type=A")), "{marker:?}");
        app.get(&format!("/v1/dns/records/{aid}"), t).await.expect_error(404, "NOT_FOUND");
        assert_eq!(bind.dig("_minecraft._tcp.mc.shardlyn.test", "SRV"), vec!["0 5 25565 mc.shardlyn.test."], "the SRV stays");

        // A credential with the wrong secret: verify says so; writes are 502 naming the rcode.
        let mut wrong = bind.credential_config();
        wrong["tsig_secret"] = json!("c2hhcmRseW4td3Jvbmctc2VjcmV0LTAxMjM0NTY3ODk=");
        let bad = app
            .post("/v1/credentials", t, json!({"organization_id": org, "name": "BIND wrong", "provider": "rfc2136", "config": wrong}))
            .await
            .expect(201)
            .body;
        let bid = bad["id"].as_str().expect("id").to_string();
        let v = app.post(&format!("/v1/credentials/{bid}/verify"), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], false, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| m.contains("NOTAUTH")), "{v}");
        let r = app
            .post("/v1/dns/records", t, json!({"credential_id": bid, "zone_id": "shardlyn.test", "type": "A", "name": "evil", "content": "192.0.2.66"}))
            .await
            .expect_error(502, "DNS_PROVIDER_ERROR");
        let said = r.body["error"].as_str().unwrap_or_default();
        assert!(said.contains("NOTAUTH") && said.contains("BADSIG"), "{}", r.text);
        assert!(bind.dig("evil.shardlyn.test", "A").is_empty());

        // The server down: 502 DNS_PROVIDER_UNREACHABLE.
        bind.stop();
        app.delete(&format!("/v1/dns/records/{}", srv["id"].as_str().expect("id")), t)
            .await
            .expect_error(502, "DNS_PROVIDER_UNREACHABLE");
    }
}
