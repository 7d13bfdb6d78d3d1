//! The Cloudflare DNS provider (`panel/src/dns/cloudflare.rs`) against a local fake of
//! Cloudflare's API v4 (`shardlyn_tests::cloudflare`): Cloudflare cannot be reached
//! from the tests, so a fake stands in; `fake_cloudflare.rs` checks the fake's wire
//! format with Cloudflare's official SDK.
//!
//! First the provider itself (record sets of every type the panel writes, replacing,
//! deleting, paging, call counts, a provider down, a zone the token may not write),
//! then the `/v1/dns` API over a `cloudflare` credential, on both engines.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::credentials::providers::Parts;
use shardlyn_panel::dns::cloudflare::Client;
use shardlyn_panel::dns::provider::{Calls, Context};
use shardlyn_panel::dns::{Change, DnsProvider, ProviderError, RecordSet, Zone};
use shardlyn_tests::cloudflare::{ACCOUNT_ID, FakeCloudflare};

const TOKEN: &str = "cf-dns-token-0123456789abcdefghijklmnop";

fn client(fake: &FakeCloudflare, account_id: Option<&str>) -> (Client, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let ctx = Context {
        outbound: shardlyn_net::outbound::Outbound::new(shardlyn_tests::loopback_allow())
            .expect("allow list"),
        timeout: Duration::from_secs(5),
        calls: calls.clone(),
    };
    let mut config = shardlyn_panel::config::Config::default();
    config.cloud.cloudflare_api_url.clone_from(&fake.url);
    let mut parts = Parts::default();
    parts.secrets.insert("api_token".into(), json!(TOKEN));
    if let Some(account) = account_id {
        parts.public.insert("account_id".into(), json!(account));
    }
    (Client::new(ctx, &parts, &config).expect("client"), calls)
}

fn set(name: &str, kind: &str, ttl: u32, contents: &[&str]) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: kind.into(),
        ttl,
        contents: contents.iter().map(ToString::to_string).collect(),
    }
}

fn find<'a>(sets: &'a [RecordSet], name: &str, kind: &str) -> Option<&'a RecordSet> {
    sets.iter()
        .find(|s| s.name == name && s.record_type == kind)
}

async fn zone_named(client: &Client, name: &str) -> Zone {
    client
        .zones()
        .await
        .expect("zones")
        .into_iter()
        .find(|z| z.name == name)
        .expect("the zone is listed")
}

#[tokio::test]
async fn record_sets_of_every_type_round_trip_through_one_batch_each() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let id = fake.add_zone("example.com");
    fake.add_zone_in("elsewhere.org", "1111111111111111111111111111111a");
    let (cf, calls) = client(&fake, Some(ACCOUNT_ID));
    let zones = cf.zones().await.expect("zones");
    assert_eq!(
        zones,
        [Zone {
            id: id.clone(),
            name: "example.com".into()
        }],
        "account.id keeps the other account's zone out"
    );
    assert_eq!(calls.snapshot(), (1, 0, 0));
    let (all, _) = client(&fake, None);
    assert_eq!(all.zones().await.expect("zones").len(), 2);
    let zone = zones[0].clone();

    let wanted = [
        set(
            "mc.example.com",
            "A",
            300,
            &["203.0.113.10", "203.0.113.11"],
        ),
        set("mc.example.com", "AAAA", 300, &["2001:db8::10"]),
        set("www.example.com", "CNAME", 3600, &["mc.example.com"]),
        set(
            "_shardlyn-owner.mc.example.com",
            "TXT",
            300,
            &["heritage=shardlyn,owner=test,type=A", "say \"hi\""],
        ),
        set(
            "_minecraft._tcp.mc.example.com",
            "SRV",
            60,
            &["0 5 25565 mc.example.com"],
        ),
    ];
    for s in &wanted {
        let before = calls.snapshot();
        cf.apply(&zone, &[Change::Upsert(s.clone())])
            .await
            .expect("apply");
        let after = calls.snapshot();
        assert_eq!(
            (after.1 - before.1, after.2 - before.2),
            (1, 1),
            "one name lookup and one batch for {}",
            s.name
        );
    }
    let sets = cf.records(&zone).await.expect("records");
    for s in &wanted {
        assert_eq!(
            find(&sets, &s.name, &s.record_type),
            Some(&s.clone().normalized()),
            "{sets:#?}"
        );
    }
    // As Cloudflare holds them: not proxied, commented, SRV as data, TXT quoted.
    let records = fake.records(&id);
    assert_eq!(records.len(), 7);
    for r in &records {
        assert_eq!(r["proxied"], false, "{r}");
        assert_eq!(r["comment"], "Managed by Shardlyn", "{r}");
    }
    let srv = records.iter().find(|r| r["type"] == "SRV").expect("srv");
    assert_eq!(
        srv["data"],
        json!({"priority": 0, "weight": 5, "port": 25565, "target": "mc.example.com"})
    );
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "TXT" && r["content"] == "\"say \\\"hi\\\"\""),
        "{records:#?}"
    );

    // Records made by hand read back too: quoted or unquoted TXT, a proxied A.
    fake.add_record(
        &id,
        &json!({"type": "TXT", "name": "@", "content": "v=spf1 -all", "ttl": 1}),
    );
    fake.add_record(
        &id,
        &json!({"type": "TXT", "name": "q", "content": "\"part one \" \"part two\"", "ttl": 120}),
    );
    let sets = cf.records(&zone).await.expect("records");
    assert_eq!(
        find(&sets, "example.com", "TXT").map(|s| (s.ttl, s.contents.clone())),
        Some((1, vec!["v=spf1 -all".to_string()]))
    );
    assert_eq!(
        find(&sets, "q.example.com", "TXT").map(|s| s.contents.clone()),
        Some(vec!["part one part two".to_string()])
    );
}

#[tokio::test]
async fn an_upsert_replaces_only_what_changed_and_a_delete_removes_the_set() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let id = fake.add_zone("example.com");
    let (cf, calls) = client(&fake, None);
    let zone = zone_named(&cf, "example.com").await;
    cf.apply(
        &zone,
        &[Change::Upsert(set(
            "mc.example.com",
            "A",
            300,
            &["203.0.113.10", "203.0.113.11"],
        ))],
    )
    .await
    .expect("create");
    let id_of = |content: &str| {
        fake.records(&id)
            .into_iter()
            .find(|r| r["content"] == content)
            .map(|r| r["id"].as_str().expect("id").to_string())
    };
    let kept = id_of("203.0.113.10").expect("first");

    // Same TTL: the unchanged address keeps its record; the other is replaced.
    cf.apply(
        &zone,
        &[Change::Upsert(set(
            "mc.example.com",
            "A",
            300,
            &["203.0.113.10", "203.0.113.12"],
        ))],
    )
    .await
    .expect("replace");
    assert_eq!(id_of("203.0.113.10"), Some(kept.clone()));
    assert_eq!(id_of("203.0.113.11"), None);
    assert!(id_of("203.0.113.12").is_some());

    // Nothing to change: a lookup and no write.
    let before = calls.snapshot();
    cf.apply(
        &zone,
        &[Change::Upsert(set(
            "mc.example.com",
            "A",
            300,
            &["203.0.113.12", "203.0.113.10"],
        ))],
    )
    .await
    .expect("same");
    assert_eq!(calls.snapshot().2, before.2, "no batch was sent");

    // A new TTL rewrites the records.
    cf.apply(
        &zone,
        &[Change::Upsert(set(
            "mc.example.com",
            "A",
            600,
            &["203.0.113.10"],
        ))],
    )
    .await
    .expect("ttl");
    let records = fake.records(&id);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["ttl"], 600);
    assert_ne!(records[0]["id"], kept.as_str());

    // Delete removes the set and leaves the other types at the name.
    fake.add_record(
        &id,
        &json!({"type": "TXT", "name": "mc", "content": "by hand", "ttl": 300}),
    );
    cf.apply(
        &zone,
        &[Change::Delete {
            name: "mc.example.com".into(),
            record_type: "A".into(),
        }],
    )
    .await
    .expect("delete");
    let left: Vec<Value> = fake.records(&id);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["type"], "TXT");
    // Deleting what is not there is no error and sends no write.
    let before = calls.snapshot();
    cf.apply(
        &zone,
        &[Change::Delete {
            name: "gone.example.com".into(),
            record_type: "A".into(),
        }],
    )
    .await
    .expect("delete nothing");
    assert_eq!(calls.snapshot().2, before.2);
}

#[tokio::test]
async fn many_changes_list_the_zone_once_and_page_through_it() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let id = fake.add_zone("example.com");
    let (cf, calls) = client(&fake, None);
    let zone = zone_named(&cf, "example.com").await;

    // 150 names, 300 records: one zone list (not 150 lookups) and two batches (the
    // batch limit is 200 operations).
    let changes: Vec<Change> = (0..150)
        .map(|i| {
            Change::Upsert(set(
                &format!("s{i}.example.com"),
                "A",
                60,
                &[&format!("198.51.100.{}", i % 250), "192.0.2.1"],
            ))
        })
        .collect();
    let before = calls.snapshot();
    cf.apply(&zone, &changes).await.expect("apply");
    let after = calls.snapshot();
    assert_eq!((after.1 - before.1, after.2 - before.2), (1, 2));
    assert_eq!(fake.records(&id).len(), 300);

    // Cloudflare answering 100 a page: the records walk three pages, each counted.
    fake.cap_page(100);
    let before = calls.snapshot();
    let sets = cf.records(&zone).await.expect("records");
    assert_eq!(sets.len(), 150);
    assert!(sets.iter().all(|s| s.contents.len() == 2));
    assert_eq!(calls.snapshot().1 - before.1, 3);
    let pages = fake
        .requests()
        .into_iter()
        .filter(|(_, p)| p.contains("/dns_records?page=") && p.contains("per_page=5000000"))
        .count();
    assert!(pages >= 3, "asked for Cloudflare's largest page");

    // Replacing every set's second address: deletes first, so no identical-record clash.
    let changes: Vec<Change> = (0..150)
        .map(|i| {
            Change::Upsert(set(
                &format!("s{i}.example.com"),
                "A",
                60,
                &[&format!("198.51.100.{}", i % 250)],
            ))
        })
        .collect();
    cf.apply(&zone, &changes).await.expect("apply");
    assert_eq!(fake.records(&id).len(), 150);
}

#[tokio::test]
async fn a_provider_down_is_unreachable_and_a_denied_zone_is_refused_with_cloudflares_message() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let id = fake.add_zone("example.com");
    let (cf, _) = client(&fake, None);
    let zone = zone_named(&cf, "example.com").await;
    let change = [Change::Upsert(set(
        "mc.example.com",
        "A",
        300,
        &["203.0.113.10"],
    ))];

    fake.set_down(true);
    for e in [
        cf.zones().await.map(|_| ()).expect_err("down"),
        cf.records(&zone).await.map(|_| ()).expect_err("down"),
        cf.apply(&zone, &change).await.expect_err("down"),
    ] {
        assert!(matches!(e, ProviderError::Unreachable { .. }), "{e:?}");
    }
    fake.set_down(false);

    fake.deny_zone(&id);
    let e = cf.apply(&zone, &change).await.expect_err("denied");
    match &e {
        ProviderError::Refused {
            status, message, ..
        } => {
            assert_eq!(*status, Some(403));
            assert!(
                message.contains("Authentication error") && message.contains("10000"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.records(&id).is_empty(), "nothing was written");
    // Reading the denied zone still works.
    assert!(cf.records(&zone).await.expect("read").is_empty());

    // An unknown zone is NoZone; a refused record is Refused with Cloudflare's words.
    let missing = Zone {
        id: "ffffffffffffffffffffffffffffffff".into(),
        name: "missing.example".into(),
    };
    let e = cf.records(&missing).await.expect_err("no zone");
    assert!(matches!(e, ProviderError::NoZone { .. }), "{e:?}");
    let other = fake.add_zone("other.example.com");
    let other = Zone {
        id: other,
        name: "other.example.com".into(),
    };
    fake.add_record(
        &other.id,
        &json!({"type": "CNAME", "name": "www", "content": "example.com", "ttl": 300}),
    );
    let e = cf
        .apply(
            &other,
            &[Change::Upsert(set(
                "www.other.example.com",
                "A",
                300,
                &["192.0.2.1"],
            ))],
        )
        .await
        .expect_err("cname clash");
    assert!(
        e.to_string()
            .contains("An A, AAAA, or CNAME record with that host already exists"),
        "{e}"
    );
}

mod api {
    use serde_json::{Value, json};
    use shardlyn_tests::cloudflare::FakeCloudflare;
    use shardlyn_tests::{TestApp, both_engines, spawn_app_with};

    use super::TOKEN;

    async fn records(app: &TestApp, t: Option<&str>) -> Vec<Value> {
        let r = app.get("/v1/dns/records", t).await.expect(200);
        r.body["data"].as_array().expect("list").clone()
    }

    fn at<'a>(records: &'a [Value], name: &str, kind: &str) -> Vec<&'a Value> {
        records
            .iter()
            .filter(|r| r["name"] == name && r["type"] == kind)
            .collect()
    }

    both_engines! {
        async fn records_are_written_to_cloudflare_with_clashes_and_provider_faults_reported(engine) {
            let fake = FakeCloudflare::start(TOKEN).await;
            let zone = fake.add_zone("play.example.com");
            let url = fake.url.clone();
            let app = spawn_app_with(engine, move |c| c.cloud.cloudflare_api_url = url).await;
            let owner = app.register("dns-cf@example.com").await;
            let t = Some(owner.access.as_str());
            let org = app.get("/v1/organizations", t).await.expect(200).body[0]["id"]
                .as_str().expect("org").to_string();
            let cred = app.post("/v1/credentials", t, json!({"organization_id": org, "name": "CF",
                "provider": "cloudflare", "config": {"api_token": TOKEN}})).await.expect(201).body;
            let cred = cred["id"].as_str().expect("id").to_string();

            // Zones, from Cloudflare.
            let zones = app.get(&format!("/v1/dns/zones?credential_id={cred}"), t).await.expect(200).body;
            assert_eq!(zones["data"], json!([{"credential_id": cred, "provider": "cloudflare",
                "id": zone, "name": "play.example.com"}]), "{zones}");
            assert_eq!(zones["errors"], json!([]));

            // Create: at Cloudflare first (with the ownership marker), then recorded.
            let base = json!({"credential_id": cred, "zone_id": zone});
            let body = |extra: Value| {
                let mut b = base.clone();
                for (k, v) in extra.as_object().expect("object") {
                    b[k] = v.clone();
                }
                b
            };
            let bad = app.post("/v1/dns/records", t, body(json!({"type": "A", "name": "mc", "content": "not-an-ip"})))
                .await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(bad.body["field"], "content", "{}", bad.text);
            let a = app.post("/v1/dns/records", t, body(json!({"type": "A", "name": "mc",
                "content": "203.0.113.10", "ttl": 300}))).await.expect(201).body;
            assert_eq!(a["name"], "mc.play.example.com", "{a}");
            assert_eq!(a["provider"], "cloudflare");
            assert_eq!(a["zone_name"], "play.example.com");
            assert_eq!((a["status"].as_str(), a["origin"].as_str()), (Some("synced"), Some("manual")), "{a}");
            let a_id = a["id"].as_str().expect("id").to_string();
            let held = fake.records(&zone);
            let cf_a = at(&held, "mc.play.example.com", "A");
            assert_eq!(cf_a.len(), 1, "{held:#?}");
            assert_eq!((cf_a[0]["content"].as_str(), cf_a[0]["ttl"].as_u64()), (Some("203.0.113.10"), Some(300)));
            assert_eq!(cf_a[0]["proxied"], false);
            let marker = at(&held, "_shardlyn-owner.mc.play.example.com", "TXT");
            assert_eq!(marker.len(), 1, "{held:#?}");
            let text = marker[0]["content"].as_str().expect("text");
            assert!(text.contains("heritage=shardlyn") && text.contains("type=A"), "{text}");

            let srv = app.post("/v1/dns/records", t, body(json!({"type": "SRV", "name": "_minecraft._tcp.mc",
                "content": "0 5 25565 mc.play.example.com", "ttl": 60}))).await.expect(201).body;
            assert_eq!(srv["content"], "0 5 25565 mc.play.example.com", "{srv}");
            let held = fake.records(&zone);
            let cf_srv = at(&held, "_minecraft._tcp.mc.play.example.com", "SRV");
            assert_eq!(cf_srv.len(), 1, "{held:#?}");
            assert_eq!(cf_srv[0]["data"], json!({"priority": 0, "weight": 5, "port": 25565,
                "target": "mc.play.example.com"}));

            // The zone's records, read from Cloudflare, say which are ours.
            let listed = app.get(&format!("/v1/dns/zones/{zone}/records?credential_id={cred}"), t).await.expect(200).body;
            assert_eq!(listed["zone"], json!({"id": zone, "name": "play.example.com"}));
            let data = listed["data"].as_array().expect("data");
            let mine = at(data, "mc.play.example.com", "A");
            assert_eq!(mine.len(), 1, "{listed}");
            assert_eq!(mine[0]["managed"], true);
            assert_eq!(mine[0]["record_id"], a_id.as_str());
            assert_eq!(mine[0]["contents"], json!(["203.0.113.10"]));

            // Update: Cloudflare follows.
            let updated = app.put(&format!("/v1/dns/records/{a_id}"), t,
                json!({"content": "203.0.113.20", "ttl": 600})).await.expect(200).body;
            assert_eq!((updated["content"].as_str(), updated["ttl"].as_i64()), (Some("203.0.113.20"), Some(600)));
            let held = fake.records(&zone);
            let cf_a = at(&held, "mc.play.example.com", "A");
            assert_eq!(cf_a.len(), 1, "{held:#?}");
            assert_eq!((cf_a[0]["content"].as_str(), cf_a[0]["ttl"].as_u64()), (Some("203.0.113.20"), Some(600)));

            // A record made by hand at Cloudflare is not ours: 409, nothing written.
            fake.add_record(&zone, &json!({"type": "A", "name": "taken", "content": "192.0.2.1", "ttl": 300}));
            let before = fake.records(&zone);
            let r = app.post("/v1/dns/records", t, body(json!({"type": "A", "name": "taken", "content": "198.51.100.7"})))
                .await.expect_error(409, "DNS_RECORD_CLASH");
            assert!(r.body["error"].as_str().expect("error").contains("taken.play.example.com"), "{}", r.text);
            assert_eq!(fake.records(&zone), before, "Cloudflare is unchanged");
            assert!(at(&records(&app, t).await, "taken.play.example.com", "A").is_empty());
            // One we already manage: 409 DNS_RECORD_EXISTS.
            app.post("/v1/dns/records", t, body(json!({"type": "A", "name": "mc", "content": "198.51.100.8"})))
                .await.expect_error(409, "DNS_RECORD_EXISTS");

            // Delete: the record and its marker go.
            let r = app.delete(&format!("/v1/dns/records/{a_id}"), t).await;
            assert_eq!(r.status, 204, "{}", r.text);
            let held = fake.records(&zone);
            assert!(at(&held, "mc.play.example.com", "A").is_empty(), "{held:#?}");
            assert!(
                at(&held, "_shardlyn-owner.mc.play.example.com", "TXT")
                    .iter()
                    .all(|m| !m["content"].as_str().unwrap_or_default().contains("type=A")),
                "{held:#?}"
            );
            assert_eq!(at(&held, "_minecraft._tcp.mc.play.example.com", "SRV").len(), 1, "the SRV stays");
            let count = records(&app, t).await.len();
            assert_eq!(count, 1);

            // Cloudflare down: 502 DNS_PROVIDER_UNREACHABLE, nothing recorded.
            fake.set_down(true);
            let r = app.post("/v1/dns/records", t, body(json!({"type": "A", "name": "down", "content": "198.51.100.9"})))
                .await.expect_error(502, "DNS_PROVIDER_UNREACHABLE");
            assert!(r.body["error"].as_str().expect("error").contains("cloudflare"), "{}", r.text);
            fake.set_down(false);
            assert_eq!(records(&app, t).await.len(), count);
            let zones = app.get("/v1/dns/zones", t).await.expect(200).body;
            assert_eq!(zones["data"].as_array().map(Vec::len), Some(1), "up again: {zones}");

            // A zone the token may not write: 502 DNS_PROVIDER_ERROR with Cloudflare's words.
            fake.deny_zone(&zone);
            let before = fake.records(&zone);
            let r = app.post("/v1/dns/records", t, body(json!({"type": "A", "name": "denied", "content": "198.51.100.10"})))
                .await.expect_error(502, "DNS_PROVIDER_ERROR");
            assert!(r.body["error"].as_str().expect("error").contains("Authentication error"), "{}", r.text);
            assert_eq!(fake.records(&zone), before);
            assert_eq!(records(&app, t).await.len(), count);
        }
    }
}

#[tokio::test]
async fn a_zone_of_thousands_of_records_is_read_in_one_call() {
    let fake = FakeCloudflare::start(TOKEN).await;
    fake.add_zone("big.example.com");
    let (cf, calls) = client(&fake, None);
    let zone = zone_named(&cf, "big.example.com").await;
    let changes: Vec<Change> = (0..1000)
        .map(|i| {
            Change::Upsert(set(
                &format!("s{i}.big.example.com"),
                "A",
                60,
                &[&format!("10.0.{}.{}", i / 250, i % 250), "192.0.2.1"],
            ))
        })
        .collect();
    let started = std::time::Instant::now();
    cf.apply(&zone, &changes).await.expect("apply");
    let written = started.elapsed();
    let after_write = calls.snapshot();
    // 2,000 records: one zone list and ten batches of 200.
    assert_eq!((after_write.1, after_write.2), (1, 10));
    let started = std::time::Instant::now();
    let sets = cf.records(&zone).await.expect("records");
    let read = started.elapsed();
    assert_eq!(sets.len(), 1000);
    assert_eq!(calls.snapshot().1 - after_write.1, 1, "one list call");
    // Nothing to change: one list, no write.
    let started = std::time::Instant::now();
    cf.apply(&zone, &changes).await.expect("apply again");
    let unchanged = started.elapsed();
    assert_eq!(calls.snapshot().2, after_write.2);
    eprintln!(
        "cloudflare provider, 2,000 records: written in {written:?} (1 list, 10 batches), \
         read in {read:?} (1 call), unchanged apply in {unchanged:?} (1 list, 0 writes)"
    );
}
