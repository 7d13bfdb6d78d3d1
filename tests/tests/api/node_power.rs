//! Power and firewall of provisioned nodes (`/v1/nodes/{id}/power/*`,
//! `/v1/nodes/{id}/firewall/rules`), and the game ports opened and closed with servers.
//!
//! Hetzner Cloud cannot be reached from here: `shardlyn_tests::hetzner::FakeHetzner` is a
//! local FAKE of its API speaking the documented wire format (servers, server actions,
//! firewalls and their actions), checked against Hetzner's own Python client elsewhere.
//! The node is a registered node with a `provision_requests` row naming a server the
//! test created at the fake, as a provisioning run leaves it. The move test runs two real
//! agents on Docker and moves a server between two provisioned nodes.

use reqwest::Method;
use serde_json::{Value, json};
use shardlyn_tests::hetzner::FakeHetzner;
use shardlyn_tests::{Engine, Session, TestApp, both_engines, spawn_app_with};

const TOKEN: &str = "hcloud-token-power-0123456789";
const GIB: i64 = 1024 * 1024 * 1024;

/// A panel pointed at a fake Hetzner, an organization with a Hetzner credential, and a
/// provisioned node whose server exists at the fake.
struct World {
    app: TestApp,
    fake: FakeHetzner,
    owner: Session,
    org: String,
    node: String,
    server_id: u64,
    request: String,
}

impl World {
    fn t(&self) -> Option<&str> {
        Some(self.owner.access.as_str())
    }

    fn path(&self, tail: &str) -> String {
        format!("/v1/nodes/{}/{tail}", self.node)
    }

    /// The fake's firewalls.
    fn firewalls(&self) -> Vec<Value> {
        self.fake.firewalls()
    }

    /// The rules of the fake's only firewall, as `(protocol, port)` pairs.
    fn cloud_rules(&self) -> Vec<(String, String)> {
        let fws = self.firewalls();
        assert_eq!(fws.len(), 1, "one panel-owned firewall: {fws:?}");
        let mut rules: Vec<(String, String)> = fws[0]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .map(|r| {
                (
                    r["protocol"].as_str().expect("protocol").to_owned(),
                    r["port"].as_str().expect("port").to_owned(),
                )
            })
            .collect();
        rules.sort();
        rules
    }

    async fn table(&self) -> Value {
        self.app
            .get(&self.path("firewall/rules"), self.t())
            .await
            .expect(200)
            .body
    }
}

/// Creates a server at the fake, through its API with the token.
async fn cloud_server(fake: &FakeHetzner, name: &str) -> u64 {
    let r = reqwest::Client::new()
        .post(format!("{}/servers", fake.url))
        .bearer_auth(TOKEN)
        .json(
            &json!({"name": name, "server_type": "cx22", "image": "ubuntu-24.04",
                      "location": "fsn1"}),
        )
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(r.status().as_u16(), 201, "server created at the fake");
    let body: Value = r.json().await.expect("json");
    body["server"]["id"].as_u64().expect("server id")
}

/// A `provision_requests` row as an applied provisioning run leaves it.
async fn provision_row(
    app: &TestApp,
    org: &str,
    node: &str,
    provider: &str,
    credential: Option<&str>,
    server_id: &str,
) -> String {
    let now = shardlyn_panel::db::now_ms();
    let id = shardlyn_panel::db::new_id();
    sqlx::query(
        "INSERT INTO provision_requests (id, org_id, name, provider, region, instance_type, image, \
         credential_id, status, server_id, node_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'fsn1', 'cx22', 'ubuntu-24.04', $5, 'provisioned', $6, $7, $8, $8)",
    )
    .bind(&id)
    .bind(org)
    .bind(format!("{provider}-node"))
    .bind(provider)
    .bind(credential)
    .bind(server_id)
    .bind(node)
    .bind(now)
    .execute(&app.state.db.pool)
    .await
    .expect("insert provision request");
    id
}

async fn world(engine: Engine) -> World {
    let fake = FakeHetzner::start(TOKEN).await;
    let url = fake.url.clone();
    let app = spawn_app_with(engine, move |c| c.cloud.hetzner_api_url = url).await;
    let owner = app.register("owner@example.com").await;
    let org = app.create_org(&owner.access, "Cloud hosting").await;
    let r = app
        .post(
            "/v1/credentials",
            Some(&owner.access),
            json!({"organization_id": org, "name": "Hetzner", "provider": "hetzner",
                   "config": {"token": TOKEN}}),
        )
        .await
        .expect(201);
    let credential = r.body["id"].as_str().expect("credential id").to_owned();
    let node = app
        .register_node(&owner.access, Some(&org), "cloud-1")
        .await;
    app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
    let server_id = cloud_server(&fake, "cloud-1").await;
    let request = provision_row(
        &app,
        &org,
        &node,
        "hetzner",
        Some(&credential),
        &server_id.to_string(),
    )
    .await;
    World {
        app,
        fake,
        owner,
        org,
        node,
        server_id,
        request,
    }
}

fn server_status(w: &World) -> String {
    w.fake
        .servers()
        .into_iter()
        .find(|s| s["id"] == w.server_id)
        .and_then(|s| s["status"].as_str().map(str::to_owned))
        .expect("the server at the fake")
}

both_engines! {
    async fn power_actions_reach_the_provider_and_status_follows(engine) {
        let w = world(engine).await;
        let r = w.app.get(&w.path("power/status"), w.t()).await.expect(200);
        assert_eq!(r.body["status"], "running", "{}", r.text);
        assert_eq!(r.body["provider"], "hetzner");
        assert_eq!(r.body["server_id"], w.server_id.to_string());

        let r = w.app.post(&w.path("power/stop"), w.t(), json!({})).await.expect(202);
        assert_eq!(r.body["action"]["command"], "shutdown_server", "{}", r.text);
        assert_eq!(server_status(&w), "off");
        let r = w.app.get(&w.path("power/status"), w.t()).await.expect(200);
        assert_eq!(r.body["status"], "off");

        let r = w.app.post(&w.path("power/start"), w.t(), json!({})).await.expect(202);
        assert_eq!(r.body["action"]["command"], "start_server", "{}", r.text);
        assert_eq!(server_status(&w), "running");

        let r = w.app.post(&w.path("power/reboot"), w.t(), json!({})).await.expect(202);
        assert_eq!(r.body["action"]["command"], "reboot_server", "{}", r.text);

        let r = w.app.post(&w.path("power/stop?force=true"), w.t(), json!({})).await.expect(202);
        assert_eq!(r.body["action"]["command"], "stop_server", "{}", r.text);
        assert_eq!(server_status(&w), "off");

        let id = w.server_id;
        let sent: Vec<String> = w.fake.requests().into_iter()
            .filter(|(m, p)| m == "POST" && p.starts_with(&format!("/servers/{id}/actions/")))
            .map(|(_, p)| p.rsplit('/').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(sent, ["shutdown", "poweron", "reboot", "poweroff"]);

        // The provider's refusal is answered with its message.
        w.fake.fail_next("POST", &format!("/servers/{id}/actions/poweron"), 423, "locked",
            "server is locked by another action");
        let r = w.app.post(&w.path("power/start"), w.t(), json!({})).await
            .expect_error(502, "PROVIDER_ERROR");
        assert!(r.text.contains("server is locked by another action") && r.text.contains("423"), "{}", r.text);
        assert_eq!(server_status(&w), "off");
    }

    async fn firewall_rules_mirror_the_table(engine) {
        let w = world(engine).await;
        let t = w.table().await;
        assert_eq!(t["data"], json!([]));
        assert_eq!(t["firewall_id"], Value::Null);
        assert!(w.firewalls().is_empty(), "no firewall before the first rule");

        let r = w.app.post(&w.path("firewall/rules"), w.t(), json!({
            "protocol": "tcp", "port_start": 27015, "port_end": 27020,
            "source": ["203.0.113.0/24", "2001:db8::/32"], "description": "Source games"
        })).await.expect(201);
        let first = r.body["id"].as_str().expect("rule id").to_owned();
        assert_eq!(r.body["instance_id"], Value::Null);
        assert_eq!(r.body["source"], json!(["203.0.113.0/24", "2001:db8::/32"]));
        assert_eq!(w.cloud_rules(), [("tcp".to_owned(), "27015-27020".to_owned())]);
        let fw = &w.firewalls()[0];
        assert_eq!(fw["applied_to"][0]["server"]["id"], w.server_id, "applied to the server: {fw}");
        assert_eq!(fw["rules"][0]["source_ips"], json!(["203.0.113.0/24", "2001:db8::/32"]));
        assert_eq!(fw["rules"][0]["direction"], "in");
        assert_eq!(fw["rules"][0]["description"], "Source games");
        let t = w.table().await;
        assert_eq!(t["firewall_id"], fw["id"].to_string());
        assert_eq!(t["sync_error"], Value::Null);

        // One port, anywhere by default.
        let r = w.app.post(&w.path("firewall/rules"), w.t(),
            json!({"protocol": "udp", "port_start": 25565})).await.expect(201);
        let second = r.body["id"].as_str().expect("rule id").to_owned();
        assert_eq!(r.body["source"], json!(["0.0.0.0/0", "::/0"]));
        assert_eq!(r.body["port_end"], 25565);
        assert_eq!(w.cloud_rules(), [("tcp".to_owned(), "27015-27020".to_owned()),
                                     ("udp".to_owned(), "25565".to_owned())]);
        assert_eq!(w.firewalls().len(), 1, "the same firewall is rewritten");
        assert_eq!(w.table().await["data"].as_array().expect("data").len(), 2);

        // A change only rewrites the rules while the firewall is on the server...
        let fw_id = w.firewalls()[0]["id"].as_u64().expect("firewall id");
        let applies = |w: &World| {
            w.fake.requests().iter()
                .filter(|(m, p)| m == "POST" && p.ends_with("/actions/apply_to_resources"))
                .count()
        };
        assert_eq!(applies(&w), 0, "{:?}", w.fake.requests());
        // ...and puts it back on the server when it was taken off by hand.
        let r = reqwest::Client::new()
            .post(format!("{}/firewalls/{fw_id}/actions/remove_from_resources", w.fake.url))
            .bearer_auth(TOKEN)
            .json(&json!({"remove_from": [{"type": "server", "server": {"id": w.server_id}}]}))
            .send().await.expect("fake");
        assert_eq!(r.status().as_u16(), 201);
        assert_eq!(w.firewalls()[0]["applied_to"], json!([]));
        let r = w.app.post(&w.path("firewall/rules"), w.t(),
            json!({"protocol": "tcp", "port_start": 8080})).await.expect(201);
        let third = r.body["id"].as_str().expect("rule id").to_owned();
        assert_eq!(w.firewalls()[0]["applied_to"][0]["server"]["id"], w.server_id);
        assert_eq!(applies(&w), 1);
        w.app.delete(&format!("{}?id={third}", w.path("firewall/rules")), w.t()).await.expect(204);

        // Removal: by body, then by query.
        w.app.call(Method::DELETE, &w.path("firewall/rules"), w.t(), Some(&json!({"id": first})))
            .await.expect(204);
        assert_eq!(w.cloud_rules(), [("udp".to_owned(), "25565".to_owned())]);
        w.app.delete(&format!("{}?id={second}", w.path("firewall/rules")), w.t()).await.expect(204);
        assert!(w.cloud_rules().is_empty());
        assert_eq!(w.table().await["data"], json!([]));
        w.app.delete(&format!("{}?id={second}", w.path("firewall/rules")), w.t()).await
            .expect_error(404, "NOT_FOUND");
        w.app.delete(&w.path("firewall/rules"), w.t()).await.expect_error(400, "VALIDATION_ERROR");

        // When the server is destroyed, provisioning releases the firewall.
        assert_eq!(w.firewalls().len(), 1);
        shardlyn_panel::cloud::release_firewall(&w.app.state, &w.request).await.expect("released");
        assert!(w.firewalls().is_empty(), "{:?}", w.firewalls());
        assert_eq!(w.table().await["firewall_id"], Value::Null);
        shardlyn_panel::cloud::release_firewall(&w.app.state, &w.request).await.expect("nothing left");
    }

    async fn a_provider_failure_changes_nothing(engine) {
        let w = world(engine).await;
        let rules = w.path("firewall/rules");
        // Creating the firewall fails: no rule is kept, no firewall id recorded.
        w.fake.fail_next("POST", "/firewalls", 403, "forbidden", "insufficient permissions for this token");
        let r = w.app.post(&rules, w.t(), json!({"protocol": "tcp", "port_start": 7777})).await
            .expect_error(502, "PROVIDER_ERROR");
        assert!(r.text.contains("insufficient permissions for this token"), "{}", r.text);
        let t = w.table().await;
        assert_eq!(t["data"], json!([]));
        assert_eq!(t["firewall_id"], Value::Null);
        assert!(w.firewalls().is_empty());

        let r = w.app.post(&rules, w.t(), json!({"protocol": "tcp", "port_start": 7777})).await.expect(201);
        let kept = r.body["id"].as_str().expect("id").to_owned();
        let fw = w.firewalls()[0]["id"].as_u64().expect("firewall id");
        // set_rules fails: the new rule is not kept, the cloud keeps the old set.
        w.fake.fail_next("POST", &format!("/firewalls/{fw}/actions/set_rules"), 503, "unavailable",
            "the service is temporarily unavailable");
        let r = w.app.post(&rules, w.t(), json!({"protocol": "udp", "port_start": 8888})).await
            .expect_error(502, "PROVIDER_ERROR");
        assert!(r.text.contains("the service is temporarily unavailable"), "{}", r.text);
        let t = w.table().await;
        assert_eq!(t["data"].as_array().expect("data").len(), 1, "{t}");
        assert_eq!(w.cloud_rules(), [("tcp".to_owned(), "7777".to_owned())]);
        // A removal that fails keeps the rule.
        w.fake.fail_next("POST", &format!("/firewalls/{fw}/actions/set_rules"), 429,
            "rate_limit_exceeded", "limit of 3600 requests per hour reached");
        let r = w.app.delete(&format!("{rules}?id={kept}"), w.t()).await
            .expect_error(502, "PROVIDER_ERROR");
        assert!(r.text.contains("limit of 3600 requests per hour reached"), "{}", r.text);
        assert_eq!(w.table().await["data"][0]["id"], kept.as_str());
        assert_eq!(w.cloud_rules(), [("tcp".to_owned(), "7777".to_owned())]);

        // A firewall deleted behind the panel's back is made again.
        let delete = reqwest::Client::new()
            .post(format!("{}/firewalls/{fw}/actions/remove_from_resources", w.fake.url))
            .bearer_auth(TOKEN)
            .json(&json!({"remove_from": [{"type": "server", "server": {"id": w.server_id}}]}))
            .send().await.expect("fake");
        assert_eq!(delete.status().as_u16(), 201);
        let delete = reqwest::Client::new()
            .delete(format!("{}/firewalls/{fw}", w.fake.url))
            .bearer_auth(TOKEN).send().await.expect("fake");
        assert!(delete.status().is_success(), "{}", delete.status());
        w.app.post(&rules, w.t(), json!({"protocol": "udp", "port_start": 8888})).await.expect(201);
        assert_eq!(w.cloud_rules(), [("tcp".to_owned(), "7777".to_owned()), ("udp".to_owned(), "8888".to_owned())]);
        assert_eq!(w.firewalls()[0]["applied_to"][0]["server"]["id"], w.server_id);
    }

    async fn concurrent_changes_all_reach_the_provider(engine) {
        let w = world(engine).await;
        let path = w.path("firewall/rules");
        let adds = (0..6).map(|i| {
            w.app.post(&path, w.t(), json!({"protocol": "tcp", "port_start": 40000 + i}))
        });
        for r in futures::future::join_all(adds).await {
            r.expect(201);
        }
        let want: Vec<(String, String)> =
            (0..6).map(|i| ("tcp".to_owned(), (40000 + i).to_string())).collect();
        assert_eq!(w.cloud_rules(), want);
        assert_eq!(w.table().await["data"].as_array().expect("data").len(), 6);
    }

    async fn refusals_name_the_reason(engine) {
        let w = world(engine).await;
        let rules = w.path("firewall/rules");
        for (body, field) in [
            (json!({"protocol": "icmp", "port_start": 80}), "protocol"),
            (json!({"protocol": "tcp", "port_start": 0}), "port_start"),
            (json!({"protocol": "tcp", "port_start": 70000}), "port_start"),
            (json!({"protocol": "tcp", "port_start": 80, "port_end": 65536}), "port_end"),
            (json!({"protocol": "tcp", "port_start": 90, "port_end": 80}), "port_end"),
            (json!({"protocol": "tcp", "port_start": 80, "source": []}), "source"),
            (json!({"protocol": "tcp", "port_start": 80, "source": ["10.0.0.1/8"]}), "source[0]"),
            (json!({"protocol": "tcp", "port_start": 80, "source": ["::/0", "not-a-network"]}), "source[1]"),
            (json!({"protocol": "tcp", "port_start": 80, "description": "x".repeat(256)}), "description"),
        ] {
            let r = w.app.post(&rules, w.t(), body.clone()).await.expect_error(422, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{body}: {}", r.text);
        }
        assert!(w.firewalls().is_empty(), "nothing reached the provider");
        w.app.post(&rules, w.t(), json!({"protocol": "tcp"})).await.expect(400);

        // A node the panel did not provision.
        let plain = w.app.register_node(&w.owner.access, Some(&w.org), "bare-metal").await;
        for (method, tail) in [("GET", "power/status"), ("POST", "power/start"), ("POST", "power/stop"),
                               ("POST", "power/reboot"), ("GET", "firewall/rules"), ("POST", "firewall/rules")] {
            let path = format!("/v1/nodes/{plain}/{tail}");
            let body = json!({"protocol": "tcp", "port_start": 80});
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let r = w.app.call(method, &path, w.t(), (tail == "firewall/rules").then_some(&body)).await;
            let r = r.expect_error(409, "NOT_PROVISIONED");
            assert!(r.text.contains("not provisioned"), "{}", r.text);
        }

        // Another organization's node, and a stranger.
        let stranger = w.app.register("stranger@example.com").await;
        for tail in ["power/status", "firewall/rules"] {
            w.app.get(&w.path(tail), Some(&stranger.access)).await.expect_error(404, "NOT_FOUND");
        }
        w.app.post(&w.path("power/start"), Some(&stranger.access), json!({})).await
            .expect_error(404, "NOT_FOUND");
        let theirs = w.app.create_org(&stranger.access, "Theirs").await;
        let their_node = w.app.register_node(&stranger.access, Some(&theirs), "theirs").await;
        w.app.get(&format!("/v1/nodes/{their_node}/power/status"), w.t()).await
            .expect_error(404, "NOT_FOUND");

        // A provider whose API is not written yet.
        let aws = w.app.register_node(&w.owner.access, Some(&w.org), "aws-1").await;
        provision_row(&w.app, &w.org, &aws, "aws", None, "i-0123456789abcdef0").await;
        let r = w.app.post(&format!("/v1/nodes/{aws}/power/start"), w.t(), json!({})).await
            .expect_error(501, "NOT_IMPLEMENTED");
        assert!(r.text.contains("power control for aws nodes is not available yet"), "{}", r.text);
        let r = w.app.post(&format!("/v1/nodes/{aws}/firewall/rules"), w.t(),
            json!({"protocol": "tcp", "port_start": 80})).await.expect_error(501, "NOT_IMPLEMENTED");
        assert!(r.text.contains("aws nodes is not available yet"), "{}", r.text);
    }

    async fn game_ports_open_and_close_with_servers(engine) {
        let w = world(engine).await;
        let r = w.app.post("/v1/workloads/from-template", w.t(),
            json!({"template": "busybox-test", "organization_id": w.org})).await.expect(201);
        let workload = r.body["id"].as_str().expect("workload").to_owned();
        let r = w.app.post("/v1/instances", w.t(), json!({
            "name": "arena", "workload_id": workload, "node_id": w.node, "ports": [30000, 30001, 30005]
        })).await.expect(201);
        let instance = r.body["id"].as_str().expect("instance").to_owned();
        assert_eq!(w.cloud_rules(), [
            ("tcp".to_owned(), "30000-30001".to_owned()), ("tcp".to_owned(), "30005".to_owned()),
            ("udp".to_owned(), "30000-30001".to_owned()), ("udp".to_owned(), "30005".to_owned()),
        ]);
        let t = w.table().await;
        let data = t["data"].as_array().expect("data");
        assert_eq!(data.len(), 4, "{t}");
        assert!(data.iter().all(|r| r["instance_id"] == instance.as_str()), "{t}");
        // A rule added by hand stays when the server goes.
        w.app.post(&w.path("firewall/rules"), w.t(), json!({"protocol": "tcp", "port_start": 22222}))
            .await.expect(201);
        w.app.delete(&format!("/v1/instances/{instance}?force=true"), w.t()).await.expect(204);
        assert_eq!(w.cloud_rules(), [("tcp".to_owned(), "22222".to_owned())]);
        assert_eq!(w.table().await["data"].as_array().expect("data").len(), 1);

        // The provider failing does not fail the server; it is recorded, and the next
        // change sends the whole set.
        let fw = w.firewalls()[0]["id"].as_u64().expect("firewall id");
        w.fake.fail_next("POST", &format!("/firewalls/{fw}/actions/set_rules"), 503, "unavailable",
            "the service is temporarily unavailable");
        let r = w.app.post("/v1/instances", w.t(), json!({
            "name": "later", "workload_id": workload, "node_id": w.node, "ports": [31000]
        })).await.expect(201);
        let later = r.body["id"].as_str().expect("instance").to_owned();
        assert_eq!(w.cloud_rules(), [("tcp".to_owned(), "22222".to_owned())]);
        let t = w.table().await;
        assert_eq!(t["data"].as_array().expect("data").len(), 3, "{t}");
        assert!(t["sync_error"].as_str().is_some_and(|e| e.contains("temporarily unavailable")), "{t}");
        w.app.post(&w.path("firewall/rules"), w.t(), json!({"protocol": "udp", "port_start": 22222}))
            .await.expect(201);
        assert_eq!(w.cloud_rules(), [
            ("tcp".to_owned(), "22222".to_owned()), ("tcp".to_owned(), "31000".to_owned()),
            ("udp".to_owned(), "22222".to_owned()), ("udp".to_owned(), "31000".to_owned()),
        ]);
        assert_eq!(w.table().await["sync_error"], Value::Null);
        w.app.delete(&format!("/v1/instances/{later}?force=true"), w.t()).await.expect(204);
        assert_eq!(w.cloud_rules(), [("tcp".to_owned(), "22222".to_owned()), ("udp".to_owned(), "22222".to_owned())]);

        // A server on a node the panel did not provision opens nothing.
        let plain = w.app.register_node(&w.owner.access, Some(&w.org), "bare-metal").await;
        w.app.mark_node_online(&plain, 8 * GIB, 100 * GIB).await;
        w.app.post("/v1/instances", w.t(), json!({
            "name": "elsewhere", "workload_id": workload, "node_id": plain, "ports": [32000]
        })).await.expect(201);
        assert_eq!(w.cloud_rules().len(), 2);
    }
}

/// The rules of the fake's firewall applied to `server`, as `protocol/port`.
fn rules_on(fake: &FakeHetzner, server: u64) -> Vec<String> {
    let fws: Vec<Value> = fake
        .firewalls()
        .into_iter()
        .filter(|f| {
            f["applied_to"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t["server"]["id"] == server))
        })
        .collect();
    assert_eq!(
        fws.len(),
        1,
        "one panel firewall on server {server}: {fws:?}"
    );
    let mut rules: Vec<String> = fws[0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["protocol"].as_str().unwrap_or(""),
                r["port"].as_str().unwrap_or("")
            )
        })
        .collect();
    rules.sort();
    rules
}

both_engines! {
    async fn game_ports_follow_a_server_moved_to_another_node(engine) {
        use shardlyn_tests::agent::{LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node};
        let wait = std::time::Duration::from_secs(60);
        let fake = FakeHetzner::start(TOKEN).await;
        let url = fake.url.clone();
        let app = spawn_app_with(engine, move |c| c.cloud.hetzner_api_url = url).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let orgs = app.get("/v1/organizations", Some(a)).await.expect(200);
        let org = orgs.body[0]["id"].as_str().expect("org id").to_owned();
        let r = app.post("/v1/credentials", Some(a), json!({"organization_id": org, "name": "Hetzner",
            "provider": "hetzner", "config": {"token": TOKEN}})).await.expect(201);
        let credential = r.body["id"].as_str().expect("credential").to_owned();
        let (config_a, dir_a) = register_node(&app, a).await;
        let (config_b, dir_b) = register_node(&app, a).await;
        let _agent_a = LocalAgent::start(config_a.clone(), dir_a.path());
        let _agent_b = LocalAgent::start(config_b.clone(), dir_b.path());
        wait_node(&app, a, &config_a.node_id, "online").await;
        wait_node(&app, a, &config_b.node_id, "online").await;
        let server_a = cloud_server(&fake, "move-a").await;
        let server_b = cloud_server(&fake, "move-b").await;
        provision_row(&app, &org, &config_a.node_id, "hetzner", Some(&credential), &server_a.to_string()).await;
        provision_row(&app, &org, &config_b.node_id, "hetzner", Some(&credential), &server_b.to_string()).await;
        let workload = busybox_workload(&app, a).await;
        let port = free_port();
        let created = app.post("/v1/instances", Some(a), json!({"name": "mover", "workload_id": workload,
            "node_id": config_a.node_id, "ports": [port],
            "limits": {"memory_mb": 64, "swap_mb": 0, "cpu_percent": 20, "disk_mb": 128, "pids": 64, "io_weight": 500}}))
            .await.expect(201);
        let id = created.body["id"].as_str().expect("id").to_owned();
        wait_instance(&app, a, &id, "offline", wait).await;
        assert_eq!(rules_on(&fake, server_a), [format!("tcp/{port}"), format!("udp/{port}")]);

        let r = app.post(&format!("/v1/instances/{id}/migrate"), Some(a),
            json!({"target_node_id": config_b.node_id})).await.expect(202);
        let mid = r.body["id"].as_str().expect("migration id").to_owned();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let m = app.get(&format!("/v1/migrations/{mid}"), Some(a)).await.expect(200).body;
            match m["state"].as_str().unwrap_or_default() {
                "completed" => break,
                "failed" | "cancelled" => panic!("the move ended: {m}"),
                _ => {}
            }
            assert!(tokio::time::Instant::now() < deadline, "the move never ended: {m}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let moved = app.get(&format!("/v1/instances/{id}"), Some(a)).await.expect(200).body;
        let new_port = moved["allocations"][0]["port"].as_u64().expect("port");
        assert!(rules_on(&fake, server_a).is_empty(), "closed on the source");
        assert_eq!(rules_on(&fake, server_b), [format!("tcp/{new_port}"), format!("udp/{new_port}")]);
        let b = app.get(&format!("/v1/nodes/{}/firewall/rules", config_b.node_id), Some(a)).await.expect(200).body;
        assert_eq!(b["data"][0]["instance_id"], id.as_str(), "{b}");
    }
}
