//! Trust boundaries on the node, against real Docker and a real file system: the install
//! container is hardened like the game container; node-level container and process
//! routes reach only Shardlyn's containers without `?all=true`; a crafted backup archive
//! cannot write outside the instance's directory.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shardlyn_tests::docker::{TEST_IMAGE, docker};

use crate::{Cleanup, busybox_spec, new_id, spawn_agent};

/// Polls `docker inspect` until `name` runs; its `HostConfig`.
async fn running_host_config(name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::process::Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{.State.Running}} {{json .HostConfig}}",
                name,
            ])
            .output()
            .expect("docker inspect");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(config) = text.trim().strip_prefix("true ") {
            return serde_json::from_str(config).expect("host config");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never ran: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_ascii_lowercase())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_container_is_hardened_like_the_game_container() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    let id = new_id();
    let _cleanup = Cleanup(id.clone());
    let mut spec = busybox_spec(&id);
    // The script waits for the test, so the container can be inspected while it runs.
    spec["install"]["script"] =
        json!("#!/bin/sh\nwhile [ ! -f /mnt/server/go ]; do sleep 0.05; done\necho installed\n");
    agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    let install = running_host_config(&shardlyn_agent::instances::installer_name_in(
        dir.path(),
        &id,
    ))
    .await;
    let caps = strings(&install["CapDrop"]);
    for cap in [
        "setpcap",
        "mknod",
        "audit_write",
        "net_raw",
        "fsetid",
        "net_bind_service",
        "sys_chroot",
        "setfcap",
    ] {
        assert!(
            caps.iter().any(|c| c.trim_start_matches("cap_") == cap),
            "{cap} in {caps:?}"
        );
    }
    assert_eq!(strings(&install["SecurityOpt"]), ["no-new-privileges"]);
    assert_eq!(install["PidsLimit"], 64, "the spec's pid limit");
    assert_eq!(
        install["Memory"],
        256 * 1024 * 1024,
        "the spec's memory limit"
    );
    assert_eq!(
        install["MemorySwap"],
        256 * 1024 * 1024,
        "no swap beyond memory"
    );
    std::fs::write(dir.path().join("volumes").join(&id).join("go"), b"").expect("go");
    agent.wait_state(&id, "offline", 30).await;

    // The game container drops the same capabilities, plus the two the installer keeps
    // to work on the game user's files as root.
    agent.power(&id, "start").await.expect(202);
    let game = running_host_config(&shardlyn_agent::instances::container_name_in(
        dir.path(),
        &id,
    ))
    .await;
    let game_caps = strings(&game["CapDrop"]);
    assert!(
        caps.iter().all(|c| game_caps.contains(c)),
        "{caps:?} ⊂ {game_caps:?}"
    );
    assert_eq!(game_caps.len(), caps.len() + 2, "{game_caps:?}");
    assert_eq!(game["PidsLimit"], install["PidsLimit"]);
    assert_eq!(game["Memory"], install["Memory"]);
    assert_eq!(game["SecurityOpt"], install["SecurityOpt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_routes_reach_only_shardlyn_containers_without_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    let name = format!("not-shardlyn-{}", uuid::Uuid::new_v4().simple());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "io.shardlyn.instance=not-one-of-ours",
        TEST_IMAGE,
        "sh",
        "-c",
        "while true; do echo secret; sleep 0.2; done",
    ]);
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", &self.0])
                .output();
        }
    }
    let _remove = Remove(name.clone());
    // A label naming an instance this agent does not run is not enough.
    agent
        .get(&format!("/v1/containers/{name}/logs"))
        .await
        .expect_error(404, "NOT_FOUND");
    agent
        .post(&format!("/v1/containers/{name}/kill"), json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    let listed = agent.get("/v1/containers").await.expect(200);
    assert!(!listed.text.contains(&name), "{}", listed.text);
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &name]);
    agent
        .post(&format!("/v1/processes/{pid}/kill"), json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    // With `all=true` (what the panel sends for platform admins) it is reachable.
    let logs = agent
        .get(&format!("/v1/containers/{name}/logs?all=true"))
        .await
        .expect(200);
    assert!(logs.text.contains("secret"), "{}", logs.text);
    let listed = agent.get("/v1/containers?all=true").await.expect(200);
    assert!(listed.text.contains(&name), "{}", listed.text);
    agent
        .post(
            &format!("/v1/processes/{pid}/kill?all=true"),
            json!({"signal": "SIGKILL"}),
        )
        .await
        .expect(204);
}

/// A tar.zst of crafted entries: symlinks first, then hard links, then small files.
fn crafted(symlinks: &[(&str, &str)], hard: &[(&str, &str)], files: &[&str]) -> Vec<u8> {
    let mut raw = Vec::new();
    let enc = zstd::stream::write::Encoder::new(&mut raw, 1).expect("zstd");
    let mut tar = tar::Builder::new(enc);
    for (kind, list) in [
        (tar::EntryType::Symlink, symlinks),
        (tar::EntryType::Link, hard),
    ] {
        for (path, target) in list {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            tar.append_link(&mut h, path, target).expect("link");
        }
    }
    for path in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(7);
        h.set_mode(0o644);
        tar.append_data(&mut h, path, &b"escaped"[..])
            .expect("file");
    }
    tar.into_inner().expect("tar").finish().expect("zstd");
    raw
}

/// Links under `root` that resolve outside it.
fn escaping_links(root: &Path) -> Vec<String> {
    let canon = std::fs::canonicalize(root).expect("canon");
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let meta = std::fs::symlink_metadata(e.path()).expect("meta");
            if meta.is_symlink() {
                if std::fs::canonicalize(e.path()).is_ok_and(|t| !t.starts_with(&canon)) {
                    out.push(e.path().display().to_string());
                }
            } else if meta.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_backup_cannot_write_outside_the_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = spawn_agent(dir.path()).await;
    let id = new_id();
    let _cleanup = Cleanup(id.clone());
    let mut spec = busybox_spec(&id);
    spec["install"] = Value::Null;
    agent
        .put(&format!("/v1/instances/{id}"), spec)
        .await
        .expect(200);
    agent.wait_state(&id, "offline", 30).await;
    let volumes = dir.path().join("volumes");
    let volume = volumes.join(&id);
    let outside = dir.path().join("outside-dir");
    std::fs::create_dir_all(&outside).expect("outside");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").expect("victim");
    // `a -> .` puts `a/x` at `x`, and `x -> ..` would be the volumes directory, where the
    // other servers' files live; `link` points straight out; `hard` is a hard link out.
    let archive = crafted(
        &[
            ("a", "."),
            ("a/x", ".."),
            ("link", outside.to_str().expect("utf8")),
            ("up", "../.."),
        ],
        &[
            ("hard", victim.to_str().expect("utf8")),
            ("hard2", "../../victim"),
        ],
        &["x/pwned", "link/pwned", "up/pwned", "ok.txt"],
    );
    let bid = "crafted";
    let backups = dir.path().join("backups").join(&id);
    std::fs::create_dir_all(&backups).expect("backups dir");
    std::fs::write(backups.join(format!("{bid}.tar.zst")), &archive).expect("archive");
    let sha = hex::encode(Sha256::digest(&archive));
    let mut events = agent.stream(&format!("/v1/instances/{id}/events")).await;
    agent
        .post(
            &format!("/v1/instances/{id}/backups/{bid}/restore"),
            json!({"sha256": sha, "truncate": true}),
        )
        .await
        .expect(202);
    let seen = events
        .until(30, |e| {
            e.event == "backup restore completed" || e.event == "daemon error"
        })
        .await;
    let last = seen.last().expect("an event");
    assert_eq!(last.event, "backup restore completed", "{seen:?}");
    assert!(
        seen.iter().any(|e| e.args.iter().any(|a| a
            .as_str()
            .is_some_and(|s| s.starts_with("5 archive entries were not restored")))),
        "the skipped entries are reported: {seen:?}"
    );
    assert!(!volumes.join("pwned").exists(), "written beside the volume");
    assert!(
        !dir.path().join("pwned").exists(),
        "written above the volumes"
    );
    assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0);
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    assert_eq!(escaping_links(&volume), Vec::<String>::new());
    assert_eq!(
        std::fs::read(volume.join("ok.txt")).expect("ok"),
        b"escaped"
    );
    assert_eq!(
        std::fs::read(volume.join("x/pwned")).expect("inside"),
        b"escaped"
    );
}
