//! Install, start, stop, kill, delete.

use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_proto::instance::events;

use crate::{Cleanup, busybox_spec, is, new_id, spawn_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_start_command_stop_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    let id = new_id();
    let _cleanup = Cleanup(id.clone());
    let mut spec = busybox_spec(&id);
    spec["desired"] = json!("running");
    let r = agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    assert_eq!(r.body["id"], id.as_str());
    let mut states = agent.stream("/v1/events").await;
    // Install, then the start the desired state asks for, then `ready`.
    let status = agent.wait_state(&id, "running", 20).await;
    assert_eq!(status["installed"], true);
    assert!(status["container_id"].is_string());
    let installed = dir.path().join("volumes").join(&id).join("INSTALLED");
    assert!(installed.exists(), "install wrote {}", installed.display());
    let log = agent
        .get(&format!("/v1/instances/{id}/install-logs"))
        .await
        .expect(200);
    assert!(log.text.contains("lines"), "{}", log.text);
    // `/v1/events` starts with the current state of every instance.
    let first = states
        .next(Duration::from_secs(5))
        .await
        .expect("state event");
    assert_eq!(first["instance"], id.as_str(), "{first}");
    let spec_file = dir.path().join("instances").join(format!("{id}.json"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&spec_file)
            .expect("spec file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The container follows Wings' conventions.
    let inspect = shardlyn_tests::docker::docker(&[
        "inspect",
        "-f",
        "{{.Config.User}} {{.Config.WorkingDir}} {{.Config.OpenStdin}} {{.HostConfig.Memory}} {{index .Config.Labels \"io.shardlyn.instance\"}}",
        &shardlyn_agent::instances::container_name_in(dir.path(), &id),
    ]);
    assert_eq!(
        inspect,
        format!("988:988 /home/container true {} {id}", 256 * 1024 * 1024)
    );

    let mut console = agent.stream(&format!("/v1/instances/{id}/events")).await;
    agent.command(&id, "hello there").await.expect(204);
    console
        .until(10, |e| is(e, events::CONSOLE_OUTPUT, "echo: hello there"))
        .await;

    let stats = agent
        .get(&format!("/v1/instances/{id}/stats"))
        .await
        .expect(200);
    assert_eq!(stats.body["state"], "running");
    assert!(
        stats.body["memory_bytes"].as_u64().is_some_and(|m| m > 0),
        "{}",
        stats.text
    );
    assert!(
        stats.body["disk_bytes"].as_u64().is_some_and(|d| d > 0),
        "{}",
        stats.text
    );
    let metrics = agent.get("/v1/metrics").await.expect(200);
    assert!(
        metrics.body["instances"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["id"] == id.as_str())),
        "{}",
        metrics.text
    );

    // Impossible transitions.
    agent
        .power(&id, "start")
        .await
        .expect_error(409, "CONFLICT");
    agent
        .post(&format!("/v1/instances/{id}/install"), json!({}))
        .await
        .expect_error(409, "CONFLICT");

    // Stop through the egg's stop command.
    let r = agent.power(&id, "stop").await.expect(202);
    assert_eq!(r.body["state"], "stopping");
    let status = agent.wait_state(&id, "offline", 15).await;
    assert_eq!(status["desired"], "stopped");
    assert_eq!(status["exit_code"], 0);
    console
        .until(5, |e| is(e, events::CONSOLE_OUTPUT, "stopping"))
        .await;
    let logs = agent
        .get(&format!("/v1/instances/{id}/logs?lines=3"))
        .await
        .expect(200);
    let lines = logs.body["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 3, "{}", logs.text);
    assert_eq!(lines[2], "stopping");
    let download = agent
        .client
        .get(format!("{}/v1/instances/{id}/logs/download", agent.base))
        .send()
        .await
        .expect("download");
    assert!(
        download.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = download.text().await.expect("text");
    assert!(text.contains("hello from the test\nready\n"), "{text}");
    agent
        .delete(&format!("/v1/instances/{id}/logs"))
        .await
        .expect(204);
    let logs = agent
        .get(&format!("/v1/instances/{id}/logs"))
        .await
        .expect(200);
    assert_eq!(logs.body["lines"], json!([]));

    // Start again: the same container is reused, quickly.
    let t = Instant::now();
    agent.power(&id, "start").await.expect(202);
    agent.wait_state(&id, "running", 10).await;
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "start took {took:?}");

    // Kill.
    agent.power(&id, "kill").await.expect(202);
    agent.wait_state(&id, "offline", 10).await;
    agent.power(&id, "kill").await.expect_error(409, "CONFLICT");

    // Delete removes the container, spec and files.
    agent
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(204);
    agent
        .get(&format!("/v1/instances/{id}"))
        .await
        .expect_error(404, "NOT_FOUND");
    assert!(!dir.path().join("volumes").join(&id).exists());
    assert!(!spec_file.exists());
    let gone = std::process::Command::new("docker")
        .args([
            "inspect",
            &shardlyn_agent::instances::container_name_in(dir.path(), &id),
        ])
        .output()
        .expect("docker");
    assert!(!gone.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_install_script_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    let id = new_id();
    let _cleanup = Cleanup(id.clone());
    let mut spec = busybox_spec(&id);
    spec["install"]["script"] = json!("#!/bin/sh\necho boom from the script\nexit 1\n");
    agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    let status = agent.wait_state(&id, "install_failed", 20).await;
    assert_eq!(status["installed"], false);
    let log = agent
        .get(&format!("/v1/instances/{id}/install-logs"))
        .await
        .expect(200);
    let lines: Vec<&str> = log.body["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(lines.contains(&"boom from the script"), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("code 1")), "{lines:?}");
    agent
        .power(&id, "start")
        .await
        .expect_error(409, "CONFLICT");
    // The installer container is gone.
    let gone = std::process::Command::new("docker")
        .args([
            "inspect",
            &shardlyn_agent::instances::installer_name_in(dir.path(), &id),
        ])
        .output()
        .expect("docker");
    assert!(!gone.status.success());
    // A reinstall with a fixed script succeeds.
    let mut spec = busybox_spec(&id);
    spec["install"]["script"] = json!("#!/bin/sh\necho fixed > /mnt/server/INSTALLED\n");
    agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    agent
        .post(&format!("/v1/instances/{id}/install"), json!({}))
        .await
        .expect(202);
    let status = agent.wait_state(&id, "offline", 20).await;
    assert_eq!(status["installed"], true);
    agent
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_quickly_and_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    let id = new_id();
    let _cleanup = Cleanup(id.clone());
    let missing = "127.0.0.1:1/shardlyn-missing:none";
    let mut spec = busybox_spec(&id);
    spec["install"]["image"] = json!(missing);
    let t = Instant::now();
    agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    agent.wait_state(&id, "install_failed", 15).await;
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    let log = agent
        .get(&format!("/v1/instances/{id}/install-logs"))
        .await
        .expect(200);
    assert!(log.text.contains("not available locally"), "{}", log.text);

    // A server image that is missing: the start is refused with a clear error.
    let mut spec = busybox_spec(&id);
    spec["install"] = json!(null);
    spec["image"] = json!(missing);
    let other = new_id();
    let _cleanup2 = Cleanup(other.clone());
    spec["id"] = json!(other);
    agent
        .put(&format!("/v1/instances/{other}"), spec)
        .await
        .expect(200);
    agent.wait_state(&other, "offline", 5).await;
    let mut console = agent.stream(&format!("/v1/instances/{other}/events")).await;
    let r = agent
        .power(&other, "start")
        .await
        .expect_error(409, "IMAGE_UNAVAILABLE");
    assert!(r.text.contains(missing), "{}", r.text);
    console.until(5, |e| e.event == events::DAEMON_ERROR).await;
    agent.wait_state(&other, "offline", 1).await;
}
