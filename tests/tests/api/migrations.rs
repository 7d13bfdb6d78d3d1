//! Moving a server between two nodes on real Docker (two agents on this machine): its
//! files and local backups travel from one agent to the other through the tunnels and
//! the panel, it runs again on the target with every file the same, and the source
//! forgets it. Bad requests are refused before anything moves.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shardlyn_agent::config::AgentConfig;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::{TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

/// Path → SHA-256 (files) or `dir` / `-> target` (links) of everything under `root`.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            if meta.file_type().is_symlink() {
                let to = std::fs::read_link(&path).expect("link");
                out.insert(rel, format!("-> {}", to.display()));
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.insert(rel, hex::encode(Sha256::digest(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn write_files(volume: &Path) {
    std::fs::create_dir_all(volume.join("world/region")).expect("mkdir");
    std::fs::create_dir_all(volume.join("plugins/empty")).expect("mkdir");
    let mut x: u32 = 7;
    let region: Vec<u8> = (0..300_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    std::fs::write(volume.join("world/region/r.0.0.mca"), region).expect("write");
    std::fs::write(volume.join("server.properties"), "motd=moving\n").expect("write");
    std::os::unix::fs::symlink("server.properties", volume.join("props-link")).expect("ln");
}

/// Two nodes with a local agent each, online, and the busybox workload.
struct Nodes {
    config_a: AgentConfig,
    dir_a: tempfile::TempDir,
    agent_a: LocalAgent,
    config_b: AgentConfig,
    dir_b: tempfile::TempDir,
    agent_b: LocalAgent,
    workload: String,
}

/// [`Nodes`]; the second agent starts with `b_settings` as its `settings.toml` (when
/// not empty).
async fn two_nodes(app: &TestApp, token: &str, b_settings: &str) -> Nodes {
    let (config_a, dir_a) = register_node(app, token).await;
    let (config_b, dir_b) = register_node(app, token).await;
    if !b_settings.is_empty() {
        std::fs::write(dir_b.path().join("settings.toml"), b_settings).expect("settings");
    }
    let agent_a = LocalAgent::start(config_a.clone(), dir_a.path());
    let agent_b = LocalAgent::start(config_b.clone(), dir_b.path());
    wait_node(app, token, &config_a.node_id, "online").await;
    wait_node(app, token, &config_b.node_id, "online").await;
    let workload = busybox_workload(app, token).await;
    Nodes {
        config_a,
        dir_a,
        agent_a,
        config_b,
        dir_b,
        agent_b,
        workload,
    }
}

/// A server on `node`, installed and offline: its id.
async fn server_on(
    app: &TestApp,
    token: &str,
    node: &str,
    workload: &str,
    (name, port, memory_mb, disk_mb): (&str, u16, i64, i64),
) -> String {
    let created = app
        .post(
            "/v1/instances",
            Some(token),
            json!({"name": name, "workload_id": workload, "node_id": node, "ports": [port],
                "limits": {"memory_mb": memory_mb, "swap_mb": 0, "cpu_percent": 20,
                    "disk_mb": disk_mb, "pids": 64, "io_weight": 500}}),
        )
        .await
        .expect(201)
        .body;
    let id = created["id"].as_str().expect("id").to_owned();
    wait_instance(app, token, &id, "offline", WAIT).await;
    id
}

async fn wait_migration(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = app
            .get(&format!("/v1/migrations/{id}"), Some(token))
            .await
            .expect(200)
            .body;
        let state = m["state"].as_str().unwrap_or_default().to_owned();
        if ["completed", "failed", "cancelled"].contains(&state.as_str()) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the move never ended: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_engines! {
    async fn a_running_server_moves_to_another_node_with_its_files_and_backups(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let Nodes { config_a, dir_a, agent_a, config_b, dir_b, agent_b, workload } =
            two_nodes(&app, a, "").await;
        let port = free_port();
        let id = server_on(&app, a, &config_a.node_id, &workload, ("mover", port, 128, 512)).await;
        let source_volume = dir_a.path().join("volumes").join(&id);
        write_files(&source_volume);

        // A local backup, which must travel too.
        let backup = app.post(&format!("/v1/instances/{id}/backups"), t, json!({"name": "before the move"}))
            .await.expect(202).body;
        let bid = backup["id"].as_str().expect("backup id").to_owned();
        let deadline = tokio::time::Instant::now() + WAIT;
        let sha = loop {
            let list = app.get(&format!("/v1/instances/{id}/backups"), t).await.expect(200).body;
            if list["data"][0]["status"] == "completed" {
                break list["data"][0]["sha256"].as_str().expect("sha").to_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "{list}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        app.post(&format!("/v1/instances/{id}/start"), t, json!({})).await.expect(202);
        wait_instance(&app, a, &id, "running", WAIT).await;

        // Refused before anything moves.
        app.post(&format!("/v1/instances/{id}/migrate"), t, json!({"target_node_id": config_a.node_id}))
            .await.expect_error(422, "SAME_NODE");
        app.post(&format!("/v1/instances/{id}/migrate"), t, json!({"target_node_id": "no-such-node"}))
            .await.expect_error(404, "NOT_FOUND");
        app.post(&format!("/v1/instances/{id}/migrate"), t, json!({"target": "x"}))
            .await.expect_error(400, "BAD_REQUEST");
        let stranger = app.register("stranger@example.com").await;
        app.post(&format!("/v1/instances/{id}/migrate"), Some(&stranger.access), json!({}))
            .await.expect_error(404, "NOT_FOUND");

        // The move, to the only other node (chosen, not named).
        let before = tree(&source_volume);
        let r = app.post(&format!("/v1/instances/{id}/migrate"), t, json!({})).await.expect(202);
        assert_eq!(r.body["state"], "queued", "{}", r.text);
        assert_eq!(r.body["target_node_id"], config_b.node_id.as_str());
        assert_eq!(r.body["was_running"], true);
        let mid = r.body["id"].as_str().expect("migration id").to_owned();
        let m = wait_migration(&app, a, &mid).await;
        assert_eq!(m["state"], "completed", "{m}");
        assert!(m["bytes_copied"].as_i64().unwrap_or(0) > 0, "{m}");
        assert_eq!(m["ports_changed"], json!([]), "the port was free on the target: {m}");

        // It runs on the target, with every file the same, and the source forgot it.
        let now = wait_instance(&app, a, &id, "running", WAIT).await;
        assert_eq!(now["node_id"], config_b.node_id.as_str(), "{now}");
        assert_eq!(now["allocations"][0]["port"], port, "{now}");
        let target_volume = dir_b.path().join("volumes").join(&id);
        assert_eq!(tree(&target_volume), before, "the files on the target are the source's");
        assert!(!source_volume.exists(), "the source forgot the server's files: {:?} {m}",
            std::fs::read_dir(&source_volume).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()));

        // The local backup came along: listed, downloadable from the new node, the same
        // archive.
        let archive = app.client
            .get(format!("{}/v1/instances/{id}/backups/{bid}/download", app.base))
            .bearer_auth(a)
            .send().await.expect("download");
        assert_eq!(archive.status(), 200);
        let bytes = archive.bytes().await.expect("archive");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);
        assert!(dir_b.path().join("backups").join(&id).join(format!("{bid}.tar.zst")).exists());

        // The history; moving it to where it is now is refused.
        let listed = app.get(&format!("/v1/migrations?instance_id={id}"), t).await.expect(200).body;
        assert_eq!(listed["data"][0]["id"], mid.as_str(), "{listed}");
        assert_eq!(listed["data"][0]["state"], "completed");
        app.post(&format!("/v1/migrations/{mid}/cancel"), t, json!({}))
            .await.expect_error(409, "MIGRATION_PAST_CANCEL");
        app.get(&format!("/v1/migrations/{mid}"), Some(&stranger.access))
            .await.expect_error(404, "NOT_FOUND");

        // With the other node offline there is nowhere to go.
        agent_a.stop().await;
        wait_node(&app, a, &config_a.node_id, "offline").await;
        app.post(&format!("/v1/instances/{id}/migrate"), t, json!({"target_node_id": config_a.node_id}))
            .await.expect_error(409, "NODE_OFFLINE");
        app.delete(&format!("/v1/instances/{id}?force=true"), t).await.expect(204);
        agent_b.stop().await;
    }
}

/// Random bytes (incompressible), so a copy takes a while.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// How many of the 8 MiB chunks a target has finished staging for server `id`.
fn staged_chunks(target_dir: &Path, id: &str) -> usize {
    std::fs::read_dir(target_dir.join("transfers").join(id).join("files/world"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.metadata().is_ok_and(|m| m.len() == 8 << 20))
                .count()
        })
        .unwrap_or(0)
}

/// Waits until the target has staged `n` whole chunks of server `id`, the move still
/// copying.
async fn wait_staged(app: &TestApp, token: &str, mid: &str, target_dir: &Path, id: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while staged_chunks(target_dir, id) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the target never staged {n} chunks"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let m = app
        .get(&format!("/v1/migrations/{mid}"), Some(token))
        .await
        .expect(200)
        .body;
    assert_eq!(m["state"], "copying", "the copy is cut in its middle: {m}");
}

const CHUNKS: u64 = 24;

/// Two real agent processes; a server of 24 incompressible 8 MiB chunks running on the
/// first. A cancel during the final pass leaves it running on the source as it was. A
/// copy cut by `kill -9` of the source agent, then (moving back) of the target agent,
/// resumes once the agent is back from what the target had finished: the bytes sent
/// are fewer than the server's, and the move completes with every file the same. The
/// server's console tells the move (Wings' `transfer status` and `transfer logs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_cut_by_kill_9_of_either_agent_resumes_and_a_cancel_leaves_the_source() {
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let (config_a, dir_a) = register_node(&app, a).await;
    let (config_b, dir_b) = register_node(&app, a).await;
    let mut agent_a = shardlyn_tests::agent::AgentProcess::spawn(dir_a.path());
    let agent_b = shardlyn_tests::agent::AgentProcess::spawn(dir_b.path());
    wait_node(&app, a, &config_a.node_id, "online").await;
    wait_node(&app, a, &config_b.node_id, "online").await;
    let workload = busybox_workload(&app, a).await;
    let id = server_on(
        &app,
        a,
        &config_a.node_id,
        &workload,
        ("big", free_port(), 128, 2048),
    )
    .await;
    let volume_a = dir_a.path().join("volumes").join(&id);
    let volume_b = dir_b.path().join("volumes").join(&id);
    std::fs::create_dir_all(volume_a.join("world")).expect("mkdir");
    for i in 0..CHUNKS {
        std::fs::write(
            volume_a.join(format!("world/chunk-{i}.bin")),
            noise(8 << 20, i + 1),
        )
        .expect("write");
    }
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, a, &id, "running", WAIT).await;
    let before = tree(&volume_a);
    let to = |node: &str| json!({"target_node_id": node});
    let start = |body: Value| {
        let app = &app;
        let id = &id;
        async move {
            app.post(&format!("/v1/instances/{id}/migrate"), t, body)
                .await
                .expect(202)
                .body["id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };

    // Cancelled during the final pass; the console told each step.
    let mut console = crate::backups::console(&app, a, &id).await;
    let mid = start(to(&config_b.node_id)).await;
    app.post(
        &format!("/v1/instances/{id}/migrate"),
        t,
        to(&config_b.node_id),
    )
    .await
    .expect_error(409, "MIGRATION_EXISTS");
    console
        .wait_for(WAIT, "transfer logs", |e| e.event == "transfer logs")
        .await;
    console
        .wait_for(WAIT, "transfer status final_sync", |e| {
            e.event == "transfer status" && e.arg() == "final_sync"
        })
        .await;
    app.post(&format!("/v1/migrations/{mid}/cancel"), t, json!({}))
        .await
        .expect(202);
    let m = wait_migration(&app, a, &mid).await;
    assert_eq!(m["state"], "cancelled", "{m}");
    console
        .wait_for(WAIT, "transfer status cancelled", |e| {
            e.event == "transfer status" && e.arg() == "cancelled"
        })
        .await;
    let now = wait_instance(&app, a, &id, "running", WAIT).await;
    assert_eq!(now["node_id"], config_a.node_id.as_str());
    assert_eq!(
        tree(&volume_a),
        before,
        "the source's files are as they were"
    );
    assert!(
        !dir_b.path().join("transfers").join(&id).exists(),
        "the target dropped what it had staged"
    );

    // kill -9 of the source mid-copy; it comes back and the copy resumes.
    let mid = start(to(&config_b.node_id)).await;
    wait_staged(&app, a, &mid, dir_b.path(), &id, 6).await;
    agent_a.kill9();
    agent_a = shardlyn_tests::agent::AgentProcess::spawn(dir_a.path());
    let m = wait_migration(&app, a, &mid).await;
    assert_eq!(m["state"], "completed", "{m}");
    assert!(m["resumes"].as_i64().unwrap_or(0) >= 1, "{m}");
    let sent = m["bytes_copied"].as_u64().unwrap_or(u64::MAX);
    assert!(
        sent < (CHUNKS - 5) * (8 << 20),
        "the chunks the target had finished were not sent again: {sent} bytes, {m}"
    );
    let now = wait_instance(&app, a, &id, "running", WAIT).await;
    assert_eq!(now["node_id"], config_b.node_id.as_str());
    assert_eq!(tree(&volume_b), before, "every file arrived whole");

    // kill -9 of the target mid-copy (moving back); it comes back and the copy resumes.
    let mid = start(to(&config_a.node_id)).await;
    wait_staged(&app, a, &mid, dir_a.path(), &id, 6).await;
    agent_a.kill9();
    let agent_a = shardlyn_tests::agent::AgentProcess::spawn(dir_a.path());
    let m = wait_migration(&app, a, &mid).await;
    assert_eq!(m["state"], "completed", "{m}");
    assert!(m["resumes"].as_i64().unwrap_or(0) >= 1, "{m}");
    let now = wait_instance(&app, a, &id, "running", WAIT).await;
    assert_eq!(now["node_id"], config_a.node_id.as_str());
    assert_eq!(tree(&volume_a), before, "every file arrived whole");
    assert!(!volume_b.exists(), "the old node forgot the server");
    app.delete(&format!("/v1/instances/{id}?force=true"), t)
        .await
        .expect(204);
    drop((agent_a, agent_b));
}

/// A drain with an empty body moves every server of the node to the other one, in
/// waves; the drained node is left empty and can be deleted. Moving a node's servers
/// with `POST /v1/nodes/{id}/migrate` names the ones that fit nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_moves_every_server_to_another_node() {
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let Nodes {
        config_a,
        dir_a,
        agent_a,
        config_b,
        dir_b,
        agent_b,
        workload,
    } = two_nodes(&app, a, "").await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let id = server_on(
            &app,
            a,
            &config_a.node_id,
            &workload,
            (name, free_port(), 64, 128),
        )
        .await;
        std::fs::write(
            dir_a.path().join("volumes").join(&id).join("name.txt"),
            name,
        )
        .expect("write");
        ids.push(id);
    }
    app.post(&format!("/v1/instances/{}/start", ids[0]), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, a, &ids[0], "running", WAIT).await;

    // Bad requests first.
    let node_a = config_a.node_id.as_str();
    app.post(
        &format!("/v1/nodes/{node_a}/migrate"),
        t,
        json!({"wave_size": 0}),
    )
    .await
    .expect_error(422, "VALIDATION_ERROR");
    app.post(
        &format!("/v1/nodes/{node_a}/migrate"),
        t,
        json!({"target_node_id": node_a}),
    )
    .await
    .expect_error(422, "SAME_NODE");
    app.post(
        &format!("/v1/nodes/{node_a}/migrate"),
        t,
        json!({"instance_ids": ["elsewhere"]}),
    )
    .await
    .expect_error(422, "VALIDATION_ERROR");

    let r = app
        .post(
            &format!("/v1/nodes/{node_a}/drain"),
            t,
            json!({"wave_size": 2}),
        )
        .await
        .expect(202);
    assert_eq!(r.body["cordoned"], true);
    assert_eq!(r.body["unplaced"], json!([]), "{}", r.text);
    let moves: Vec<String> = r.body["migrations"]
        .as_array()
        .expect("moves")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(moves.len(), 3, "{}", r.text);
    for mid in &moves {
        let m = wait_migration(&app, a, mid).await;
        assert_eq!(m["state"], "completed", "{m}");
        assert_eq!(m["target_node_id"], config_b.node_id.as_str());
    }
    for (id, name) in ids.iter().zip(["one", "two", "three"]) {
        let now = app
            .get(&format!("/v1/instances/{id}"), t)
            .await
            .expect(200)
            .body;
        assert_eq!(now["node_id"], config_b.node_id.as_str(), "{now}");
        assert_eq!(
            std::fs::read_to_string(dir_b.path().join("volumes").join(id).join("name.txt"))
                .expect("moved"),
            name
        );
    }
    wait_instance(&app, a, &ids[0], "running", WAIT).await;
    // The drained node holds nothing: it can be deleted.
    agent_a.stop().await;
    app.delete(&format!("/v1/nodes/{node_a}"), t)
        .await
        .expect(204);

    // Moving a node's servers when no other node is left: every one is named, none moves.
    let r = app
        .post(
            &format!("/v1/nodes/{}/migrate", config_b.node_id),
            t,
            json!({}),
        )
        .await
        .expect(202);
    assert_eq!(r.body["migrations"], json!([]), "{}", r.text);
    assert_eq!(
        r.body["unplaced"].as_array().map(Vec::len),
        Some(3),
        "{}",
        r.text
    );
    for id in &ids {
        app.delete(&format!("/v1/instances/{id}?force=true"), t)
            .await
            .expect(204);
    }
    agent_b.stop().await;
}

/// A move whose panel replica died mid-copy (its row stopped changing) is taken over by
/// the reaper and resumes from what the target had staged: the half copy is completed,
/// what the source does not have is dropped, and the server runs on the target with
/// every file the same. The dead replica's runner, were it alive, would see the move
/// is no longer its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_abandoned_by_a_dead_replica_is_taken_over_and_resumed() {
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let Nodes {
        config_a,
        dir_a,
        agent_a,
        config_b,
        dir_b,
        agent_b,
        workload,
    } = two_nodes(&app, a, "").await;
    let id = server_on(
        &app,
        a,
        &config_a.node_id,
        &workload,
        ("orphan", free_port(), 64, 128),
    )
    .await;
    let volume_a = dir_a.path().join("volumes").join(&id);
    write_files(&volume_a);
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    let instance = wait_instance(&app, a, &id, "running", WAIT).await;
    let before = tree(&volume_a);

    // What the dead replica left: a row in `copying` last touched a minute ago, and a
    // half-filled staging directory on the target (one file the source no longer has).
    let staged = dir_b.path().join("transfers").join(&id).join("files");
    std::fs::create_dir_all(&staged).expect("mkdir");
    std::fs::write(staged.join("half.bin"), b"half a copy").expect("write");
    let now = shardlyn_panel::db::now_ms();
    let m = shardlyn_panel::migrations::store::Migration {
        id: shardlyn_panel::db::new_id(),
        org_id: instance["organization_id"]
            .as_str()
            .expect("org")
            .to_owned(),
        instance_id: id.clone(),
        source_node_id: config_a.node_id.clone(),
        target_node_id: config_b.node_id.clone(),
        state: "copying".into(),
        reason: None,
        was_running: true,
        cancel_requested: false,
        bytes_copied: 0,
        ports_changed: String::new(),
        requested_by: None,
        created_at: now - 60_000,
        updated_at: now - 60_000,
        finished_at: None,
        runner: "the-dead-replica".into(),
        resumes: 0,
        backup_id: None,
        backup_taken_at: None,
    };
    shardlyn_panel::migrations::store::insert(&app.state.db.pool, &m)
        .await
        .expect("insert");
    app.post(&format!("/v1/instances/{id}/migrate"), t, json!({}))
        .await
        .expect_error(409, "MIGRATION_EXISTS");

    shardlyn_panel::migrations::runner::reap(&app.state, 30_000).await;
    assert!(
        !shardlyn_panel::migrations::store::beat(&app.state.db.pool, &m.id, "the-dead-replica")
            .await
            .expect("beat"),
        "the move is no longer the dead replica's"
    );
    let ended = wait_migration(&app, a, &m.id).await;
    assert_eq!(ended["state"], "completed", "{ended}");
    let now = wait_instance(&app, a, &id, "running", WAIT).await;
    assert_eq!(now["node_id"], config_b.node_id.as_str());
    assert_eq!(tree(&dir_b.path().join("volumes").join(&id)), before);
    app.delete(&format!("/v1/instances/{id}?force=true"), t)
        .await
        .expect(204);
    agent_a.stop().await;
    agent_b.stop().await;
}

/// The target's disk fills up (its budget for server files, `volumes_budget_mb`, is
/// smaller than the server): the move fails with the reason, the target drops what it
/// staged, and the server runs on the source with every file as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_target_fails_the_move_and_leaves_the_source_as_it_was() {
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let Nodes {
        config_a,
        dir_a,
        agent_a,
        config_b: _config_b,
        dir_b,
        agent_b,
        workload,
    } = two_nodes(&app, a, "volumes_budget_mb = 8\n").await;
    let id = server_on(
        &app,
        a,
        &config_a.node_id,
        &workload,
        ("roomy", free_port(), 64, 256),
    )
    .await;
    let volume = dir_a.path().join("volumes").join(&id);
    for i in 0..4u64 {
        std::fs::write(volume.join(format!("part-{i}.bin")), noise(4 << 20, i + 7)).expect("write");
    }
    app.post(&format!("/v1/instances/{id}/start"), t, json!({}))
        .await
        .expect(202);
    wait_instance(&app, a, &id, "running", WAIT).await;
    let before = tree(&volume);

    let mid = app
        .post(&format!("/v1/instances/{id}/migrate"), t, json!({}))
        .await
        .expect(202)
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let m = wait_migration(&app, a, &mid).await;
    assert_eq!(m["state"], "failed", "{m}");
    assert!(
        m["reason"].as_str().is_some_and(|r| r.contains("budget")),
        "{m}"
    );
    let now = wait_instance(&app, a, &id, "running", WAIT).await;
    assert_eq!(now["node_id"], config_a.node_id.as_str());
    assert_eq!(tree(&volume), before);
    assert!(
        !dir_b.path().join("transfers").join(&id).exists(),
        "the target dropped the partial copy"
    );
    app.delete(&format!("/v1/instances/{id}?force=true"), t)
        .await
        .expect(204);
    agent_a.stop().await;
    agent_b.stop().await;
}

/// A server whose node is offline is rebuilt on another node from its latest S3 backup
/// (moto, a real S3-compatible server), only when asked: without `from_backup` the
/// answer names the backup's age. What changed after the backup is lost, the offline
/// node forgets the server when it is back, and a node's servers can all be rebuilt at
/// once (one without a backup is named and left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_an_offline_node_is_rebuilt_from_its_backup_on_request() {
    let moto = crate::backups::Moto::start().await;
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    app.post(
        "/v1/backup-config",
        t,
        json!({
            "name": "moto", "kind": "s3", "endpoint": moto.url, "region": "us-east-1",
            "bucket": "shardlyn-backups", "access_key_id": "AKIDTEST",
            "secret_access_key": "not-a-real-secret",
        }),
    )
    .await
    .expect(201);
    app.post(
        "/v1/backup-config/s3-buckets",
        t,
        json!({"name": "shardlyn-backups"}),
    )
    .await
    .expect(201);
    let Nodes {
        config_a,
        dir_a,
        agent_a,
        config_b,
        dir_b,
        agent_b,
        workload,
    } = two_nodes(&app, a, "").await;
    let id = server_on(
        &app,
        a,
        &config_a.node_id,
        &workload,
        ("phoenix", free_port(), 64, 128),
    )
    .await;
    let lonely = server_on(
        &app,
        a,
        &config_b.node_id,
        &workload,
        ("lonely", free_port(), 64, 128),
    )
    .await;
    let volume_a = dir_a.path().join("volumes").join(&id);
    write_files(&volume_a);
    let bid = app
        .post(&format!("/v1/instances/{id}/backups"), t, json!({}))
        .await
        .expect(202)
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    crate::backups::wait_backup(&app, a, &id, &bid, "completed").await;
    let backed_up = tree(&volume_a);
    // Written after the backup: lost by the rebuild.
    std::fs::write(volume_a.join("after-the-backup.txt"), "lost").expect("write");
    app.post(
        &format!("/v1/instances/{id}/migrate"),
        t,
        json!({"from_backup": true}),
    )
    .await
    .expect_error(422, "SOURCE_ONLINE");

    agent_a.stop().await;
    wait_node(&app, a, &config_a.node_id, "offline").await;
    let refused = app
        .post(&format!("/v1/instances/{id}/migrate"), t, json!({}))
        .await
        .expect_error(409, "NODE_OFFLINE");
    let said = refused.body["error"].as_str().unwrap_or_default();
    assert!(
        said.contains("from_backup") && said.contains(" ago"),
        "the refusal names the backup's age: {said}"
    );
    let r = app
        .post(
            &format!("/v1/instances/{id}/migrate"),
            t,
            json!({"from_backup": true}),
        )
        .await
        .expect(202);
    assert_eq!(
        r.body["from_backup"]["backup_id"],
        bid.as_str(),
        "{}",
        r.text
    );
    assert!(r.body["from_backup"]["taken_at"].is_string(), "{}", r.text);
    let m = wait_migration(&app, a, r.body["id"].as_str().expect("id")).await;
    assert_eq!(m["state"], "completed", "{m}");
    let now = wait_instance(&app, a, &id, "offline", WAIT).await;
    assert_eq!(now["node_id"], config_b.node_id.as_str());
    let volume_b = dir_b.path().join("volumes").join(&id);
    assert_eq!(tree(&volume_b), backed_up, "the files are the backup's");

    // The old node is back: it forgets the server, which lives on the other node now.
    let agent_a = LocalAgent::start(config_a.clone(), dir_a.path());
    wait_node(&app, a, &config_a.node_id, "online").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while volume_a.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old node still has the server's files"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The other node goes offline: its servers are rebuilt at once, the one without a
    // backup named and left.
    agent_b.stop().await;
    wait_node(&app, a, &config_b.node_id, "offline").await;
    let planned = app
        .post(
            &format!("/v1/nodes/{}/migrate", config_b.node_id),
            t,
            json!({"from_backup": true}),
        )
        .await
        .expect(202)
        .body;
    assert_eq!(
        planned["migrations"].as_array().map(Vec::len),
        Some(1),
        "{planned}"
    );
    assert_eq!(
        planned["unplaced"][0]["instance_id"],
        lonely.as_str(),
        "{planned}"
    );
    assert!(
        planned["unplaced"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("backup")),
        "{planned}"
    );
    let mid = planned["migrations"][0]["id"].as_str().expect("id");
    assert_eq!(wait_migration(&app, a, mid).await["state"], "completed");
    let now = wait_instance(&app, a, &id, "offline", WAIT).await;
    assert_eq!(now["node_id"], config_a.node_id.as_str());
    assert_eq!(tree(&volume_a), backed_up);
    app.delete(&format!("/v1/instances/{id}?force=true"), t)
        .await
        .expect(204);
    agent_a.stop().await;
}
