//! The SSH certificate authority against a real OpenSSH server (Debian's
//! `openssh-server`, started by the test on loopback as a node would run it: trusting the
//! CA's keys, with an `AuthorizedPrincipalsFile` naming `node:<node id>:<login>`, and the
//! panel's KRL as `RevokedKeys`). `ssh-keygen` is the oracle for the certificate's fields
//! and for the KRL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use shardlyn_tests::agent::{free_port, register_node};
use shardlyn_tests::{TestApp, both_engines, spawn_app};

/// `sshd` on loopback, stopped on drop.
struct Sshd {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn exec(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

impl Sshd {
    /// Trusts `ca_keys`, lets `node:<node>:root` in as root, refuses what `krl` revokes.
    async fn start(dir: &Path, node: &str, ca_keys: &str) -> Self {
        std::fs::create_dir_all("/run/sshd").expect("privsep dir");
        let (ok, out) = exec(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join("host")),
        );
        assert!(ok, "{out}");
        std::fs::write(dir.join("ca.pub"), ca_keys).expect("ca");
        std::fs::create_dir_all(dir.join("principals")).expect("mkdir");
        std::fs::write(dir.join("principals/root"), format!("node:{node}:root\n")).expect("p");
        // An empty KRL until the panel's arrives.
        let (ok, out) = exec(
            Command::new("ssh-keygen")
                .args(["-k", "-f"])
                .arg(dir.join("krl")),
        );
        assert!(ok, "{out}");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host\nPidFile {dir}/sshd.pid\n\
             TrustedUserCAKeys {dir}/ca.pub\nAuthorizedPrincipalsFile {dir}/principals/%u\n\
             RevokedKeys {dir}/krl\nAuthorizedKeysFile none\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n\
             StrictModes no\nUsePAM no\nLogLevel VERBOSE\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).expect("config");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).expect("log"))
            .spawn()
            .expect("sshd (scripts/dev-services installs openssh-server)");
        shardlyn_tests::agent::wait_listening(port, "sshd").await;
        Self {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// Runs `echo in` as root with `key` and its certificate: whether it got in.
    fn login(&self, key: &Path) -> (bool, String) {
        let cert = PathBuf::from(format!("{}-cert.pub", key.display()));
        exec(
            Command::new("ssh")
                .args([
                    "-F",
                    "/dev/null",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "IdentitiesOnly=yes",
                ])
                .args([
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                ])
                .arg("-o")
                .arg(format!("CertificateFile={}", cert.display()))
                .arg("-i")
                .arg(key)
                .args(["-p", &self.port.to_string(), "root@127.0.0.1", "echo in"]),
        )
    }

    fn install_krl(&self, krl: &[u8]) {
        let tmp = self.dir.join("krl.new");
        std::fs::write(&tmp, krl).expect("krl");
        std::fs::rename(&tmp, self.dir.join("krl")).expect("krl");
    }
}

/// A new user key pair in `dir`: the private key's path and the public key's text.
fn user_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let (ok, out) = exec(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    assert!(ok, "{out}");
    let public = std::fs::read_to_string(format!("{}.pub", key.display())).expect("pub");
    (key, public)
}

fn save_cert(key: &Path, signed: &Value) {
    std::fs::write(
        format!("{}-cert.pub", key.display()),
        signed["certificate"].as_str().expect("certificate"),
    )
    .expect("cert");
}

async fn text(app: &TestApp, path: &str) -> Vec<u8> {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "{path}");
    r.bytes().await.expect("body").to_vec()
}

both_engines! {
    async fn certificates_open_only_their_node_and_revocation_reaches_a_real_sshd(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let (node, _node_dir) = register_node(&app, a).await;
        let (other, _other_dir) = register_node(&app, a).await;
        let dir = tempfile::tempdir().expect("tmp");

        // The CA key appears on first use; the public key list is ready for sshd.
        let ca = String::from_utf8(text(&app, "/v1/ssh/ca-public-key").await).expect("utf8");
        assert!(ca.starts_with("ssh-ed25519 "), "{ca}");
        assert_eq!(ca.lines().count(), 1);
        let keys = app.get("/v1/ssh/ca/keys", t).await.expect(200).body;
        assert_eq!(keys["data"][0]["active"], true, "{keys}");
        assert!(!keys.to_string().contains("PRIVATE"), "the private key never leaves");
        app.post("/v1/ssh/ca/keys", t, json!({})).await.expect_error(409, "CA_KEY_EXISTS");

        // Refused before signing.
        let (key, public) = user_key(dir.path(), "alice");
        let sign = |body: Value| app.post("/v1/ssh/certificate", t, body);
        sign(json!({"public_key": "ssh-ed25519 not-base64"})).await.expect(400);
        sign(json!({"public_key": public, "principals": ["Root!"], "node_id": node.node_id})).await.expect(400);
        sign(json!({"public_key": public, "validity_hours": 1000, "node_id": node.node_id})).await.expect(422);
        sign(json!({"public_key": public, "node_id": "no-such-node"})).await.expect(404);
        sign(json!({"public_key": public, "source_address": "not-an-ip", "node_id": node.node_id})).await.expect(400);
        sign(json!({"public_key": public, "extensions": ["permit-everything"], "node_id": node.node_id})).await.expect(400);
        let stranger = app.register("stranger@example.com").await;
        app.post("/v1/ssh/certificate", Some(&stranger.access),
            json!({"public_key": public, "node_id": node.node_id})).await.expect(404);
        app.post("/v1/ssh/certificate", Some(&stranger.access), json!({"public_key": public}))
            .await.expect_error(422, "NO_NODES");

        // A certificate for the node, as root: ssh-keygen reads what we set.
        let signed = sign(json!({"public_key": public, "principals": ["root"], "node_id": node.node_id, "validity_hours": 2}))
            .await.expect(200).body;
        let principal = format!("node:{}:root", node.node_id);
        assert_eq!(signed["principals"], json!([principal]), "{signed}");
        save_cert(&key, &signed);
        let (ok, fields) = exec(Command::new("ssh-keygen").arg("-L").arg("-f").arg(format!("{}-cert.pub", key.display())));
        assert!(ok, "{fields}");
        let serial = signed["serial_number"].as_str().expect("serial");
        for want in [
            "ssh-ed25519-cert-v01@openssh.com user certificate".to_owned(),
            format!("Serial: {serial}"),
            format!("Key ID: \"{}\"", signed["key_id"].as_str().expect("key id")),
            principal.clone(),
            "permit-pty".to_owned(),
        ] {
            assert!(fields.contains(&want), "{want} not in {fields}");
        }
        assert!(!fields.contains("permit-port-forwarding"), "{fields}");
        assert!(signed["key_id"].as_str().is_some_and(|k| k.contains("admin@") && k.contains(serial)), "{signed}");

        let sshd = Sshd::start(dir.path(), &node.node_id, &ca).await;
        let (ok, out) = sshd.login(&key);
        assert!(ok && out.contains("in"), "the certificate logs in: {out}");

        // Another node's certificate, or one bound to another address, does not.
        let (key2, public2) = user_key(dir.path(), "bob");
        save_cert(&key2, &sign(json!({"public_key": public2, "principals": ["root"], "node_id": other.node_id})).await.expect(200).body);
        assert!(!sshd.login(&key2).0, "a certificate of another node is refused");
        let (key3, public3) = user_key(dir.path(), "carol");
        save_cert(&key3, &sign(json!({"public_key": public3, "principals": ["root"], "node_id": node.node_id,
            "source_address": "192.0.2.7/32"})).await.expect(200).body);
        assert!(!sshd.login(&key3).0, "a certificate from another address is refused");

        // Revoked: listed, in the KRL (ssh-keygen agrees), refused by sshd.
        let id = signed["id"].as_str().expect("id");
        let r = app.post(&format!("/v1/ssh/certificates/{id}/revoke"), t, json!({"reason": "laptop lost"}))
            .await.expect(200).body;
        assert_eq!(r["state"], "revoked", "{r}");
        assert_eq!(r["revoked_reason"], "laptop lost");
        app.post(&format!("/v1/ssh/certificates/{id}/revoke"), Some(&stranger.access), json!({}))
            .await.expect(404);
        app.get(&format!("/v1/ssh/certificates/{id}"), Some(&stranger.access)).await.expect(404);
        let krl = text(&app, "/v1/ssh/krl").await;
        sshd.install_krl(&krl);
        let (_, checked) = exec(Command::new("ssh-keygen").arg("-Q").arg("-f").arg(sshd.dir.join("krl"))
            .arg(format!("{}-cert.pub", key.display())));
        assert!(checked.contains("REVOKED"), "{checked}");
        let (_, fine) = exec(Command::new("ssh-keygen").arg("-Q").arg("-f").arg(sshd.dir.join("krl"))
            .arg(format!("{}-cert.pub", key3.display())));
        assert!(fine.contains("ok"), "{fine}");
        let (ok, out) = sshd.login(&key);
        assert!(!ok, "a revoked certificate is refused: {out}");
        let listed = app.get("/v1/ssh/certificates?state=revoked", t).await.expect(200).body;
        assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");

        // Rotation: the old key stays trusted while what it signed lives.
        let (key4, public4) = user_key(dir.path(), "dave");
        save_cert(&key4, &sign(json!({"public_key": public4, "principals": ["root"], "node_id": node.node_id})).await.expect(200).body);
        let rotated = app.post("/v1/ssh/ca/keys/rotate", t, json!({"algorithm": "ecdsa-p256"})).await.expect(201).body;
        assert!(rotated["public_key"].as_str().is_some_and(|k| k.starts_with("ecdsa-sha2-nistp256 ")), "{rotated}");
        app.post("/v1/ssh/ca/keys/rotate", t, json!({"algorithm": "dsa"})).await.expect(422);
        let both = String::from_utf8(text(&app, "/v1/ssh/ca-public-key").await).expect("utf8");
        assert_eq!(both.lines().count(), 2, "{both}");
        std::fs::write(sshd.dir.join("ca.pub"), &both).expect("ca");
        assert!(sshd.login(&key4).0, "the rotated-out key's certificate still logs in");
        let (key5, public5) = user_key(dir.path(), "erin");
        save_cert(&key5, &sign(json!({"public_key": public5, "principals": ["root"], "node_id": node.node_id})).await.expect(200).body);
        assert!(sshd.login(&key5).0, "the new key's certificate logs in");
        let (_, fields) = exec(Command::new("ssh-keygen").arg("-L").arg("-f").arg(format!("{}-cert.pub", key5.display())));
        assert!(fields.contains("Signing CA: ECDSA"), "{fields}");

        // A suspended user's certificates are all revoked.
        let member = app.register("member@example.com").await;
        let (_own_node, _own_dir) = register_node(&app, &member.access).await;
        let (_, public6) = user_key(dir.path(), "frank");
        let theirs = app.post("/v1/ssh/certificate", Some(&member.access), json!({"public_key": public6}))
            .await.expect(200).body;
        assert_eq!(theirs["principals"].as_array().map(Vec::len), Some(1), "their own node only: {theirs}");
        let member_id = app.get("/v1/users/me", Some(&member.access)).await.expect(200).body["id"]
            .as_str().expect("id").to_owned();
        app.post(&format!("/v1/admin/users/{member_id}/suspend"), t, json!({})).await.expect(200);
        let after = app.get(&format!("/v1/ssh/certificates/{}", theirs["id"].as_str().expect("id")), t)
            .await.expect(200).body;
        assert_eq!(after["state"], "revoked", "{after}");
        drop(sshd);
    }
}
