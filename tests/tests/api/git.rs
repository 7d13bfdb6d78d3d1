//! Git deploy end to end: a real git repository served on loopback by `git daemon`, a
//! real agent that fetches it with the host's `git` and copies the tree into a live
//! instance (checked through the panel's files API), updates and history, a GitHub push
//! webhook (signed like GitHub does) that triggers a sync, restart after sync on real
//! Docker, and the settings' validation, secrecy and tenancy.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::console::Console;
use shardlyn_tests::{TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

/// Runs `git args` in `dir` with a neutral configuration; its trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository served read-only by `git daemon` on 127.0.0.1; killed when dropped.
struct GitServer {
    _base: tempfile::TempDir,
    work: PathBuf,
    port: u16,
    daemon: Child,
}

impl GitServer {
    async fn start() -> Self {
        let base = tempfile::tempdir().expect("tempdir");
        let work = base.path().join("game");
        std::fs::create_dir_all(&work).expect("mkdir");
        git(&work, &["init", "--quiet"]);
        let port = free_port();
        let daemon = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                &format!("--base-path={}", base.path().display()),
                "--export-all",
                &format!("--port={port}"),
                "--listen=127.0.0.1",
            ])
            .arg(base.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(tokio::time::Instant::now() < deadline, "git daemon listens");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            _base: base,
            work,
            port,
            daemon,
        }
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/game", self.port)
    }

    /// Writes `files` (path, content; `None` deletes), commits; the new commit's sha.
    fn commit(&self, message: &str, files: &[(&str, Option<&str>)]) -> String {
        for (path, content) in files {
            let p = self.work.join(path);
            match content {
                Some(text) => {
                    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&p, text).expect("write");
                }
                None => std::fs::remove_file(&p).expect("rm"),
            }
        }
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "--quiet", "-m", message]);
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

async fn create_instance(app: &TestApp, access: &str, node: &str, workload: &str) -> String {
    let body = app
        .post(
            "/v1/instances",
            Some(access),
            json!({
                "name": "git-deployed",
                "workload_id": workload,
                "node_id": node,
                "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 1024, "pids": 64, "io_weight": 500},
            }),
        )
        .await
        .expect(201)
        .body;
    let id = body["id"].as_str().expect("id").to_string();
    wait_instance(app, access, &id, "offline", WAIT).await;
    id
}

/// Waits until the history has `n` finished syncs; the newest first.
async fn wait_syncs(app: &TestApp, access: &str, id: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = app
            .get(&format!("/v1/instances/{id}/git/history"), Some(access))
            .await
            .expect(200);
        let rows = r.body["data"].as_array().cloned().unwrap_or_default();
        if rows.len() >= n && rows.iter().all(|s| s["status"] != "running") {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waiting for {n} finished syncs: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A file of the instance, read through the panel's files API.
async fn read_file(app: &TestApp, access: &str, id: &str, path: &str) -> (u16, String) {
    let r = app
        .get(
            &format!("/v1/instances/{id}/files/content?path={path}"),
            Some(access),
        )
        .await;
    (r.status, r.text)
}

fn github_sig(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn github_push(app: &TestApp, token_id: &str, secret: &str, clone_url: &str, branch: &str) {
    let body = serde_json::to_vec(&json!({
        "ref": format!("refs/heads/{branch}"),
        "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "repository": {"full_name": "acme/game", "clone_url": clone_url, "html_url": clone_url},
    }))
    .expect("json");
    let r = app
        .client
        .post(format!("{}/v1/webhooks/github?token={token_id}", app.base))
        .header("content-type", "application/json")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", format!("d-{}", rand_suffix()))
        .header("X-Hub-Signature-256", github_sig(secret, &body))
        .body(body)
        .send()
        .await
        .expect("delivered");
    assert_eq!(
        r.status().as_u16(),
        202,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn ssh_keygen(dir: &Path, name: &str, passphrase: &str) -> (String, String) {
    ssh_keygen_typed(dir, name, "ed25519", passphrase)
}

fn ssh_keygen_typed(dir: &Path, name: &str, kind: &str, passphrase: &str) -> (String, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-C", "deploy", "-N", passphrase, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = std::fs::read_to_string(&path).expect("key");
    let fp = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(path.with_extension("pub"))
        .output()
        .expect("ssh-keygen -l");
    let fp = String::from_utf8_lossy(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
    (private, fp)
}

async fn console(app: &TestApp, access: &str, id: &str) -> Console {
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

both_engines! {
    async fn git_deploy_syncs_updates_webhooks_and_restarts(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let (config, dir) = register_node(&app, a).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(&app, a, &config.node_id, "online").await;
        let workload = busybox_workload(&app, a).await;
        let id = create_instance(&app, a, &config.node_id, &workload).await;
        let server = GitServer::start().await;
        let first = server.commit("first deploy", &[
            ("server.properties", Some("motd=from git\n")),
            ("plugins/conf/a.yml", Some("a: 1\n")),
            ("old.txt", Some("dropped later\n")),
        ]);
        let leak = server.work.join("leak");
        std::os::unix::fs::symlink("/etc/hostname", &leak).expect("symlink");
        git(&server.work, &["add", "-A"]);
        git(&server.work, &["commit", "--quiet", "-m", "a symlink pointing out"]);
        let first_with_link = git(&server.work, &["rev-parse", "HEAD"]);
        assert_ne!(first, first_with_link);

        app.get(&format!("/v1/instances/{id}/git"), t).await.expect_error(404, "GIT_NOT_CONFIGURED");
        app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({})).await.expect_error(404, "GIT_NOT_CONFIGURED");
        let r = app.put(&format!("/v1/instances/{id}/git"), t, json!({
            "repository_url": server.url(), "branch": "main", "target_directory": "/app",
        })).await.expect(201);
        assert_eq!(r.body["repository_url"], server.url());
        assert_eq!(r.body["target_directory"], "/app");
        assert_eq!(r.body["auth"], "none");

        // First sync: the files appear in the instance, the symlink does not.
        let started = app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({})).await.expect(202);
        assert_eq!(started.body["status"], "running");
        assert_eq!(started.body["trigger"], "manual");
        let again = app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({})).await;
        if again.status != 202 {
            again.expect_error(409, "GIT_SYNC_RUNNING");
        }
        let rows = wait_syncs(&app, a, &id, 1).await;
        let done = rows.iter().find(|s| s["id"] == started.body["id"]).expect("the sync is listed");
        assert_eq!(done["status"], "success", "{done}");
        assert_eq!(done["commit"], first_with_link.as_str());
        assert_eq!(done["message"], "a symlink pointing out");
        assert_eq!(done["files"], 3);
        assert!(done["finished_at"].is_string());
        assert_eq!(read_file(&app, a, &id, "/app/server.properties").await, (200, "motd=from git\n".into()));
        assert_eq!(read_file(&app, a, &id, "/app/plugins/conf/a.yml").await, (200, "a: 1\n".into()));
        assert_eq!(read_file(&app, a, &id, "/app/leak").await.0, 404, "symlinks are not deployed");
        let volume = dir.path().join("volumes").join(&id);
        assert!(std::fs::symlink_metadata(volume.join("app/leak")).is_err());
        assert!(!volume.join("app/.git").exists(), "no .git in the instance");

        // An update: changed and removed files follow, history has both shas.
        let second = server.commit("second deploy", &[
            ("server.properties", Some("motd=updated\n")),
            ("old.txt", None),
        ]);
        app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({})).await.expect(202);
        let rows = wait_syncs(&app, a, &id, 2).await;
        let successes: Vec<&Value> = rows.iter().filter(|s| s["status"] == "success").collect();
        assert_eq!(successes.len(), 2, "{rows:?}");
        assert_eq!(successes[0]["commit"], second.as_str(), "newest first");
        assert_eq!(successes[1]["commit"], first_with_link.as_str());
        assert_ne!(successes[0]["commit"], successes[1]["commit"]);
        assert_eq!(successes[0]["removed"], 1);
        assert_eq!(read_file(&app, a, &id, "/app/server.properties").await, (200, "motd=updated\n".into()));
        assert_eq!(read_file(&app, a, &id, "/app/old.txt").await.0, 404);
        let status = app.get(&format!("/v1/instances/{id}/git/status"), t).await.expect(200);
        assert_eq!(status.body["configured"], true);
        assert_eq!(status.body["running"], false);
        assert_eq!(status.body["deployed_commit"], second.as_str());
        let page = app.get(&format!("/v1/instances/{id}/git/history?per_page=1"), t).await.expect(200);
        assert_eq!(page.body["data"].as_array().map(Vec::len), Some(1));
        assert!(page.body["pagination"]["total"].as_i64().unwrap_or(0) >= 2);

        // A GitHub push of the same repository (other URL form) and branch triggers a sync;
        // another branch does not.
        let org = app.get(&format!("/v1/instances/{id}"), t).await.expect(200).body["organization_id"]
            .as_str().expect("org").to_string();
        let token = app.post("/v1/webhook-tokens", t, json!({"name": "ci", "organization_id": org})).await.expect(201);
        let (token_id, secret) = (token.body["id"].as_str().expect("id").to_string(), token.body["secret"].as_str().expect("secret").to_string());
        let total = |b: &Value| b["pagination"]["total"].as_i64().unwrap_or(0);
        let before = total(&app.get(&format!("/v1/instances/{id}/git/history"), t).await.expect(200).body);
        github_push(&app, &token_id, &secret, &format!("git://127.0.0.1:{}/game.git", server.port), "other").await;
        let third = server.commit("pushed", &[("server.properties", Some("motd=pushed\n"))]);
        github_push(&app, &token_id, &secret, &format!("git://127.0.0.1:{}/game.git/", server.port), "main").await;
        let rows = wait_syncs(&app, a, &id, usize::try_from(before + 1).expect("count")).await;
        assert_eq!(rows[0]["trigger"], "webhook", "{rows:?}");
        assert_eq!(rows[0]["status"], "success", "{rows:?}");
        assert_eq!(rows[0]["commit"], third.as_str());
        assert_eq!(rows[0]["restarted"], false);
        // A push answers once its syncs are recorded: the one to "other" (answered first) recorded none.
        let after = total(&app.get(&format!("/v1/instances/{id}/git/history"), t).await.expect(200).body);
        assert_eq!(after, before + 1, "only the push to the deployed branch synced");
        assert_eq!(read_file(&app, a, &id, "/app/server.properties").await, (200, "motd=pushed\n".into()));

        // Restart after sync: a running server is restarted.
        app.put(&format!("/v1/instances/{id}/git"), t, json!({
            "repository_url": server.url(), "branch": "main", "target_directory": "/app", "restart_after_sync": true,
        })).await.expect(200);
        let mut c = console(&app, a, &id).await;
        app.post(&format!("/v1/instances/{id}/start"), t, json!({})).await.expect(202);
        wait_instance(&app, a, &id, "running", WAIT).await;
        c.wait_for(WAIT, "running", |e| e.event == "status" && e.arg() == "running").await;
        server.commit("restart me", &[("server.properties", Some("motd=restarted\n"))]);
        app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({})).await.expect(202);
        c.wait_for(WAIT, "stopping for the restart", |e| e.event == "status" && e.arg() == "stopping").await;
        c.wait_for(WAIT, "running again", |e| e.event == "status" && e.arg() == "running").await;
        let rows = wait_syncs(&app, a, &id, usize::try_from(before + 2).expect("count")).await;
        assert_eq!(rows[0]["status"], "success", "{rows:?}");
        assert_eq!(rows[0]["restarted"], true, "{rows:?}");
        wait_instance(&app, a, &id, "running", WAIT).await;
        c.close().await;

        // A failing fetch (no such branch) is recorded as failed with git's reason.
        app.put(&format!("/v1/instances/{id}/git"), t, json!({
            "repository_url": server.url(), "branch": "does-not-exist",
        })).await.expect(200);
        app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({})).await.expect(202);
        let rows = wait_syncs(&app, a, &id, usize::try_from(before + 3).expect("count")).await;
        assert_eq!(rows[0]["status"], "failed", "{rows:?}");
        assert!(rows[0]["error"].as_str().unwrap_or("").contains("does-not-exist"), "{rows:?}");

        // Another organization's user sees none of it.
        let stranger = app.register("stranger@example.com").await;
        let s = Some(stranger.access.as_str());
        app.get(&format!("/v1/instances/{id}/git"), s).await.expect_error(404, "NOT_FOUND");
        app.put(&format!("/v1/instances/{id}/git"), s, json!({"repository_url": server.url()})).await.expect_error(404, "NOT_FOUND");
        app.post(&format!("/v1/instances/{id}/git/sync"), s, json!({})).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/instances/{id}/git/status"), s).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/instances/{id}/git/history"), s).await.expect_error(404, "NOT_FOUND");
        app.delete(&format!("/v1/instances/{id}/git"), s).await.expect_error(404, "NOT_FOUND");

        // Delete: settings and history go, the node drops its staging copy.
        assert!(dir.path().join("git").join(&id).join("repo").is_dir());
        app.delete(&format!("/v1/instances/{id}/git"), t).await.expect(204);
        app.get(&format!("/v1/instances/{id}/git"), t).await.expect_error(404, "GIT_NOT_CONFIGURED");
        let status = app.get(&format!("/v1/instances/{id}/git/status"), t).await.expect(200);
        assert_eq!((status.body["configured"].clone(), status.body["last_sync"].clone()), (json!(false), Value::Null));
        assert!(!dir.path().join("git").join(&id).exists());

        // Deleting the server drops the staging copy of a deploy still configured.
        app.put(&format!("/v1/instances/{id}/git"), t, json!({
            "repository_url": server.url(), "branch": "main", "target_directory": "/app",
        })).await.expect(201);
        app.post(&format!("/v1/instances/{id}/git/sync"), t, json!({})).await.expect(202);
        let rows = wait_syncs(&app, a, &id, 1).await;
        assert_eq!(rows[0]["status"], "success", "{rows:?}");
        assert!(dir.path().join("git").join(&id).join("repo").is_dir());
        app.delete(&format!("/v1/instances/{id}"), t).await.expect(204);
        assert!(!dir.path().join("git").join(&id).exists(), "the staging copy goes with the server");
        agent.stop().await;
    }

    async fn git_settings_are_validated_and_secrets_stay_sealed(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let (config, dir) = register_node(&app, a).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(&app, a, &config.node_id, "online").await;
        let workload = busybox_workload(&app, a).await;
        let id = create_instance(&app, a, &config.node_id, &workload).await;
        let path = format!("/v1/instances/{id}/git");

        for url in ["file:///etc", "/srv/repo.git", "../repo", "ext::sh -c id", "ftp://h/r", "-u", "https://u:p@github.com/o/r", ""] {
            let r = app.put(&path, t, json!({"repository_url": url})).await.expect_error(422, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], "repository_url", "{url}: {}", r.text);
        }
        app.put(&path, t, json!({"repository_url": "https://github.com/o/r", "branch": "a..b"})).await.expect_error(422, "VALIDATION_ERROR");
        app.put(&path, t, json!({"repository_url": "https://github.com/o/r", "target_directory": "../etc"})).await.expect_error(422, "VALIDATION_ERROR");
        app.put(&path, t, json!({"repository_url": "https://github.com/o/r", "deploy_key": "not a key"})).await.expect_error(422, "VALIDATION_ERROR");
        app.put(&path, t, json!({"repository_url": "https://github.com/o/r", "surprise": 1})).await.expect(400);
        app.get(&path, t).await.expect_error(404, "GIT_NOT_CONFIGURED");

        // A deploy key: validated, sealed, only its fingerprint shown.
        let keys = tempfile::tempdir().expect("tempdir");
        let (private, fingerprint) = ssh_keygen(keys.path(), "deploy", "");
        let (locked, _) = ssh_keygen(keys.path(), "locked", "a passphrase");
        let ssh_url = "git@github.com:acme/game.git";
        let r = app.put(&path, t, json!({"repository_url": ssh_url, "deploy_key": locked})).await.expect_error(422, "VALIDATION_ERROR");
        assert_eq!(r.body["field"], "deploy_key");
        app.put(&path, t, json!({"repository_url": "https://github.com/acme/game", "deploy_key": private})).await.expect_error(422, "VALIDATION_ERROR");
        let r = app.put(&path, t, json!({"repository_url": ssh_url, "branch": "release/1.0", "deploy_key": private})).await.expect(201);
        assert_eq!(r.body["deploy_key_fingerprint"], fingerprint.as_str());
        assert_eq!(r.body["has_deploy_key"], true);
        let body_of_key: String = private.lines().nth(1).expect("key line").to_string();
        for r in [app.get(&path, t).await.expect(200), app.get(&format!("{path}/status"), t).await.expect(200)] {
            assert!(!r.text.contains(&body_of_key), "the key never comes back: {}", r.text);
            assert!(!r.text.contains("PRIVATE KEY"), "{}", r.text);
        }
        // ECDSA and RSA keys are OpenSSH keys too.
        for kind in ["ecdsa", "rsa"] {
            let (other, other_fp) = ssh_keygen_typed(keys.path(), kind, kind, "");
            let r = app.put(&path, t, json!({"repository_url": ssh_url, "deploy_key": other})).await.expect(200);
            assert_eq!(r.body["deploy_key_fingerprint"], other_fp.as_str(), "{kind}");
        }
        app.put(&path, t, json!({"repository_url": ssh_url, "deploy_key": private})).await.expect(200);
        // Absent keeps the key; the stored value is sealed, not the key.
        let r = app.put(&path, t, json!({"repository_url": ssh_url, "branch": "main"})).await.expect(200);
        assert_eq!(r.body["deploy_key_fingerprint"], fingerprint.as_str());
        let sealed: Option<String> = sqlx::query_scalar("SELECT sealed_deploy_key FROM instance_git WHERE instance_id = $1")
            .bind(&id).fetch_one(&app.state.db.pool).await.expect("row");
        let sealed = sealed.expect("sealed key stored");
        assert!(!sealed.contains(&body_of_key) && !sealed.contains("PRIVATE"));

        // A token: sealed, never returned; switching to it needs the key removed.
        let secret = "glpat-SuperSecretToken123";
        app.put(&path, t, json!({"repository_url": "https://gitlab.com/acme/game.git", "token": secret})).await.expect_error(422, "VALIDATION_ERROR");
        let r = app.put(&path, t, json!({"repository_url": "https://gitlab.com/acme/game.git", "token": secret, "deploy_key": null, "token_username": "deployer"})).await.expect(200);
        assert_eq!((r.body["has_token"].clone(), r.body["has_deploy_key"].clone(), r.body["auth"].clone()), (json!(true), json!(false), json!("token")));
        assert_eq!(r.body["token_username"], "deployer");
        for r in [app.get(&path, t).await.expect(200), app.get(&format!("{path}/status"), t).await.expect(200), r] {
            assert!(!r.text.contains(secret), "the token never comes back: {}", r.text);
        }
        app.put(&path, t, json!({"repository_url": "https://gitlab.com/acme/game.git", "token": "a b"})).await.expect_error(422, "VALIDATION_ERROR");
        app.put(&path, t, json!({"repository_url": "git://gitlab.com/acme/game.git"})).await.expect_error(422, "VALIDATION_ERROR");

        // A viewer may not touch git deploys.
        let org = app.get(&format!("/v1/instances/{id}"), t).await.expect(200).body["organization_id"].as_str().map(str::to_string);
        if let Some(org) = org {
            let viewer = app.register("viewer@example.com").await;
            app.add_member(&org, &viewer.user_id, "viewer").await;
            let v = Some(viewer.access.as_str());
            app.get(&path, v).await.expect_error(403, "FORBIDDEN");
            app.get(&format!("{path}/history"), v).await.expect_error(403, "FORBIDDEN");
            app.post(&format!("{path}/sync"), v, json!({})).await.expect_error(403, "FORBIDDEN");
        }
        app.get(&format!("{path}/history?per_page=0"), t).await.expect(400);

        app.delete(&format!("/v1/instances/{id}"), t).await.expect(204);
        agent.stop().await;
    }
}
