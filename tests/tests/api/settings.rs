//! settings API tests (real panel, both engines): the platform settings document and the
//! provisioning SSH keys, checked against keys made and read by the real `ssh-keygen`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use shardlyn_tests::{TestApp, both_engines, spawn_app};

/// Runs `ssh-keygen` with `args`, asserting success; returns its stdout.
fn ssh_keygen(args: &[&str]) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen runs (OpenSSH client installed)");
    assert!(out.status.success(), "ssh-keygen {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A new key made by `ssh-keygen -t kind` (with `extra` arguments) in `dir`; its path.
fn keygen(dir: &Path, name: &str, kind: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let path_str = path.to_str().expect("utf-8 path");
    let mut args = vec!["-q", "-t", kind, "-C", "made-by-ssh-keygen", "-f", path_str];
    if !extra.contains(&"-N") {
        args.extend(["-N", ""]);
    }
    args.extend(extra);
    ssh_keygen(&args);
    path
}

/// The `SHA256:...` fingerprint `ssh-keygen -l` gives for a key file.
fn fingerprint_of(path: &Path) -> String {
    let out = ssh_keygen(&["-l", "-E", "sha256", "-f", path.to_str().expect("utf-8")]);
    out.split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

/// `algorithm base64` of an OpenSSH public key line (the comment left out).
fn key_body(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts that no private key material appears in a response.
#[track_caller]
fn no_private_key(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(!text.contains("private_key"), "{text}");
}

async fn admin_and_user(app: &TestApp) -> (String, String) {
    let admin = app.bootstrap_admin().await;
    let user = app.register("member@example.com").await;
    (admin.access, user.access)
}

both_engines! {
    async fn settings_are_read_by_users_and_changed_by_admins(engine) {
        let app = spawn_app(engine).await;
        let (admin, user) = admin_and_user(&app).await;
        let r = app.get("/v1/settings", Some(&user)).await.expect(200);
        assert_eq!(r.body, json!({"panel_name": "Shardlyn", "support_email": null, "ssh_certificate_max_hours": 24,
            "show_testing_templates": false}));
        app.get("/v1/settings", None).await.expect_error(401, "UNAUTHORIZED");

        app.put("/v1/settings", Some(&user), json!({"panel_name": "Mine"}))
            .await
            .expect_error(403, "FORBIDDEN");
        let r = app
            .put("/v1/settings", Some(&admin), json!({"panel_name": "  Acme Games ", "support_email": "Help@Acme.Example"}))
            .await
            .expect(200);
        assert_eq!(r.body["panel_name"], "Acme Games");
        assert_eq!(r.body["support_email"], "help@acme.example");
        assert_eq!(r.body["ssh_keys"], json!([]));
        assert_eq!(r.body["default_ssh_key"], Value::Null);

        // Partial update keeps the rest; the user sees it without the admin-only keys.
        app.put("/v1/settings", Some(&admin), json!({"panel_name": "Acme"})).await.expect(200);
        let r = app.get("/v1/settings", Some(&user)).await.expect(200);
        assert_eq!(r.body, json!({"panel_name": "Acme", "support_email": "help@acme.example", "ssh_certificate_max_hours": 24,
            "show_testing_templates": false}));

        for (body, field) in [
            (json!({"panel_name": ""}), "panel_name"),
            (json!({"panel_name": "x".repeat(65)}), "panel_name"),
            (json!({"panel_name": "tab\there"}), "panel_name"),
            (json!({"support_email": "not-an-address"}), "support_email"),
            (json!({"ssh_certificate_max_hours": 0}), "ssh_certificate_max_hours"),
            (json!({"ssh_certificate_max_hours": 721}), "ssh_certificate_max_hours"),
        ] {
            let r = app.put("/v1/settings", Some(&admin), body).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{}", r.text);
        }
        app.put("/v1/settings", Some(&admin), json!({"colour": "red"})).await.expect_error(400, "BAD_REQUEST");
        app.put("/v1/settings", Some(&admin), json!({"panel_name": 7})).await.expect_error(400, "BAD_REQUEST");

        // Nothing invalid was stored; null clears the address.
        let r = app.put("/v1/settings", Some(&admin), json!({"support_email": null})).await.expect(200);
        assert_eq!(r.body["panel_name"], "Acme");
        assert_eq!(r.body["support_email"], Value::Null);

        // API tokens may read, but changing platform settings needs a login session.
        let token = app.api_token(&admin, "bot", None).await;
        app.get("/v1/settings", Some(&token)).await.expect(200);
        app.put("/v1/settings", Some(&token), json!({"panel_name": "Bot"})).await.expect_error(403, "FORBIDDEN");
    }

    async fn ssh_keys_are_validated_sealed_and_never_returned(engine) {
        let app = spawn_app(engine).await;
        let (admin, user) = admin_and_user(&app).await;
        let dir = tempfile::tempdir().expect("tempdir");

        // A key made by ssh-keygen: same public key and fingerprint as OpenSSH computes.
        let ed = keygen(dir.path(), "ed", "ed25519", &[]);
        let pem = std::fs::read_to_string(&ed).expect("key");
        let r = app
            .post("/v1/settings/ssh-keys", Some(&admin), json!({"name": "deploy", "private_key": pem}))
            .await
            .expect(201);
        no_private_key(&r.body);
        let openssh_public = std::fs::read_to_string(ed.with_extension("pub")).expect("pub");
        assert_eq!(key_body(r.body["public_key"].as_str().expect("public_key")), key_body(&openssh_public));
        assert!(r.body["public_key"].as_str().expect("pk").ends_with(" deploy"), "{}", r.text);
        assert_eq!(r.body["fingerprint"], fingerprint_of(&ed));
        assert_eq!(r.body["algorithm"], "ssh-ed25519");
        assert_eq!(r.body["is_default"], true, "the first key becomes the default");
        assert_eq!(r.body["generated"], false);

        // An RSA key from ssh-keygen is accepted too.
        let rsa = keygen(dir.path(), "rsa", "rsa", &["-b", "3072"]);
        let r = app
            .post("/v1/settings/ssh-keys", Some(&admin), json!({"name": "rsa-3072", "private_key": std::fs::read_to_string(&rsa).expect("key")}))
            .await
            .expect(201);
        assert_eq!(r.body["algorithm"], "ssh-rsa");
        assert_eq!(r.body["fingerprint"], fingerprint_of(&rsa));
        assert_eq!(r.body["is_default"], false);

        // Generated: an ed25519 key whose public half OpenSSH derives from the private one.
        let r = app
            .post("/v1/settings/ssh-keys", Some(&admin), json!({"name": "generated"}))
            .await
            .expect(201);
        no_private_key(&r.body);
        assert_eq!(r.body["generated"], true);
        assert_eq!(r.body["algorithm"], "ssh-ed25519");
        let generated_public = r.body["public_key"].as_str().expect("pk").to_string();

        // The list is in the settings (admins only), without private keys.
        let s = app.get("/v1/settings", Some(&admin)).await.expect(200);
        no_private_key(&s.body);
        let names: Vec<&str> = s.body["ssh_keys"].as_array().expect("keys").iter().map(|k| k["name"].as_str().expect("name")).collect();
        assert_eq!(names, ["deploy", "rsa-3072", "generated"]);
        assert_eq!(s.body["default_ssh_key"], "deploy");
        assert!(app.get("/v1/settings", Some(&user)).await.expect(200).body.get("ssh_keys").is_none());

        // Sealed at rest: the column holds no PEM, and it opens to the same key.
        let stored: Vec<String> = sqlx::query_scalar("SELECT sealed_private_key FROM platform_ssh_keys")
            .fetch_all(&app.state.db.pool)
            .await
            .expect("rows");
        assert_eq!(stored.len(), 3);
        assert!(stored.iter().all(|s| !s.contains("PRIVATE KEY") && !s.contains("BEGIN")));

        // Default: the generated key; its opened private key is one OpenSSH accepts, and
        // `ssh-keygen -y` derives exactly the public key the API returned.
        let r = app.post("/v1/settings/ssh-keys/generated/default", Some(&admin), json!({})).await.expect(200);
        assert_eq!(r.body["is_default"], true);
        no_private_key(&r.body);
        let s = app.get("/v1/settings", Some(&admin)).await.expect(200);
        assert_eq!(s.body["default_ssh_key"], "generated");
        let defaults = s.body["ssh_keys"].as_array().expect("keys").iter().filter(|k| k["is_default"] == true).count();
        assert_eq!(defaults, 1);
        let (key, private) = shardlyn_panel::settings::ssh_keys::default_key(&app.state)
            .await
            .expect("opens")
            .expect("a default");
        assert_eq!(key.name, "generated");
        let opened = dir.path().join("opened");
        std::fs::write(&opened, private.as_bytes()).expect("write");
        std::fs::set_permissions(&opened, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
        let derived = ssh_keygen(&["-y", "-f", opened.to_str().expect("utf-8")]);
        assert_eq!(key_body(&derived), key_body(&generated_public));

        // Conflicts: same name, or the same key under another name.
        app.post("/v1/settings/ssh-keys", Some(&admin), json!({"name": "deploy"}))
            .await
            .expect_error(409, "CONFLICT");
        app.post("/v1/settings/ssh-keys", Some(&admin), json!({"name": "again", "private_key": pem}))
            .await
            .expect_error(409, "CONFLICT");

        // Delete; unknown names are 404.
        app.delete("/v1/settings/ssh-keys/rsa-3072", Some(&admin)).await.expect(204);
        app.delete("/v1/settings/ssh-keys/rsa-3072", Some(&admin)).await.expect_error(404, "NOT_FOUND");
        app.post("/v1/settings/ssh-keys/nope/default", Some(&admin), json!({})).await.expect_error(404, "NOT_FOUND");
        let s = app.get("/v1/settings", Some(&admin)).await.expect(200);
        assert_eq!(s.body["ssh_keys"].as_array().map(Vec::len), Some(2));
        assert_eq!(s.body["default_ssh_key"], "generated");
    }

    async fn bad_ssh_keys_are_refused(engine) {
        let app = spawn_app(engine).await;
        let (admin, _) = admin_and_user(&app).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let encrypted = keygen(dir.path(), "enc", "ed25519", &["-N", "a passphrase"]);
        let small_rsa = keygen(dir.path(), "small", "rsa", &["-b", "1024"]);
        let ecdsa = keygen(dir.path(), "ec", "ecdsa", &["-b", "256"]);
        let public_only = std::fs::read_to_string(encrypted.with_extension("pub")).expect("pub");
        let read = |p: &Path| std::fs::read_to_string(p).expect("key");
        for (key, why) in [
            ("not a key at all".to_string(), "not an OpenSSH private key"),
            (public_only, "not an OpenSSH private key"),
            (read(&encrypted), "encrypted"),
            (read(&small_rsa), "at least 2048 bits"),
            (read(&ecdsa), "keys are not supported"),
            (format!("{}\n{}", read(&small_rsa), "x".repeat(20_000)), "at most"),
        ] {
            let r = app
                .post("/v1/settings/ssh-keys", Some(&admin), json!({"name": "bad", "private_key": key}))
                .await
                .expect_error(422, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], "private_key", "{}", r.text);
            assert!(r.body["error"].as_str().expect("error").contains(why), "{why}: {}", r.text);
            no_private_key_material(&r.body);
        }
        for name in ["", "-dash", "has space", "slash/y", &"n".repeat(65)] {
            let r = app
                .post("/v1/settings/ssh-keys", Some(&admin), json!({"name": name}))
                .await
                .expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], "name");
        }
        app.post("/v1/settings/ssh-keys", Some(&admin), json!({"name": "x", "public_key": "y"}))
            .await
            .expect_error(400, "BAD_REQUEST");
        let s = app.get("/v1/settings", Some(&admin)).await.expect(200);
        assert_eq!(s.body["ssh_keys"], json!([]), "nothing half-written");
    }

    async fn only_platform_admins_manage_ssh_keys(engine) {
        let app = spawn_app(engine).await;
        let (admin, user) = admin_and_user(&app).await;
        app.post("/v1/settings/ssh-keys", Some(&admin), json!({"name": "k"})).await.expect(201);
        app.post("/v1/settings/ssh-keys", Some(&user), json!({"name": "mine"}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.post("/v1/settings/ssh-keys/k/default", Some(&user), json!({}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.delete("/v1/settings/ssh-keys/k", Some(&user)).await.expect_error(403, "FORBIDDEN");
        let token = app.api_token(&admin, "bot", None).await;
        app.post("/v1/settings/ssh-keys", Some(&token), json!({"name": "bot"}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.delete("/v1/settings/ssh-keys/k", None).await.expect_error(401, "UNAUTHORIZED");
        let s = app.get("/v1/settings", Some(&admin)).await.expect(200);
        assert_eq!(s.body["ssh_keys"].as_array().map(Vec::len), Some(1));
    }
}

/// Error bodies echo no key material either.
#[track_caller]
fn no_private_key_material(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains("BEGIN OPENSSH"), "{text}");
}
