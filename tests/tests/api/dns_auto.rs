//! Auto-DNS and the reconciler against a real PowerDNS (tests/src/pdns.rs), checked
//! with `dig`: a new server gets its A and SRV records (the node's public address, the
//! server's port), its owner's subdomain moves them, a node's new address follows,
//! deleting the server removes them; a name someone else holds is never overwritten;
//! a provider that is down leaves the records pending until the reconciler writes them;
//! a record deleted or changed by hand comes back, and a pass over an unchanged zone
//! sends one list call and no write.

use serde_json::{Value, json};
use shardlyn_tests::pdns::Pdns;
use shardlyn_tests::{TestApp, both_engines, spawn_app};

const GIB: i64 = 1 << 30;

struct World {
    token: String,
    org: String,
    credential: String,
    node: String,
    workload: String,
}

async fn world(app: &TestApp, pdns: &Pdns) -> World {
    let admin = app.bootstrap_admin().await;
    let token = admin.access.clone();
    let org = app.create_org(&token, "Games").await;
    pdns.create_zone("play.test").await;
    let c = app
        .post(
            "/v1/credentials",
            Some(&token),
            json!({"organization_id": org, "name": "pdns", "provider": "powerdns",
                   "config": {"api_url": pdns.api_url, "api_key": pdns.api_key}}),
        )
        .await
        .expect(201);
    let credential = c.body["id"].as_str().expect("id").to_owned();
    let node = app.register_node(&token, Some(&org), "fsn-1").await;
    app.mark_node_online(&node, 64 * GIB, 500 * GIB).await;
    app.put(
        &format!("/v1/nodes/{node}"),
        Some(&token),
        json!({"public_ipv4": "203.0.113.10", "public_ipv6": "2001:db8::10"}),
    )
    .await
    .expect(200);
    let w = app
        .post(
            "/v1/workloads",
            Some(&token),
            json!({"organization_id": org, "name": "Paper", "images": ["busybox:1.36"],
                   "startup": "sh", "dns_srv_service": "_minecraft._tcp"}),
        )
        .await
        .expect(201);
    World {
        token,
        org,
        credential,
        node,
        workload: w.body["id"].as_str().expect("id").to_owned(),
    }
}

async fn records(app: &TestApp, w: &World, instance: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!(
                "/v1/dns/records?organization_id={}&instance_id={instance}",
                w.org
            ),
            Some(&w.token),
        )
        .await
        .expect(200);
    r.body["data"].as_array().expect("data").clone()
}

async fn server(app: &TestApp, w: &World, name: &str, port: i64) -> String {
    let r = app
        .post(
            "/v1/instances",
            Some(&w.token),
            json!({"name": name, "workload_id": w.workload, "node_id": w.node, "ports": [port]}),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("id").to_owned()
}

both_engines! {
    async fn servers_get_records_that_follow_them(engine) {
        let pdns = Pdns::start().await;
        let app = spawn_app(engine).await;
        let w = world(&app, &pdns).await;

        // Auto-DNS needs a zone the credential sees; a wrong one is a 404.
        app.put("/v1/dns/auto-config", Some(&w.token), json!({"organization_id": w.org,
            "enabled": true, "credential_id": w.credential, "zone_id": "nope.test."}))
            .await.expect_error(404, "NOT_FOUND");
        app.put("/v1/dns/auto-config", Some(&w.token), json!({"organization_id": w.org,
            "enabled": true, "credential_id": w.credential, "zone_id": "play.test.",
            "name_pattern": "{zone}"}))
            .await.expect_error(400, "VALIDATION_ERROR");
        let cfg = app.put("/v1/dns/auto-config", Some(&w.token), json!({"organization_id": w.org,
            "enabled": true, "credential_id": w.credential, "zone_id": "play.test.", "ttl": 120}))
            .await.expect(200);
        assert_eq!(cfg.body["zone_name"], "play.test");
        assert_eq!(cfg.body["name_pattern"], "{server}.{zone}");
        assert_eq!(cfg.body["record_types"], json!(["A", "AAAA", "SRV"]));

        // A new server: A, AAAA and SRV with its port, each with our marker.
        let id = server(&app, &w, "Survival World", 25570).await;
        let rows = records(&app, &w, &id).await;
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert!(rows.iter().all(|r| r["status"] == "synced" && r["origin"] == "auto"), "{rows:#?}");
        assert_eq!(pdns.dig("survival-world.play.test", "A"), vec!["203.0.113.10"]);
        assert_eq!(pdns.dig("survival-world.play.test", "AAAA"), vec!["2001:db8::10"]);
        assert_eq!(
            pdns.dig("_minecraft._tcp.survival-world.play.test", "SRV"),
            vec!["0 5 25570 survival-world.play.test."]
        );
        let marker = pdns.dig("_shardlyn-owner.survival-world.play.test", "TXT");
        assert_eq!(marker.len(), 2, "{marker:?}");
        assert!(marker.iter().all(|m| m.contains(&format!("owner=shardlyn/{}", w.org))), "{marker:?}");

        // Its owner picks a subdomain: reserved and malformed ones are refused, the
        // records move.
        let path = format!("/v1/instances/{id}");
        app.put(&path, Some(&w.token), json!({"dns_subdomain": "www"})).await
            .expect_error(400, "VALIDATION_ERROR");
        app.put(&path, Some(&w.token), json!({"dns_subdomain": "bad_name"})).await
            .expect_error(400, "VALIDATION_ERROR");
        app.put(&path, Some(&w.token), json!({"dns_subdomain": "mc"})).await.expect(200);
        assert_eq!(pdns.dig("mc.play.test", "A"), vec!["203.0.113.10"]);
        assert_eq!(pdns.dig("_minecraft._tcp.mc.play.test", "SRV"), vec!["0 5 25570 mc.play.test."]);
        assert!(pdns.dig("survival-world.play.test", "A").is_empty());
        assert!(pdns.dig("_shardlyn-owner.survival-world.play.test", "TXT").is_empty());
        // A second server may not take the same subdomain.
        let other = server(&app, &w, "Creative", 25571).await;
        app.put(&format!("/v1/instances/{other}"), Some(&w.token), json!({"dns_subdomain": "mc"}))
            .await.expect_error(409, "DNS_SUBDOMAIN_TAKEN");

        // The node gets a new address: the records follow.
        app.put(&format!("/v1/nodes/{}", w.node), Some(&w.token),
            json!({"public_ipv4": "203.0.113.20"})).await.expect(200);
        assert_eq!(pdns.dig("mc.play.test", "A"), vec!["203.0.113.20"]);
        assert_eq!(pdns.dig("creative.play.test", "A"), vec!["203.0.113.20"]);

        // Deleting the server removes its records and markers.
        app.delete(&format!("/v1/instances/{id}?force=true"), Some(&w.token)).await.expect(204);
        assert!(pdns.dig("mc.play.test", "A").is_empty());
        assert!(pdns.dig("_minecraft._tcp.mc.play.test", "SRV").is_empty());
        assert!(pdns.dig("_shardlyn-owner.mc.play.test", "TXT").is_empty());
        assert!(records(&app, &w, &id).await.is_empty());
        assert_eq!(pdns.dig("creative.play.test", "A"), vec!["203.0.113.20"]);
    }

    async fn names_held_by_others_are_left_alone_and_drift_is_repaired(engine) {
        let pdns = Pdns::start().await;
        let app = spawn_app(engine).await;
        let w = world(&app, &pdns).await;
        app.put("/v1/dns/auto-config", Some(&w.token), json!({"organization_id": w.org,
            "enabled": true, "credential_id": w.credential, "zone_id": "play.test.",
            "record_types": ["A", "SRV"]})).await.expect(200);

        // Someone made lobby.play.test by hand: the server's A is not written over.
        pdns.replace("play.test", &[("lobby.play.test", "A", 300, vec!["198.51.100.7".into()])]).await;
        let lobby = server(&app, &w, "Lobby", 25580).await;
        let rows = records(&app, &w, &lobby).await;
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r["status"] == "failed"), "{rows:#?}");
        assert!(rows[0]["last_error"].as_str().is_some_and(|e| e.contains("did not make")), "{rows:#?}");
        assert_eq!(pdns.dig("lobby.play.test", "A"), vec!["198.51.100.7"]);
        // The manual route answers such a clash with a 409 and writes nothing; a CNAME
        // by hand is in the way of an A too.
        pdns.replace("play.test", &[("hub.play.test", "CNAME", 300, vec!["lobby.play.test.".into()])]).await;
        app.post("/v1/dns/records", Some(&w.token), json!({"organization_id": w.org,
            "credential_id": w.credential, "zone_id": "play.test.", "type": "A", "name": "hub",
            "content": "203.0.113.99"})).await.expect_error(409, "DNS_RECORD_CLASH");
        assert_eq!(pdns.dig("hub.play.test", "CNAME"), vec!["lobby.play.test."]);
        assert!(pdns.dig("_shardlyn-owner.hub.play.test", "TXT").is_empty());
        // The panel's own failed record for lobby is the one to edit.
        app.post("/v1/dns/records", Some(&w.token), json!({"organization_id": w.org,
            "credential_id": w.credential, "zone_id": "play.test.", "type": "A", "name": "lobby",
            "content": "203.0.113.99"})).await.expect_error(409, "DNS_RECORD_EXISTS");
        assert_eq!(pdns.dig("lobby.play.test", "A"), vec!["198.51.100.7"]);

        // The provider is down when a server is made: its records wait as pending.
        let good_url = pdns.api_url.clone();
        app.put(&format!("/v1/credentials/{}", w.credential), Some(&w.token),
            json!({"config": {"api_url": "http://127.0.0.1:9"}})).await.expect(200);
        let arena = server(&app, &w, "Arena", 25581).await;
        let rows = records(&app, &w, &arena).await;
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert!(rows.iter().all(|r| r["status"] == "pending"), "{rows:#?}");
        assert!(rows[0]["last_error"].as_str().is_some_and(|e| e.contains("could not be reached")), "{rows:#?}");
        assert!(pdns.dig("arena.play.test", "A").is_empty());
        // A pass while it is still down changes nothing and says so.
        let down = shardlyn_panel::dns::reconcile::pass(&app.state).await;
        assert_eq!(down.repaired, 0);
        assert!(down.failed >= 2, "{down:?}");
        // Back up: the reconciler writes them.
        app.put(&format!("/v1/credentials/{}", w.credential), Some(&w.token),
            json!({"config": {"api_url": good_url}})).await.expect(200);
        let up = shardlyn_panel::dns::reconcile::pass(&app.state).await;
        assert_eq!(up.repaired, 2, "{up:?}");
        assert_eq!(pdns.dig("arena.play.test", "A"), vec!["203.0.113.10"]);
        assert_eq!(pdns.dig("_minecraft._tcp.arena.play.test", "SRV"), vec!["0 5 25581 arena.play.test."]);
        assert!(records(&app, &w, &arena).await.iter().all(|r| r["status"] == "synced"));

        // Deleted by hand: it comes back, marked drifted with what was found.
        pdns.patch("play.test", &json!({"rrsets": [{"name": "arena.play.test.", "type": "A",
            "changetype": "DELETE"}]})).await;
        assert!(pdns.dig("arena.play.test", "A").is_empty());
        shardlyn_panel::dns::reconcile::pass(&app.state).await;
        assert_eq!(pdns.dig("arena.play.test", "A"), vec!["203.0.113.10"]);
        let a = records(&app, &w, &arena).await.into_iter().find(|r| r["type"] == "A").expect("A");
        assert_eq!(a["status"], "drifted");
        assert!(a["last_error"].as_str().is_some_and(|e| e.contains("gone")), "{a:#?}");
        // Changed by hand: put back.
        pdns.replace("play.test", &[("arena.play.test", "A", 300, vec!["198.51.100.66".into()])]).await;
        shardlyn_panel::dns::reconcile::pass(&app.state).await;
        assert_eq!(pdns.dig("arena.play.test", "A"), vec!["203.0.113.10"]);
        let a = records(&app, &w, &arena).await.into_iter().find(|r| r["type"] == "A").expect("A");
        assert!(a["last_error"].as_str().is_some_and(|e| e.contains("198.51.100.66")), "{a:#?}");

        // Nothing changed: one list call for the zone, no write; the drifted record is
        // synced again.
        let before = app.state.dns_calls.snapshot();
        let quiet = shardlyn_panel::dns::reconcile::pass(&app.state).await;
        let after = app.state.dns_calls.snapshot();
        assert_eq!(quiet.repaired, 0, "{quiet:?}");
        assert_eq!(after.1 - before.1, 1, "record lists");
        assert_eq!(after.2 - before.2, 0, "writes");
        let a = records(&app, &w, &arena).await.into_iter().find(|r| r["type"] == "A").expect("A");
        assert_eq!(a["status"], "synced");
        // The lobby clash is still reported, and still untouched.
        assert_eq!(pdns.dig("lobby.play.test", "A"), vec!["198.51.100.7"]);
        assert!(records(&app, &w, &lobby).await.iter().all(|r| r["status"] == "failed"));
    }
}
