//! Backups end to end on real Docker: a real agent archives a live server's files
//! (tar + zstd), the panel tracks the backup; download, restore with truncate (every
//! file hashed before and after), ignore files, locks, checksum verification,
//! permissions; an S3 target on a real S3-compatible server (moto, one per test); and
//! a backup interrupted by `kill -9` of the agent is marked failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shardlyn_tests::agent::{
    AgentProcess, LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::console::Console;
use shardlyn_tests::sse::SseStream;
use shardlyn_tests::{Engine, TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

async fn create_instance(app: &TestApp, access: &str, node: &str, workload: &str) -> String {
    let body = app
        .post(
            "/v1/instances",
            Some(access),
            json!({
                "name": "backed-up",
                "workload_id": workload,
                "node_id": node,
                "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 2048, "pids": 64, "io_weight": 500},
            }),
        )
        .await
        .expect(201)
        .body;
    let id = body["id"].as_str().expect("id").to_string();
    wait_instance(app, access, &id, "offline", WAIT).await;
    id
}

pub(crate) async fn console(app: &TestApp, access: &str, id: &str) -> Console {
    let r = app
        .post(
            &format!("/v1/instances/{id}/console/tickets"),
            Some(access),
            json!({}),
        )
        .await
        .expect(201);
    let t = r.body["ticket"].as_str().expect("ticket");
    let mut c = Console::connect(
        &format!("{}/v1/instances/{id}/console?ticket={t}", app.base),
        None,
    )
    .await
    .expect("console opens");
    c.wait_for(WAIT, "auth success", |e| e.event == "auth success")
        .await;
    c
}

/// Every file under `root` (relative path → SHA-256), directories as `dir`.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("rel")
                .to_string_lossy()
                .to_string();
            let ft = e.file_type().expect("type");
            if ft.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &p, out);
            } else if ft.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).expect("link").display()),
                );
            } else {
                out.insert(
                    rel,
                    hex::encode(Sha256::digest(std::fs::read(&p).expect("read"))),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A small server tree with ignore files.
fn write_files(volume: &Path) {
    std::fs::create_dir_all(volume.join("world/region")).expect("mkdir");
    std::fs::create_dir_all(volume.join("logs")).expect("mkdir");
    std::fs::create_dir_all(volume.join("plugins/conf")).expect("mkdir");
    for i in 0..20u8 {
        let data: Vec<u8> = (0..40_000u32)
            .map(|j| (j as u8).wrapping_mul(i).wrapping_add(i))
            .collect();
        std::fs::write(volume.join(format!("world/region/r.{i}.mca")), data).expect("write");
    }
    std::fs::write(volume.join("server.properties"), "motd=before\n").expect("write");
    std::fs::write(volume.join("plugins/conf/a.yml"), "a: 1\n").expect("write");
    std::fs::write(volume.join("logs/latest.log"), "ignored by .shardlynignore").expect("write");
    std::fs::write(volume.join("world/cache.tmp"), "ignored by the request").expect("write");
    std::fs::write(volume.join(".shardlynignore"), "logs/\n").expect("write");
    std::fs::write(volume.join("plugins/.pteroignore"), "*.bak\n").expect("write");
    std::fs::write(volume.join("plugins/old.bak"), "ignored by .pteroignore").expect("write");
}

/// The tree expected in the archive: everything but the ignored paths.
fn expected(volume: &Path) -> BTreeMap<String, String> {
    let mut t = tree(volume);
    t.retain(|k, _| {
        !(k == "logs" || k.starts_with("logs/") || k == "world/cache.tmp" || k == "plugins/old.bak")
    });
    t
}

pub(crate) async fn wait_backup(
    app: &TestApp,
    access: &str,
    id: &str,
    bid: &str,
    want: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = app
            .get(&format!("/v1/instances/{id}/backups"), Some(access))
            .await
            .expect(200);
        let b = r.body["data"]
            .as_array()
            .and_then(|l| l.iter().find(|b| b["id"] == bid).cloned())
            .unwrap_or(Value::Null);
        if b["status"] == want {
            return b;
        }
        assert!(
            b["status"] == "running" || b["status"] == "pending",
            "backup ended {} instead of {want}: {b}",
            b["status"]
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "backup never {want}: {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn download_tree(
    app: &TestApp,
    access: &str,
    id: &str,
    bid: &str,
    sha: &str,
) -> BTreeMap<String, String> {
    let r = app
        .client
        .get(format!(
            "{}/v1/instances/{id}/backups/{bid}/download",
            app.base
        ))
        .bearer_auth(access)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.expect("body");
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        sha,
        "the download is the recorded archive"
    );
    let out = tempfile::tempdir().expect("tmp");
    let dec = zstd::stream::read::Decoder::new(&bytes[..]).expect("zstd");
    tar::Archive::new(dec).unpack(out.path()).expect("untar");
    tree(out.path())
}

async fn events(app: &TestApp, access: &str) -> SseStream {
    let auth = format!("Bearer {access}");
    SseStream::open(
        &app.client,
        &format!("{}/v1/events", app.base),
        &[("authorization", auth.as_str())],
    )
    .await
    .unwrap_or_else(|(status, body)| panic!("stream refused: {status} {body}"))
}

/// The `backup_progress` events of backup `bid`'s `operation` up to its end: at least
/// the start and the end, never going back, the end at 100 %.
async fn progress_until_end(stream: &mut SseStream, bid: &str, operation: &str) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    loop {
        let e = stream.expect("backup_progress", WAIT).await.data;
        if e["backup_id"] != bid || e["operation"] != operation {
            continue;
        }
        let done = e["bytes_done"].as_u64().expect("bytes_done");
        if let Some(before) = seen.last() {
            assert!(
                done >= before["bytes_done"].as_u64().unwrap_or(0),
                "{seen:?} then {e}"
            );
        }
        let ended = e["status"] != "running";
        seen.push(e);
        if ended {
            break;
        }
    }
    let last = seen.last().expect("an end");
    assert_eq!(last["status"], "completed", "{seen:?}");
    let total = last["bytes_total"].as_u64().unwrap_or(0);
    assert!(total > 0 && last["bytes_done"] == total, "{seen:?}");
    assert!(seen.len() >= 2, "a start and an end: {seen:?}");
    seen
}

fn volume(dir: &Path, id: &str) -> PathBuf {
    dir.join("volumes").join(id)
}

both_engines! {
    async fn backup_download_restore_lock_and_checksum(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let (config, dir) = register_node(&app, a).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(&app, a, &config.node_id, "online").await;
        let workload = busybox_workload(&app, a).await;
        let id = create_instance(&app, a, &config.node_id, &workload).await;
        let vol = volume(dir.path(), &id);
        write_files(&vol);
        let want = expected(&vol);
        let mut c = console(&app, a, &id).await;
        let mut stream = events(&app, a).await;

        let r = app.post(&format!("/v1/instances/{id}/backups"), t,
            json!({"name": "first", "ignored": "*.tmp"})).await.expect(202);
        let bid = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(r.body["name"], "first");
        c.wait_for(WAIT, "backup completed", |e| e.event == "backup completed" && e.arg() == bid).await;
        // Progress and the end reach the event stream; by the end the row says so.
        let seen = progress_until_end(&mut stream, &bid, "backup").await;
        assert_eq!(seen[0]["bytes_done"], 0, "{seen:?}");
        assert_eq!(seen[0]["instance_id"], id.as_str());
        let b = app.get(&format!("/v1/instances/{id}/backups"), t).await.expect(200).body["data"][0].clone();
        assert_eq!((b["id"].as_str(), b["status"].as_str()), (Some(bid.as_str()), Some("completed")), "{b}");
        let sha = b["sha256"].as_str().expect("sha").to_string();
        assert_eq!(sha.len(), 64);
        assert!(b["size_bytes"].as_i64().unwrap_or(0) > 0, "{b}");
        assert_eq!(b["checksum"], format!("sha256:{sha}"));
        assert_eq!(download_tree(&app, a, &id, &bid, &sha).await, want, "the archive holds the tree minus ignored paths");

        // Change files, then restore with truncate: the tree is exactly the backup's.
        std::fs::write(vol.join("server.properties"), "motd=after\n").expect("write");
        std::fs::remove_file(vol.join("world/region/r.3.mca")).expect("rm");
        std::fs::write(vol.join("new-file.txt"), "created after the backup").expect("write");
        let r = app.post(&format!("/v1/instances/{id}/backups/{bid}/restore"), t, json!({"truncate": true})).await.expect(202);
        assert_eq!(r.body["state"], "offline", "{}", r.text);
        c.wait_for(WAIT, "backup restore completed", |e| e.event == "backup restore completed").await;
        // A restore counts the archive's bytes read, against the archive's size.
        let seen = progress_until_end(&mut stream, &bid, "restore").await;
        assert_eq!(seen.last().expect("end")["bytes_total"], b["size_bytes"], "{seen:?}");
        assert_eq!(tree(&vol), want, "restore with truncate gives back the backed-up tree");

        // Without truncate, files created since stay.
        std::fs::write(vol.join("extra.txt"), "kept").expect("write");
        std::fs::write(vol.join("server.properties"), "motd=changed\n").expect("write");
        app.post(&format!("/v1/instances/{id}/backups/{bid}/restore"), t, json!({})).await.expect(202);
        c.wait_for(WAIT, "second restore", |e| e.event == "backup restore completed").await;
        let mut with_extra = want.clone();
        with_extra.insert("extra.txt".into(), hex::encode(Sha256::digest(b"kept")));
        assert_eq!(tree(&vol), with_extra);
        std::fs::remove_file(vol.join("extra.txt")).expect("rm");

        // A corrupted archive is refused before anything is touched.
        let archive = dir.path().join("backups").join(&id).join(format!("{bid}.tar.zst"));
        let mut raw = std::fs::read(&archive).expect("archive on the node's disk");
        let mid = raw.len() / 2;
        raw[mid] ^= 0xff;
        std::fs::write(archive, raw).expect("corrupt");
        std::fs::write(vol.join("server.properties"), "motd=untouched\n").expect("write");
        let before = tree(&vol);
        let r = app.post(&format!("/v1/instances/{id}/backups/{bid}/restore"), t, json!({"truncate": true})).await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert!(r.text.contains("checksum"), "{}", r.text);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(tree(&vol), before, "a refused restore touches no file");

        // Locks: a locked backup cannot be deleted until unlocked.
        let r = app.post(&format!("/v1/instances/{id}/backups"), t, json!({"locked": true})).await.expect(202);
        let locked = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(r.body["locked"], true);
        wait_backup(&app, a, &id, &locked, "completed").await;
        app.delete(&format!("/v1/instances/{id}/backups/{locked}"), t).await.expect_error(409, "BACKUP_LOCKED");
        let r = app.post(&format!("/v1/instances/{id}/backups/{locked}/lock"), t, json!({"locked": false})).await.expect(200);
        assert_eq!(r.body["locked"], false);
        app.delete(&format!("/v1/instances/{id}/backups/{locked}"), t).await.expect(204);
        assert!(!dir.path().join("backups").join(&id).join(format!("{locked}.tar.zst")).exists());
        app.get(&format!("/v1/instances/{id}/backups/{locked}/download"), t).await.expect_error(404, "NOT_FOUND");

        // Permissions: a viewer reads nothing of backups, a stranger sees no instance.
        let org = app.get(&format!("/v1/instances/{id}"), t).await.expect(200).body["organization_id"]
            .as_str().map(str::to_string);
        let viewer = app.register("viewer@example.com").await;
        let stranger = app.register("stranger@example.com").await;
        if let Some(org) = org {
            app.add_member(&org, &viewer.user_id, "viewer").await;
            app.get(&format!("/v1/instances/{id}/backups"), Some(&viewer.access)).await.expect_error(403, "FORBIDDEN");
            app.post(&format!("/v1/instances/{id}/backups"), Some(&viewer.access), json!({})).await.expect_error(403, "FORBIDDEN");
        }
        app.get(&format!("/v1/instances/{id}/backups"), Some(&stranger.access)).await.expect_error(404, "NOT_FOUND");
        app.post(&format!("/v1/instances/{id}/backups/{bid}/restore"), Some(&stranger.access), json!({})).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/instances/{id}/backups/{bid}/download"), Some(&stranger.access)).await.expect_error(404, "NOT_FOUND");

        c.close().await;
        assert!(dir.path().join("backups").join(&id).join(format!("{bid}.tar.zst")).exists());
        app.delete(&format!("/v1/instances/{id}"), t).await.expect(204);
        assert!(!dir.path().join("backups").join(&id).exists(), "the node's backups go with the server");
        agent.stop().await;
    }

    async fn rotation_keeps_the_limit_and_spares_locked(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let (config, dir) = register_node(&app, a).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(&app, a, &config.node_id, "online").await;
        let workload = busybox_workload(&app, a).await;
        let id = create_instance(&app, a, &config.node_id, &workload).await;
        write_files(&volume(dir.path(), &id));
        let r = app.post("/v1/backup-config", t, json!({"name": "disk", "kind": "local", "max_backups": 2})).await.expect(201);
        assert_eq!(r.body["active"], true, "the first config becomes active");
        let mut ids = Vec::new();
        for (i, locked) in [true, false, false].into_iter().enumerate() {
            let r = app.post(&format!("/v1/instances/{id}/backups"), t, json!({"name": format!("b{i}"), "locked": locked})).await.expect(202);
            let bid = r.body["id"].as_str().expect("id").to_string();
            wait_backup(&app, a, &id, &bid, "completed").await;
            ids.push(bid);
        }
        let list = app.get(&format!("/v1/instances/{id}/backups"), t).await.expect(200);
        let names: Vec<&str> = list.body["data"].as_array().expect("list").iter().filter_map(|b| b["name"].as_str()).collect();
        assert_eq!(names, vec!["b2", "b0"], "the oldest unlocked backup was rotated out: {}", list.text);
        app.delete(&format!("/v1/instances/{id}"), t).await.expect(204);
        agent.stop().await;
    }
}

pub(crate) use shardlyn_tests::moto::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_target_through_backup_config() {
    let moto = Moto::start().await;
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let r = app
        .post(
            "/v1/backup-config",
            t,
            json!({
                "name": "moto", "kind": "s3", "endpoint": moto.url, "region": "us-east-1",
                "bucket": "shardlyn-backups", "prefix": "node-a", "access_key_id": "AKIDTEST",
                "secret_access_key": "not-a-real-secret", "part_size": 5 * 1024 * 1024,
            }),
        )
        .await
        .expect(201);
    let cid = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["has_credentials"], true);
    assert!(
        !r.text.contains("not-a-real-secret"),
        "secrets never come back: {}",
        r.text
    );
    let sealed: String =
        sqlx::query_scalar("SELECT sealed_credentials FROM backup_configs WHERE id = $1")
            .bind(&cid)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("row");
    assert!(
        !sealed.contains("not-a-real-secret") && !sealed.contains("AKIDTEST"),
        "sealed at rest"
    );
    app.post(
        "/v1/backup-config/s3-buckets",
        t,
        json!({"name": "shardlyn-backups"}),
    )
    .await
    .expect(201);
    app.post(
        "/v1/backup-config/s3-buckets",
        t,
        json!({"name": "Bad_Name"}),
    )
    .await
    .expect(400);
    let r = app.get("/v1/backup-config/s3-buckets", t).await.expect(200);
    assert!(
        r.body["data"]
            .as_array()
            .expect("list")
            .iter()
            .any(|b| b["name"] == "shardlyn-backups"),
        "{}",
        r.text
    );
    let r = app.get("/v1/backup-config", t).await.expect(200);
    assert_eq!(r.body["id"], cid.as_str());

    let (config, dir) = register_node(&app, a).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, a, &config.node_id, "online").await;
    let workload = busybox_workload(&app, a).await;
    let id = create_instance(&app, a, &config.node_id, &workload).await;
    let vol = volume(dir.path(), &id);
    write_files(&vol);
    // Big enough for several multipart parts (5 MiB each), incompressible.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..12 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(vol.join("world/noise.bin"), noise).expect("write");
    let want = expected(&vol);
    let mut c = console(&app, a, &id).await;
    let r = app
        .post(
            &format!("/v1/instances/{id}/backups"),
            t,
            json!({"ignored": ["*.tmp"]}),
        )
        .await
        .expect(202);
    let bid = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["target"], "s3");
    let b = wait_backup(&app, a, &id, &bid, "completed").await;
    let sha = b["sha256"].as_str().expect("sha").to_string();
    assert!(
        !dir.path()
            .join("backups")
            .join(&id)
            .join(format!("{bid}.tar.zst"))
            .exists(),
        "nothing kept on the node"
    );
    // The object is in the bucket, under the prefix.
    let listing = reqwest::get(format!("{}/shardlyn-backups?list-type=2", moto.url))
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert!(
        listing.contains(&format!("node-a/{id}/{bid}.tar.zst")),
        "{listing}"
    );
    assert_eq!(download_tree(&app, a, &id, &bid, &sha).await, want);

    std::fs::write(vol.join("server.properties"), "motd=after\n").expect("write");
    std::fs::write(vol.join("junk.txt"), "junk").expect("write");
    app.post(
        &format!("/v1/instances/{id}/backups/{bid}/restore"),
        t,
        json!({"truncate": true}),
    )
    .await
    .expect(202);
    c.wait_for(WAIT, "backup restore completed", |e| {
        e.event == "backup restore completed"
    })
    .await;
    assert_eq!(tree(&vol), want, "restored from S3");

    // Deleting removes the object; the config cannot go while backups use it.
    app.delete(&format!("/v1/backup-config/{cid}"), t)
        .await
        .expect(409);
    app.delete(&format!("/v1/instances/{id}/backups/{bid}"), t)
        .await
        .expect(204);
    let listing = reqwest::get(format!("{}/shardlyn-backups?list-type=2", moto.url))
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert!(!listing.contains(&bid), "{listing}");

    // Deleting the server removes its archives from the bucket too.
    let r = app
        .post(&format!("/v1/instances/{id}/backups"), t, json!({}))
        .await
        .expect(202);
    let second = r.body["id"].as_str().expect("id").to_string();
    wait_backup(&app, a, &id, &second, "completed").await;
    let objects = || async {
        reqwest::get(format!("{}/shardlyn-backups?list-type=2", moto.url))
            .await
            .expect("list")
            .text()
            .await
            .expect("text")
    };
    assert!(objects().await.contains(&second));
    c.close().await;
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    let listing = objects().await;
    assert!(!listing.contains(&format!("{id}/")), "{listing}");
    app.delete(&format!("/v1/backup-config/{cid}"), t)
        .await
        .expect(204);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_interrupted_by_an_agent_kill_is_failed() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let (config, dir) = register_node(&app, a).await;
    let agent = AgentProcess::spawn(dir.path());
    wait_node(&app, a, &config.node_id, "online").await;
    let workload = busybox_workload(&app, a).await;
    let id = create_instance(&app, a, &config.node_id, &workload).await;
    let vol = volume(dir.path(), &id);
    // ~200 MiB of incompressible data: the agent is killed as soon as the backup started.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let chunk: Vec<u8> = (0..8 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for i in 0..25 {
        std::fs::write(vol.join(format!("big-{i}.bin")), &chunk).expect("write");
        x = x.wrapping_add(1);
    }
    let r = app
        .post(&format!("/v1/instances/{id}/backups"), t, json!({}))
        .await
        .expect(202);
    let bid = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["status"], "running", "{}", r.text);
    agent.kill9();
    let agent = AgentProcess::spawn(dir.path());
    wait_node(&app, a, &config.node_id, "online").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = app
            .get(&format!("/v1/instances/{id}/backups"), t)
            .await
            .expect(200);
        let b = &r.body["data"][0];
        assert_eq!(b["id"], bid.as_str());
        assert_ne!(
            b["status"], "completed",
            "an interrupted backup is never completed"
        );
        if b["status"] == "failed" {
            assert!(
                b["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("interrupted")),
                "{b}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never marked failed: {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("backups").join(&id))
        .expect("dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
        .collect();
    assert!(leftovers.is_empty(), "the partial archive is removed");
    app.post(
        &format!("/v1/instances/{id}/backups/{bid}/restore"),
        t,
        json!({}),
    )
    .await
    .expect_error(409, "BACKUP_NOT_COMPLETED");
    app.delete(&format!("/v1/instances/{id}/backups/{bid}"), t)
        .await
        .expect(204);
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    drop(agent);
}

/// A backup is read and deleted where it was written: after the config's endpoint moves
/// to another S3 server, download, restore and delete still use the first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_read_from_the_endpoint_it_was_written_to() {
    let (first, second) = (Moto::start().await, Moto::start().await);
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let r = app
        .post(
            "/v1/backup-config",
            t,
            json!({
                "name": "moto", "kind": "s3", "endpoint": first.url, "bucket": "shardlyn-backups",
                "access_key_id": "AKIDTEST", "secret_access_key": "not-a-real-secret",
            }),
        )
        .await
        .expect(201);
    let cid = r.body["id"].as_str().expect("id").to_string();
    app.post(
        "/v1/backup-config/s3-buckets",
        t,
        json!({"name": "shardlyn-backups"}),
    )
    .await
    .expect(201);
    let (config, dir) = register_node(&app, a).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, a, &config.node_id, "online").await;
    let workload = busybox_workload(&app, a).await;
    let id = create_instance(&app, a, &config.node_id, &workload).await;
    let vol = volume(dir.path(), &id);
    write_files(&vol);
    let want = expected(&vol);
    let mut c = console(&app, a, &id).await;
    let r = app
        .post(
            &format!("/v1/instances/{id}/backups"),
            t,
            json!({"ignored": ["*.tmp"]}),
        )
        .await
        .expect(202);
    let bid = r.body["id"].as_str().expect("id").to_string();
    let sha = wait_backup(&app, a, &id, &bid, "completed").await["sha256"]
        .as_str()
        .expect("sha")
        .to_string();

    // The config now points at the second server, which has the bucket but not the
    // archive.
    app.put(
        &format!("/v1/backup-config/{cid}"),
        t,
        json!({"endpoint": second.url}),
    )
    .await
    .expect(200);
    app.post(
        "/v1/backup-config/s3-buckets",
        t,
        json!({"name": "shardlyn-backups"}),
    )
    .await
    .expect(201);
    let listing = |moto: &Moto| {
        let url = format!("{}/shardlyn-backups?list-type=2", moto.url);
        async move {
            reqwest::get(url)
                .await
                .expect("list")
                .text()
                .await
                .expect("text")
        }
    };
    assert!(!listing(&second).await.contains(&bid));
    assert_eq!(download_tree(&app, a, &id, &bid, &sha).await, want);
    std::fs::write(vol.join("server.properties"), "motd=after\n").expect("write");
    app.post(
        &format!("/v1/instances/{id}/backups/{bid}/restore"),
        t,
        json!({"truncate": true}),
    )
    .await
    .expect(202);
    c.wait_for(WAIT, "backup restore completed", |e| {
        e.event == "backup restore completed"
    })
    .await;
    assert_eq!(tree(&vol), want, "restored from the first server");
    assert!(listing(&first).await.contains(&bid));
    app.delete(&format!("/v1/instances/{id}/backups/{bid}"), t)
        .await
        .expect(204);
    assert!(
        !listing(&first).await.contains(&bid),
        "deleted where it was written"
    );
    c.close().await;
    app.delete(&format!("/v1/instances/{id}"), t)
        .await
        .expect(204);
    agent.stop().await;
}
