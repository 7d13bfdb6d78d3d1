//! Certificate logins to SFTP end to end: the panel's CA signs a certificate whose
//! principal is a server's SFTP username (`POST /v1/ssh/certificate` with
//! `instance_id`), and OpenSSH's `sftp` client logs in with it (`CertificateFile=`) to a
//! real agent's SFTP server, which asks the panel over the tunnel. Refused: revoked,
//! expired, another user's or another server's username, a node certificate, one from a
//! CA the panel does not know, one stored for another account, and after the user loses
//! `instances.sftp` or is suspended.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::sshd::{exec, user_key};
use shardlyn_tests::{TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(60);

/// A node whose agent serves SFTP on `port`.
struct Node {
    agent: LocalAgent,
    dir: tempfile::TempDir,
    node_id: String,
    port: u16,
}

impl Node {
    async fn start(app: &TestApp, access: &str) -> Self {
        let (config, dir) = register_node(app, access).await;
        let port = free_port();
        std::fs::write(
            dir.path().join("settings.toml"),
            format!("sftp_bind = \"127.0.0.1\"\nsftp_port = {port}\n"),
        )
        .expect("agent settings");
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(app, access, &config.node_id, "online").await;
        Self {
            agent,
            dir,
            node_id: config.node_id,
            port,
        }
    }

    /// A new server on the node: (id, organization).
    async fn instance(&self, app: &TestApp, access: &str, name: &str) -> (String, String) {
        let workload = busybox_workload(app, access).await;
        let body = app
            .post(
                "/v1/instances",
                Some(access),
                json!({
                    "name": name,
                    "workload_id": workload,
                    "node_id": self.node_id,
                    "ports": [free_port()],
                    "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 64, "pids": 64, "io_weight": 500},
                }),
            )
            .await
            .expect(201)
            .body;
        let id = body["id"].as_str().expect("id").to_owned();
        wait_instance(app, access, &id, "offline", WAIT).await;
        (
            id,
            body["organization_id"].as_str().expect("org").to_owned(),
        )
    }

    fn volume(&self, id: &str) -> PathBuf {
        self.dir.path().join("volumes").join(id)
    }
}

/// Runs `script` with `sftp -b -` as `user` with `key` and its certificate `cert` (the
/// client offers the certificate first, then the bare key, which no account holds);
/// `(succeeded, output)`.
async fn sftp_with_cert(
    port: u16,
    user: &str,
    key: &Path,
    cert: &Path,
    script: &str,
) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("sftp")
        .args(shardlyn_tests::sshd::CLIENT_OPTIONS)
        .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20"])
        .args(["-o", "PreferredAuthentications=publickey"])
        .arg("-o")
        .arg(format!("CertificateFile={}", cert.display()))
        .arg("-i")
        .arg(key)
        .arg("-o")
        .arg(format!("User={user}"))
        .args(["-P", &port.to_string(), "-b", "-", "127.0.0.1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sftp (openssh-client) is installed");
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

/// Saves a signed certificate as `<key>-cert.pub`; its path.
fn save(key: &Path, certificate: &str) -> PathBuf {
    let path = PathBuf::from(format!("{}-cert.pub", key.display()));
    std::fs::write(&path, certificate).expect("cert");
    path
}

fn cert_of(signed: &Value) -> &str {
    signed["certificate"].as_str().expect("certificate")
}

/// The panel's signing key, as the CA itself would use it (to make certificates the API
/// would not: expired ones, or ones stored for someone else).
async fn ca_key(app: &TestApp) -> (String, ssh_key::PrivateKey) {
    let keys = shardlyn_panel::ssh::store::keys(&app.state.db.pool)
        .await
        .expect("keys");
    let signing = keys.iter().find(|k| k.active).expect("signing key");
    let pem =
        shardlyn_panel::sealed::open(&app.state.master_key, &signing.sealed_private).expect("open");
    (
        signing.id.clone(),
        ssh_key::PrivateKey::from_openssh(&pem).expect("ca key"),
    )
}

/// A certificate signed by the panel's CA key directly, for `principal`, valid from
/// `after` to `before` (Unix seconds).
fn ca_sign(
    ca: &ssh_key::PrivateKey,
    public: &str,
    serial: u64,
    principal: &str,
    after: u64,
    before: u64,
) -> String {
    let subject = ssh_key::PublicKey::from_openssh(public.trim()).expect("pub");
    shardlyn_panel::ssh::ca::sign(
        ca,
        &shardlyn_panel::ssh::ca::Request {
            subject: &subject,
            serial,
            key_id: "made by the test",
            principals: &[principal.to_owned()],
            valid_after: after,
            valid_before: before,
            force_command: None,
            source_address: None,
            extensions: &["permit-pty".to_owned()],
        },
    )
    .expect("sign")
}

fn now_secs() -> u64 {
    u64::try_from(shardlyn_panel::db::now_ms() / 1000).expect("now")
}

both_engines! {
    async fn certificates_log_in_to_sftp_as_password_logins_would(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let node = Node::start(&app, a).await;
        let (id, org) = node.instance(&app, a, "certs").await;
        let (other_id, _) = node.instance(&app, a, "certs-2").await;
        let keys = tempfile::tempdir().expect("tmp");
        let local = tempfile::tempdir().expect("tmp");
        let l = |name: &str| local.path().join(name).display().to_string();
        std::fs::write(local.path().join("up.txt"), b"up by certificate\n").expect("local");
        std::fs::write(node.volume(&id).join("readme.txt"), b"read me").expect("volume");
        let suffix = |i: &str| {
            let (app, node_id, i) = (&app, node.node_id.clone(), i.to_owned());
            async move {
                shardlyn_panel::sftp::auth::username_suffix(&app.state, &node_id, &i)
                    .await
                    .expect("suffix")
            }
        };
        let admin_user = format!("admin@example.com.{}", suffix(&id).await);
        let admin_other = format!("admin@example.com.{}", suffix(&other_id).await);

        // Refused before signing.
        let (key, public) = user_key(keys.path(), "admin");
        let sign = |body: Value| app.post("/v1/ssh/certificate", t, body);
        sign(json!({"public_key": public, "instance_id": id, "node_id": node.node_id})).await.expect(400);
        sign(json!({"public_key": public, "instance_id": id, "principals": ["root"]})).await.expect(400);
        sign(json!({"public_key": public, "instance_id": id, "force_command": "ls"})).await.expect(400);
        sign(json!({"public_key": public, "instance_id": "no-such-server"})).await.expect(404);
        let stranger = app.register("stranger@example.com").await;
        app.post("/v1/ssh/certificate", Some(&stranger.access), json!({"public_key": public, "instance_id": id}))
            .await.expect(404);

        // Signed: one principal, the SFTP username; stored under the server's node.
        let signed = sign(json!({"public_key": public, "instance_id": id, "validity_hours": 2}))
            .await.expect(200).body;
        assert_eq!(signed["principals"], json!([admin_user]), "{signed}");
        let key_id = signed["key_id"].as_str().expect("key id");
        assert!(key_id.contains(&format!("instance={id}")), "{key_id}");
        let listed = app.get(&format!("/v1/ssh/certificates?node_id={}", node.node_id), t).await.expect(200).body;
        assert!(listed["data"].as_array().expect("data").iter().any(|c| c["id"] == signed["id"]), "{listed}");
        let cert = save(&key, cert_of(&signed));
        let (ok, fields) = exec(std::process::Command::new("ssh-keygen").arg("-L").arg("-f").arg(&cert));
        assert!(ok && fields.contains(&admin_user), "{fields}");

        // It logs in, reads and writes (the owner may write).
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &key, &cert, &format!(
            "get /readme.txt {}\nput {} /up.txt\nls /\n", l("readme.txt"), l("up.txt"),
        )).await;
        assert!(ok, "{out}");
        assert_eq!(std::fs::read(local.path().join("readme.txt")).expect("read"), b"read me");
        assert_eq!(std::fs::read(node.volume(&id).join("up.txt")).expect("written"), b"up by certificate\n");
        // The email part is case-insensitive, as for passwords.
        let (ok, out) = sftp_with_cert(node.port, &admin_user.to_uppercase(), &key, &cert, "ls /\n").await;
        assert!(ok, "{out}");
        // Not for another server of the same node.
        let (ok, out) = sftp_with_cert(node.port, &admin_other, &key, &cert, "ls /\n").await;
        assert!(!ok, "a certificate opened another server: {out}");

        // A reader (no instances.files.write) reads but cannot write.
        let reader = app.register("reader@example.com").await;
        app.add_member(&org, &reader.user_id, "operator").await;
        shardlyn_panel::orgs::store::set_override(&app.state.db.pool, &org, &reader.user_id, "instances.files.write", false)
            .await.expect("deny write");
        let reader_user = format!("reader@example.com.{}", suffix(&id).await);
        let (rkey, rpublic) = user_key(keys.path(), "reader");
        let rsigned = app.post("/v1/ssh/certificate", Some(&reader.access), json!({"public_key": rpublic, "instance_id": id}))
            .await.expect(200).body;
        assert_eq!(rsigned["principals"], json!([reader_user]), "{rsigned}");
        let rcert = save(&rkey, cert_of(&rsigned));
        let (ok, out) = sftp_with_cert(node.port, &reader_user, &rkey, &rcert, "ls /\n").await;
        assert!(ok && out.contains("readme.txt"), "{out}");
        let (ok, out) = sftp_with_cert(node.port, &reader_user, &rkey, &rcert, &format!("put {} /by-reader.txt\n", l("up.txt"))).await;
        assert!(!ok, "a read-only certificate wrote: {out}");
        assert!(!node.volume(&id).join("by-reader.txt").exists());

        // Another user's username: the reader's certificate does not log in as the admin.
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &rkey, &rcert, "ls /\n").await;
        assert!(!ok, "a certificate logged in as another user: {out}");

        // A certificate the CA signed for the admin's username but stored as the reader's
        // is refused: the stored user must be the account the username names.
        let (ca_id, ca) = ca_key(&app).await;
        let (mkey, mpublic) = user_key(keys.path(), "mixed");
        let now = now_secs();
        let serial = 0x1234_5678_9abc;
        let mixed = ca_sign(&ca, &mpublic, serial, &admin_user, now - 60, now + 3600);
        shardlyn_panel::ssh::store::insert_cert(&app.state.db.pool, &shardlyn_panel::ssh::store::Cert {
            id: "mixed-cert".into(), serial: i64::try_from(serial).expect("serial"), ca_key_id: ca_id.clone(),
            user_id: reader.user_id.clone(), node_id: Some(node.node_id.clone()), key_id: "made by the test".into(),
            principals: admin_user.clone(), public_key_fingerprint: String::new(), certificate: mixed.clone(),
            force_command: None, source_address: None, valid_after: i64::try_from(now - 60).expect("t") * 1000,
            valid_before: i64::try_from(now + 3600).expect("t") * 1000, revoked_at: None, revoked_reason: None,
            created_at: shardlyn_panel::db::now_ms(),
        }).await.expect("store");
        let mcert = save(&mkey, &mixed);
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &mkey, &mcert, "ls /\n").await;
        assert!(!ok, "a certificate stored for another account got in: {out}");
        // Signed by the CA but never stored: refused too.
        let (ukey, upublic) = user_key(keys.path(), "unstored");
        let ucert = save(&ukey, &ca_sign(&ca, &upublic, 77, &admin_user, now - 60, now + 3600));
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &ukey, &ucert, "ls /\n").await;
        assert!(!ok, "a certificate the panel never issued got in: {out}");

        // Expired: the CA's own signature, a window in the past.
        let (ekey, epublic) = user_key(keys.path(), "expired");
        let ecert = save(&ekey, &ca_sign(&ca, &epublic, 78, &admin_user, now - 7200, now - 3600));
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &ekey, &ecert, "ls /\n").await;
        assert!(!ok, "an expired certificate got in: {out}");

        // A node certificate (principal node:<node>:<login>) is not an SFTP login.
        let (nkey, npublic) = user_key(keys.path(), "node");
        let nsigned = sign(json!({"public_key": npublic, "node_id": node.node_id})).await.expect(200).body;
        let ncert = save(&nkey, cert_of(&nsigned));
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &nkey, &ncert, "ls /\n").await;
        assert!(!ok, "a node certificate opened SFTP: {out}");

        // A CA the panel does not know (ssh-keygen -s), with the right principal.
        let (rogue_ca, _) = user_key(keys.path(), "rogue-ca");
        let (skey, _) = user_key(keys.path(), "self");
        let (ok, out) = exec(std::process::Command::new("ssh-keygen")
            .arg("-q").arg("-s").arg(&rogue_ca).args(["-I", "rogue", "-n", &admin_user, "-V", "-5m:+1h", "-z", "79"])
            .arg(format!("{}.pub", skey.display())));
        assert!(ok, "{out}");
        let scert = PathBuf::from(format!("{}-cert.pub", skey.display()));
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &skey, &scert, "ls /\n").await;
        assert!(!ok, "a certificate of an unknown CA got in: {out}");

        // Revoked: refused at once (the panel's stored state is the KRL's source).
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &key, &cert, "ls /\n").await;
        assert!(ok, "{out}");
        app.post(&format!("/v1/ssh/certificates/{}/revoke", signed["id"].as_str().expect("id")), t, json!({}))
            .await.expect(200);
        let (ok, out) = sftp_with_cert(node.port, &admin_user, &key, &cert, "ls /\n").await;
        assert!(!ok, "a revoked certificate got in: {out}");

        // The reader loses instances.sftp: their certificate stops working.
        shardlyn_panel::orgs::store::set_override(&app.state.db.pool, &org, &reader.user_id, "instances.sftp", false)
            .await.expect("deny sftp");
        let (ok, out) = sftp_with_cert(node.port, &reader_user, &rkey, &rcert, "ls /\n").await;
        assert!(!ok, "a member without instances.sftp got in: {out}");
        app.post("/v1/ssh/certificate", Some(&reader.access), json!({"public_key": rpublic, "instance_id": id}))
            .await.expect(403);

        // A suspended user is refused (their certificates are revoked as well).
        let writer = app.register("writer@example.com").await;
        app.add_member(&org, &writer.user_id, "operator").await;
        let writer_user = format!("writer@example.com.{}", suffix(&id).await);
        let (wkey, wpublic) = user_key(keys.path(), "writer");
        let wsigned = app.post("/v1/ssh/certificate", Some(&writer.access), json!({"public_key": wpublic, "instance_id": id}))
            .await.expect(200).body;
        let wcert = save(&wkey, cert_of(&wsigned));
        let (ok, out) = sftp_with_cert(node.port, &writer_user, &wkey, &wcert, "ls /\n").await;
        assert!(ok, "{out}");
        app.post(&format!("/v1/admin/users/{}/suspend", writer.user_id), t, json!({})).await.expect(200);
        let (ok, out) = sftp_with_cert(node.port, &writer_user, &wkey, &wcert, "ls /\n").await;
        assert!(!ok, "a suspended user got in: {out}");
        // Even with the revocation undone behind the panel's back, the suspension refuses.
        sqlx::query("UPDATE ssh_certificates SET revoked_at = NULL, revoked_reason = NULL WHERE user_id = $1")
            .bind(&writer.user_id)
            .execute(&app.state.db.pool)
            .await
            .expect("unrevoke");
        let (ok, out) = sftp_with_cert(node.port, &writer_user, &wkey, &wcert, "ls /\n").await;
        assert!(!ok, "a suspended user got in with an unrevoked certificate: {out}");
        node.agent.stop().await;
    }
}
