//! Provisioning with a real `terraform` (issue 17 item 7): the shipped `terraform/hetzner`
//! module goes through plan, apply, resize and destroy, run by the panel, with its state
//! in the panel's http backend; the cloud-init document it receives registers a real
//! agent, and the request is `provisioned` when that agent connects.
//!
//! The Hetzner Cloud API is a FAKE (`shardlyn_tests::hetzner`, checked against PyPI's
//! official `hcloud` client in `fake_hetzner.rs`), and so is the `hetznercloud/hcloud`
//! Terraform provider (`tests/hcloud-provider`, a test double installed through a
//! filesystem mirror): Hetzner cannot be reached from here. The fake cloud "boots" a
//! server by running its user data's install one-liner as a process
//! (`shardlyn_tests::cloudboot`) instead of starting a VM.
//!
//! Faults: the provider failing mid-apply (failed with its message, the state kept, a
//! retry works), two applies of one request at once (409), a destroy refused while the
//! node hosts a server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shardlyn_tests::cloudboot::Machine;
use shardlyn_tests::hetzner::FakeHetzner;
use shardlyn_tests::{Session, TestApp, both_engines, spawn_app_with};

const TOKEN: &str = "hcloud-token-terraform-0123456789abcdef";

/// How long a Terraform run may take here before the test gives up.
const RUN_DEADLINE: Duration = Duration::from_secs(180);

struct Cloud {
    app: TestApp,
    fake: FakeHetzner,
    session: Session,
    /// The machines the fake cloud booted (halted when dropped).
    machines: Arc<Mutex<Vec<Machine>>>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn cloud(engine: shardlyn_tests::Engine, email: &str) -> Option<Cloud> {
    if !shardlyn_tests::terraform::terraform_available() {
        eprintln!("SHARDLYN_TEST_SKIP_TERRAFORM=1: skipped");
        return None;
    }
    let fake = FakeHetzner::start(TOKEN).await;
    let tf = tempfile::tempdir().expect("tempdir");
    let cli = shardlyn_tests::terraform::test_cli_config(tf.path());
    let url = fake.url.clone();
    let app = spawn_app_with(engine, move |c| {
        c.cloud.hetzner_api_url = url;
        c.provision.terraform_cli_config = Some(cli);
        c.provision.agent_binary = Some(shardlyn_tests::agent::agent_binary());
    })
    .await;
    let session = app.register(email).await;
    app.post(
        "/v1/credentials",
        Some(&session.access),
        json!({"name": "hetzner", "provider": "hetzner", "config": {"token": TOKEN}}),
    )
    .await
    .expect(201);
    let machines: Arc<Mutex<Vec<Machine>>> = Arc::default();
    let roots = tempfile::tempdir().expect("tempdir");
    let (booted, base) = (machines.clone(), roots.path().to_path_buf());
    fake.on_server_created(move |server| {
        let user_data = server["user_data"].as_str().unwrap_or_default().to_owned();
        let root = base.join(server["id"].to_string());
        std::fs::create_dir_all(&root).expect("machine root");
        booted
            .lock()
            .expect("lock")
            .push(Machine::boot(&user_data, &root));
    });
    Some(Cloud {
        app,
        fake,
        session,
        machines,
        _dirs: vec![tf, roots],
    })
}

impl Cloud {
    async fn get(&self, id: &str) -> Value {
        self.app
            .get(&format!("/v1/provision/{id}"), Some(&self.session.access))
            .await
            .expect(200)
            .body
    }

    /// Waits until the request leaves the `running` statuses; answers it.
    async fn settle(&self, id: &str, running: &[&str]) -> Value {
        let started = Instant::now();
        loop {
            let r = self.get(id).await;
            let status = r["status"].as_str().unwrap_or_default();
            if !running.contains(&status) {
                return r;
            }
            // A machine whose install failed will never join: say so now.
            for m in self.machines.lock().expect("lock").iter_mut() {
                if let Ok(Some(exit)) = m.0.try_wait() {
                    panic!("a booted machine stopped ({exit}) while the request is {status}: {r}");
                }
            }
            assert!(
                started.elapsed() < RUN_DEADLINE,
                "still {status} after {RUN_DEADLINE:?}: {r}\n{}",
                self.log(id).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The latest run's log, as text.
    async fn log(&self, id: &str) -> String {
        let r = self
            .app
            .get(
                &format!("/v1/provision/{id}/logs"),
                Some(&self.session.access),
            )
            .await;
        r.body["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["line"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn create(&self, name: &str, instance_type: &str) -> String {
        let r = self
            .app
            .post(
                "/v1/provision",
                Some(&self.session.access),
                json!({"provider": "hetzner", "region": "fsn1", "instance_type": instance_type, "name": name}),
            )
            .await
            .expect(201);
        r.body["id"].as_str().expect("id").to_owned()
    }

    async fn post(&self, path: &str) -> shardlyn_tests::Resp {
        self.app
            .post(path, Some(&self.session.access), json!({}))
            .await
    }

    async fn plan(&self, id: &str) -> Value {
        self.post(&format!("/v1/provision/{id}/plan"))
            .await
            .expect(202);
        let r = self.settle(id, &["planning"]).await;
        assert_eq!(r["status"], "planned", "{r}\n{}", self.log(id).await);
        r
    }

    fn servers_named(&self, name: &str) -> Vec<Value> {
        self.fake
            .servers()
            .into_iter()
            .filter(|s| s["name"] == name)
            .collect()
    }
}

both_engines! {
    async fn a_node_is_planned_applied_joins_resized_and_destroyed(engine) {
        let Some(cloud) = cloud(engine, "tf@example.com").await else { return };
        let id = cloud.create("game-node-1", "cx23").await;

        // Plan: awaiting approval, with what it does and its price; nothing created yet.
        let planned = cloud.plan(&id).await;
        assert_eq!(planned["plan"]["counts"]["create"].as_i64().map(|n| n >= 2), Some(true), "{planned}");
        let changes = planned["plan"]["changes"].to_string();
        assert!(changes.contains("hcloud_server") && changes.contains("hcloud_firewall"), "{changes}");
        // Priced from the organization's Hetzner price list (the fake's /pricing), as
        // the wizard shows it.
        let pricing = cloud
            .app
            .get("/v1/planner/pricing?provider=hetzner", Some(&cloud.session.access))
            .await
            .expect(200);
        assert!(pricing.text.contains("hetzner_api"), "{}", pricing.text);
        assert!(planned["price_monthly"].as_str().is_some_and(|p| pricing.text.contains(&format!("\"{p}\""))), "{planned}\n{}", pricing.text);
        assert!(cloud.fake.servers().is_empty(), "a plan creates nothing");
        let log = cloud.log(&id).await;
        assert!(log.contains("\"type\":\"planned_change\""), "Terraform's -json lines are logged:\n{log}");
        assert!(!log.contains("shardlyn_reg_"), "the registration token never reaches the log");
        assert!(!log.contains(TOKEN), "the provider token never reaches the log");
        // The plan file (it keeps variables, the token among them) is sealed at rest.
        let sealed: String = sqlx::query_scalar("SELECT sealed_plan FROM provision_requests WHERE id = $1")
            .bind(&id)
            .fetch_one(&cloud.app.state.db.pool)
            .await
            .expect("plan");
        assert!(!sealed.contains("shardlyn_reg_") && !sealed.contains("hcloud"));

        // Apply: exactly that plan; a second apply meanwhile is refused.
        cloud.post(&format!("/v1/provision/{id}/apply")).await.expect(202);
        cloud.post(&format!("/v1/provision/{id}/apply")).await.expect(409);
        let applied = cloud.settle(&id, &["applying", "applied"]).await;
        assert_eq!(applied["status"], "provisioned", "{applied}\n{}", cloud.log(&id).await);
        let servers = cloud.servers_named("game-node-1");
        assert_eq!(servers.len(), 1, "{servers:?}");
        let server = &servers[0];
        assert_eq!(applied["server_id"], server["id"].to_string());
        assert_eq!(applied["ipv4"], server["public_net"]["ipv4"]["ip"]);
        assert_eq!(server["server_type"]["name"], "cx23");
        assert_eq!(server["labels"]["managed-by"], "shardlyn");
        assert!(server["user_data"].as_str().unwrap_or_default().starts_with("#cloud-config"));
        // The agent the user data installed registered as the request's node, and is online.
        let node_id = applied["node_id"].as_str().expect("node").to_owned();
        let node = cloud.app.get(&format!("/v1/nodes/{node_id}"), Some(&cloud.session.access)).await.expect(200);
        assert_eq!(node.body["name"], "game-node-1", "{}", node.text);
        assert_eq!(node.body["public_ipv4"], applied["ipv4"], "the node's public address is the apply's output");
        assert_eq!(cloud.machines.lock().expect("lock").len(), 1);
        // Deleting the node alone would orphan its cloud server: refused.
        cloud
            .app
            .delete(&format!("/v1/nodes/{node_id}"), Some(&cloud.session.access))
            .await
            .expect_error(409, "PROVISIONED_NODE");
        // Its power status comes from the provider and names the request.
        let power = cloud
            .app
            .get(&format!("/v1/nodes/{node_id}/power/status"), Some(&cloud.session.access))
            .await
            .expect(200);
        assert_eq!(power.body["status"], "running", "{}", power.text);
        assert_eq!(power.body["provision_request_id"], id.as_str());
        // Its token was single use.
        let unused: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM node_registration_tokens WHERE provision_request_id = $1 AND used_at IS NULL",
        )
        .bind(&id)
        .fetch_one(&cloud.app.state.db.pool)
        .await
        .expect("count");
        assert_eq!(unused, 0);

        // Resize: a run that changes the type variable; the server keeps its id.
        cloud.app
            .post(&format!("/v1/nodes/{node_id}/resize"), Some(&cloud.session.access), json!({"instance_type": "cx33"}))
            .await
            .expect(202);
        let resized = cloud.settle(&id, &["resizing"]).await;
        assert_eq!(resized["status"], "provisioned", "{resized}\n{}", cloud.log(&id).await);
        assert_eq!(resized["instance_type"], "cx33");
        let after = cloud.servers_named("game-node-1");
        assert_eq!(after.len(), 1);
        assert_eq!(after[0]["id"], server["id"], "resized in place");
        assert_eq!(after[0]["server_type"]["name"], "cx33");
        assert!(cloud.fake.requests().iter().any(|(m, p)| m == "POST" && p.ends_with("/actions/change_type")));

        // A game port on the node's own firewall (the panel's, beside Terraform's).
        cloud
            .app
            .post(
                &format!("/v1/nodes/{node_id}/firewall/rules"),
                Some(&cloud.session.access),
                json!({"protocol": "udp", "port_start": 2456, "port_end": 2458, "source": ["0.0.0.0/0", "::/0"], "description": "valheim"}),
            )
            .await
            .expect(201);
        assert_eq!(cloud.fake.firewalls().len(), 2, "Terraform's base firewall and the panel's");

        // Destroy: the server, both firewalls and the node go.
        let gone = cloud.app.delete(&format!("/v1/provision/{id}"), Some(&cloud.session.access)).await.expect(202);
        assert_eq!(gone.body["status"], "destroying");
        let destroyed = cloud.settle(&id, &["destroying"]).await;
        assert_eq!(destroyed["status"], "destroyed", "{destroyed}\n{}", cloud.log(&id).await);
        assert!(cloud.servers_named("game-node-1").is_empty());
        assert!(cloud.fake.firewalls().is_empty(), "{:?}", cloud.fake.firewalls());
        cloud.app.get(&format!("/v1/nodes/{node_id}"), Some(&cloud.session.access)).await.expect(404);
        // A destroyed request can then be removed from the list.
        cloud.app.delete(&format!("/v1/provision/{id}"), Some(&cloud.session.access)).await.expect(204);
    }

    async fn a_provider_error_mid_apply_fails_with_its_message_and_a_retry_works(engine) {
        let Some(cloud) = cloud(engine, "tf-fault@example.com").await else { return };
        let id = cloud.create("faulty-node", "cx23").await;
        cloud.plan(&id).await;
        cloud.fake.fail_next("POST", "/servers", 403, "resource_limit_exceeded", "server limit reached for this project");
        cloud.post(&format!("/v1/provision/{id}/apply")).await.expect(202);
        let failed = cloud.settle(&id, &["applying"]).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        let message = failed["status_message"].as_str().unwrap_or_default();
        assert!(message.contains("server limit reached"), "the provider's message: {message}");
        assert_eq!(failed["runs"][0]["kind"], "apply");
        assert_eq!(failed["runs"][0]["status"], "failed");
        // What was created before the failure (the firewall) is in the state, kept.
        assert_eq!(cloud.fake.firewalls().len(), 1);
        assert!(cloud.servers_named("faulty-node").is_empty());
        let states: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM provision_states WHERE request_id = $1")
            .bind(&id)
            .fetch_one(&cloud.app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(states, 1);
        // No lock is left behind.
        let locks: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM provision_locks WHERE request_id = $1")
            .bind(&id)
            .fetch_one(&cloud.app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(locks, 0);

        // Retry: plan again (only the server is left to create), apply, the node joins.
        let replanned = cloud.plan(&id).await;
        assert_eq!(replanned["plan"]["counts"]["create"], 1, "{replanned}");
        cloud.post(&format!("/v1/provision/{id}/apply")).await.expect(202);
        let applied = cloud.settle(&id, &["applying", "applied"]).await;
        assert_eq!(applied["status"], "provisioned", "{applied}\n{}", cloud.log(&id).await);
        assert_eq!(cloud.fake.firewalls().len(), 1, "the firewall was not made twice");

        // A node that hosts a server is not destroyed: 409 naming it.
        let node_id = applied["node_id"].as_str().expect("node").to_owned();
        let workload = cloud
            .app
            .post(
                "/v1/workloads",
                Some(&cloud.session.access),
                json!({"name": "Survival", "images": ["busybox:1.36"], "startup": "sh"}),
            )
            .await
            .expect(201);
        let instance = shardlyn_panel::db::new_id();
        // A server row on the node (its install does not matter here).
        sqlx::query(
            "INSERT INTO instances (id, org_id, node_id, workload_id, name, image, memory_mb, swap_mb, \
             cpu_percent, disk_mb, pids, io_weight, state, desired_state, created_at, updated_at) \
             SELECT $1, org_id, $2, $3, 'survival-world', 'busybox:1.36', 1024, 0, 100, 2048, 0, 500, \
             'offline', 'stopped', 0, 0 FROM nodes WHERE id = $2",
        )
        .bind(&instance)
        .bind(&node_id)
        .bind(workload.body["id"].as_str().expect("workload"))
        .execute(&cloud.app.state.db.pool)
        .await
        .expect("an instance on the node");
        let refused = cloud.app.delete(&format!("/v1/provision/{id}"), Some(&cloud.session.access)).await;
        let refused = refused.expect_error(409, "NODE_NOT_DRAINED");
        assert!(refused.text.contains("survival-world"), "{}", refused.text);
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(&instance)
            .execute(&cloud.app.state.db.pool)
            .await
            .expect("drained");
        cloud.app.delete(&format!("/v1/provision/{id}"), Some(&cloud.session.access)).await.expect(202);
        let destroyed = cloud.settle(&id, &["destroying"]).await;
        assert_eq!(destroyed["status"], "destroyed", "{destroyed}\n{}", cloud.log(&id).await);
        assert!(cloud.fake.servers().is_empty() && cloud.fake.firewalls().is_empty());
    }
}
