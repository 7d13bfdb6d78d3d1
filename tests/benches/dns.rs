//! The DNS reconciler against a real PowerDNS: what one pass over many records costs.
//!
//! `cargo bench -p shardlyn-tests --bench dns` starts a private `pdns_server`
//! (tests/src/pdns.rs) and a panel (SQLite; `SHARDLYN_BENCH_DNS_ENGINE=postgres` for
//! PostgreSQL), writes `SHARDLYN_BENCH_DNS_RECORDS` (default 10,000) A record sets and
//! their ownership markers straight into one zone (PATCHes of 2,000 RRsets), inserts the
//! matching `dns_records` rows, and prints:
//! - the baseline: one raw `GET /api/v1/servers/localhost/zones/<zone>` of that zone
//!   (the least any check of the zone costs), median of 5, in the same run;
//! - the provider's share of a pass: the PowerDNS client's `records()` of the zone
//!   (that GET, parsed and converted to record sets), median of 5;
//! - `SHARDLYN_BENCH_DNS_PASSES` (default 5) clean passes of
//!   `dns::reconcile::pass`: time each, as a ratio to the baseline, and the provider
//!   calls each sent (zone lists, record lists, writes) from `state.dns_calls`; a pass
//!   must send a bounded number of calls, not one per record;
//! - one pass after drift made by hand at PowerDNS (1% of the sets deleted, 1% changed):
//!   what it repaired, in how many writes, and `dig` proving it.

use std::time::Instant;

use serde_json::{Value, json};
use shardlyn_panel::db::{new_id, now_ms};
use shardlyn_panel::dns::DnsProvider;
use shardlyn_panel::dns::owner;
use shardlyn_panel::dns::reconcile;
use shardlyn_panel::dns::store::{self, Record};
use shardlyn_tests::bench::{env_or, percentile};
use shardlyn_tests::pdns::Pdns;
use shardlyn_tests::{Engine, spawn_app_with};

const ZONE: &str = "bench.test";
/// RRsets per PATCH when filling the zone.
const PATCH_SETS: usize = 2_000;

fn address(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

fn name(i: usize) -> String {
    format!("s{i:05}.{ZONE}")
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let began = Instant::now();
    let n = usize::try_from(env_or("SHARDLYN_BENCH_DNS_RECORDS", 10_000)).expect("records");
    let passes = env_or("SHARDLYN_BENCH_DNS_PASSES", 5);
    let engine = match std::env::var("SHARDLYN_BENCH_DNS_ENGINE").as_deref() {
        Ok("postgres") => Engine::Postgres,
        _ => Engine::Sqlite,
    };

    let pdns = Pdns::start().await;
    pdns.create_zone(ZONE).await;
    // No background pass during the measured ones.
    let app = spawn_app_with(engine, |c| c.dns.reconcile_interval_secs = 86_400).await;
    let user = app.register("dns-bench@example.com").await;
    let t = Some(user.access.as_str());
    let org = app.get("/v1/organizations", t).await.expect(200).body[0]["id"]
        .as_str()
        .expect("org")
        .to_string();
    let cred = app
        .post(
            "/v1/credentials",
            t,
            json!({"organization_id": org, "name": "bench", "provider": "powerdns",
                   "config": {"api_url": pdns.api_url, "api_key": pdns.api_key}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("credential id")
        .to_string();
    let me = owner::owner(&app.state.config.dns.owner_id, &org);
    let marker = format!("\"{}\"", owner::marker_value(&me, "A"));

    // The zone: n A sets and n marker sets.
    let filled = Instant::now();
    let mut rrsets = Vec::with_capacity(2 * n);
    for i in 0..n {
        rrsets.push(
            json!({"name": format!("{}.", name(i)), "type": "A", "ttl": 300,
            "changetype": "REPLACE", "records": [{"content": address(i), "disabled": false}]}),
        );
        rrsets.push(json!({"name": format!("{}.{}.", owner::PREFIX, name(i)), "type": "TXT",
            "ttl": 300, "changetype": "REPLACE", "records": [{"content": marker, "disabled": false}]}));
    }
    for chunk in rrsets.chunks(PATCH_SETS) {
        pdns.patch(ZONE, &json!({ "rrsets": chunk })).await;
    }
    println!(
        "PowerDNS filled with {} RRsets in {:.0} ms ({} PATCHes)",
        rrsets.len(),
        ms(filled.elapsed()),
        rrsets.len().div_ceil(PATCH_SETS)
    );

    // The panel's rows for them.
    let inserted = Instant::now();
    let now = now_ms();
    let mut tx = app.state.db.pool.begin().await.expect("transaction");
    for i in 0..n {
        let r = Record {
            id: new_id(),
            org_id: org.clone(),
            credential_id: cred.clone(),
            zone_id: format!("{ZONE}."),
            zone_name: ZONE.into(),
            record_type: "A".into(),
            name: name(i),
            content: address(i),
            ttl: 300,
            node_id: None,
            instance_id: None,
            origin: "manual".into(),
            status: "synced".into(),
            last_error: None,
            checked_at: Some(now),
            created_by: Some(user.user_id.clone()),
            created_at: now,
            updated_at: now,
        };
        store::insert(&mut *tx, &r).await.expect("insert record");
    }
    tx.commit().await.expect("commit");
    println!(
        "{n} dns_records rows inserted in {:.0} ms ({engine:?})",
        ms(inserted.elapsed())
    );

    // Baseline: one raw read of the zone.
    let mut base = Vec::new();
    for _ in 0..5 {
        let at = Instant::now();
        let (status, zone): (u16, Value) = pdns
            .api(reqwest::Method::GET, &format!("/zones/{ZONE}."), None)
            .await;
        base.push(ms(at.elapsed()));
        assert_eq!(status, 200);
        assert_eq!(zone["rrsets"].as_array().map(Vec::len), Some(2 * n + 3));
    }
    base.sort_by(f64::total_cmp);
    let baseline = percentile(&base, 0.5);
    println!(
        "baseline: one GET of the zone ({} RRsets): {baseline:.1} ms (median of 5)",
        2 * n + 3
    );

    // The provider's part of a pass: the client's one read of the zone, parsed and
    // converted to record sets.
    let mut parts = shardlyn_panel::credentials::providers::Parts::default();
    parts
        .public
        .insert("api_url".into(), pdns.api_url.clone().into());
    parts
        .secrets
        .insert("api_key".into(), pdns.api_key.clone().into());
    let client = shardlyn_panel::dns::client(&app.state, "powerdns", &parts).expect("client");
    let zone = shardlyn_panel::dns::Zone {
        id: format!("{ZONE}."),
        name: ZONE.into(),
    };
    let mut reads = Vec::new();
    for _ in 0..5 {
        let at = Instant::now();
        let sets = client.records(&zone).await.expect("records");
        reads.push(ms(at.elapsed()));
        assert_eq!(sets.len(), 2 * n + 3);
    }
    reads.sort_by(f64::total_cmp);
    let read = percentile(&reads, 0.5);
    println!(
        "client read of the zone (records()): {read:.1} ms = {:.1} x baseline (median of 5)",
        read / baseline
    );

    // Clean passes.
    let mut times = Vec::new();
    println!(
        "pass   time ms   x baseline   zone lists   record lists   writes   records repaired failed"
    );
    for p in 1..=passes {
        let before = app.state.dns_calls.snapshot();
        let at = Instant::now();
        let report = reconcile::pass(&app.state).await;
        let took = ms(at.elapsed());
        let after = app.state.dns_calls.snapshot();
        println!(
            "{p:>4} {took:>9.1} {:>12.1} {:>12} {:>14} {:>8} {:>9} {:>8} {:>6}",
            took / baseline,
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2,
            report.records,
            report.repaired,
            report.failed,
        );
        assert_eq!(report.records, n, "every record compared: {report:?}");
        assert_eq!(
            (report.repaired, report.failed),
            (0, 0),
            "a clean zone: {report:?}"
        );
        assert_eq!(after.2 - before.2, 0, "nothing written in a clean pass");
        times.push(took);
    }
    times.sort_by(f64::total_cmp);
    let median = percentile(&times, 0.5);
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let per_record = median * 1000.0 / n as f64;
    println!(
        "clean pass: median {median:.1} ms = {:.1} x baseline, {per_record:.1} us per record",
        median / baseline
    );

    // Drift made by hand: 1% deleted, 1% changed.
    let hit = (n / 100).max(1);
    let mut drift = Vec::new();
    for i in 0..hit {
        drift.push(json!({"name": format!("{}.", name(i)), "type": "A", "changetype": "DELETE"}));
        drift.push(
            json!({"name": format!("{}.", name(n - 1 - i)), "type": "A", "ttl": 300,
            "changetype": "REPLACE", "records": [{"content": "192.0.2.1", "disabled": false}]}),
        );
    }
    pdns.patch(ZONE, &json!({ "rrsets": drift })).await;
    let before = app.state.dns_calls.snapshot();
    let at = Instant::now();
    let report = reconcile::pass(&app.state).await;
    let took = ms(at.elapsed());
    let after = app.state.dns_calls.snapshot();
    println!(
        "drift pass ({hit} deleted, {hit} changed at PowerDNS): {took:.1} ms = {:.1} x baseline; \
         {} record lists, {} writes; repaired {}, failed {}",
        took / baseline,
        after.1 - before.1,
        after.2 - before.2,
        report.repaired,
        report.failed
    );
    assert_eq!(
        pdns.dig(&name(0), "A"),
        [address(0)],
        "deleted set written again"
    );
    assert_eq!(
        pdns.dig(&name(n - 1), "A"),
        [address(n - 1)],
        "changed set put back"
    );
    assert_eq!(report.repaired, 2 * hit, "{report:?}");
    let drifted: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM dns_records WHERE status = 'drifted'")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
    println!("rows marked drifted: {drifted}");

    let at = Instant::now();
    let report = reconcile::pass(&app.state).await;
    println!(
        "pass after the repair: {:.1} ms, repaired {}, failed {}",
        ms(at.elapsed()),
        report.repaired,
        report.failed
    );
    println!("(whole bench {:.0} s)", began.elapsed().as_secs_f64());
}
