//! Per-server access: a grant makes an account a member limited to named servers, each
//! with its own keys, enforced by the one authorization function (routes, the list, the
//! console's and SFTP's `authz::load`). Nodes are marked online in the database; no agent
//! runs, so power answers 409 `NODE_OFFLINE` once authorization passed.

use serde_json::json;
use shardlyn_tests::{TestApp, both_engines};

const GIB: i64 = 1024 * 1024 * 1024;

struct World {
    owner: shardlyn_tests::Session,
    org: String,
    a: String,
    b: String,
}

async fn world(app: &TestApp) -> World {
    let owner = app.register("owner@example.com").await;
    let t = Some(owner.access.as_str());
    let org = app.create_org(&owner.access, "Hosting").await;
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
    let node = app.register_node(&owner.access, Some(&org), "n1").await;
    app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
    let mut ids = Vec::new();
    for name in ["alpha", "beta"] {
        let r = app
            .post(
                "/v1/instances",
                t,
                json!({"name": name, "workload_id": workload, "node_id": node}),
            )
            .await
            .expect(201);
        ids.push(r.body["id"].as_str().expect("id").to_owned());
    }
    World {
        owner,
        org,
        b: ids.pop().expect("b"),
        a: ids.pop().expect("a"),
    }
}

both_engines! {
    async fn a_grant_opens_one_server_with_its_keys_and_nothing_else(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let w = world(&app).await;
        let t = Some(w.owner.access.as_str());
        let helper = app.register("helper@example.com").await;
        let h = Some(helper.access.as_str());

        // Before: the organization does not exist for the helper.
        app.get(&format!("/v1/instances/{}", w.a), h).await.expect(404);

        let access = app.get(&format!("/v1/instances/{}/access", w.a), t).await.expect(200);
        assert_eq!(access.body["data"], json!([]));
        let keys: Vec<&str> = access.body["grantable"].as_array().expect("grantable")
            .iter().filter_map(|k| k["key"].as_str()).collect();
        assert!(keys.contains(&"instances.console") && !keys.contains(&"instances.create"), "{keys:?}");

        let g = app
            .post(&format!("/v1/instances/{}/access", w.a), t,
                  json!({"email": "helper@example.com", "permissions": ["instances.power", "instances.files.read"]}))
            .await
            .expect(201);
        assert_eq!(g.body["email"], "helper@example.com");
        assert_eq!(g.body["permissions"], json!(["instances.read", "instances.power", "instances.files.read"]));

        // The helper sees server A, not B; the list holds A alone.
        let one = app.get(&format!("/v1/instances/{}", w.a), h).await.expect(200);
        assert_eq!(one.body["id"], w.a.as_str());
        app.get(&format!("/v1/instances/{}", w.b), h).await.expect_error(404, "NOT_FOUND");
        let list = app.get(&format!("/v1/instances?organization_id={}", w.org), h).await.expect(200);
        let listed: Vec<&str> = list.body["data"].as_array().expect("data").iter()
            .filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(listed, vec![w.a.as_str()]);
        assert_eq!(list.body["pagination"]["total"], 1);
        // Secrets stay redacted without instances.secrets.
        // Power passes authorization (the node has no agent: 409, not 403).
        app.post(&format!("/v1/instances/{}/start", w.a), h, json!({})).await.expect(409);
        // Keys it was not given: 403; organization-wide things: 403.
        app.put(&format!("/v1/instances/{}", w.a), h, json!({"name": "x"})).await.expect(403);
        app.delete(&format!("/v1/instances/{}", w.a), h).await.expect(403);
        app.get(&format!("/v1/nodes?organization_id={}", w.org), h).await.expect(403);
        app.get(&format!("/v1/organizations/{}/members", w.org), h).await.expect(403);
        app.get(&format!("/v1/instances/{}/access", w.a), h).await.expect(403);

        // The members list shows the helper as limited to one server.
        let members = app.get(&format!("/v1/organizations/{}/members", w.org), t).await.expect(200);
        let row = members.body.as_array().or_else(|| members.body["data"].as_array()).expect("members")
            .iter().find(|m| m["email"] == "helper@example.com").cloned().expect("helper listed");
        assert_eq!(row["scoped"], true);
        assert_eq!(row["servers"], 1);

        // Changing the keys takes effect at once.
        app.put(&format!("/v1/instances/{}/access/{}", w.a, helper.user_id), t,
                json!({"permissions": ["instances.update"]}))
            .await
            .expect(200);
        app.post(&format!("/v1/instances/{}/start", w.a), h, json!({})).await.expect(403);
        app.put(&format!("/v1/instances/{}", w.a), h, json!({"description": "by the helper"})).await.expect(200);

        // Removing the last grant removes the membership: 404 again.
        app.delete(&format!("/v1/instances/{}/access/{}", w.a, helper.user_id), t).await.expect(204);
        app.get(&format!("/v1/instances/{}", w.a), h).await.expect(404);
        app.get(&format!("/v1/instances?organization_id={}", w.org), h).await.expect(404);
        let members = app.get(&format!("/v1/organizations/{}/members", w.org), t).await.expect(200);
        assert!(!members.text.contains("helper@example.com"));
    }

    async fn grants_refuse_what_they_cannot_hold(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let w = world(&app).await;
        let t = Some(w.owner.access.as_str());
        let path = format!("/v1/instances/{}/access", w.a);
        app.register("helper@example.com").await;
        app.post(&path, t, json!({"email": "nobody@example.com", "permissions": ["instances.read"]}))
            .await.expect_error(404, "USER_NOT_FOUND");
        app.post(&path, t, json!({"email": "helper@example.com", "permissions": ["nodes.read"]}))
            .await.expect_error(400, "VALIDATION_ERROR");
        app.post(&path, t, json!({"email": "helper@example.com", "permissions": ["instances.create"]}))
            .await.expect_error(400, "VALIDATION_ERROR");
        app.post(&path, t, json!({"email": "helper@example.com", "permissions": []}))
            .await.expect_error(400, "VALIDATION_ERROR");
        app.post(&path, t, json!({"email": "helper@example.com"}))
            .await.expect(400);
        // A full member sees every server already.
        let member = app.register("member@example.com").await;
        app.add_member(&w.org, &member.user_id, "operator").await;
        app.post(&path, t, json!({"email": "member@example.com", "permissions": ["instances.read"]}))
            .await.expect_error(409, "ALREADY_MEMBER");
        // Unknown grant, unknown server, another organization's caller.
        app.put(&format!("{path}/{}", member.user_id), t, json!({"permissions": ["instances.read"]}))
            .await.expect_error(404, "NOT_FOUND");
        app.delete(&format!("/v1/instances/nope/access/{}", member.user_id), t).await.expect(404);
        let stranger = app.register("stranger@example.com").await;
        app.get(&path, Some(&stranger.access)).await.expect(404);
        // Nothing half-written: the helper is no member.
        let members = app.get(&format!("/v1/organizations/{}/members", w.org), t).await.expect(200);
        assert!(!members.text.contains("helper@example.com"));
    }

    async fn a_role_makes_a_scoped_member_a_full_one(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let w = world(&app).await;
        let t = Some(w.owner.access.as_str());
        let helper = app.register("helper@example.com").await;
        app.post(&format!("/v1/instances/{}/access", w.a), t,
                 json!({"email": "helper@example.com", "permissions": ["instances.console"]}))
            .await.expect(201);
        app.get(&format!("/v1/instances/{}", w.b), Some(&helper.access)).await.expect(404);
        app.put(&format!("/v1/organizations/{}/members/{}/role", w.org, helper.user_id), t,
                json!({"role": "viewer"}))
            .await.expect(200);
        app.get(&format!("/v1/instances/{}", w.b), Some(&helper.access)).await.expect(200);
        let access = app.get(&format!("/v1/instances/{}/access", w.a), t).await.expect(200);
        assert_eq!(access.body["data"], json!([]), "grants dropped with the role");
    }
}
