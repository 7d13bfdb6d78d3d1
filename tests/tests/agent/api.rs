//! Input checks of the instance routes and the process kill route.

use serde_json::json;

use crate::{new_id, spawn_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_unknown_ids_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    for bad in ["a_b", "a.b", "a%20b", "%C3%A9", &"a".repeat(65)] {
        agent
            .get(&format!("/v1/instances/{bad}"))
            .await
            .expect_error(400, "BAD_REQUEST");
        agent
            .power(bad, "start")
            .await
            .expect_error(400, "BAD_REQUEST");
    }
    let id = new_id();
    agent
        .get(&format!("/v1/instances/{id}"))
        .await
        .expect_error(404, "NOT_FOUND");
    agent
        .power(&id, "start")
        .await
        .expect_error(404, "NOT_FOUND");
    agent.command(&id, "x").await.expect_error(404, "NOT_FOUND");
    agent
        .get(&format!("/v1/instances/{id}/logs"))
        .await
        .expect_error(404, "NOT_FOUND");
    agent
        .get(&format!("/v1/instances/{id}/events"))
        .await
        .expect_error(404, "NOT_FOUND");
    agent
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect_error(404, "NOT_FOUND");
    agent
        .power(&id, "explode")
        .await
        .expect_error(400, "BAD_REQUEST");
    let mut spec = crate::busybox_spec(&id);
    spec["id"] = json!("other");
    agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect_error(400, "BAD_REQUEST");
    agent
        .put(&format!("/v1/instances/{id}"), json!({"id": id}))
        .await
        .expect_error(400, "BAD_REQUEST");
    assert_eq!(agent.get("/v1/instances").await.expect(200).body, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_are_killed_but_not_init_or_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = child.id();
    // A process outside Shardlyn's containers needs `all=true` (platform admins).
    agent
        .post(
            &format!("/v1/processes/{pid}/kill"),
            json!({"signal": "SIGKILL"}),
        )
        .await
        .expect_error(404, "NOT_FOUND");
    agent
        .post(
            &format!("/v1/processes/{pid}/kill?all=true"),
            json!({"signal": "SIGKILL"}),
        )
        .await
        .expect(204);
    let status = child.wait().expect("wait");
    assert!(!status.success());
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = child.id();
    let r = agent
        .client
        .post(format!("{}/v1/processes/{pid}/kill?all=true", agent.base))
        .send()
        .await
        .expect("kill");
    assert_eq!(r.status().as_u16(), 204);
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().expect("wait").signal(), Some(15));
    }
    agent
        .post("/v1/processes/1/kill", json!({}))
        .await
        .expect_error(409, "CONFLICT");
    let me = std::process::id();
    agent
        .post(&format!("/v1/processes/{me}/kill"), json!({}))
        .await
        .expect_error(409, "CONFLICT");
    agent
        .post("/v1/processes/999999999/kill", json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    agent
        .post("/v1/processes/abc/kill", json!({}))
        .await
        .expect_error(400, "BAD_REQUEST");
    agent
        .post(
            &format!("/v1/processes/{pid}/kill"),
            json!({"signal": "SIGBOGUS"}),
        )
        .await
        .expect_error(400, "BAD_REQUEST");
}
