//! Crash detection (Wings' 60 s rule) and re-adoption after an agent restart.

use serde_json::json;
use shardlyn_proto::instance::events;

use crate::{Cleanup, busybox_spec, is, new_id, spawn_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_restarts_once_then_a_second_crash_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    let id = new_id();
    let _cleanup = Cleanup(id.clone());
    let mut spec = busybox_spec(&id);
    spec["install"] = json!(null);
    spec["desired"] = json!("running");
    agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    agent.wait_state(&id, "running", 10).await;
    let mut states = agent.stream("/v1/events").await;
    let mut console = agent.stream(&format!("/v1/instances/{id}/events")).await;

    agent.command(&id, "crash").await.expect(204);
    console
        .until(10, |e| {
            e.event == events::DAEMON_MESSAGE
                && e.args[0]
                    .as_str()
                    .is_some_and(|m| m.contains("exit code 3") && m.contains("restarting"))
        })
        .await;
    console
        .until(10, |e| is(e, events::STATUS, "running"))
        .await;
    let status = agent.wait_state(&id, "running", 10).await;
    assert!(status["crashed_at"].is_i64());
    assert_eq!(status["desired"], "running");

    agent.command(&id, "crash").await.expect(204);
    console
        .until(10, |e| {
            e.event == events::DAEMON_MESSAGE
                && e.args[0]
                    .as_str()
                    .is_some_and(|m| m.contains("stays stopped"))
        })
        .await;
    let status = agent.wait_state(&id, "offline", 10).await;
    assert_eq!(status["desired"], "stopped");
    assert_eq!(status["exit_code"], 3);
    // `/v1/events` announced the agent's own change of the desired state.
    loop {
        let v = states
            .next(std::time::Duration::from_secs(10))
            .await
            .expect("state event");
        if v["instance"] == id.as_str() && v["desired"] == "stopped" {
            assert_eq!(v["state"], "offline");
            break;
        }
    }
    // A panel push of the same spec does not restart a crash-stopped server.
    let mut spec = busybox_spec(&id);
    spec["install"] = json!(null);
    spec["desired"] = json!("running");
    // The agent reconciles before it answers: the answer is the decision.
    let pushed = agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    assert_eq!(pushed.body["state"], "offline", "{}", pushed.text);
    // An explicit start does.
    agent.power(&id, "start").await.expect(202);
    agent.wait_state(&id, "running", 10).await;
    agent
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_readopts_running_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = new_id();
    let _cleanup = Cleanup(id.clone());
    let first = spawn_agent(dir.path()).await;
    let mut spec = busybox_spec(&id);
    spec["install"] = json!(null);
    spec["desired"] = json!("running");
    first
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    let before = first.wait_state(&id, "running", 10).await;
    first.command(&id, "before the restart").await.expect(204);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // The agent dies without touching its containers.
    first.manager.detach().await;
    drop(first);

    let second = spawn_agent(dir.path()).await;
    let status = second.wait_state(&id, "running", 5).await;
    assert_eq!(status["container_id"], before["container_id"]);
    let (now, then) = (
        status["started_at"].as_i64().expect("started_at"),
        before["started_at"].as_i64().expect("started_at"),
    );
    assert!((now - then).abs() < 2000, "{now} vs {then}");
    let mut console = second.stream(&format!("/v1/instances/{id}/events")).await;
    second.command(&id, "after the restart").await.expect(204);
    console
        .until(10, |e| {
            is(e, events::CONSOLE_OUTPUT, "echo: after the restart")
        })
        .await;
    let logs = second
        .get(&format!("/v1/instances/{id}/logs?lines=50"))
        .await
        .expect(200);
    assert!(
        logs.text.contains("echo: before the restart"),
        "{}",
        logs.text
    );
    assert!(
        logs.text.contains("echo: after the restart"),
        "{}",
        logs.text
    );
    // Exit watching works on the adopted container: a crash restarts it.
    second.command(&id, "crash").await.expect(204);
    console
        .until(10, |e| {
            e.event == events::DAEMON_MESSAGE
                && e.args[0].as_str().is_some_and(|m| m.contains("restarting"))
        })
        .await;
    console
        .until(10, |e| is(e, events::STATUS, "running"))
        .await;
    second.power(&id, "stop").await.expect(202);
    second.wait_state(&id, "offline", 10).await;
    second
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(204);
}
