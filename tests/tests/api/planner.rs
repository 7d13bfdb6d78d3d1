//! The planner (`/v1/planner/*`): suggest-fit picks the tightest fit, breaks ties by
//! spreading, explains every node it rejects (offline, cordoned, too small, ports
//! exhausted or taken); recommend says whether the fleet holds `count` copies and what
//! the cheapest type for the rest costs, refusing with 422 `NO_INSTANCE_TYPE_FITS` (naming
//! the resource) what no type offers; the bundled price tables carry their version and
//! date; Hetzner's prices are read with the organization's credential from a fake of
//! the Hetzner Cloud API (`shardlyn_tests::hetzner::FakeHetzner`, speaking its documented
//! `GET /pricing` and `GET /server_types` format), kept an hour by the panel's clock.

use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_tests::hetzner::FakeHetzner;
use shardlyn_tests::{TestApp, both_engines, spawn_app, spawn_app_with};

const GIB: i64 = 1024 * 1024 * 1024;
const TOKEN: &str = "hcloud-planner-token-0123456789";

/// A node of `org` online with these totals.
async fn node(
    app: &TestApp,
    owner: &str,
    org: &str,
    name: &str,
    mem_gib: i64,
    disk_gib: i64,
) -> String {
    let id = app.register_node(owner, Some(org), name).await;
    app.mark_node_online(&id, mem_gib * GIB, disk_gib * GIB)
        .await;
    id
}

async fn workload(app: &TestApp, owner: &str, org: &str) -> String {
    let w = app
        .post(
            "/v1/workloads",
            Some(owner),
            json!({"organization_id": org, "name": "Game", "images": ["busybox:1.36"], "startup": "sh"}),
        )
        .await
        .expect(201);
    w.body["id"].as_str().expect("workload id").to_string()
}

/// An instance on `node` reserving `memory_mb` and `disk_mb`, with these ports.
async fn instance(
    app: &TestApp,
    owner: &str,
    wl: &str,
    node: &str,
    memory_mb: i64,
    disk_mb: i64,
    ports: Value,
) -> String {
    let mut body = json!({"name": format!("s{}", uuid::Uuid::new_v4().simple()), "workload_id": wl, "node_id": node,
                          "limits": {"memory_mb": memory_mb, "disk_mb": disk_mb}});
    if !ports.is_null() {
        body["ports"] = ports;
    }
    let r = app
        .post("/v1/instances", Some(owner), body)
        .await
        .expect(201);
    r.body["id"].as_str().expect("instance id").to_string()
}

fn reason<'a>(body: &'a Value, node: &str) -> &'a Value {
    body["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .find(|r| r["node_id"] == node)
        .unwrap_or_else(|| panic!("no reason for {node}: {body}"))
}

both_engines! {
    async fn suggest_fit_picks_the_tightest_fit_and_explains_every_node(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("planner@example.com").await;
        let org = app.create_org(&owner.access, "Fleet").await;
        let big = node(&app, &owner.access, &org, "big", 32, 200).await;
        let mid = node(&app, &owner.access, &org, "mid", 8, 200).await;
        let small = node(&app, &owner.access, &org, "small", 2, 200).await;
        let cordoned = node(&app, &owner.access, &org, "cordoned", 8, 200).await;
        app.post(&format!("/v1/nodes/{cordoned}/cordon"), Some(&owner.access), json!({})).await.expect(200);
        let offline = node(&app, &owner.access, &org, "offline", 8, 200).await;
        app.mark_node_offline(&offline).await;

        let r = app
            .post("/v1/planner/suggest-fit", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 4096, "cpu": 1.5, "disk_gb": 10, "port_count": 1}))
            .await
            .expect(200);
        assert_eq!(r.body["node"]["id"], mid, "{}", r.body);
        assert_eq!(r.body["demand"]["disk_mb"], 10 * 1024);
        assert_eq!(r.body["demand"]["cpu"], 1.5);
        assert_eq!(r.body["reasons"].as_array().expect("reasons").len(), 5);
        assert_eq!(r.body["reasons"][0]["node_id"], mid, "the chosen node comes first");
        assert_eq!(reason(&r.body, &mid)["chosen"], true);
        let b = reason(&r.body, &big);
        assert_eq!(b["fits"], true);
        assert!(b["score"].as_f64() < r.body["node"]["score"].as_f64(), "{}", r.body);
        assert_eq!(reason(&r.body, &small)["code"], "INSUFFICIENT_MEMORY");
        assert!(reason(&r.body, &small)["reason"].as_str().expect("text").contains("2048 MB free"), "{}", r.body);
        assert_eq!(reason(&r.body, &cordoned)["code"], "NODE_CORDONED");
        assert_eq!(reason(&r.body, &offline)["code"], "NODE_OFFLINE");
        assert!(r.body["recommendation"].is_null());

        // Fractional CPU and disk in MB are read as such.
        let r = app
            .post("/v1/planner/suggest-fit", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 512, "cpu": 0.25, "disk_mb": 700}))
            .await
            .expect(200);
        assert_eq!(r.body["demand"]["cpu"], 0.25);
        assert_eq!(r.body["demand"]["port_count"], 1, "one port by default");
        assert_eq!(r.body["node"]["id"], small, "the smallest node is the tightest fit");
    }

    async fn equal_scores_go_to_the_node_with_fewer_instances(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("spread@example.com").await;
        let org = app.create_org(&owner.access, "Spread").await;
        // Two huge equal nodes: a 64 MB instance changes neither's score (per-mille).
        let first = node(&app, &owner.access, &org, "a-first", 2000, 10_000).await;
        let second = node(&app, &owner.access, &org, "b-second", 2000, 10_000).await;
        let wl = workload(&app, &owner.access, &org).await;
        instance(&app, &owner.access, &wl, &first, 64, 64, Value::Null).await;
        let r = app
            .post("/v1/planner/suggest-fit", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 1024, "cpu": 1, "disk_gb": 1}))
            .await
            .expect(200);
        assert_eq!(reason(&r.body, &first)["score"], reason(&r.body, &second)["score"], "{}", r.body);
        assert_eq!(r.body["node"]["id"], second, "{}", r.body);
        assert_eq!(reason(&r.body, &first)["instances"], 1);
    }

    async fn nodes_out_of_ports_are_excluded_with_reasons(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("ports@example.com").await;
        let org = app.create_org(&owner.access, "Ports").await;
        let tight = node(&app, &owner.access, &org, "tight", 8, 100).await;
        let roomy = node(&app, &owner.access, &org, "roomy", 64, 100).await;
        // The tight node's range holds one port, and a server takes it.
        app.put(&format!("/v1/nodes/{tight}"), Some(&owner.access),
            json!({"port_range": {"start": 30000, "end": 30000}}))
            .await
            .expect(200);
        let wl = workload(&app, &owner.access, &org).await;
        instance(&app, &owner.access, &wl, &tight, 64, 64, json!([30000])).await;
        instance(&app, &owner.access, &wl, &roomy, 64, 64, json!([25565])).await;

        let r = app
            .post("/v1/planner/suggest-fit", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 1024, "cpu": 1, "disk_gb": 1, "port_count": 1}))
            .await
            .expect(200);
        assert_eq!(reason(&r.body, &tight)["code"], "PORTS_EXHAUSTED", "{}", r.body);
        assert_eq!(r.body["node"]["id"], roomy);
        // A port taken on the roomy node rules it out too (and the tight one has no
        // port left for the extra one).
        let r = app
            .post("/v1/planner/suggest-fit", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 1024, "cpu": 1, "disk_gb": 1, "ports": [25565], "port_count": 1}))
            .await
            .expect(200);
        assert_eq!(reason(&r.body, &roomy)["code"], "PORT_TAKEN", "{}", r.body);
        assert_eq!(reason(&r.body, &tight)["code"], "PORTS_EXHAUSTED", "{}", r.body);
        assert!(r.body["node"].is_null());
        // No node fits: the cheapest type that would, with its price.
        let rec = &r.body["recommendation"];
        assert_eq!(rec["provider"], "hetzner", "{}", r.body);
        assert_eq!(rec["available"], true);
        assert!(rec["monthly"].as_str().expect("price").parse::<f64>().is_ok());
        assert!(r.body["message"].as_str().expect("message").contains(rec["instance_type"].as_str().expect("type")));
    }

    async fn recommend_counts_copies_and_prices_the_rest(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("recommend@example.com").await;
        let org = app.create_org(&owner.access, "Recommend").await;
        node(&app, &owner.access, &org, "one", 8, 200).await;
        // 8 GiB holds two 4 GB copies; three more need buying.
        let r = app
            .post("/v1/planner/recommend", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 4096, "cpu": 1, "disk_gb": 10, "count": 5, "provider": "hetzner"}))
            .await
            .expect(200);
        assert_eq!(r.body["fleet_fits"], false, "{}", r.body);
        assert_eq!(r.body["placed"], 2);
        assert_eq!(r.body["unplaced"], 3);
        let c = &r.body["cheapest"];
        assert_eq!(c["provider"], "hetzner");
        assert_eq!(c["currency"], "EUR");
        let per = c["copies_per_node"].as_i64().expect("copies");
        assert_eq!(c["nodes_needed"].as_i64().expect("nodes"), (3 + per - 1) / per);
        // Hetzner's ARM types fit but are unavailable.
        let arm = r.body["unavailable"].as_array().expect("unavailable");
        assert!(arm.iter().all(|t| t["architecture"] == "arm64" && t["unavailable_reason"] == "no ARM agent build yet"), "{}", r.body);
        assert!(!arm.is_empty());
        // The fleet holds one copy.
        let r = app
            .post("/v1/planner/recommend", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 2048, "cpu": 1, "disk_gb": 10}))
            .await
            .expect(200);
        assert_eq!(r.body["fleet_fits"], true);
        assert!(r.body["cheapest"].is_null());
        // Every provider when none is named; a region narrows them.
        let r = app
            .post("/v1/planner/recommend", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 30000, "cpu": 4, "disk_gb": 10}))
            .await
            .expect(200);
        let providers: Vec<&str> = r.body["options"].as_array().expect("options").iter().map(|o| o["provider"].as_str().expect("p")).collect();
        assert_eq!(providers, ["hetzner", "aws", "gcp", "oci"], "{}", r.body);
        let r = app
            .post("/v1/planner/recommend", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 30000, "cpu": 4, "disk_gb": 10, "region": "us-east-1"}))
            .await
            .expect(200);
        assert_eq!(r.body["options"].as_array().expect("options").len(), 1, "{}", r.body);
        assert_eq!(r.body["cheapest"]["provider"], "aws");

        // Templates: sized by players.
        let r = app
            .post("/v1/planner/recommend-for-template", Some(&owner.access),
                json!({"organization_id": org, "template": "valheim", "players": 10, "provider": "hetzner"}))
            .await
            .expect(200);
        assert_eq!(r.body["template"]["id"], "valheim");
        assert_eq!(r.body["demand"]["memory_mb"], 4096 + 6 * 256, "{}", r.body);
        assert_eq!(r.body["demand"]["port_count"], 2);
        assert_eq!(r.body["fleet_fits"], true);
    }

    async fn a_request_no_type_offers_is_422_naming_the_resource(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("toobig@example.com").await;
        let org = app.create_org(&owner.access, "TooBig").await;
        node(&app, &owner.access, &org, "one", 8, 200).await;
        let r = app
            .post("/v1/planner/recommend", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 600_000, "cpu": 2, "disk_gb": 10, "provider": "hetzner"}))
            .await
            .expect_error(422, "NO_INSTANCE_TYPE_FITS");
        let msg = r.body["error"].as_str().expect("message");
        assert!(msg.contains("memory_mb 600000 exceeds the largest hetzner type (cx53, 32768 MB"), "{msg}");
        // The node (8 GiB) cannot take 16 GB, so the types are asked.
        let r = app
            .post("/v1/planner/recommend", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 16_384, "cpu": 200, "disk_gb": 10}))
            .await
            .expect_error(422, "NO_INSTANCE_TYPE_FITS");
        let msg = r.body["error"].as_str().expect("message");
        assert!(msg.contains("cpu 200 exceeds the largest hetzner type (cx53, 16 vCPUs)"), "{msg}");
        assert!(msg.contains("largest aws type"), "every provider named: {msg}");
        let r = app
            .post("/v1/planner/recommend", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 16_384, "cpu": 1, "disk_gb": 5000, "provider": "hetzner"}))
            .await
            .expect_error(422, "NO_INSTANCE_TYPE_FITS");
        assert!(r.body["error"].as_str().expect("message").contains("disk_mb 5120000 exceeds the largest hetzner type"), "{}", r.body);
        // suggest-fit answers 200 with no node and says no type would either.
        let r = app
            .post("/v1/planner/suggest-fit", Some(&owner.access),
                json!({"organization_id": org, "memory_mb": 600_000, "cpu": 2, "disk_gb": 10}))
            .await
            .expect(200);
        assert!(r.body["node"].is_null());
        assert!(r.body["recommendation"].is_null());
        assert!(r.body["message"].as_str().expect("message").contains("exceeds the largest"), "{}", r.body);
    }

    async fn bad_input_is_refused_with_clear_codes(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("bad@example.com").await;
        let t = Some(owner.access.as_str());
        for (body, field) in [
            (json!({"memory_mb": 0, "cpu": 1, "disk_gb": 1}), "memory_mb"),
            (json!({"memory_mb": -5, "cpu": 1, "disk_gb": 1}), "memory_mb"),
            (json!({"memory_mb": 99_999_999_999_i64, "cpu": 1, "disk_gb": 1}), "memory_mb"),
            (json!({"memory_mb": 1024, "cpu": 0, "disk_gb": 1}), "cpu"),
            (json!({"memory_mb": 1024, "cpu": -1.5, "disk_gb": 1}), "cpu"),
            (json!({"memory_mb": 1024, "cpu": 1e9, "disk_gb": 1}), "cpu"),
            (json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 0}), "disk_mb"),
            (json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 9_000_000_000_000_000_000_i64}), "disk_mb"),
            (json!({"memory_mb": 1024, "cpu": 1}), "disk_mb"),
            (json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 1, "disk_mb": 1}), "disk_mb"),
            (json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 1, "port_count": -1}), "port_count"),
            (json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 1, "ports": [0]}), "ports"),
        ] {
            let r = app.post("/v1/planner/suggest-fit", t, body.clone()).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }
        // Not numbers at all, unknown fields: the JSON envelope, never a 500.
        let r = app.post("/v1/planner/suggest-fit", t, json!({"memory_mb": "lots", "cpu": 1, "disk_gb": 1})).await;
        assert!(r.status == 400 || r.status == 422, "{}", r.status);
        let r = app.post("/v1/planner/recommend", t, json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 1, "gpu": 1})).await;
        assert!(r.status == 400 || r.status == 422, "{}", r.status);
        app.post("/v1/planner/recommend", t, json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 1, "count": 0}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post("/v1/planner/recommend", t, json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 1, "count": 1_000_000}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        let r = app.post("/v1/planner/recommend", t, json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 1, "count": 2, "provider": "azure"}))
            .await
            .expect_error(422, "UNKNOWN_PROVIDER");
        assert!(r.body["error"].as_str().expect("message").contains("hetzner, aws, gcp, oci"));
        app.post("/v1/planner/recommend", t, json!({"memory_mb": 1024, "cpu": 1, "disk_gb": 1, "count": 2, "provider": "hetzner", "region": "mars-1"}))
            .await
            .expect_error(422, "UNKNOWN_REGION");
        app.post("/v1/planner/recommend-for-template", t, json!({"template": "tetris"}))
            .await
            .expect_error(422, "UNKNOWN_TEMPLATE");
        app.post("/v1/planner/recommend-for-template", t, json!({"template": "valheim", "players": 0}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.get("/v1/planner/pricing?provider=azure", t).await.expect_error(422, "UNKNOWN_PROVIDER");
        app.get("/v1/planner/pricing?region=mars-1", t).await.expect_error(422, "UNKNOWN_REGION");
        // Another organization's fleet is not there to plan on.
        let other = app.register("other@example.com").await;
        let theirs = app.create_org(&other.access, "Theirs").await;
        app.post("/v1/planner/suggest-fit", t, json!({"organization_id": theirs, "memory_mb": 1024, "cpu": 1, "disk_gb": 1}))
            .await
            .expect(404);
    }

    async fn pricing_tables_carry_version_and_date_and_templates_are_listed(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("prices@example.com").await;
        let t = Some(owner.access.as_str());
        let r = app.get("/v1/planner/pricing", t).await.expect(200);
        let tables = r.body["data"].as_array().expect("tables");
        let providers: Vec<&str> = tables.iter().map(|x| x["provider"].as_str().expect("provider")).collect();
        assert_eq!(providers, ["hetzner", "aws", "gcp", "oci"]);
        for table in tables {
            assert_eq!(table["source"], "bundled");
            assert!(table["refreshed_at"].is_null());
            let read_on = table["read_on"].as_str().expect("read_on");
            assert!(chrono::NaiveDate::parse_from_str(read_on, "%Y-%m-%d").is_ok(), "{read_on}");
            assert!(!table["version"].as_str().expect("version").is_empty());
            assert!(table["reference"].as_str().expect("reference").contains("http"), "cites where: {table}");
            for ty in table["types"].as_array().expect("types") {
                assert!(ty["vcpus"].as_u64() > Some(0) && ty["memory_mb"].as_i64() > Some(0), "{ty}");
            }
        }
        let r = app.get("/v1/planner/pricing?provider=hetzner&region=hel1", t).await.expect(200);
        let table = &r.body["data"][0];
        assert_eq!(table["regions"].as_array().expect("regions").len(), 1);
        let cx23 = table["types"].as_array().expect("types").iter().find(|x| x["name"] == "cx23").expect("cx23");
        assert_eq!(cx23["prices"]["hel1"]["monthly"], "3.99");
        assert_eq!(cx23["architecture"], "x86");
        assert_eq!(shardlyn_panel::planner::price("hetzner", "hel1", "cx23").expect("price").monthly, "3.99");
        assert_eq!(shardlyn_panel::planner::instance_type("hetzner", "cax11").expect("cax11").architecture, "arm64");
        assert!(shardlyn_panel::planner::price("hetzner", "hel1", "cx99").is_none());

        let r = app.get("/v1/planner/templates", t).await.expect(200);
        let ids: Vec<&str> = r.body["data"].as_array().expect("templates").iter().map(|x| x["id"].as_str().expect("id")).collect();
        for want in ["minecraft-java-vanilla", "minecraft-java-modded", "valheim", "rust", "ark", "cs2", "palworld", "factorio", "terraria"] {
            assert!(ids.contains(&want), "{want} in {ids:?}");
        }
        assert!(r.body["data"][0]["memory_mb"].as_i64() > Some(0));
        assert!(!r.body["data"][0]["ports"].as_array().expect("ports").is_empty());
    }

    async fn hetzner_prices_are_read_with_the_credential_and_kept_an_hour(engine) {
        // A fake of the Hetzner Cloud API (tests cannot reach the real one).
        let fake = FakeHetzner::start(TOKEN).await;
        let url = fake.url.clone();
        let app = spawn_app_with(engine, |c| c.cloud.hetzner_api_url = url).await;
        let owner = app.register("hcloud@example.com").await;
        let org = app.create_org(&owner.access, "Cloud").await;
        let t = Some(owner.access.as_str());
        let pricing = format!("/v1/planner/pricing?organization_id={org}&provider=hetzner");
        // No credential: the bundled table.
        let r = app.get(&pricing, t).await.expect(200);
        assert_eq!(r.body["data"][0]["source"], "bundled");

        app.post("/v1/credentials", t, json!({"organization_id": org, "name": "Hetzner", "provider": "hetzner", "config": {"token": TOKEN}}))
            .await
            .expect(201);
        app.state.clock.set_ms(shardlyn_panel::db::now_ms());
        let r = app.get(&pricing, t).await.expect(200);
        let table = &r.body["data"][0];
        assert_eq!(table["source"], "hetzner_api", "{}", r.body);
        assert!(table["refreshed_at"].is_string(), "{table}");
        assert!(table["version"].as_str().expect("version").starts_with("api-"));
        assert_eq!(table["currency"], "EUR");
        let types = table["types"].as_array().expect("types");
        let cx22 = types.iter().find(|x| x["name"] == "cx22").expect("cx22 from the API");
        assert_eq!(cx22["memory_mb"], 4096);
        assert_eq!(cx22["vcpus"], 2);
        assert_eq!(cx22["prices"]["fsn1"]["monthly"], "3.79");
        let cax = types.iter().find(|x| x["name"] == "cax11").expect("cax11");
        assert_eq!(cax["architecture"], "arm64");
        let reads = |fake: &FakeHetzner| fake.requests().iter().filter(|(_, p)| p.starts_with("/pricing")).count();
        assert_eq!(reads(&fake), 1);
        // The advice prices from the refreshed table.
        let r = app
            .post("/v1/planner/recommend", t, json!({"organization_id": org, "memory_mb": 3000, "cpu": 1, "disk_gb": 10, "provider": "hetzner"}))
            .await
            .expect(200);
        assert_eq!(r.body["cheapest"]["price_source"], "hetzner_api", "{}", r.body);
        assert_eq!(r.body["cheapest"]["instance_type"], "cx22", "{}", r.body);
        assert_eq!(
            shardlyn_panel::planner::price_for(&app.state, &org, "hetzner", "fsn1", "cx22").await.expect("price").monthly,
            "3.79"
        );
        // Within the hour: the cached copy.
        app.state.clock.advance(Duration::from_secs(59 * 60));
        app.get(&pricing, t).await.expect(200);
        assert_eq!(reads(&fake), 1, "served from the cache");
        // After it: read again.
        app.state.clock.advance(Duration::from_secs(2 * 60));
        app.get(&pricing, t).await.expect(200);
        assert_eq!(reads(&fake), 2, "read again after an hour");

        // A failing API: the bundled table, with a note.
        drop(fake);
        app.state.clock.advance(Duration::from_secs(2 * 60 * 60));
        let r = app.get(&pricing, t).await.expect(200);
        let table = &r.body["data"][0];
        assert_eq!(table["source"], "bundled", "{}", r.body);
        assert!(table["fallback_note"].as_str().expect("note").contains("could not be read"), "{table}");
    }
}
