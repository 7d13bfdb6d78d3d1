//! SFTP end to end: a real panel, a real agent (its SFTP server on a free loopback port)
//! and a live instance, driven by OpenSSH's `sftp` client in batch mode (`sshpass` for
//! password logins). Logins are checked by the panel over the tunnel; files go through
//! the instance's sandbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::{PASSWORD, TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

/// A node whose agent serves SFTP on `port`, with one instance.
struct Server {
    _agent: LocalAgent,
    dir: tempfile::TempDir,
    id: String,
    org: String,
    port: u16,
}

impl Server {
    async fn start(app: &TestApp, access: &str, disk_mb: i64) -> Self {
        let (config, dir) = register_node(app, access).await;
        let port = free_port();
        std::fs::write(
            dir.path().join("settings.toml"),
            format!("sftp_bind = \"127.0.0.1\"\nsftp_port = {port}\n"),
        )
        .expect("agent settings");
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(app, access, &config.node_id, "online").await;
        let workload = busybox_workload(app, access).await;
        let instance = app
            .post(
                "/v1/instances",
                Some(access),
                json!({
                    "name": "sftp",
                    "workload_id": workload,
                    "node_id": config.node_id,
                    "ports": [free_port()],
                    "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": disk_mb, "pids": 64, "io_weight": 500},
                }),
            )
            .await
            .expect(201)
            .body;
        let id = instance["id"].as_str().expect("id").to_string();
        let org = instance["organization_id"]
            .as_str()
            .expect("org")
            .to_string();
        wait_instance(app, access, &id, "offline", WAIT).await;
        Self {
            _agent: agent,
            dir,
            id,
            org,
            port,
        }
    }

    fn volume(&self) -> PathBuf {
        self.dir.path().join("volumes").join(&self.id)
    }

    fn user(&self, email: &str) -> String {
        format!("{email}.{}", &self.id[..8])
    }

    /// Leftover temp files of interrupted writes anywhere in the volume.
    fn temp_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(".shardlyn-tmp-")
                {
                    out.push(p.clone());
                }
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.volume(), &mut out);
        out
    }
}

enum Login<'a> {
    Password(&'a str),
    Key(&'a Path),
}

/// Runs `script` with `sftp -b -`; `(succeeded, stdout + stderr)`.
async fn sftp(port: u16, user: &str, login: &Login<'_>, script: &str) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let common = [
        "-o".to_string(),
        "StrictHostKeyChecking=no".into(),
        "-o".into(),
        "UserKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
        "-o".into(),
        "ConnectTimeout=20".into(),
        "-o".into(),
        format!("User={user}"),
        "-P".into(),
        port.to_string(),
    ];
    let mut cmd = match login {
        Login::Password(pw) => {
            let mut c = tokio::process::Command::new("sshpass");
            c.args(["-p", pw, "sftp"])
                // sftp -b implies BatchMode=yes, which forbids password prompts; the
                // first value given wins in ssh.
                .args(["-o", "BatchMode=no"])
                .args(["-o", "PreferredAuthentications=password"])
                .args(["-o", "PubkeyAuthentication=no"]);
            c
        }
        Login::Key(key) => {
            let mut c = tokio::process::Command::new("sftp");
            c.args(["-o", "IdentitiesOnly=yes"])
                .args(["-o", "PreferredAuthentications=publickey"])
                .arg("-i")
                .arg(key);
            c
        }
    };
    cmd.args(&common)
        .args(["-b", "-", "127.0.0.1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .expect("sftp (openssh-client, sshpass) is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(script.as_bytes()).await.expect("script");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("sftp finishes")
        .expect("sftp runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// An ed25519 key pair made by `ssh-keygen` in `dir`: (private key path, public text).
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@shardlyn", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    (key, public.trim().to_string())
}

/// `ssh-keygen -l`'s SHA256 fingerprint of a public key file.
fn fingerprint(public: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public)
        .output()
        .expect("ssh-keygen runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

both_engines! {
    async fn openssh_sftp_works_in_the_sandbox(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = admin.access.as_str();
        let s = Server::start(&app, t, 1).await;
        let local = tempfile::tempdir().expect("tmp");
        let l = |name: &str| local.path().join(name).display().to_string();
        std::fs::write(local.path().join("hello.txt"), b"hello over sftp\n").expect("local file");
        // The email part is case-insensitive.
        let user = s.user("Admin@Example.COM");
        let pw = Login::Password(PASSWORD);

        // put, mkdir, rename, get, ls.
        let (ok, out) = sftp(s.port, &user, &pw, &format!(
            "put {} /hello.txt\nmkdir /sub\nrename /hello.txt /sub/moved.txt\nget /sub/moved.txt {}\nls -l /sub\n",
            l("hello.txt"), l("back.txt"),
        )).await;
        assert!(ok, "{out}");
        assert!(out.contains("moved.txt"), "{out}");
        assert_eq!(std::fs::read(s.volume().join("sub/moved.txt")).expect("on the volume"), b"hello over sftp\n");
        assert!(!s.volume().join("hello.txt").exists());
        assert_eq!(std::fs::read(local.path().join("back.txt")).expect("downloaded"), b"hello over sftp\n");

        // remove and rmdir.
        let (ok, out) = sftp(s.port, &user, &pw, "rm /sub/moved.txt\nrmdir /sub\n").await;
        assert!(ok, "{out}");
        assert!(!s.volume().join("sub").exists());

        // Escapes: `..`, an absolute host path, a symlink pointing out. Each fails.
        std::fs::write(s.dir.path().join("secret.txt"), b"agent data").expect("outside file");
        std::os::unix::fs::symlink("/etc", s.volume().join("etc-link")).expect("symlink");
        std::os::unix::fs::symlink("../../secret.txt", s.volume().join("up-link")).expect("symlink");
        for script in [
            format!("get ../../secret.txt {}\n", l("x1")),
            format!("get /../../secret.txt {}\n", l("x2")),
            format!("get /etc/hostname {}\n", l("x3")),
            format!("get /etc-link/hostname {}\n", l("x4")),
            format!("get /up-link {}\n", l("x5")),
            format!("put {} ../../escaped.txt\n", l("hello.txt")),
            format!("put {} /etc-link/escaped.txt\n", l("hello.txt")),
            "mkdir ../../escaped-dir\n".to_string(),
            "rename /etc-link/hostname /stolen\n".to_string(),
        ] {
            let (ok, out) = sftp(s.port, &user, &pw, &script).await;
            assert!(!ok, "escape succeeded: {script} -> {out}");
        }
        // Listing through the link shows at most the link itself, never /etc.
        let (_, out) = sftp(s.port, &user, &pw, "ls -l /etc-link/\nls -l /etc-link/.\n").await;
        assert!(!out.contains("passwd") && !out.contains("hostname"), "{out}");
        for x in ["x1", "x2", "x3", "x4", "x5"] {
            assert!(!local.path().join(x).exists(), "{x} was downloaded");
        }
        assert!(!s.dir.path().join("escaped.txt").exists());
        assert!(!Path::new("/etc/escaped.txt").exists());
        assert!(!s.dir.path().join("escaped-dir").exists());
        assert!(!s.volume().join("stolen").exists());

        // A write past the disk limit (1 MiB) fails and leaves nothing behind.
        std::fs::write(local.path().join("big.bin"), vec![7u8; 2 * 1024 * 1024]).expect("big file");
        let (ok, out) = sftp(s.port, &user, &pw, &format!("put {} /big.bin\n", l("big.bin"))).await;
        assert!(!ok, "a write past the disk limit succeeded: {out}");
        assert!(!s.volume().join("big.bin").exists(), "partial file left");
        assert!(s.temp_files().is_empty(), "temp files left: {:?}", s.temp_files());

        // A wrong password is refused.
        let (ok, out) = sftp(s.port, &user, &Login::Password("not-the-password"), "ls /\n").await;
        assert!(!ok, "{out}");
        // So is an instance id that is not on this node, and a malformed username.
        let (ok, _) = sftp(s.port, "admin@example.com.ffffffff", &pw, "ls /\n").await;
        assert!(!ok);
        let (ok, _) = sftp(s.port, "admin@example.com", &pw, "ls /\n").await;
        assert!(!ok);

        // A member without instances.sftp is refused; a read-only one cannot write.
        let viewer = app.register("viewer@example.com").await;
        app.add_member(&s.org, &viewer.user_id, "viewer").await;
        let (ok, out) = sftp(s.port, &s.user("viewer@example.com"), &pw, "ls /\n").await;
        assert!(!ok, "a viewer got in: {out}");
        let reader = app.register("reader@example.com").await;
        app.add_member(&s.org, &reader.user_id, "operator").await;
        shardlyn_panel::orgs::store::set_override(&app.state.db.pool, &s.org, &reader.user_id, "instances.files.write", false)
            .await
            .expect("deny write");
        std::fs::write(s.volume().join("readme.txt"), b"read me").expect("volume file");
        let ruser = s.user("reader@example.com");
        let (ok, out) = sftp(s.port, &ruser, &pw, &format!("get /readme.txt {}\nls /\n", l("readme.txt"))).await;
        assert!(ok, "{out}");
        assert_eq!(std::fs::read(local.path().join("readme.txt")).expect("read"), b"read me");
        for script in [
            format!("put {} /from-reader.txt\n", l("hello.txt")),
            "mkdir /reader-dir\n".to_string(),
            "rm /readme.txt\n".to_string(),
            "rename /readme.txt /renamed.txt\n".to_string(),
        ] {
            let (ok, out) = sftp(s.port, &ruser, &pw, &script).await;
            assert!(!ok, "a read-only user wrote: {script} -> {out}");
        }
        assert!(!s.volume().join("from-reader.txt").exists());
        assert!(!s.volume().join("reader-dir").exists());
        assert!(s.volume().join("readme.txt").exists());
        // The same member with instances.sftp revoked by an override is refused: logins
        // go through the API's authorization (`authz::load`), overrides included.
        shardlyn_panel::orgs::store::set_override(&app.state.db.pool, &s.org, &reader.user_id, "instances.sftp", false)
            .await
            .expect("deny sftp");
        let (ok, out) = sftp(s.port, &ruser, &pw, "ls /\n").await;
        assert!(!ok, "a member without instances.sftp got in: {out}");
        // Someone outside the organization cannot log in to it either.
        app.register("stranger@example.com").await;
        let (ok, _) = sftp(s.port, &s.user("stranger@example.com"), &pw, "ls /\n").await;
        assert!(!ok);

        // A second server on the node created within the same minute shares the first 8
        // characters of the id (UUIDv7): the username the panel shows grows to tell them
        // apart, and logs in to the right one.
        let first = app.get(&format!("/v1/instances/{}", s.id), Some(t)).await.expect(200).body;
        let node_id = first["node_id"].as_str().expect("node").to_string();
        let second = app.post("/v1/instances", Some(t), json!({
            "name": "sftp-2", "workload_id": first["workload_id"], "node_id": node_id, "ports": [free_port()],
            "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 1, "pids": 64, "io_weight": 500},
        })).await.expect(201).body;
        let second_id = second["id"].as_str().expect("id").to_string();
        let suffix = shardlyn_panel::sftp::auth::username_suffix(&app.state, &node_id, &s.id).await.expect("suffix");
        assert!(s.id.starts_with(&suffix) && !second_id.starts_with(&suffix), "{suffix} vs {second_id}");
        if second_id[..8] == s.id[..8] {
            let (ok, out) = sftp(s.port, &user, &pw, "ls /\n").await;
            assert!(!ok, "an ambiguous 8-character prefix got in: {out}");
        }
        let (ok, out) = sftp(s.port, &format!("admin@example.com.{suffix}"), &pw, "ls /\n").await;
        assert!(ok && out.contains("readme.txt"), "{out}");
    }

    async fn ssh_keys_log_in_and_are_managed_per_user(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = admin.access.as_str();
        let s = Server::start(&app, t, 64).await;
        let keys = tempfile::tempdir().expect("tmp");
        let (key, public) = keygen(keys.path(), "id_ed25519");
        let (other_key, _) = keygen(keys.path(), "other");
        let user = s.user("admin@example.com");

        // Unknown key: refused.
        let (ok, out) = sftp(s.port, &user, &Login::Key(&key), "ls /\n").await;
        assert!(!ok, "{out}");

        // Add it: validated, fingerprinted like ssh-keygen, comment dropped.
        app.post("/v1/users/me/ssh-keys", Some(t), json!({"name": "laptop", "public_key": "ssh-ed25519 AAAAnope"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post("/v1/users/me/ssh-keys", Some(t), json!({"name": "", "public_key": public}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        let created = app.post("/v1/users/me/ssh-keys", Some(t), json!({"name": "laptop", "public_key": public}))
            .await
            .expect(201)
            .body;
        assert_eq!(created["fingerprint"], fingerprint(&key.with_extension("pub")));
        assert_eq!(created["algorithm"], "ssh-ed25519");
        assert!(!created["public_key"].as_str().expect("key").contains("test@shardlyn"));
        app.post("/v1/users/me/ssh-keys", Some(t), json!({"name": "again", "public_key": public}))
            .await
            .expect_error(409, "CONFLICT");
        let id = created["id"].as_str().expect("id").to_string();

        // The key logs in (and is marked used); another key still does not.
        std::fs::write(s.volume().join("a.txt"), b"a").expect("volume file");
        let (ok, out) = sftp(s.port, &user, &Login::Key(&key), "ls /\n").await;
        assert!(ok, "{out}");
        assert!(out.contains("a.txt"), "{out}");
        let (ok, _) = sftp(s.port, &user, &Login::Key(&other_key), "ls /\n").await;
        assert!(!ok);
        let list = app.get("/v1/users/me/ssh-keys", Some(t)).await.expect(200).body;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
        assert!(list[0]["last_used_at"].is_string(), "{list}");

        // Another user's key list is their own; they cannot delete this key.
        let other = app.register("other@example.com").await;
        let theirs = app.get("/v1/users/me/ssh-keys", Some(&other.access)).await.expect(200).body;
        assert_eq!(theirs.as_array().map(Vec::len), Some(0));
        app.delete(&format!("/v1/users/me/ssh-keys/{id}"), Some(&other.access))
            .await
            .expect_error(404, "NOT_FOUND");
        // The same key on an account without access to the instance does not get in.
        app.post("/v1/users/me/ssh-keys", Some(&other.access), json!({"name": "shared", "public_key": public}))
            .await
            .expect(201);
        let (ok, _) = sftp(s.port, &s.user("other@example.com"), &Login::Key(&key), "ls /\n").await;
        assert!(!ok);

        // Deleted: the key no longer logs in.
        app.delete(&format!("/v1/users/me/ssh-keys/{id}"), Some(t)).await.expect(204);
        app.delete(&format!("/v1/users/me/ssh-keys/{id}"), Some(t))
            .await
            .expect_error(404, "NOT_FOUND");
        let (ok, _) = sftp(s.port, &user, &Login::Key(&key), "ls /\n").await;
        assert!(!ok);
        app.get("/v1/users/me/ssh-keys", None).await.expect(401);
    }

    async fn logins_are_limited_and_need_the_panel(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = admin.access.as_str();
        let s = Server::start(&app, t, 64).await;
        let user = s.user("admin@example.com");
        // Five failed passwords for one user from one address, then even the right one
        // is refused for a while.
        for _ in 0..5 {
            let (ok, _) = sftp(s.port, &user, &Login::Password("wrong-password"), "ls /\n").await;
            assert!(!ok);
        }
        let (ok, out) = sftp(s.port, &user, &Login::Password(PASSWORD), "ls /\n").await;
        assert!(!ok, "logged in after 5 failures: {out}");
        // The panel's own lockout counted those failures too.
        let r = app.post("/v1/auth/login", None, json!({"email": "admin@example.com", "password": PASSWORD})).await;
        assert_eq!(r.status, 429, "{}", r.text);

        // With the panel gone, nobody gets in (and the agent keeps serving SFTP).
        let reader = app.register("reader@example.com").await;
        app.add_member(&s.org, &reader.user_id, "operator").await;
        let ruser = s.user("reader@example.com");
        let (ok, out) = sftp(s.port, &ruser, &Login::Password(PASSWORD), "ls /\n").await;
        assert!(ok, "{out}");
        let port = s.port;
        app.stop().await;
        let (ok, _) = sftp(port, &ruser, &Login::Password(PASSWORD), "ls /\n").await;
        assert!(!ok, "logged in without a panel");
        drop(s);
    }
}
