//! `shardlyn up`, the README's first command: the panel with a local node, and a new
//! user's first game server, run from the binary as a user would.

mod common;

use std::time::Duration;

use common::{admin_password, http_json, login, start_up, start_up_in, stop, wait_for};

#[test]
fn up_runs_the_panel_with_a_local_node_and_reuses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf8");
    let first = start_up(data);
    let password = admin_password(&first);
    let node_id = first.lines[2]
        .strip_prefix("Local node: ")
        .expect("node line")
        .to_string();
    let token = login(&first, &password);
    wait_for(
        &first,
        &token,
        &format!("/v1/nodes/{node_id}"),
        Duration::from_secs(15),
        |node| node["status"] == "online",
    );
    let (status, system) = http_json(
        &first.addr,
        "GET",
        &format!("/v1/nodes/{node_id}/inventory/system"),
        Some(&token),
        "",
    );
    assert_eq!(status, 200, "{system}");
    stop(first);

    // A second start keeps the admin and the node.
    let second = start_up(data);
    assert_eq!(second.lines[1], "Log in with your admin account.");
    assert_eq!(second.lines[2], format!("Local node: {node_id}"));
    stop(second);
}

/// What a new user does first: `shardlyn up` with the default, relative data directory
/// (`./data`), a server from the bundled `busybox-test` template, started. The relative
/// path once reached Docker as a bind-mount source and every first install failed.
#[test]
fn a_first_server_from_a_bundled_template_runs_with_the_default_data_dir() {
    shardlyn_tests::docker::ensure_test_image();
    let cwd = tempfile::tempdir().expect("tempdir");
    // Game ports of its own: other tests run servers on the default range meanwhile.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let up = start_up_in(
        Some(cwd.path()),
        &[],
        &[
            ("SHARDLYN_INSTANCES__PORT_RANGE_START", port.to_string()),
            ("SHARDLYN_INSTANCES__PORT_RANGE_END", port.to_string()),
        ],
    );
    assert!(
        cwd.path().join("data/initial-admin.txt").exists(),
        "the default data dir is ./data of the working directory"
    );
    let token = login(&up, &admin_password(&up));
    let node_id = up.lines[2]
        .strip_prefix("Local node: ")
        .expect("node line")
        .to_string();
    wait_for(
        &up,
        &token,
        &format!("/v1/nodes/{node_id}"),
        Duration::from_secs(15),
        |node| node["status"] == "online",
    );

    let (status, workload) = http_json(
        &up.addr,
        "POST",
        "/v1/workloads/from-template",
        Some(&token),
        r#"{"template":"busybox-test"}"#,
    );
    assert_eq!(status, 201, "{workload}");
    let workload_id = workload["id"].as_str().expect("workload id");
    let (status, instance) = http_json(
        &up.addr,
        "POST",
        "/v1/instances",
        Some(&token),
        &format!(r#"{{"name":"first","workload_id":"{workload_id}"}}"#),
    );
    assert_eq!(status, 201, "{instance}");
    let id = instance["id"].as_str().expect("instance id").to_string();
    let path = format!("/v1/instances/{id}");
    let installed = wait_for(&up, &token, &path, Duration::from_secs(60), |i| {
        i["state"] != "installing"
    });
    assert_eq!(installed["state"], "offline", "install failed: {installed}");

    let (status, started) = http_json(
        &up.addr,
        "POST",
        &format!("/v1/instances/{id}/start"),
        Some(&token),
        "{}",
    );
    assert_eq!(status, 202, "{started}");
    wait_for(&up, &token, &path, Duration::from_secs(60), |i| {
        i["state"] == "running"
    });
    // The server's files are under the absolute data dir, not the working directory's
    // idea of a volume name.
    let volume = cwd.path().join("data/agent/volumes").join(&id);
    assert!(
        volume.join("INSTALLED").exists(),
        "the install script wrote into {}",
        volume.display()
    );

    let (status, deleted) = http_json(&up.addr, "DELETE", &path, Some(&token), "");
    assert!(status == 204 || status == 202, "{status}: {deleted}");
    stop(up);
}
