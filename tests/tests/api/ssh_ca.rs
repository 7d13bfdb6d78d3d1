//! The SSH certificate authority against a real OpenSSH server (Debian's
//! `openssh-server`, started by the test on loopback as a node would run it: trusting the
//! CA's keys, with an `AuthorizedPrincipalsFile` naming `node:<node id>:<login>`, and the
//! panel's KRL as `RevokedKeys`). `ssh-keygen` is the oracle for the certificate's fields
//! and for the KRL.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use shardlyn_tests::agent::register_node;
use shardlyn_tests::sshd::{Sshd, exec, user_key};
use shardlyn_tests::{TestApp, both_engines, spawn_app};

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

        // Expired: signed by the CA itself with a window in the past, refused.
        let keys = shardlyn_panel::ssh::store::keys(&app.state.db.pool).await.expect("keys");
        let signing = keys.iter().find(|k| k.active).expect("signing key");
        let pem = shardlyn_panel::sealed::open(&app.state.master_key, &signing.sealed_private).expect("open");
        let ca_private = ssh_key::PrivateKey::from_openssh(&pem).expect("ca key");
        let (key7, public7) = user_key(dir.path(), "gone");
        let subject = ssh_key::PublicKey::from_openssh(public7.trim()).expect("pub");
        let now = u64::try_from(shardlyn_panel::db::now_ms() / 1000).expect("now");
        let principals = vec![format!("node:{}:root", node.node_id)];
        let expired = shardlyn_panel::ssh::ca::sign(&ca_private, &shardlyn_panel::ssh::ca::Request {
            subject: &subject, serial: 7, key_id: "expired", principals: &principals,
            valid_after: now - 7200, valid_before: now - 3600, force_command: None,
            source_address: None, extensions: &["permit-pty".to_owned()],
        }).expect("sign");
        std::fs::write(format!("{}-cert.pub", key7.display()), expired).expect("cert");
        assert!(!sshd.login(&key7).0, "an expired certificate is refused");

        // Once what the rotated-out key signed has expired, it is no longer trusted:
        // gone from the public key list, and its certificates are refused.
        sqlx::query("UPDATE ssh_ca_keys SET trusted_until = $1 WHERE active = 0")
            .bind(shardlyn_panel::db::now_ms() - 1000)
            .execute(&app.state.db.pool).await.expect("age the old key");
        let only_new = String::from_utf8(text(&app, "/v1/ssh/ca-public-key").await).expect("utf8");
        assert_eq!(only_new.lines().count(), 1, "{only_new}");
        std::fs::write(sshd.dir.join("ca.pub"), &only_new).expect("ca");
        assert!(!sshd.login(&key4).0, "the rotated-out key's certificate is refused now");

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

/// A node whose agent installs the trust (`ssh_trust_dir`): the CA key and its
/// principals file arrive by themselves, a certificate logs in to the node's sshd, and
/// once revoked it is refused within 10 s, with no one touching the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_installs_the_trust_and_a_revocation_reaches_sshd_within_10_s() {
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let a = admin.access.as_str();
    let t = Some(a);
    let dir = tempfile::tempdir().expect("tmp");
    let trust = dir.path().join("trust");
    let (config, node_dir) = register_node(&app, a).await;
    std::fs::write(
        node_dir.path().join("settings.toml"),
        format!(
            "ssh_trust_dir = \"{}\"\nssh_logins = [\"shardlyn\", \"root\"]\n",
            trust.display()
        ),
    )
    .expect("settings");
    let agent = shardlyn_tests::agent::LocalAgent::start(config.clone(), node_dir.path());
    shardlyn_tests::agent::wait_node(&app, a, &config.node_id, "online").await;

    let (key, public) = user_key(dir.path(), "ops");
    let signed = app
        .post(
            "/v1/ssh/certificate",
            t,
            json!({"public_key": public, "principals": ["root"], "node_id": config.node_id}),
        )
        .await
        .expect(200)
        .body;
    save_cert(&key, &signed);
    let ca = String::from_utf8(text(&app, "/v1/ssh/ca-public-key").await).expect("utf8");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(trust.join("ca.pub")).unwrap_or_default() != ca {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent never installed the CA key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        std::fs::read_to_string(trust.join("principals/root")).expect("principals"),
        format!("node:{}:root\n", config.node_id)
    );
    let sshd = Sshd::trusting(dir.path(), &trust).await;
    let (ok, out) = sshd.login(&key);
    assert!(ok, "{out}");

    let revoked_at = std::time::Instant::now();
    app.post(
        &format!(
            "/v1/ssh/certificates/{}/revoke",
            signed["id"].as_str().expect("id")
        ),
        t,
        json!({}),
    )
    .await
    .expect(200);
    loop {
        if !sshd.login(&key).0 {
            break;
        }
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_secs(10),
            "still let in after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    println!(
        "ssh: a revocation reached the node's sshd in {} ms",
        revoked_at.elapsed().as_millis()
    );
    drop(sshd);
    agent.stop().await;
}
