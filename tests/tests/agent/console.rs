//! The console: replay, lag-free floods, command validation.

use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_proto::instance::events;

use crate::{Cleanup, busybox_spec, is, new_id, spawn_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_flood_and_command_rules() {
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

    // `send logs`: the last lines first, then the status.
    let mut replay = agent
        .stream(&format!("/v1/instances/{id}/events?replay=150"))
        .await;
    let seen = replay.until(5, |e| e.event == events::STATUS).await;
    let lines: Vec<_> = seen
        .iter()
        .filter(|e| e.event == events::CONSOLE_OUTPUT)
        .filter_map(|e| e.args.first().and_then(|a| a.as_str()))
        .collect();
    assert!(lines.contains(&"hello from the test"), "{lines:?}");
    assert_eq!(lines.last(), Some(&"ready"), "{lines:?}");
    assert!(lines[0].starts_with(":/home/container$ echo"), "{lines:?}");
    assert!(is(seen.last().expect("status"), events::STATUS, "running"));

    // A flood arrives whole and in order.
    const N: u64 = 100_000;
    let t = Instant::now();
    agent.command(&id, &format!("flood {N}")).await.expect(204);
    let mut next = 1u64;
    while next <= N {
        let v = replay
            .next(Duration::from_secs(20))
            .await
            .expect("flood line");
        if v["event"] == "console output" {
            let line = v["args"][0].as_str().expect("line");
            assert_eq!(line, next.to_string(), "lost lines before {next}");
            next += 1;
        } else {
            assert_ne!(v["event"], "daemon message", "{v}");
        }
    }
    let took = t.elapsed();
    eprintln!(
        "flood: {N} lines in {took:?} ({:.0} lines/s)",
        N as f64 / took.as_secs_f64()
    );
    let logs = agent
        .get(&format!("/v1/instances/{id}/logs?lines=5000"))
        .await
        .expect(200);
    let lines = logs.body["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 5000);
    assert_eq!(lines[4999], N.to_string());

    // Commands are one line of at most 4 KiB.
    agent
        .command(&id, "two\nlines")
        .await
        .expect_error(400, "BAD_REQUEST");
    agent
        .command(&id, &"x".repeat(5000))
        .await
        .expect_error(413, "PAYLOAD_TOO_LARGE");
    agent.command(&id, "trailing newline\n").await.expect(204);
    replay
        .until(5, |e| {
            is(e, events::CONSOLE_OUTPUT, "echo: trailing newline")
        })
        .await;
    agent
        .post(&format!("/v1/instances/{id}/command"), json!({"nope": 1}))
        .await
        .expect_error(400, "BAD_REQUEST");

    agent.power(&id, "kill").await.expect(202);
    agent.wait_state(&id, "offline", 10).await;
    agent
        .command(&id, "hello")
        .await
        .expect_error(409, "CONFLICT");
    agent
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(204);
}
