//! PowerDNS: the provider client against a real `pdns_server` (tests/src/pdns.rs),
//! every write checked with `dig` against the server's DNS port, and the `/v1/dns` API
//! over a PowerDNS credential (both engines).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::credentials::providers::Parts;
use shardlyn_panel::dns::provider::{Calls, Context};
use shardlyn_panel::dns::{Change, DnsProvider, ProviderError, RecordSet, Zone, powerdns};
use shardlyn_tests::pdns::Pdns;
use shardlyn_tests::{TestApp, both_engines, loopback_allow, spawn_app};

fn parts(pdns: &Pdns, key: &str) -> Parts {
    let mut p = Parts::default();
    p.public
        .insert("api_url".into(), pdns.api_url.clone().into());
    p.secrets.insert("api_key".into(), key.into());
    p
}

/// A client of `pdns` with `key`, through an outbound guard allowing `allow`.
fn client(pdns: &Pdns, key: &str, allow: Vec<String>) -> (powerdns::Client, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let ctx = Context {
        outbound: shardlyn_net::outbound::Outbound::new(allow).expect("allow list"),
        timeout: Duration::from_secs(10),
        calls: Arc::clone(&calls),
    };
    let config = shardlyn_panel::config::Config::default();
    let c = powerdns::Client::new(ctx, &parts(pdns, key), &config).expect("client");
    (c, calls)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdns_harness_serves_zone_and_tsig() {
    let pdns = Pdns::start().await;
    pdns.create_zone("harness.test").await;
    assert_eq!(pdns.dig("harness.test", "NS"), ["ns1.harness.test."]);
    pdns.replace(
        "harness.test",
        &[("www.harness.test", "A", 60, vec!["192.0.2.7".into()])],
    )
    .await;
    assert_eq!(pdns.dig("www.harness.test", "A"), ["192.0.2.7"]);
    let secret = pdns.add_tsig_key("harness-key").await;
    assert!(secret.len() >= 40, "{secret}");
    pdns.allow_tsig("harness.test", "harness-key").await;
    let sets = pdns.rrsets("harness.test").await;
    assert!(
        sets.as_array().is_some_and(|a| a
            .iter()
            .any(|s| s["name"] == "www.harness.test." && s["type"] == "A")),
        "{sets}"
    );
    let (status, meta) = pdns
        .api(reqwest::Method::GET, "/zones/harness.test./metadata", None)
        .await;
    assert_eq!(status, 200);
    for kind in ["TSIG-ALLOW-DNSUPDATE", "TSIG-ALLOW-AXFR"] {
        assert!(
            meta.as_array().is_some_and(|m| m
                .iter()
                .any(|e| e["kind"] == kind && e["metadata"] == json!(["harness-key"]))),
            "{kind} missing: {meta}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powerdns_client_writes_every_type_and_dig_sees_it() {
    let pdns = Pdns::start().await;
    pdns.create_zone("pdns.test").await;
    pdns.create_zone("other.test").await;
    let (c, calls) = client(&pdns, &pdns.api_key, loopback_allow());

    let zones = c.zones().await.expect("zones");
    assert_eq!(
        zones,
        [
            Zone {
                id: "other.test.".into(),
                name: "other.test".into()
            },
            Zone {
                id: "pdns.test.".into(),
                name: "pdns.test".into()
            },
        ]
    );
    let zone = zones[1].clone();

    let long = format!("{}-end", "x".repeat(300));
    let txt = "say \"hi\" \\ o'clock; caf\u{e9}";
    let wanted = [
        set("mc.pdns.test", "A", 120, &["192.0.2.10", "192.0.2.11"]),
        set("mc.pdns.test", "AAAA", 120, &["2001:db8::10"]),
        set("www.pdns.test", "CNAME", 300, &["mc.pdns.test"]),
        set("note.pdns.test", "TXT", 300, &[txt, &long]),
        set(
            "_minecraft._tcp.mc.pdns.test",
            "SRV",
            60,
            &["0 5 25565 mc.pdns.test"],
        ),
    ];
    let changes: Vec<Change> = wanted.iter().cloned().map(Change::Upsert).collect();
    c.apply(&zone, &changes).await.expect("apply");
    // One PATCH for all five sets.
    assert_eq!(calls.snapshot(), (1, 0, 1));

    assert_eq!(pdns.dig("mc.pdns.test", "A"), ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(pdns.dig("mc.pdns.test", "AAAA"), ["2001:db8::10"]);
    // dig follows the CNAME: its target, then the target's addresses.
    assert_eq!(pdns.dig("www.pdns.test", "CNAME"), ["mc.pdns.test."]);
    assert_eq!(
        pdns.dig("_minecraft._tcp.mc.pdns.test", "SRV"),
        ["0 5 25565 mc.pdns.test."]
    );
    let answered = pdns.dig("note.pdns.test", "TXT");
    assert_eq!(answered.len(), 2, "{answered:?}");
    assert!(
        answered.contains(&r#""say \"hi\" \\ o'clock; caf\195\169""#.to_string()),
        "{answered:?}"
    );
    // 304 bytes: two character-strings.
    assert!(
        answered
            .iter()
            .any(|l| l.starts_with("\"xxx") && l.contains("\" \"") && l.ends_with("-end\"")),
        "{answered:?}"
    );

    // Read back in the panel's form, SOA and NS included: one call.
    let sets = c.records(&zone).await.expect("records");
    assert_eq!(calls.snapshot(), (1, 1, 1));
    for w in &wanted {
        assert!(sets.contains(w), "{w:?} not in {sets:#?}");
    }
    assert!(
        sets.iter()
            .any(|s| s.name == "pdns.test" && s.record_type == "SOA")
    );
    assert!(
        sets.contains(&set("pdns.test", "NS", 3600, &["ns1.pdns.test"])),
        "{sets:#?}"
    );

    // Replace one set, delete two, in one PATCH; the other zone is untouched.
    c.apply(
        &zone,
        &[
            Change::Upsert(set("mc.pdns.test", "A", 60, &["198.51.100.1"])),
            Change::Delete {
                name: "mc.pdns.test".into(),
                record_type: "AAAA".into(),
            },
            Change::Delete {
                name: "note.pdns.test".into(),
                record_type: "TXT".into(),
            },
            // Deleting what is not there is no error.
            Change::Delete {
                name: "absent.pdns.test".into(),
                record_type: "A".into(),
            },
        ],
    )
    .await
    .expect("second apply");
    assert_eq!(calls.snapshot(), (1, 1, 2));
    assert_eq!(pdns.dig("mc.pdns.test", "A"), ["198.51.100.1"]);
    assert!(pdns.dig("mc.pdns.test", "AAAA").is_empty());
    assert!(pdns.dig("note.pdns.test", "TXT").is_empty());
    let sets = c.records(&zone).await.expect("records");
    assert!(sets.contains(&set("mc.pdns.test", "A", 60, &["198.51.100.1"])));
    assert!(!sets.iter().any(|s| s.name == "note.pdns.test"));

    // Content PowerDNS cannot parse: refused with its words, nothing written.
    let e = c
        .apply(
            &zone,
            &[
                Change::Upsert(set("ok.pdns.test", "A", 60, &["192.0.2.99"])),
                Change::Upsert(set("bad.pdns.test", "A", 60, &["999.1.1.1"])),
            ],
        )
        .await
        .expect_err("bad address");
    match &e {
        ProviderError::Refused {
            status: Some(422),
            message,
            ..
        } => {
            assert!(message.contains("999.1.1.1"), "{message}");
        }
        other => panic!("expected a 422 refusal, got {other:?}"),
    }
    assert!(
        pdns.dig("ok.pdns.test", "A").is_empty(),
        "a PATCH is all or nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powerdns_client_errors() {
    let mut pdns = Pdns::start().await;
    pdns.create_zone("err.test").await;

    // A wrong key: PowerDNS' answer.
    let (bad, _) = client(&pdns, "not-the-key", loopback_allow());
    match bad.zones().await {
        Err(ProviderError::Refused {
            status: Some(401),
            message,
            ..
        }) => {
            assert_eq!(message, "Unauthorized");
        }
        other => panic!("expected 401, got {other:?}"),
    }

    // An unknown zone, read or written.
    let (c, calls) = client(&pdns, &pdns.api_key, loopback_allow());
    let nowhere = Zone {
        id: "nowhere.test.".into(),
        name: "nowhere.test".into(),
    };
    assert!(
        matches!(c.records(&nowhere).await, Err(ProviderError::NoZone { ref zone, .. }) if zone == "nowhere.test"),
    );
    let delete = [Change::Delete {
        name: "a.nowhere.test".into(),
        record_type: "A".into(),
    }];
    assert!(matches!(
        c.apply(&nowhere, &delete).await,
        Err(ProviderError::NoZone { .. })
    ));
    // A zone id with slashes stays one path segment: PowerDNS reads it as a zone name.
    let odd = Zone {
        id: "../../zones".into(),
        name: "odd".into(),
    };
    match c.records(&odd).await {
        Err(ProviderError::Refused {
            status: Some(422),
            message,
            ..
        }) => {
            assert!(message.contains("'../../zones'"), "{message}");
        }
        other => panic!("expected PowerDNS to refuse the name, got {other:?}"),
    }
    // Failed calls are counted too.
    assert_eq!(calls.snapshot(), (0, 2, 1));

    // The outbound guard without loopback allowed: unreachable, nothing sent.
    let (guarded, calls) = client(&pdns, &pdns.api_key, Vec::new());
    match guarded.zones().await {
        Err(ProviderError::Unreachable { message, .. }) => {
            assert!(message.contains("refused"), "{message}");
        }
        other => panic!("expected the guard to refuse, got {other:?}"),
    }
    assert_eq!(calls.snapshot(), (1, 0, 0));

    // A stopped server.
    pdns.stop();
    assert!(matches!(
        c.zones().await,
        Err(ProviderError::Unreachable { .. })
    ));
    let zone = Zone {
        id: "err.test.".into(),
        name: "err.test".into(),
    };
    assert!(matches!(
        c.apply(&zone, &delete).await,
        Err(ProviderError::Unreachable { .. })
    ));
}

async fn personal_org(app: &TestApp, token: &str) -> String {
    let r = app.get("/v1/organizations", Some(token)).await.expect(200);
    r.body[0]["id"].as_str().expect("personal org").to_string()
}

/// A PowerDNS credential of `org`; its id.
async fn credential(app: &TestApp, token: &str, org: &str, pdns: &Pdns, key: &str) -> String {
    let r = app
        .post(
            "/v1/credentials",
            Some(token),
            json!({"organization_id": org, "name": format!("pdns {key}"), "provider": "powerdns",
                   "config": {"api_url": pdns.api_url, "api_key": key}}),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("id").to_string()
}

fn marker_lines(pdns: &Pdns, name: &str) -> Vec<String> {
    pdns.dig(&format!("_shardlyn-owner.{name}"), "TXT")
}

both_engines! {
    async fn powerdns_credentials_are_checked_and_verified(engine) {
        let pdns = Pdns::start().await;
        pdns.create_zone("verify.test").await;
        let app = spawn_app(engine).await;
        let owner = app.register("pdns-verify@example.com").await;
        let t = Some(owner.access.as_str());
        let org = personal_org(&app, &owner.access).await;

        for (config, field) in [
            (json!({"api_url": "ftp://ns1.example.net", "api_key": "k"}), "config.api_url"),
            (json!({"api_url": "ns1.example.net:8081", "api_key": "k"}), "config.api_url"),
            (json!({"api_url": "http://ns1.example.net", "api_key": "k", "server_id": "a/b"}), "config.server_id"),
            (json!({"api_url": "http://ns1.example.net"}), "config.api_key"),
        ] {
            let r = app.post("/v1/credentials", t, json!({"organization_id": org, "name": "p",
                "provider": "powerdns", "config": config})).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{config}: {}", r.body);
        }

        let good = credential(&app, &owner.access, &org, &pdns, &pdns.api_key).await;
        let v = app.post(&format!("/v1/credentials/{good}/verify"), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| m.contains("1 zone")), "{v}");

        let bad = credential(&app, &owner.access, &org, &pdns, "wrong-key").await;
        let v = app.post(&format!("/v1/credentials/{bad}/verify"), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["status"], 401, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| m.contains("Unauthorized")), "{v}");

        // Zones of every DNS credential: the good one's zone, the bad one's error.
        let z = app.get("/v1/dns/zones", t).await.expect(200).body;
        assert_eq!(z["data"], json!([{"credential_id": good, "provider": "powerdns",
            "id": "verify.test.", "name": "verify.test"}]), "{z}");
        let errors = z["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{z}");
        assert_eq!(errors[0]["credential_id"], bad.as_str());
        assert!(errors[0]["message"].as_str().is_some_and(|m| m.contains("Unauthorized")), "{z}");
    }

    async fn powerdns_records_through_the_api(engine) {
        let pdns = Pdns::start().await;
        pdns.create_zone("api.test").await;
        let app = spawn_app(engine).await;
        let owner = app.register("pdns-api@example.com").await;
        let other = app.register("pdns-other@example.com").await;
        let t = Some(owner.access.as_str());
        let o = Some(other.access.as_str());
        let org = personal_org(&app, &owner.access).await;
        let cred = credential(&app, &owner.access, &org, &pdns, &pdns.api_key).await;

        let z = app.get(&format!("/v1/dns/zones?credential_id={cred}"), t).await.expect(200).body;
        assert_eq!(z["data"][0]["id"], "api.test.", "{z}");

        // A record, then its SRV.
        let a = app.post("/v1/dns/records", t, json!({"credential_id": cred, "zone_id": "api.test.",
            "type": "A", "name": "mc", "content": "192.0.2.10", "ttl": 120})).await.expect(201).body;
        assert_eq!(a["name"], "mc.api.test", "{a}");
        assert_eq!(a["status"], "synced", "{a}");
        assert_eq!(a["origin"], "manual");
        assert_eq!(a["provider"], "powerdns");
        assert_eq!(pdns.dig("mc.api.test", "A"), ["192.0.2.10"]);
        let markers = marker_lines(&pdns, "mc.api.test");
        assert_eq!(markers.len(), 1, "{markers:?}");
        assert!(markers[0].contains("heritage=shardlyn") && markers[0].contains("type=A"), "{markers:?}");
        let a_id = a["id"].as_str().expect("id").to_string();

        let srv = app.post("/v1/dns/records", t, json!({"credential_id": cred, "zone_id": "api.test.",
            "type": "SRV", "name": "_minecraft._tcp.mc.api.test", "content": "0 5 25565 mc.api.test",
            "ttl": 60})).await.expect(201).body;
        assert_eq!(pdns.dig("_minecraft._tcp.mc.api.test", "SRV"), ["0 5 25565 mc.api.test."]);
        assert_eq!(srv["content"], "0 5 25565 mc.api.test", "{srv}");

        // Validation names the field; PowerDNS untouched.
        let r = app.post("/v1/dns/records", t, json!({"credential_id": cred, "zone_id": "api.test.",
            "type": "A", "name": "x", "content": "not-an-address"})).await
            .expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "content", "{}", r.body);
        assert!(pdns.dig("x.api.test", "A").is_empty());

        // Ours already.
        app.post("/v1/dns/records", t, json!({"credential_id": cred, "zone_id": "api.test.",
            "type": "A", "name": "mc", "content": "192.0.2.20"})).await
            .expect_error(409, "DNS_RECORD_EXISTS");
        assert_eq!(pdns.dig("mc.api.test", "A"), ["192.0.2.10"]);

        // Someone else's set at PowerDNS: refused, nothing written.
        pdns.replace("api.test", &[("taken.api.test", "A", 300, vec!["203.0.113.5".into()])]).await;
        let before = pdns.rrsets("api.test").await;
        let r = app.post("/v1/dns/records", t, json!({"credential_id": cred, "zone_id": "api.test.",
            "type": "A", "name": "taken", "content": "192.0.2.30"})).await
            .expect_error(409, "DNS_RECORD_CLASH");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("taken.api.test")), "{}", r.body);
        assert_eq!(pdns.rrsets("api.test").await, before);
        assert_eq!(pdns.dig("taken.api.test", "A"), ["203.0.113.5"]);
        assert!(marker_lines(&pdns, "taken.api.test").is_empty());

        // The zone as PowerDNS holds it, ours marked.
        let zr = app.get(&format!("/v1/dns/zones/api.test./records?credential_id={cred}"), t)
            .await.expect(200).body;
        let managed = |name: &str, kind: &str| -> Value {
            zr["data"].as_array().expect("data").iter()
                .find(|s| s["name"] == name && s["type"] == kind)
                .map_or(Value::Null, |s| s["managed"].clone())
        };
        assert_eq!(managed("mc.api.test", "A"), true, "{zr}");
        assert_eq!(managed("taken.api.test", "A"), false, "{zr}");
        assert_eq!(managed("api.test", "SOA"), false, "{zr}");

        // Update: the new address resolves, the TTL follows.
        let u = app.put(&format!("/v1/dns/records/{a_id}"), t, json!({"content": "198.51.100.7", "ttl": 300}))
            .await.expect(200).body;
        assert_eq!(u["content"], "198.51.100.7", "{u}");
        assert_eq!(pdns.dig("mc.api.test", "A"), ["198.51.100.7"]);
        let sets = pdns.rrsets("api.test").await;
        assert!(sets.as_array().expect("rrsets").iter()
            .any(|s| s["name"] == "mc.api.test." && s["type"] == "A" && s["ttl"] == 300), "{sets}");

        // Another organization sees none of it.
        app.get(&format!("/v1/dns/records/{a_id}"), o).await.expect_error(404, "NOT_FOUND");
        app.put(&format!("/v1/dns/records/{a_id}"), o, json!({"content": "192.0.2.66"})).await
            .expect_error(404, "NOT_FOUND");
        app.delete(&format!("/v1/dns/records/{a_id}"), o).await.expect_error(404, "NOT_FOUND");
        assert_eq!(pdns.dig("mc.api.test", "A"), ["198.51.100.7"]);
        let theirs = app.get("/v1/dns/records", o).await.expect(200).body;
        assert_eq!(theirs["data"], json!([]), "{theirs}");
        let ours = app.get(&format!("/v1/dns/records?credential_id={cred}"), t).await.expect(200).body;
        assert_eq!(ours["data"].as_array().map(Vec::len), Some(2), "{ours}");

        // Delete: the A set goes, its marker value goes, the SRV stays.
        app.delete(&format!("/v1/dns/records/{a_id}"), t).await.expect(204);
        assert!(pdns.dig("mc.api.test", "A").is_empty());
        assert!(marker_lines(&pdns, "mc.api.test").is_empty(), "{:?}", marker_lines(&pdns, "mc.api.test"));
        assert_eq!(pdns.dig("_minecraft._tcp.mc.api.test", "SRV"), ["0 5 25565 mc.api.test."]);
        app.get(&format!("/v1/dns/records/{a_id}"), t).await.expect_error(404, "NOT_FOUND");
    }
}
