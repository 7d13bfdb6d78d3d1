//! Node-level container and process routes on real Docker: an organization's members
//! reach only the containers Shardlyn created on their node (and the processes inside
//! them); a container someone else started on the host is as missing as one that does
//! not exist, unless the caller is a platform admin.

use std::time::Duration;

use serde_json::json;
use shardlyn_tests::agent::{LocalAgent, free_port, register_agent, wait_instance, wait_node};
use shardlyn_tests::docker::{TEST_IMAGE, docker};
use shardlyn_tests::{Engine, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

/// Removes a container even when the test fails.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

fn state(name: &str) -> String {
    docker(&["inspect", "-f", "{{.State.Status}}", name])
}

fn pid(name: &str) -> String {
    docker(&["inspect", "-f", "{{.State.Pid}}", name])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_reach_only_shardlyn_containers_admins_reach_all() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let org = app.create_org(a, "Hosting").await;
    let operator = app.register("scope-operator@example.com").await;
    let viewer = app.register("scope-viewer@example.com").await;
    app.add_member(&org, &operator.user_id, "operator").await;
    app.add_member(&org, &viewer.user_id, "viewer").await;
    let (op, view) = (operator.access.as_str(), viewer.access.as_str());

    let dir = tempfile::tempdir().expect("tempdir");
    let config = register_agent(&app, a, json!({"organization_id": org}), dir.path()).await;
    let node = config.node_id.clone();
    let agent = LocalAgent::start(config, dir.path());
    wait_node(&app, a, &node, "online").await;

    // A server Shardlyn runs on the node.
    let workload = app
        .post(
            "/v1/workloads/from-template",
            Some(a),
            json!({"template": "busybox-test", "organization_id": org}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("workload")
        .to_string();
    shardlyn_tests::docker::ensure_test_image();
    let created = app
        .post(
            "/v1/instances",
            Some(a),
            json!({"name": "managed", "workload_id": workload, "node_id": node, "ports": [free_port()]}),
        )
        .await
        .expect(201);
    let id = created.body["id"].as_str().expect("id").to_string();
    let _managed = Container(shardlyn_agent::instances::container_name_in(
        dir.path(),
        &id,
    ));
    wait_instance(&app, a, &id, "offline", WAIT).await;
    app.post(&format!("/v1/instances/{id}/start"), Some(a), json!({}))
        .await
        .expect(202);
    wait_instance(&app, a, &id, "running", WAIT).await;
    let managed = shardlyn_agent::instances::container_name_in(dir.path(), &id);

    // A container somebody else started on the same Docker host.
    let foreign = format!("not-shardlyn-{}", uuid::Uuid::new_v4().simple());
    let _foreign = Container(foreign.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &foreign,
        TEST_IMAGE,
        "sh",
        "-c",
        "while true; do echo secret; sleep 0.2; done",
    ]);
    let base = |c: &str| format!("/v1/nodes/{node}/containers/{c}");

    // Members: the list shows only Shardlyn's container; the foreign one is not found.
    let list = app
        .get(
            &format!("/v1/nodes/{node}/inventory/containers"),
            Some(view),
        )
        .await
        .expect(200);
    let names: Vec<String> = list
        .body
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["names"][0].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(names.contains(&managed), "{names:?}");
    assert!(
        !names.contains(&foreign),
        "a viewer sees a foreign container: {names:?}"
    );
    app.get(&format!("{}/logs?tail=5", base(&managed)), Some(view))
        .await
        .expect(200);
    app.get(&format!("{}/logs?tail=5", base(&foreign)), Some(view))
        .await
        .expect_error(404, "NOT_FOUND");
    app.get(&format!("{}/logs?tail=5", base(&foreign)), Some(op))
        .await
        .expect_error(404, "NOT_FOUND");
    for action in ["stop", "restart", "kill"] {
        app.post(
            &format!("{}/{action}?timeout=1", base(&foreign)),
            Some(op),
            json!({}),
        )
        .await
        .expect_error(404, "NOT_FOUND");
    }
    assert_eq!(state(&foreign), "running");
    let foreign_pid = pid(&foreign);
    app.post(
        &format!("/v1/nodes/{node}/processes/{foreign_pid}/kill"),
        Some(op),
        json!({}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    assert_eq!(state(&foreign), "running");

    // The platform admin reaches everything.
    let list = app
        .get(&format!("/v1/nodes/{node}/inventory/containers"), Some(a))
        .await
        .expect(200);
    assert!(
        list.text.contains(&foreign),
        "the admin sees every container"
    );
    let logs = app
        .get(&format!("{}/logs?tail=5", base(&foreign)), Some(a))
        .await
        .expect(200);
    assert!(logs.text.contains("secret"), "{}", logs.text);
    app.post(
        &format!("{}/stop?timeout=1", base(&foreign)),
        Some(a),
        json!({}),
    )
    .await
    .expect(204);
    assert_eq!(state(&foreign), "exited");
    app.post(&format!("{}/start", base(&foreign)), Some(a), json!({}))
        .await
        .expect(204);
    let foreign_pid = pid(&foreign);
    app.post(
        &format!("/v1/nodes/{node}/processes/{foreign_pid}/kill"),
        Some(a),
        json!({"signal": "SIGKILL"}),
    )
    .await
    .expect(200);
    let deadline = tokio::time::Instant::now() + WAIT;
    while state(&foreign) != "exited" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the admin's kill did not land"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A member signals a process inside Shardlyn's container.
    let managed_pid = pid(&managed);
    app.post(
        &format!("/v1/nodes/{node}/processes/{managed_pid}/kill"),
        Some(op),
        json!({"signal": "SIGKILL"}),
    )
    .await
    .expect(200);
    agent.stop().await;
    app.stop().await;
}
