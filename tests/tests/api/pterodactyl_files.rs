//! A Pterodactyl server's files, copied from the old Wings' SFTP (played by asyncssh,
//! `tests/support/wings_sftp.py`) into a new instance's volume on a real local agent:
//! the whole tree with its modes and checksums, a copy cut midway resumed, a wrong
//! login refused with nothing written, links that escape skipped, and the switch-over
//! (the old server stopped through Wings' API, what changed sent again). The fake
//! refuses and records every write, so each test also checks the old side was only
//! read.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use shardlyn_panel::instances::Instance;
use shardlyn_panel::pterodactyl::files::{self, CopyError, FileProgress, FileReport, WingsSftp};
use shardlyn_panel::pterodactyl::{model, wings};
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::wings::{self as fake, FakeWings, Node, Options};
use shardlyn_tests::{TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(60);
const IDENT: &str = "1a2b3c4d";
const UUID: &str = "1a2b3c4d-0000-4000-8000-00000000abcd";
const PASSWORD: &str = "root-admin-password";
const MIB: usize = 1024 * 1024;

/// A node with a local agent and a stopped instance on it: the import's target.
struct Target {
    _agent: LocalAgent,
    dir: tempfile::TempDir,
    id: String,
}

impl Target {
    fn volume(&self) -> PathBuf {
        self.dir.path().join("volumes").join(&self.id)
    }

    async fn instance(&self, app: &TestApp) -> Instance {
        shardlyn_panel::instances::store::find(&app.state.db.pool, &self.id)
            .await
            .expect("read the instance")
            .expect("the instance exists")
    }
}

async fn target(app: &TestApp, token: &str) -> Target {
    let (config, dir) = register_node(app, token).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(app, token, &config.node_id, "online").await;
    let workload = busybox_workload(app, token).await;
    let created = app
        .post(
            "/v1/instances",
            Some(token),
            json!({"name": "imported", "workload_id": workload, "node_id": config.node_id,
                "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 20,
                    "disk_mb": 1024, "pids": 64, "io_weight": 500}}),
        )
        .await
        .expect(201)
        .body;
    let id = created["id"].as_str().expect("id").to_owned();
    wait_instance(app, token, &id, "offline", WAIT).await;
    Target {
        _agent: agent,
        dir,
        id,
    }
}

fn login(wings: &FakeWings, password: &str) -> WingsSftp {
    WingsSftp {
        host: "127.0.0.1".into(),
        port: wings.sftp_port,
        username: format!("admin.{IDENT}"),
        password: password.into(),
        known_host: None,
    }
}

/// The old server's tree: nested directories, an empty one, a 20 MiB file (a tus
/// upload in parts), a name with spaces, modes, and two links.
fn old_server(root: &Path) {
    fake::put(
        root,
        "server.properties",
        b"motd=moved from Pterodactyl\n",
        0o644,
    );
    fake::put(
        root,
        "world/region/r.0.0.mca",
        &fake::noise(20 * MIB, 7),
        0o644,
    );
    fake::put(root, "world/level.dat", &fake::noise(70_000, 3), 0o600);
    fake::put(
        root,
        "plugins/My Plugin/config file.yml",
        b"enabled: true\n",
        0o640,
    );
    fake::put(
        root,
        "start.sh",
        b"#!/bin/sh\nexec java -jar server.jar\n",
        0o755,
    );
    fake::put(root, "logs/latest.log", b"", 0o644);
    std::fs::create_dir_all(root.join("backups/empty")).expect("mkdir");
    std::fs::create_dir_all(root.join("private")).expect("mkdir");
    std::fs::set_permissions(
        root.join("private"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).expect("ln");
    std::os::unix::fs::symlink("../../etc", root.join("world/up")).expect("ln");
    std::os::unix::fs::symlink("server.properties", root.join("props")).expect("ln");
    // Written an hour ago, as a server's files mostly are.
    fake::age(root, Duration::from_secs(3600));
}

/// Asserts that every file and directory of `source` (links aside) is in `volume`,
/// with the same SHA-256 and mode, and that no link came over.
fn assert_copied(source: &Path, volume: &Path) {
    let theirs = fake::tree(source);
    let ours = fake::tree(volume);
    for (path, node) in &theirs {
        match node {
            Node::Link(_) => assert!(
                !ours.contains_key(path),
                "the link {path} was not recreated nor followed: {:?}",
                ours.get(path)
            ),
            _ => assert_eq!(ours.get(path), Some(node), "{path} on the new node"),
        }
    }
}

async fn copy_files(
    app: &TestApp,
    from: &WingsSftp,
    target: &Target,
) -> (Result<FileReport, CopyError>, Vec<FileProgress>) {
    let seen = Mutex::new(Vec::new());
    let record = |p: FileProgress| seen.lock().expect("lock").push(p);
    let instance = target.instance(app).await;
    let outbound = &app.state.config.outbound;
    let result = files::copy(&app.state, outbound, from, &instance, &record).await;
    (result, seen.into_inner().expect("lock"))
}

both_engines! {
    async fn a_server_tree_is_copied_with_its_modes_and_checksums_and_a_rerun_sends_nothing(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = target(&app, &admin.access).await;
        let wings = FakeWings::start(PASSWORD, Options::default()).await;
        let source = wings.server_dir(IDENT);
        old_server(&source);

        let (result, progress) = copy_files(&app, &login(&wings, PASSWORD), &t).await;
        let report = result.expect("the copy succeeds");
        assert_eq!(report.files, 6, "{report:?}");
        assert_eq!(report.files_total, 6, "{report:?}");
        assert_eq!(report.skipped_same, 0, "{report:?}");
        assert_eq!(report.checksum_mismatches_fixed, 0, "{report:?}");
        let total: u64 = ["server.properties", "world/region/r.0.0.mca", "world/level.dat",
            "plugins/My Plugin/config file.yml", "start.sh", "logs/latest.log"]
            .iter().map(|p| std::fs::metadata(source.join(p)).expect("meta").len()).sum();
        assert_eq!(report.bytes_total, total, "{report:?}");
        assert_eq!(report.bytes, total, "{report:?}");
        assert_eq!(files::key_id(&report.host_key), files::key_id(&wings.host_key));
        let escaping: Vec<_> = report.links_skipped.iter().filter(|l| l.escapes).map(|l| l.path.as_str()).collect();
        assert_eq!(escaping, ["passwd", "world/up"], "{report:?}");
        assert!(report.links_skipped.iter().any(|l| l.path == "props" && !l.escapes), "{report:?}");
        assert!(report.refused.is_empty() && report.changed_while_read.is_empty(), "{report:?}");
        let last = progress.last().expect("progress was told");
        assert_eq!((last.files_done, last.bytes_done), (6, total), "{progress:?}");
        assert_copied(&source, &t.volume());
        assert!(t.volume().join("backups/empty").is_dir(), "the empty directory came too");
        assert!(!t.volume().join("passwd").exists(), "the escaping link was skipped");

        // A second pass finds everything there and sends nothing.
        let (again, _) = copy_files(&app, &login(&wings, PASSWORD), &t).await;
        let again = again.expect("the second pass succeeds");
        assert_eq!((again.files, again.bytes, again.skipped_same), (0, 0, 6), "{again:?}");

        // A file damaged on the new side is found by its checksum and sent again.
        std::fs::write(t.volume().join("world/level.dat"), fake::noise(70_000, 4)).expect("damage");
        let (fixed, _) = copy_files(&app, &login(&wings, PASSWORD), &t).await;
        let fixed = fixed.expect("the third pass succeeds");
        assert_eq!(fixed.checksum_mismatches_fixed, 1, "{fixed:?}");
        assert_copied(&source, &t.volume());

        let log = wings.log().await;
        assert_eq!(log["writes"], json!([]), "nothing was written on the old side: {log}");
        assert_eq!(log["power"], json!([]), "{log}");
    }

    async fn a_copy_cut_midway_resumes_and_sends_only_the_rest(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = target(&app, &admin.access).await;
        // The old node goes away after 13 MiB: inside the big file's second part.
        let options = Options { drop_after: Some(13 * MIB as u64), ..Options::default() };
        let wings = FakeWings::start(PASSWORD, options).await;
        let source = wings.server_dir(IDENT);
        old_server(&source);

        let (first, _) = copy_files(&app, &login(&wings, PASSWORD), &t).await;
        let err = first.expect_err("the copy is cut");
        assert!(matches!(err, CopyError::SourceLost(_)), "{err:?}");
        assert!(err.resumable(), "{err}");
        assert!(err.to_string().contains("resumes"), "{err}");
        assert_eq!(wings.log().await["dropped"], true);

        let (second, _) = copy_files(&app, &login(&wings, PASSWORD), &t).await;
        let report = second.expect("the second pass completes the copy");
        assert!(report.bytes > 0, "{report:?}");
        assert!(
            report.bytes < report.bytes_total,
            "the second pass sent only what the first did not: {} of {}",
            report.bytes, report.bytes_total
        );
        assert_copied(&source, &t.volume());
        assert_eq!(wings.log().await["writes"], json!([]));
    }

    async fn a_refused_login_or_changed_host_key_writes_nothing(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = target(&app, &admin.access).await;
        let wings = FakeWings::start(PASSWORD, Options::default()).await;
        old_server(&wings.server_dir(IDENT));
        let before = fake::tree(&t.volume());

        let (wrong, _) = copy_files(&app, &login(&wings, "not-the-password"), &t).await;
        let err = wrong.expect_err("the login is refused");
        assert!(matches!(err, CopyError::LoginRefused(_)), "{err:?}");
        assert!(!err.resumable());
        assert!(err.to_string().contains("admin.1a2b3c4d"), "{err}");
        assert_eq!(err.code(), "SFTP_LOGIN_REFUSED");

        let mut other_key = login(&wings, PASSWORD);
        other_key.known_host = Some(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc4yd8lVjmKvKaTzQdNbmtZqCwFAvLZIV3CaJsn5GhT".into(),
        );
        let (changed, _) = copy_files(&app, &other_key, &t).await;
        let err = changed.expect_err("a changed host key is refused");
        assert!(matches!(err, CopyError::HostKeyChanged { .. }), "{err:?}");

        let mut unknown = login(&wings, PASSWORD);
        unknown.port = free_port();
        let (unreachable, _) = copy_files(&app, &unknown, &t).await;
        assert!(matches!(unreachable, Err(CopyError::Unreachable(_))), "{unreachable:?}");

        assert_eq!(fake::tree(&t.volume()), before, "nothing was written on the new node");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pterodactyl_files")
            .fetch_one(&app.state.db.pool).await.expect("count");
        assert_eq!(rows, 0);
        let log = wings.log().await;
        assert_eq!(log["writes"], json!([]), "{log}");
        assert_eq!(log["logins"][0]["ok"], false, "{log}");
    }

    async fn the_switch_over_stops_the_old_server_and_sends_what_changed(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = target(&app, &admin.access).await;
        let wings = FakeWings::start(PASSWORD, Options::default()).await;
        let source = wings.server_dir(IDENT);
        old_server(&source);
        let from = login(&wings, PASSWORD);
        let (first, _) = copy_files(&app, &from, &t).await;
        let first = first.expect("the copy while running");
        let from = WingsSftp { known_host: Some(first.host_key.clone()), ..from };

        // The running server writes meanwhile: a file changes (same size), one is
        // added, one removed.
        fake::put(&source, "world/level.dat", &fake::noise(70_000, 9), 0o600);
        fake::put(&source, "world/new-chunk.dat", b"new", 0o644);
        std::fs::remove_file(source.join("logs/latest.log")).expect("rm");

        let mut node = model::Node {
            id: 1, uuid: "node-uuid".into(), name: "old".into(), location_id: 1,
            fqdn: "127.0.0.1".into(), scheme: "http".into(), daemon_listen: wings.http_port,
            daemon_sftp: wings.sftp_port, memory_mb: 1024, disk_mb: 10_240,
            daemon_token_id: None, daemon_token: None,
        };
        let outbound = &app.state.config.outbound;
        let err = wings::stop_old(outbound, &node, UUID).await.expect_err("API mode has no token");
        assert!(matches!(err, CopyError::NoDaemonToken), "{err:?}");
        assert!(err.to_string().contains("database mode"), "{err}");
        node.daemon_token = Some("wrong".into());
        let err = wings::stop_old(outbound, &node, UUID).await.expect_err("a wrong token");
        assert!(matches!(err, CopyError::Wings(_)), "{err:?}");
        node.daemon_token = Some(fake::TOKEN.into());
        wings::stop_old(outbound, &node, UUID).await.expect("the old server stops");
        let state: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/servers/{UUID}", wings.api_url()))
            .bearer_auth(fake::TOKEN)
            .send().await.expect("state").json().await.expect("json");
        assert_eq!(state["state"], "offline");

        let (second, _) = copy_files(&app, &from, &t).await;
        let second = second.expect("the final pass");
        assert_eq!(second.files, 2, "the changed and the new file: {second:?}");
        assert_eq!(second.skipped_same, 4, "{second:?}");
        assert_eq!(second.removed, 1, "{second:?}");
        assert_eq!(second.bytes, 70_003, "{second:?}");
        assert_copied(&source, &t.volume());
        assert!(!t.volume().join("logs/latest.log").exists(), "the removed file went");

        // Stopping again (a re-run) is a no-op: one stop in all, no other write.
        wings::stop_old(outbound, &node, UUID).await.expect("already stopped");
        let log = wings.log().await;
        assert_eq!(log["power"], json!([{"uuid": UUID, "action": "stop"}]), "{log}");
        assert_eq!(log["writes"], json!([]), "{log}");
    }
}
