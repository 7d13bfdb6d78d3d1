//! Instances in the panel: create on a named node or by best fit, port allocations
//! (explicit, automatic, collisions, concurrent creates), variable and limit validation,
//! tenancy and permissions, redaction, update, delete, nodes and workloads in use, and
//! the spec built for the agent. Nodes are registered through the API and marked online
//! in the database: no agent runs, so pushes and removals see the node as not connected.

use serde_json::{Value, json};
use shardlyn_panel::instances::{spec::build_spec, store};
use shardlyn_proto::instance::{DesiredState, InstanceState, StopSpec};
use shardlyn_tests::{Resp, Session, TestApp, both_engines, spawn_app, spawn_app_with};

const GIB: i64 = 1024 * 1024 * 1024;

/// An organization with the busybox test workload and one online node (8 GiB, 100 GiB).
struct Fixture {
    owner: Session,
    org: String,
    workload: String,
    node: String,
}

async fn busybox_workload(app: &TestApp, token: &str, org: &str) -> String {
    let r = app
        .post(
            "/v1/workloads/from-template",
            Some(token),
            json!({"template": "busybox-test", "organization_id": org}),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("workload id").to_string()
}

async fn online_node(app: &TestApp, token: &str, org: &str, name: &str, memory_gib: i64) -> String {
    let node = app.register_node(token, Some(org), name).await;
    app.mark_node_online(&node, memory_gib * GIB, 100 * GIB)
        .await;
    node
}

async fn fixture(app: &TestApp, email: &str) -> Fixture {
    let owner = app.register(email).await;
    let org = app.create_org(&owner.access, "Game hosting").await;
    let workload = busybox_workload(app, &owner.access, &org).await;
    let node = online_node(app, &owner.access, &org, "node-a", 8).await;
    Fixture {
        owner,
        org,
        workload,
        node,
    }
}

impl Fixture {
    fn t(&self) -> Option<&str> {
        Some(self.owner.access.as_str())
    }

    /// A create body on the fixture's workload with `extra` merged in.
    fn body(&self, name: &str, extra: Value) -> Value {
        let mut body = json!({"name": name, "workload_id": self.workload});
        let Value::Object(extra) = extra else {
            panic!("extra fields must be an object");
        };
        for (k, v) in extra {
            body[k.as_str()] = v;
        }
        body
    }
}

async fn create(app: &TestApp, token: Option<&str>, body: Value) -> Resp {
    app.post("/v1/instances", token, body).await
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().expect("instance id").to_string()
}

fn ports_of(r: &Resp) -> Vec<u64> {
    r.body["allocations"]
        .as_array()
        .expect("allocations")
        .iter()
        .map(|a| a["port"].as_u64().expect("port"))
        .collect()
}

#[track_caller]
fn expect_field(r: Resp, field: &str) -> Resp {
    let r = r.expect_error(422, "VALIDATION_ERROR");
    assert_eq!(r.body["field"], field, "{}", r.text);
    r
}

both_engines! {
    async fn instance_crud_on_a_named_node(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let org = app.create_org(&admin.access, "Crud").await;
        let workload = busybox_workload(&app, &admin.access, &org).await;
        let node = online_node(&app, &admin.access, &org, "crud-node", 8).await;
        let t = Some(admin.access.as_str());
        let r = create(&app, t, json!({
            "name": "  Console  ", "description": "for tests", "workload_id": workload,
            "node_id": node, "ports": [30000, 30001], "variables": {"GREETING": "hi"},
            "limits": {"memory_mb": 512, "cpu_percent": 150},
        }))
        .await
        .expect(201);
        let id = id_of(&r);
        let b = &r.body;
        assert_eq!(b["name"], "Console");
        assert_eq!(b["description"], "for tests");
        assert_eq!(b["organization_id"], org.as_str());
        assert_eq!(b["node_id"], node.as_str());
        assert_eq!(b["workload_id"], workload.as_str());
        assert_eq!(b["image"], "shardlyn-test/busybox:latest");
        assert_eq!(b["state"], "installing", "the egg has an install script");
        assert_eq!(b["desired_state"], "stopped");
        assert_eq!(b["limits"], json!({"memory_mb": 512, "swap_mb": 0, "cpu_percent": 150,
            "disk_mb": 10240, "pids": 512, "io_weight": 500}));
        assert_eq!(b["allocations"], json!([
            {"ip": "0.0.0.0", "port": 30000, "primary": true},
            {"ip": "0.0.0.0", "port": 30001, "primary": false},
        ]));
        assert_eq!(b["variables"], json!({"GREETING": "hi"}));
        assert!(b["installed_at"].is_null());
        assert!(b["created_at"].as_str().is_some_and(|s| s.ends_with('Z')), "{}", r.text);

        let got = app.get(&format!("/v1/instances/{id}"), t).await.expect(200);
        assert_eq!(got.body, r.body);
        let list = app.get(&format!("/v1/instances?organization_id={org}"), t).await.expect(200);
        assert_eq!(list.body["pagination"]["total"], 1);
        assert_eq!(list.body["data"][0], r.body);
        let on_node = app.get(&format!("/v1/instances?organization_id={org}&node_id={node}"), t).await.expect(200);
        assert_eq!(on_node.body["data"].as_array().map(Vec::len), Some(1));
        let elsewhere = app.get(&format!("/v1/instances?organization_id={org}&node_id=nope"), t).await.expect(200);
        assert_eq!(elsewhere.body["pagination"]["total"], 0);
        let personal = app.get("/v1/instances", t).await.expect(200);
        assert_eq!(personal.body["pagination"]["total"], 0, "scoped to the personal org by default");

        // Update merges: what is left out keeps its value.
        let u = app.put(&format!("/v1/instances/{id}"), t, json!({
            "name": "Renamed", "variables": {"GREETING": "hello again"}, "limits": {"memory_mb": 2048},
        }))
        .await
        .expect(200);
        assert_eq!(u.body["name"], "Renamed");
        assert_eq!(u.body["description"], "for tests");
        assert_eq!(u.body["variables"]["GREETING"], "hello again");
        assert_eq!(u.body["limits"]["memory_mb"], 2048);
        assert_eq!(u.body["limits"]["cpu_percent"], 150);
        assert_eq!(u.body["allocations"], r.body["allocations"]);
        expect_field(app.put(&format!("/v1/instances/{id}"), t, json!({"limits": {"io_weight": 1}})).await, "limits.io_weight");
        expect_field(app.put(&format!("/v1/instances/{id}"), t, json!({"image": "alpine"})).await, "image");
        expect_field(app.put(&format!("/v1/instances/{id}"), t, json!({"name": " "})).await, "name");
        app.put(&format!("/v1/instances/{id}"), t, json!({"node_id": node})).await.expect_error(400, "BAD_REQUEST");
        let null_resets = app.put(&format!("/v1/instances/{id}"), t, json!({"variables": {"GREETING": null}})).await.expect(200);
        assert_eq!(null_resets.body["variables"]["GREETING"], "hello from shardlyn");

        // No agent runs: the node is not connected, so delete needs force.
        app.delete(&format!("/v1/instances/{id}"), t).await.expect_error(409, "NODE_OFFLINE");
        app.get(&format!("/v1/instances/{id}"), t).await.expect(200);
        app.delete(&format!("/v1/instances/{id}?force=true"), t).await.expect(204);
        app.get(&format!("/v1/instances/{id}"), t).await.expect_error(404, "NOT_FOUND");
        app.delete(&format!("/v1/instances/{id}?force=true"), t).await.expect_error(404, "NOT_FOUND");
        // The ports are free again.
        create(&app, t, json!({"name": "again", "workload_id": workload, "node_id": node, "ports": [30000]}))
            .await
            .expect(201);

        let audit = app.get("/v1/admin/audit-logs?action=instance&per_page=100", t).await.expect(200);
        let actions: Vec<&str> = audit.body["data"].as_array().expect("entries").iter()
            .filter(|e| e["result"] == "success")
            .filter_map(|e| e["action"].as_str())
            .collect();
        for action in ["instance.create", "instance.update", "instance.delete"] {
            assert!(actions.contains(&action), "{action} audited: {actions:?}");
        }
    }

    async fn best_fit_placement_skips_cordoned_offline_and_full_nodes(engine) {
        let app = spawn_app(engine).await;
        let f = fixture(&app, "place@example.com").await;
        let t = f.t();
        // node-a (fixture): 8 GiB. small: 4 GiB. big but cordoned, offline, or short of disk.
        let small = online_node(&app, &f.owner.access, &f.org, "small", 4).await;
        let cordoned = online_node(&app, &f.owner.access, &f.org, "cordoned", 64).await;
        app.post(&format!("/v1/nodes/{cordoned}/cordon"), t, json!({})).await.expect(200);
        let offline = online_node(&app, &f.owner.access, &f.org, "offline", 64).await;
        app.mark_node_offline(&offline).await;
        let no_disk = app.register_node(&f.owner.access, Some(&f.org), "no-disk").await;
        app.mark_node_online(&no_disk, 64 * GIB, GIB).await;
        let never = app.register_node(&f.owner.access, Some(&f.org), "never-seen").await;

        let place = |name: &str, memory: i64| create(&app, t, f.body(name, json!({"limits": {"memory_mb": memory}})));
        let first = place("one", 1024).await.expect(201);
        assert_eq!(first.body["node_id"], f.node.as_str(), "8 GiB free beats 4 GiB");
        let second = place("two", 3072).await.expect(201);
        assert_eq!(second.body["node_id"], f.node.as_str(), "7 GiB free beats 4 GiB");
        let third = place("three", 2048).await.expect(201);
        assert_eq!(third.body["node_id"], small.as_str(), "4 GiB free on both: the one with less CPU handed out wins");
        let r = place("too big", 6000).await.expect_error(409, "NO_NODE_AVAILABLE");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("6000 MiB")), "{}", r.text);

        // Named nodes: cordoned is refused, offline is accepted (the spec waits for it).
        let r = create(&app, t, f.body("c", json!({"node_id": cordoned}))).await.expect_error(409, "NODE_CORDONED");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("cordoned")));
        let r = create(&app, t, f.body("o", json!({"node_id": never}))).await.expect(201);
        assert_eq!(r.body["node_id"], never.as_str());
        create(&app, t, f.body("u", json!({"node_id": "no-such-node"}))).await.expect_error(404, "NOT_FOUND");

        // An organization whose only node is offline has nowhere to place.
        let lonely = app.create_org(&f.owner.access, "Lonely").await;
        let workload = busybox_workload(&app, &f.owner.access, &lonely).await;
        let r = create(&app, t, json!({"name": "x", "workload_id": workload})).await.expect_error(409, "NO_NODE_AVAILABLE");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("no nodes")), "{}", r.text);
        app.register_node(&f.owner.access, Some(&lonely), "down").await;
        let r = create(&app, t, json!({"name": "x", "workload_id": workload})).await.expect_error(409, "NO_NODE_AVAILABLE");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("offline or cordoned")), "{}", r.text);
    }

    async fn a_node_sets_its_own_allocation_address_and_port_range(engine) {
        let app = spawn_app(engine).await;
        let f = fixture(&app, "alloc@example.com").await;
        let t = f.t();
        let node_path = format!("/v1/nodes/{}", f.node);
        let n = app.get(&node_path, t).await.expect(200);
        assert!(n.body["allocation_ip"].is_null() && n.body["port_range"].is_null(), "{}", n.text);
        let n = app
            .put(&node_path, t, json!({"allocation_ip": "10.0.0.7", "port_range": {"start": 30000, "end": 30001}}))
            .await
            .expect(200);
        assert_eq!(n.body["allocation_ip"], "10.0.0.7");
        assert_eq!(n.body["port_range"], json!({"start": 30000, "end": 30001}));
        // A rename leaves them as they are.
        let n = app.put(&node_path, t, json!({"name": "shared-host"})).await.expect(200);
        assert_eq!((n.body["name"].as_str(), n.body["port_range"]["end"].as_u64()), (Some("shared-host"), Some(30001)));

        // Refused without a change.
        for (body, field) in [
            (json!({"allocation_ip": "not-an-ip"}), "allocation_ip"),
            (json!({"port_range": {"start": 1000, "end": 2000}}), "port_range"),
            (json!({"port_range": {"start": 3000, "end": 2000}}), "port_range"),
            (json!({"name": "x", "port_range": {"start": 3000, "end": 2000}}), "port_range"),
        ] {
            let r = app.put(&node_path, t, body).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{}", r.text);
        }
        app.put(&node_path, t, json!({"ports": [1]})).await.expect(400);
        let n = app.get(&node_path, t).await.expect(200);
        assert_eq!(n.body["name"], "shared-host", "a refused update wrote nothing");
        assert_eq!(n.body["port_range"]["start"], 30000);

        // Automatic ports come from the node's range, on its address.
        let node = json!(f.node);
        let a = create(&app, t, f.body("a", json!({"node_id": node}))).await.expect(201);
        assert_eq!(ports_of(&a), [30000]);
        assert_eq!(a.body["allocations"][0]["ip"], "10.0.0.7");
        let b = create(&app, t, f.body("b", json!({"node_id": node}))).await.expect(201);
        assert_eq!(ports_of(&b), [30001]);
        let r = create(&app, t, f.body("c", json!({"node_id": node}))).await.expect_error(409, "NO_PORT_AVAILABLE");
        assert!(r.text.contains("30000-30001"), "{}", r.text);

        // `null` puts the panel's defaults back.
        let n = app.put(&node_path, t, json!({"allocation_ip": null, "port_range": null})).await.expect(200);
        assert!(n.body["allocation_ip"].is_null() && n.body["port_range"].is_null(), "{}", n.text);
        let d = create(&app, t, f.body("d", json!({"node_id": node}))).await.expect(201);
        assert_eq!(d.body["allocations"][0]["ip"], app.state.config.instances.allocation_ip.as_str());
    }

    async fn ports_are_exclusive_per_node(engine) {
        let app = spawn_app_with(engine, |c| {
            c.instances.port_range_start = 40000;
            c.instances.port_range_end = 40003;
        })
        .await;
        let f = fixture(&app, "ports@example.com").await;
        let t = f.t();
        let node = json!(f.node);
        let auto = create(&app, t, f.body("a", json!({"node_id": node, "port_count": 2}))).await.expect(201);
        assert_eq!(ports_of(&auto), [40000, 40001]);
        assert_eq!(auto.body["allocations"][0]["primary"], true);
        create(&app, t, f.body("b", json!({"node_id": node, "ports": [40002]}))).await.expect(201);
        let next = create(&app, t, f.body("c", json!({"node_id": node}))).await.expect(201);
        assert_eq!(ports_of(&next), [40003], "one port by default, the lowest free");
        let r = create(&app, t, f.body("d", json!({"node_id": node}))).await.expect_error(409, "NO_PORT_AVAILABLE");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("40000-40003")), "{}", r.text);

        let r = create(&app, t, f.body("e", json!({"node_id": node, "ports": [41000, 40001]})))
            .await
            .expect_error(409, "PORT_IN_USE");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("40001")), "{}", r.text);
        // Nothing of the failed create is left behind: 41000 is still free.
        create(&app, t, f.body("f", json!({"node_id": node, "ports": [41000]}))).await.expect(201);
        // Another node has its own ports.
        let other = online_node(&app, &f.owner.access, &f.org, "node-b", 8).await;
        create(&app, t, f.body("g", json!({"node_id": other, "ports": [40001]}))).await.expect(201);

        // Two creates racing for one port: exactly one wins.
        let (x, y) = tokio::join!(
            create(&app, t, f.body("x", json!({"node_id": node, "ports": [42000]}))),
            create(&app, t, f.body("y", json!({"node_id": node, "ports": [42000]}))),
        );
        let mut statuses = [x.status, y.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "x: {} / y: {}", x.text, y.text);
        let loser = if x.status == 409 { x } else { y };
        loser.expect_error(409, "PORT_IN_USE");
        let list = app.get(&format!("/v1/instances?organization_id={}&node_id={}", f.org, f.node), t).await.expect(200);
        let owners = list.body["data"].as_array().expect("data").iter()
            .filter(|i| i["allocations"].as_array().is_some_and(|a| a.iter().any(|a| a["port"] == 42000)))
            .count();
        assert_eq!(owners, 1);

        for (body, field) in [
            (json!({"ports": [80]}), "ports[0]"),
            (json!({"ports": [70000]}), "ports[0]"),
            (json!({"ports": [43000, 43000]}), "ports[1]"),
            (json!({"ports": []}), "ports"),
            (json!({"ports": [43000], "port_count": 1}), "port_count"),
            (json!({"port_count": 0}), "port_count"),
        ] {
            expect_field(create(&app, t, f.body("bad", body)).await, field);
        }
    }

    async fn invalid_input_names_the_field(engine) {
        let app = spawn_app(engine).await;
        let f = fixture(&app, "invalid@example.com").await;
        let t = f.t();
        let r = expect_field(create(&app, t, f.body("v", json!({"variables": {"GREETING": "x".repeat(65)}}))).await, "variables.GREETING");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("GREETING") && e.contains("Greeting")), "{}", r.text);
        let r = expect_field(create(&app, t, f.body("v", json!({"variables": {"SERVER_JARFILE": "a.jar"}}))).await, "variables.SERVER_JARFILE");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("SERVER_JARFILE")), "{}", r.text);
        expect_field(create(&app, t, f.body("v", json!({"variables": {"GREETING": ["a"]}}))).await, "variables.GREETING");
        expect_field(create(&app, t, f.body("v", json!({"variables": {"GREETING": ""}}))).await, "variables.GREETING");
        for (limits, field) in [
            (json!({"memory_mb": 10}), "limits.memory_mb"),
            (json!({"swap_mb": -5}), "limits.swap_mb"),
            (json!({"cpu_percent": 10000}), "limits.cpu_percent"),
            (json!({"disk_mb": -1}), "limits.disk_mb"),
            (json!({"pids": 100000}), "limits.pids"),
            (json!({"io_weight": 5}), "limits.io_weight"),
        ] {
            expect_field(create(&app, t, f.body("l", json!({"limits": limits}))).await, field);
        }
        let r = expect_field(create(&app, t, f.body("i", json!({"image": "busybox:latest"}))).await, "image");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("shardlyn-test/busybox:latest")), "{}", r.text);
        expect_field(create(&app, t, f.body("", json!({}))).await, "name");
        expect_field(create(&app, t, f.body(&"n".repeat(200), json!({}))).await, "name");
        for body in [
            f.body("u", json!({"bogus": 1})),
            f.body("u", json!({"limits": {"memory": 1}})),
            json!({"workload_id": f.workload}),
            json!({"name": "no workload"}),
            f.body("u", json!({"ports": "25565"})),
        ] {
            create(&app, t, body).await.expect_error(400, "BAD_REQUEST");
        }
        create(&app, t, f.body("w", json!({"workload_id": "no-such-workload"}))).await.expect_error(404, "NOT_FOUND");
        // Nothing was created by any of these.
        let list = app.get(&format!("/v1/instances?organization_id={}", f.org), t).await.expect(200);
        assert_eq!(list.body["pagination"]["total"], 0, "{}", list.text);
        let ok = create(&app, t, f.body("fine", json!({"variables": {"GREETING": 42}, "start_on_completion": true})))
            .await
            .expect(201);
        assert_eq!(ok.body["variables"]["GREETING"], "42");
        assert_eq!(ok.body["desired_state"], "running");
    }

    async fn tenancy_permissions_and_redaction(engine) {
        let app = spawn_app(engine).await;
        let f = fixture(&app, "tenant@example.com").await;
        let t = f.t();
        let viewer = app.register("viewer@example.com").await;
        let operator = app.register("operator@example.com").await;
        let admin = app.register("orgadmin@example.com").await;
        let stranger = app.register("stranger@example.com").await;
        app.add_member(&f.org, &viewer.user_id, "viewer").await;
        app.add_member(&f.org, &operator.user_id, "operator").await;
        app.add_member(&f.org, &admin.user_id, "admin").await;

        // A workload with a secret, locked variable.
        let w = app.post("/v1/workloads", t, json!({
            "organization_id": f.org, "name": "Secretive", "images": ["busybox:1.36"], "startup": "sh",
            "variables": [
                {"name": "Motd", "env_variable": "MOTD", "default_value": "hi", "user_viewable": true,
                 "user_editable": true, "rules": "required|string"},
                {"name": "Api key", "env_variable": "API_KEY", "default_value": "default-key",
                 "user_viewable": false, "user_editable": false, "rules": "nullable|string"},
            ],
        }))
        .await
        .expect(201);
        let secretive = w.body["id"].as_str().expect("id").to_string();
        let r = create(&app, t, json!({"name": "s", "workload_id": secretive, "variables": {"API_KEY": "s3cret"}}))
            .await
            .expect(201);
        assert_eq!(r.body["state"], "offline", "no install script");
        assert_eq!(r.body["variables"], json!({"MOTD": "hi", "API_KEY": "s3cret"}));
        let id = id_of(&r);
        let path = format!("/v1/instances/{id}");

        // Redaction: viewers and operators do not hold instances.secrets.
        for who in [&viewer, &operator] {
            let g = app.get(&path, Some(&who.access)).await.expect(200);
            assert_eq!(g.body["variables"], json!({"MOTD": "hi", "API_KEY": null}), "{}", who.email);
            assert!(!g.text.contains("s3cret"));
            let l = app.get(&format!("/v1/instances?organization_id={}", f.org), Some(&who.access)).await.expect(200);
            assert!(!l.text.contains("s3cret"));
        }
        let g = app.get(&path, Some(&admin.access)).await.expect(200);
        assert_eq!(g.body["variables"]["API_KEY"], "s3cret");

        // Locked variables: operators may change the rest, and send it back unchanged.
        app.put(&path, Some(&operator.access), json!({"variables": {"API_KEY": "mine"}}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.put(&path, Some(&operator.access), json!({"variables": {"MOTD": "hello", "API_KEY": "s3cret"}}))
            .await
            .expect(200);
        let u = app.put(&path, Some(&admin.access), json!({"variables": {"API_KEY": "rotated"}})).await.expect(200);
        assert_eq!(u.body["variables"], json!({"MOTD": "hello", "API_KEY": "rotated"}));

        // Viewers read only; operators cannot create or delete.
        create(&app, Some(&viewer.access), f.body("v", json!({}))).await.expect_error(403, "FORBIDDEN");
        create(&app, Some(&operator.access), f.body("v", json!({}))).await.expect_error(403, "FORBIDDEN");
        app.put(&path, Some(&viewer.access), json!({"name": "x"})).await.expect_error(403, "FORBIDDEN");
        app.delete(&format!("{path}?force=true"), Some(&operator.access)).await.expect_error(403, "FORBIDDEN");
        create(&app, Some(&admin.access), f.body("by admin", json!({}))).await.expect(201);

        // Strangers see nothing and cannot use the organization's workload or node.
        for r in [
            app.get(&path, Some(&stranger.access)).await,
            app.put(&path, Some(&stranger.access), json!({"name": "x"})).await,
            app.delete(&format!("{path}?force=true"), Some(&stranger.access)).await,
            app.get(&format!("/v1/instances?organization_id={}", f.org), Some(&stranger.access)).await,
        ] {
            r.expect_error(404, "NOT_FOUND");
        }
        let r = create(&app, Some(&stranger.access), f.body("s", json!({}))).await.expect_error(404, "NOT_FOUND");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("workload")), "{}", r.text);
        let their_org = app.create_org(&stranger.access, "Theirs").await;
        let their_workload = busybox_workload(&app, &stranger.access, &their_org).await;
        let r = create(&app, Some(&stranger.access), json!({"name": "s", "workload_id": their_workload, "node_id": f.node}))
            .await
            .expect_error(404, "NOT_FOUND");
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("node")), "{}", r.text);
        // ...nor can the owner place their instance on the stranger's node.
        let their_node = online_node(&app, &stranger.access, &their_org, "theirs", 8).await;
        create(&app, t, f.body("x", json!({"node_id": their_node}))).await.expect_error(404, "NOT_FOUND");
        app.get("/v1/instances/no-such-id", t).await.expect_error(404, "NOT_FOUND");
    }

    /// The list is served from the read cache between changes: every kind of change shows
    /// in the next list, whoever reads it, and permissions are checked on each request.
    async fn the_list_follows_every_change(engine) {
        let app = spawn_app(engine).await;
        let f = fixture(&app, "listcache@example.com").await;
        let t = f.t();
        let viewer = app.register("listviewer@example.com").await;
        app.add_member(&f.org, &viewer.user_id, "viewer").await;
        let v = Some(viewer.access.as_str());
        let list = format!("/v1/instances?organization_id={}", f.org);
        let read = |who: Option<&str>| {
            let (app, list) = (&app, &list);
            let who = who.map(str::to_owned);
            async move { app.get(list, who.as_deref()).await.expect(200).body }
        };
        assert_eq!(read(t).await["pagination"]["total"], 0);
        assert_eq!(read(v).await["pagination"]["total"], 0);

        let id = id_of(&create(&app, t, f.body("first", json!({}))).await.expect(201));
        let page = read(v).await;
        assert_eq!(page["pagination"]["total"], 1);
        assert_eq!(page["data"][0]["name"], "first");
        assert_eq!(page["data"][0]["state"], "installing");
        // Twice the same page: the second comes from the cache, unchanged.
        assert_eq!(read(v).await, page);

        let path = format!("/v1/instances/{id}");
        app.put(&path, t, json!({"name": "renamed", "variables": {"GREETING": "changed"}})).await.expect(200);
        let page = read(v).await;
        assert_eq!(page["data"][0]["name"], "renamed");
        assert_eq!(page["data"][0]["variables"]["GREETING"], "changed");

        // An agent's report (recorded as the tunnel does).
        let version = store::max_state_version() - store::MAX_STATE_VERSION_AHEAD_US;
        store::set_state(&app.state.db.pool, &id, &f.node, InstanceState::Offline, version)
            .await
            .expect("state")
            .expect("recorded");
        assert_eq!(read(v).await["data"][0]["state"], "offline");
        // What a power action records before it asks the agent.
        store::set_desired(&app.state.db.pool, &id, DesiredState::Running).await.expect("desired");
        assert_eq!(read(t).await["data"][0]["desired_state"], "running");

        // Membership changes count at once: a denied permission, then removal.
        app.post(
            &format!("/v1/organizations/{}/members/{}/permissions", f.org, viewer.user_id),
            t,
            json!({"key": "instances.read", "allowed": false}),
        )
        .await
        .expect(200);
        app.get(&list, v).await.expect_error(403, "FORBIDDEN");
        app.delete(
            &format!("/v1/organizations/{}/members/{}/permissions/instances.read", f.org, viewer.user_id),
            t,
        )
        .await
        .expect(204);
        assert_eq!(read(v).await["pagination"]["total"], 1);
        app.delete(&format!("/v1/organizations/{}/members/{}", f.org, viewer.user_id), t)
            .await
            .expect(204);
        app.get(&list, v).await.expect_error(404, "NOT_FOUND");

        app.delete(&format!("{path}?force=true"), t).await.expect(204);
        assert_eq!(read(t).await["pagination"]["total"], 0);
    }

    async fn nodes_and_workloads_in_use_are_kept(engine) {
        let app = spawn_app(engine).await;
        let f = fixture(&app, "inuse@example.com").await;
        let t = f.t();
        let id = id_of(&create(&app, t, f.body("busy", json!({}))).await.expect(201));
        app.delete(&format!("/v1/nodes/{}", f.node), t).await.expect_error(409, "CONFLICT");
        app.delete(&format!("/v1/workloads/{}", f.workload), t).await.expect_error(409, "CONFLICT");
        app.get(&format!("/v1/nodes/{}", f.node), t).await.expect(200);
        app.delete(&format!("/v1/instances/{id}?force=true"), t).await.expect(204);
        app.delete(&format!("/v1/nodes/{}", f.node), t).await.expect(204);
        app.delete(&format!("/v1/workloads/{}", f.workload), t).await.expect(204);

        // Deleting the organization takes its instances along.
        let org = app.create_org(&f.owner.access, "Doomed").await;
        let workload = busybox_workload(&app, &f.owner.access, &org).await;
        let node = online_node(&app, &f.owner.access, &org, "doomed", 8).await;
        let id = id_of(&create(&app, t, json!({"name": "d", "workload_id": workload, "node_id": node, "ports": [30000, 30001]})).await.expect(201));
        app.delete(&format!("/v1/organizations/{org}"), t).await.expect(204);
        assert!(store::find(&app.state.db.pool, &id).await.expect("find").is_none());
        let left: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM allocations")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(left, 0);
    }

    async fn the_spec_follows_the_egg(engine) {
        let app = spawn_app(engine).await;
        let f = fixture(&app, "spec@example.com").await;
        let t = f.t();
        let r = create(&app, t, f.body("spec", json!({
            "node_id": f.node, "ports": [30500, 30501], "variables": {"GREETING": "howdy"},
            "limits": {"memory_mb": 256}, "start_on_completion": true,
        })))
        .await
        .expect(201);
        let instance = store::find(&app.state.db.pool, &id_of(&r)).await.expect("find").expect("stored");
        let spec = build_spec(&app.state, &instance).await.expect("spec");
        assert_eq!(spec.id, instance.id);
        assert_eq!(spec.name, "spec");
        assert_eq!(spec.image, "shardlyn-test/busybox:latest");
        assert!(spec.startup.starts_with("echo \"{{GREETING}}\""), "{}", spec.startup);
        assert_eq!(spec.environment.into_iter().collect::<Vec<_>>(), [("GREETING".to_owned(), "howdy".to_owned())]);
        let install = spec.install.expect("install step");
        assert_eq!((install.image.as_str(), install.entrypoint.as_str()), ("shardlyn-test/busybox:latest", "sh"));
        assert!(install.script.contains("INSTALLED") && !install.script.contains('\r'));
        assert!(spec.config_files.is_empty());
        assert_eq!(spec.done, ["ready"]);
        assert_eq!(spec.stop, StopSpec::Command("stop".into()));
        assert_eq!(spec.stop_grace_secs, 30);
        assert_eq!(spec.desired, DesiredState::Running);
        assert!(spec.crash_restart);
        assert_eq!(spec.limits.memory_mb, 256);
        assert_eq!(spec.allocations.iter().map(|a| (a.port, a.primary)).collect::<Vec<_>>(), [(30500, true), (30501, false)]);

        // Another egg: a ^C stop, a config file, a CRLF script.
        let w = app.post("/v1/workloads", t, json!({
            "organization_id": f.org, "name": "Crlf", "images": ["img:1", "img:2"], "startup": "./run",
            "config": {"files": [{"path": "server.properties", "parser": "properties",
                                  "find": {"server-port": "{{server.build.default.port}}"}}],
                       "startup": {"done": ["Done (", "regex:^ready$"]}, "stop": "^C"},
            "install": {"script": "#!/bin/bash\r\necho one\r\necho two\r\n", "container": "", "entrypoint": ""},
            "variables": [],
        }))
        .await
        .expect(201);
        let wid = w.body["id"].as_str().expect("id");
        let r = create(&app, t, json!({"name": "crlf", "workload_id": wid, "node_id": f.node, "image": "img:2"})).await.expect(201);
        let instance = store::find(&app.state.db.pool, &id_of(&r)).await.expect("find").expect("stored");
        let spec = build_spec(&app.state, &instance).await.expect("spec");
        assert_eq!(spec.image, "img:2");
        assert_eq!(spec.stop, StopSpec::Signal("SIGINT".into()));
        assert_eq!(spec.done, ["Done (", "regex:^ready$"]);
        assert_eq!(spec.config_files.len(), 1);
        assert_eq!(spec.config_files[0].path, "server.properties");
        assert_eq!(spec.config_files[0].parser, "properties");
        assert_eq!(spec.config_files[0].find["server-port"], "{{server.build.default.port}}");
        let install = spec.install.expect("install step");
        assert_eq!(install.script, "#!/bin/bash\necho one\necho two\n");
        assert_eq!(install.image, "ghcr.io/pterodactyl/installers:alpine");
        assert_eq!(install.entrypoint, "ash");
        assert_eq!(spec.desired, DesiredState::Stopped);
        assert!(spec.environment.is_empty());

        // No install script: no install step, and the instance starts out offline.
        let w = app.post("/v1/workloads", t, json!({
            "organization_id": f.org, "name": "Plain", "images": ["img:1"], "startup": "./run",
        }))
        .await
        .expect(201);
        let wid = w.body["id"].as_str().expect("id");
        let r = create(&app, t, json!({"name": "plain", "workload_id": wid, "node_id": f.node})).await.expect(201);
        assert_eq!(r.body["state"], "offline");
        let instance = store::find(&app.state.db.pool, &id_of(&r)).await.expect("find").expect("stored");
        let spec = build_spec(&app.state, &instance).await.expect("spec");
        assert!(spec.install.is_none());
        assert_eq!(spec.stop, StopSpec::Signal("SIGTERM".into()));

        // The state setters other areas use.
        // A report is recorded unless a newer one (higher version) already is.
        use shardlyn_proto::instance::InstanceState;
        // Only the instance's own node counts.
        let pool = &app.state.db.pool;
        let recorded = |s: Option<String>| s.is_some();
        assert!(recorded(store::set_state(pool, &instance.id, &f.node, InstanceState::Stopping, 20).await.expect("state")));
        // The same report again (a power answer and the agent's event both carry it):
        // recorded, and so published, once.
        assert!(!recorded(store::set_state(pool, &instance.id, &f.node, InstanceState::Stopping, 20).await.expect("again")));
        assert!(recorded(store::set_state(pool, &instance.id, &f.node, InstanceState::Running, 30).await.expect("state")));
        assert!(!recorded(store::set_state(pool, &instance.id, &f.node, InstanceState::Stopping, 25).await.expect("late report")));
        assert!(!recorded(store::set_state(pool, &instance.id, "another-node", InstanceState::Stopping, 40).await.expect("other node")));
        store::set_desired(&app.state.db.pool, &instance.id, DesiredState::Running).await.expect("desired");
        store::mark_installed(&app.state.db.pool, &instance.id, 1_700_000_000_000).await.expect("installed");
        store::mark_installed(&app.state.db.pool, &instance.id, 1_800_000_000_000).await.expect("installed again");
        let g = app.get(&format!("/v1/instances/{}", instance.id), t).await.expect(200);
        assert_eq!((g.body["state"].as_str(), g.body["desired_state"].as_str()), (Some("running"), Some("running")));
        assert_eq!(g.body["installed_at"], "2023-11-14T22:13:20Z", "the first install is kept");
        let on_node = store::list_for_node(&app.state.db.pool, &f.node).await.expect("list");
        assert_eq!(on_node.len(), 3);
        assert_eq!(on_node[0].allocations.len(), 2);
    }
}
