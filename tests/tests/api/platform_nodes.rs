//! Platform nodes (issue 19 §1): a platform admin marks a node of the operator's
//! organization as the platform's; organizations whose plan has the `platform` pool
//! place servers there (by best fit or by name), see only the node's public face and
//! their own servers, and never reach the node itself (details, inventory, metrics,
//! terminal, writes: 404 as for any other organization's node). Unmarking stops new
//! placements; servers already there keep working. Placement, moves and the planner
//! treat the platform's nodes as a pool. Billing is on (`stripe.secret_key` set, no
//! Stripe request is made: no Stripe fake is used); plan pools are set in the database.
//! Both engines; the last test runs a real agent (`LocalAgent`) and Docker.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use shardlyn_tests::agent::{LocalAgent, free_port, register_agent, wait_instance, wait_node};
use shardlyn_tests::shell::Shell;
use shardlyn_tests::{Engine, Session, TestApp, both_engines, spawn_app_with};

const GIB: i64 = 1024 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(90);

/// A panel with billing on (a Stripe key; nothing here calls Stripe).
async fn billing_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, |c| {
        c.stripe.secret_key = shardlyn_panel::config::Secret("sk_test_x".into());
    })
    .await
}

/// Sets the node pools of the free plan every organization holds.
async fn free_plan_pools(app: &TestApp, pools: &str) {
    sqlx::query("UPDATE plans SET pools = $1 WHERE id = 'plan-free'")
        .bind(pools)
        .execute(&app.state.db.pool)
        .await
        .expect("set the free plan's pools");
}

/// A tenant: a user with an organization of their own (capped by the free plan) and a
/// workload in it.
struct Tenant {
    session: Session,
    org: String,
    workload: String,
}

impl Tenant {
    fn t(&self) -> Option<&str> {
        Some(self.session.access.as_str())
    }
}

async fn tenant(app: &TestApp, email: &str, org_name: &str) -> Tenant {
    let session = app.register(email).await;
    let org = app.create_org(&session.access, org_name).await;
    let workload = app
        .post(
            "/v1/workloads",
            Some(&session.access),
            json!({
                "organization_id": org,
                "name": "Busybox",
                "images": [{"label": "Busybox", "image": "busybox:1.36"}],
                "startup": "cat",
                "config": {"stop": "^C"},
            }),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("workload id")
        .to_owned();
    Tenant {
        session,
        org,
        workload,
    }
}

/// The ids of a `data` list.
fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|n| n["id"].as_str().map(str::to_owned))
        .collect()
}

/// Every node route a tenant must not reach on `node` (all 404 for them).
async fn node_routes_are_hidden(app: &TestApp, token: &str, node: &str) {
    let t = Some(token);
    for path in [
        format!("/v1/nodes/{node}"),
        format!("/v1/nodes/{node}/inventory"),
        format!("/v1/nodes/{node}/inventory/system"),
        format!("/v1/nodes/{node}/inventory/containers"),
        format!("/v1/nodes/{node}/inventory/processes"),
        format!("/v1/nodes/{node}/metrics/history"),
        format!("/v1/nodes/{node}/power/status"),
    ] {
        app.get(&path, t).await.expect_error(404, "NOT_FOUND");
    }
    app.put(&format!("/v1/nodes/{node}"), t, json!({"name": "mine"}))
        .await
        .expect_error(404, "NOT_FOUND");
    app.post(&format!("/v1/nodes/{node}/cordon"), t, json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    app.post(&format!("/v1/nodes/{node}/migrate"), t, json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    app.post(&format!("/v1/nodes/{node}/terminal/tickets"), t, json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    let terminal = format!("{}/v1/nodes/{node}/terminal", app.base);
    let refused = Shell::connect(&terminal, t).await.err().expect("refused");
    assert_eq!(refused.status, 404, "the terminal of a platform node");
    app.delete(&format!("/v1/nodes/{node}"), t)
        .await
        .expect_error(404, "NOT_FOUND");
}

both_engines! {
    async fn platform_nodes_are_a_pool_of_the_plans_that_allow_it(engine) {
        let app = billing_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = Some(admin.access.as_str());
        // The operator's organization (a platform admin's: never capped) and its node.
        let operator = app.create_org(&admin.access, "Operator").await;
        let rack = app.register_node(&admin.access, Some(&operator), "rack-7.internal").await;
        app.mark_node_online(&rack, 16 * GIB, 200 * GIB).await;
        app.put(&format!("/v1/nodes/{rack}"), a, json!({"public_ipv4": "203.0.113.7"}))
            .await
            .expect(200);
        // Another node of the operator's, never shared.
        let private = app.register_node(&admin.access, Some(&operator), "office").await;
        app.mark_node_online(&private, 64 * GIB, 500 * GIB).await;
        let ta = tenant(&app, "tenant-a@example.com", "A Games").await;
        let tb = tenant(&app, "tenant-b@example.com", "B Games").await;
        let server = |name: &str, t: &Tenant, extra: Value| {
            let mut body = json!({"name": name, "workload_id": t.workload});
            if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
                b.extend(extra);
            }
            body
        };

        // Only platform admins mark nodes and list them.
        let mark = format!("/v1/admin/nodes/{rack}/platform");
        let body = json!({"platform": true, "public_name": "Frankfurt 1", "location": "Frankfurt, DE"});
        app.put(&mark, ta.t(), body.clone()).await.expect_error(403, "FORBIDDEN");
        app.get("/v1/admin/platform-nodes", ta.t()).await.expect_error(403, "FORBIDDEN");
        app.put("/v1/admin/nodes/no-such-node/platform", a, body.clone())
            .await
            .expect_error(404, "NOT_FOUND");
        let r = app
            .put(&mark, a, json!({"platform": true, "location": "x".repeat(65)}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "location", "{}", r.text);
        let r = app.put(&mark, a, body).await.expect(200);
        assert_eq!(r.body["platform"], true, "{}", r.text);
        assert_eq!(r.body["public_name"], "Frankfurt 1");
        assert_eq!(r.body["location"], "Frankfurt, DE");
        assert_eq!(r.body["organization_name"], "Operator");
        assert_eq!(r.body["capacity"]["memory_total_mb"], 16 * 1024);
        let listed = app.get("/v1/admin/platform-nodes", a).await.expect(200);
        assert_eq!(ids(&listed.body), vec![rack.clone()], "{}", listed.text);
        let every = app.get("/v1/admin/platform-nodes?all=true", a).await.expect(200);
        let mut all = ids(&every.body);
        all.sort();
        let mut want = vec![rack.clone(), private.clone()];
        want.sort();
        assert_eq!(all, want, "{}", every.text);
        // The operator still sees its node whole.
        let n = app.get(&format!("/v1/nodes/{rack}"), a).await.expect(200);
        assert_eq!((n.body["platform"].as_bool(), n.body["name"].as_str()), (Some(true), Some("rack-7.internal")));

        // A plan without the platform pool: nothing listed, nowhere to place, the node
        // named is as unknown as any other organization's.
        let list = format!("/v1/platform-nodes?organization_id={}", ta.org);
        let r = app.get(&list, ta.t()).await.expect(200);
        assert_eq!((r.body["allowed"].as_bool(), r.body["data"].as_array().map(Vec::len)), (Some(false), Some(0)), "{}", r.text);
        app.post("/v1/instances", ta.t(), server("s", &ta, json!({})))
            .await
            .expect_error(409, "NO_NODE_AVAILABLE");
        app.post("/v1/instances", ta.t(), server("s", &ta, json!({"node_id": rack})))
            .await
            .expect_error(404, "NOT_FOUND");

        // The free plan gains the pool: the tenant sees the public face only.
        free_plan_pools(&app, r#"["platform"]"#).await;
        let r = app.get(&list, ta.t()).await.expect(200);
        assert_eq!(r.body["allowed"], true, "{}", r.text);
        assert_eq!(
            r.body["data"],
            json!([{
                "id": rack, "name": "Frankfurt 1", "location": "Frankfurt, DE",
                "public_ipv4": "203.0.113.7", "public_ipv6": null, "online": true,
                "platform": true, "accepting": true,
            }]),
            "only the public face: {}",
            r.text
        );
        // Placed by best fit on the platform node (the operator's other node is not in
        // the pool, however much room it has).
        let created = app.post("/v1/instances", ta.t(), server("a1", &ta, json!({}))).await.expect(201);
        assert_eq!(created.body["node_id"], rack.as_str(), "{}", created.text);
        let a1 = created.body["id"].as_str().expect("id").to_owned();
        // Another organization's private node stays out of reach by name.
        app.post("/v1/instances", tb.t(), server("b0", &tb, json!({"node_id": private})))
            .await
            .expect_error(404, "NOT_FOUND");
        let b1 = app
            .post("/v1/instances", tb.t(), server("b1", &tb, json!({"node_id": rack})))
            .await
            .expect(201);
        assert_eq!(b1.body["node_id"], rack.as_str());
        let b1 = b1.body["id"].as_str().expect("id").to_owned();

        // Free room counts every tenant's servers on the node.
        let cap = app.get("/v1/admin/platform-nodes", a).await.expect(200);
        let cap = &cap.body["data"][0]["capacity"];
        assert_eq!((cap["instances"].as_i64(), cap["tenants"].as_i64()), (Some(2), Some(2)), "{cap}");
        assert_eq!(cap["memory_used_mb"], 2048, "{cap}");

        // Tenants see their own servers only, and never the node itself.
        app.get(&format!("/v1/instances/{a1}"), ta.t()).await.expect(200);
        app.get(&format!("/v1/instances/{a1}"), tb.t()).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/instances/{b1}"), ta.t()).await.expect_error(404, "NOT_FOUND");
        let mine = app.get(&format!("/v1/instances?organization_id={}", ta.org), ta.t()).await.expect(200);
        assert_eq!(ids(&mine.body), vec![a1.clone()], "{}", mine.text);
        node_routes_are_hidden(&app, &ta.session.access, &rack).await;
        node_routes_are_hidden(&app, &tb.session.access, &rack).await;
        app.get(&format!("/v1/nodes?organization_id={}", ta.org), ta.t()).await.expect(200);

        // The planner counts the pool, named by its public name and marked.
        let fit = app
            .post("/v1/planner/suggest-fit", ta.t(),
                json!({"organization_id": ta.org, "memory_mb": 512, "disk_mb": 1024, "cpu": 0.5}))
            .await
            .expect(200);
        assert_eq!(fit.body["node"]["id"], rack.as_str(), "{}", fit.text);
        assert_eq!(fit.body["node"]["name"], "Frankfurt 1", "{}", fit.text);
        let reasons = fit.body["reasons"].as_array().expect("reasons");
        assert_eq!(reasons.len(), 1, "only the pool, not the operator's own nodes: {}", fit.text);
        assert_eq!((reasons[0]["platform"].as_bool(), reasons[0]["instances"].as_i64()), (Some(true), Some(1)), "{}", fit.text);

        // A move stays within the pools: a second platform node is a target (the move
        // then needs both agents, which do not run here); the operator's own node is not.
        let rack2 = app.register_node(&admin.access, Some(&operator), "rack-8").await;
        app.mark_node_online(&rack2, 16 * GIB, 200 * GIB).await;
        let migrate = format!("/v1/instances/{a1}/migrate");
        app.post(&migrate, ta.t(), json!({"target_node_id": private}))
            .await
            .expect_error(404, "NOT_FOUND");
        app.post(&migrate, ta.t(), json!({})).await.expect_error(409, "NO_NODE_AVAILABLE");
        app.put(&format!("/v1/admin/nodes/{rack2}/platform"), a, json!({"platform": true}))
            .await
            .expect(200);
        let r = app.post(&migrate, ta.t(), json!({"target_node_id": rack2})).await;
        assert!(r.status == 409 || r.status == 503, "past the target check: {}", r.text);
        assert_ne!(r.body["code"], "NO_NODE_AVAILABLE", "{}", r.text);
        assert_ne!(r.body["code"], "NOT_FOUND", "{}", r.text);
        let r = app.post(&migrate, ta.t(), json!({})).await;
        assert_ne!(r.body["code"], "NO_NODE_AVAILABLE", "rack-8 is chosen: {}", r.text);
        app.put(&format!("/v1/admin/nodes/{rack2}/platform"), a, json!({"platform": false}))
            .await
            .expect(200);

        // Unmarked: no new placements, by best fit or by name; servers already there
        // stay, and their tenant still sees where they are.
        let r = app.put(&mark, a, json!({"platform": false})).await.expect(200);
        assert_eq!((r.body["platform"].as_bool(), r.body["public_name"].as_str()), (Some(false), Some("Frankfurt 1")), "{}", r.text);
        let tc = tenant(&app, "tenant-c@example.com", "C Games").await;
        app.post("/v1/instances", tc.t(), server("c1", &tc, json!({})))
            .await
            .expect_error(409, "NO_NODE_AVAILABLE");
        app.post("/v1/instances", tc.t(), server("c1", &tc, json!({"node_id": rack})))
            .await
            .expect_error(404, "NOT_FOUND");
        let c_list = app.get(&format!("/v1/platform-nodes?organization_id={}", tc.org), tc.t()).await.expect(200);
        assert_eq!(c_list.body["data"], json!([]), "{}", c_list.text);
        let r = app.get(&list, ta.t()).await.expect(200);
        assert_eq!(ids(&r.body), vec![rack.clone()], "{}", r.text);
        assert_eq!((r.body["data"][0]["platform"].as_bool(), r.body["data"][0]["accepting"].as_bool()), (Some(false), Some(false)));
        app.get(&format!("/v1/instances/{a1}"), ta.t()).await.expect(200);
        app.get(&format!("/v1/instances/{b1}"), tb.t()).await.expect(200);
    }

    async fn with_billing_off_every_organization_may_use_platform_nodes(engine) {
        let app = spawn_app_with(engine, |_| {}).await;
        let admin = app.bootstrap_admin().await;
        let a = Some(admin.access.as_str());
        let operator = app.create_org(&admin.access, "Operator").await;
        let rack = app.register_node(&admin.access, Some(&operator), "rack").await;
        app.mark_node_online(&rack, 8 * GIB, 100 * GIB).await;
        app.put(&format!("/v1/admin/nodes/{rack}/platform"), a, json!({"platform": true}))
            .await
            .expect(200);
        let t = tenant(&app, "free@example.com", "Free").await;
        let r = app.get(&format!("/v1/platform-nodes?organization_id={}", t.org), t.t()).await.expect(200);
        assert_eq!(r.body["allowed"], true, "{}", r.text);
        // No public name: tenants see the node's name.
        assert_eq!(r.body["data"][0]["name"], "rack", "{}", r.text);
        let created = app
            .post("/v1/instances", t.t(), json!({"name": "s", "workload_id": t.workload}))
            .await
            .expect(201);
        assert_eq!(created.body["node_id"], rack.as_str());
        // Its own node, once it has one, is in the pool too: the emptier one wins.
        let own = app.register_node(&t.session.access, Some(&t.org), "own").await;
        app.mark_node_online(&own, 32 * GIB, 100 * GIB).await;
        let created = app
            .post("/v1/instances", t.t(), json!({"name": "s2", "workload_id": t.workload}))
            .await
            .expect(201);
        assert_eq!(created.body["node_id"], own.as_str());
    }
}

/// A tenant's server on a platform node works through the instance routes (power,
/// console, files, backups) with a real agent registered in the operator's
/// organization, while the node itself stays out of the tenant's reach.
async fn tenant_server_runs_on_a_platform_node(engine: Engine) {
    let app = billing_app(engine).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let operator = app.create_org(a, "Operator").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = register_agent(&app, a, json!({"organization_id": operator}), dir.path()).await;
    let node = config.node_id.clone();
    let agent = LocalAgent::start(config, dir.path());
    wait_node(&app, a, &node, "online").await;
    app.put(
        &format!("/v1/admin/nodes/{node}/platform"),
        Some(a),
        json!({"platform": true, "public_name": "Shared 1"}),
    )
    .await
    .expect(200);
    free_plan_pools(&app, r#"["platform"]"#).await;

    let tenant = app.register("tenant@example.com").await;
    let t = Some(tenant.access.as_str());
    let org = app.create_org(&tenant.access, "Tenant").await;
    shardlyn_tests::docker::ensure_test_image();
    let workload = app
        .post(
            "/v1/workloads/from-template",
            t,
            json!({"template": "busybox-test", "organization_id": org}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("workload")
        .to_owned();
    // The tenant names no node: the platform node is the only one of its pools.
    let created = app
        .post(
            "/v1/instances",
            t,
            json!({"name": "tenant-server", "workload_id": workload, "ports": [free_port()]}),
        )
        .await
        .expect(201);
    assert_eq!(created.body["node_id"], node.as_str());
    let id = created.body["id"].as_str().expect("id").to_owned();
    let _container = ContainerGuard(shardlyn_agent::instances::container_name_in(
        dir.path(),
        &id,
    ));
    wait_instance(&app, &tenant.access, &id, "offline", WAIT).await;

    // Power.
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &tenant.access, &id, "running", WAIT).await;
    // Console.
    let ticket = app
        .post(&format!("/v1/instances/{id}/console/tickets"), t, json!({}))
        .await
        .expect(201)
        .body["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let mut console = shardlyn_tests::console::Console::connect(
        &format!("{}/v1/instances/{id}/console?ticket={ticket}", app.base),
        None,
    )
    .await
    .expect("console opens");
    console
        .wait_for(WAIT, "auth success", |e| e.event == "auth success")
        .await;
    console.send("send command", &["hello platform"]).await;
    console
        .wait_for(WAIT, "echo", |e| {
            e.event == "console output" && e.arg().contains("hello platform")
        })
        .await;
    console.close().await;
    // Files.
    app.raw(
        Method::PUT,
        &format!("/v1/instances/{id}/files/content?path=/note.txt"),
        t,
        "text/plain",
        b"on the platform".to_vec(),
    )
    .await
    .expect(200);
    let read = app
        .get(
            &format!("/v1/instances/{id}/files/content?path=/note.txt"),
            t,
        )
        .await
        .expect(200);
    assert_eq!(read.text, "on the platform");
    // Backups.
    let backup = app
        .post(
            &format!("/v1/instances/{id}/backups"),
            t,
            json!({"name": "b1"}),
        )
        .await
        .expect(202);
    let bid = backup.body["id"].as_str().expect("backup id").to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = app
            .get(&format!("/v1/instances/{id}/backups"), t)
            .await
            .expect(200);
        let status = list.body["data"]
            .as_array()
            .and_then(|d| d.iter().find(|b| b["id"] == bid.as_str()))
            .map(|b| b["status"].as_str().unwrap_or_default().to_owned());
        if status.as_deref() == Some("completed") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backup never completed: {}",
            list.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The node itself: the operator sees it whole, the tenant not at all.
    app.get(&format!("/v1/nodes/{node}/inventory/system"), Some(a))
        .await
        .expect(200);
    node_routes_are_hidden(&app, &tenant.access, &node).await;

    app.post(&format!("/v1/instances/{id}/stop"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, &tenant.access, &id, "offline", WAIT).await;
    app.delete(&format!("/v1/instances/{id}"), t).await;
    agent.stop().await;
}

/// Removes a container even when the test fails.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

mod tenant_server_on_a_platform_node {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::tenant_server_runs_on_a_platform_node(shardlyn_tests::Engine::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::tenant_server_runs_on_a_platform_node(shardlyn_tests::Engine::Postgres).await;
    }
}
