//! Nodes join by themselves (issue 17): the agent binary the panel serves, the install
//! script run for real (`curl ... | sh`) against a temporary root with `--foreground`
//! (never touching this machine's `/usr`, `/etc` or systemd), the CA pin over https
//! (a wrong fingerprint refused), `cloud-init schema` on generated user data, and a
//! machine "booted" from user data by the tests' fake cloud (`cloudboot`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shardlyn_panel::bootstrap::cloudinit;
use shardlyn_tests::agent::agent_binary;
use shardlyn_tests::cloudboot::{self, Machine};
use shardlyn_tests::{TestApp, both_engines, spawn_app_with, start_with_config};

fn sha256_file(path: &Path) -> String {
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).expect("open");
    std::io::copy(&mut file, &mut hasher).expect("read");
    hex::encode(hasher.finalize())
}

/// A panel serving the agent binary the tests built.
async fn panel(engine: shardlyn_tests::Engine) -> TestApp {
    spawn_app_with(engine, |c| c.provision.agent_binary = Some(agent_binary())).await
}

/// The same over https with its self-signed CA (a non-loopback bind turns TLS on).
async fn tls_panel(engine: shardlyn_tests::Engine) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = shardlyn_tests::fresh_database(engine, dir.path()).await;
    let mut config = shardlyn_tests::test_config(dir.path(), url);
    config.listen = "0.0.0.0:0".parse().expect("addr");
    config.provision.agent_binary = Some(agent_binary());
    start_with_config(engine, dir, config).await
}

/// `POST /v1/nodes/register-token` named `name`.
async fn mint(app: &TestApp, access: &str, name: &str) -> Value {
    app.post(
        "/v1/nodes/register-token",
        Some(access),
        json!({"name": name}),
    )
    .await
    .expect(201)
    .body
}

/// Runs `command` with `sh -c` to completion (its own process group, output captured).
fn run_sh(command: &str, tmp: &Path) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .expect("sh runs")
}

/// Polls `GET /v1/nodes` until the node named `name` is online; returns it.
async fn wait_online(app: &TestApp, access: &str, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let list = app.get("/v1/nodes", Some(access)).await.expect(200);
        let node = list
            .body
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["name"] == name).cloned());
        if let Some(node) = node.filter(|n| n["status"] == "online") {
            return node;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {name} never came online: {}",
            list.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the script installs under `root`, checked file by file.
fn assert_installed(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let bin = root.join("usr/local/bin/shardlyn-agent");
    assert_eq!(sha256_file(&bin), sha256_file(&agent_binary()));
    let mode = std::fs::metadata(&bin)
        .expect("binary")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/shardlyn-agent.service"))
        .expect("unit file");
    assert!(unit.contains("\nRestart=always\n"), "{unit}");
    assert!(
        unit.contains(
            "\nExecStart=/usr/local/bin/shardlyn-agent run --data-dir /var/lib/shardlyn-agent\n"
        ),
        "{unit}"
    );
    assert!(unit.contains("\nWantedBy=multi-user.target\n"), "{unit}");
    // The one agent unit: packaging/install.sh installs the same file.
    assert_eq!(unit, shardlyn_panel::bootstrap::AGENT_UNIT);
    assert!(root.join("var/lib/shardlyn-agent/agent.toml").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .expect("the root's tmp")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("shardlyn-install.")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "the script leaves no work directory: {leftovers:?}"
    );
}

fn root_dir(app: &TestApp, name: &str) -> PathBuf {
    let root = app.dir.path().join(name);
    std::fs::create_dir_all(root.join("tmp")).expect("root");
    root
}

both_engines! {
    async fn the_panel_serves_its_agent_binary(engine) {
        let app = panel(engine).await;
        let binary = agent_binary();
        let want = sha256_file(&binary);
        let len = std::fs::metadata(&binary).expect("binary").len();
        let response = app
            .client
            .get(format!("{}/downloads/shardlyn-agent/linux-amd64", app.base))
            .send()
            .await
            .expect("download");
        assert_eq!(response.status(), 200);
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        assert_eq!(header("content-type").as_deref(), Some("application/octet-stream"));
        assert_eq!(header("content-length"), Some(len.to_string()));
        assert_eq!(header("x-checksum-sha256").as_deref(), Some(want.as_str()));
        assert_eq!(header("etag"), Some(format!("\"{want}\"")));
        // The bytes themselves: their length and SHA-256 equal the file's.
        let (mut hasher, mut got) = (Sha256::new(), 0u64);
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("chunk");
            got += chunk.len() as u64;
            hasher.update(&chunk);
        }
        assert_eq!(got, len);
        assert_eq!(hex::encode(hasher.finalize()), want);

        let arm = app.get("/downloads/shardlyn-agent/linux-arm64", None).await;
        let arm = arm.expect_error(404, "NOT_AVAILABLE");
        assert_eq!(arm.body["error"], "no ARM agent build exists yet");
        app.get("/downloads/shardlyn-agent/windows-amd64", None).await.expect_error(404, "NOT_FOUND");
        // Plain http: no CA to pin.
        app.get("/ca.pem", None).await.expect_error(404, "NOT_FOUND");

        let script = app.get("/install-agent.sh", None).await.expect(200);
        assert!(script.header("content-type").is_some_and(|t| t.starts_with("text/x-shellscript")));
        assert!(script.text.starts_with("#!/bin/sh\n"));
        assert!(script.text.contains(&format!("PANEL='{}'", app.base)));
        assert!(script.text.contains(&format!("AGENT_SHA256='{want}'")));

        // Bad input: no token, a token of another kind, an unknown option.
        let tmp = root_dir(&app, "bad");
        let get = format!("curl -fsSL {}/install-agent.sh | sh -s --", app.base);
        for (args, says) in [
            ("", "missing --token"),
            (" --token shardlyn_api_x", "registration token"),
            (" --token shardlyn_reg_x --bogus", "unknown option '--bogus'"),
            (" --token", "--token needs a value"),
        ] {
            let out = run_sh(&format!("{get}{args} --root {}", tmp.display()), &tmp);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args}: {stderr}");
            assert!(stderr.contains(says), "{args}: {stderr}");
        }
        assert!(!tmp.join("usr").exists(), "nothing installed on bad input");
    }

    async fn a_missing_agent_binary_is_a_503_and_the_script_says_so(engine) {
        let app = spawn_app_with(engine, |c| {
            c.provision.agent_binary = Some(PathBuf::from("/nonexistent/shardlyn-agent"));
        })
        .await;
        let r = app.get("/downloads/shardlyn-agent/linux-amd64", None).await;
        r.expect_error(503, "AGENT_BINARY_MISSING");
        let tmp = root_dir(&app, "root");
        let out = run_sh(
            &format!(
                "curl -fsSL {}/install-agent.sh | sh -s -- --token shardlyn_reg_x --root {}",
                app.base,
                tmp.display()
            ),
            &tmp,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("no agent binary to serve"), "{stderr}");
    }

    async fn the_install_script_installs_under_a_root_and_the_node_comes_online(engine) {
        let app = panel(engine).await;
        let admin = app.bootstrap_admin().await;
        let minted = mint(&app, &admin.access, "scripted").await;
        let token = minted["token"].as_str().expect("token");
        assert_eq!(
            minted["install_command"],
            format!("curl -fsSL {}/install-agent.sh | sh -s -- --token {token}", app.base)
        );
        let root = root_dir(&app, "root");
        let mut machine = Machine(cloudboot::boot(&runcmd(minted["install_command"].as_str().expect("command")), &root));
        let node = wait_online(&app, &admin.access, "scripted").await;
        assert_installed(&root);
        let agent_toml = std::fs::read_to_string(root.join("var/lib/shardlyn-agent/agent.toml")).expect("agent.toml");
        assert!(agent_toml.contains(node["id"].as_str().expect("id")), "{agent_toml}");
        cloudboot::halt(&mut machine.0);

        // A re-run keeps the registration (the used token is not needed again).
        let out = run_sh(
            &format!("curl -fsSL {}/install-agent.sh | sh -s -- --token {token} --root {}", app.base, root.display()),
            &root.join("tmp"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("already registered"), "{stderr}");
        assert_installed(&root);
        let nodes = app.get("/v1/nodes", Some(&admin.access)).await.expect(200);
        assert_eq!(nodes.body.as_array().map(Vec::len), Some(1), "no second node");
    }

    async fn a_machine_booted_from_user_data_joins(engine) {
        let app = panel(engine).await;
        let admin = app.bootstrap_admin().await;
        let minted = mint(&app, &admin.access, "cloudy").await;
        let token = minted["token"].as_str().expect("token");
        let user_data = cloudinit::user_data(&app.base, token, None, "cloudy");
        let root = root_dir(&app, "vm");
        let _machine = Machine::boot(&user_data, &root);
        wait_online(&app, &admin.access, "cloudy").await;
        assert_installed(&root);
    }

    async fn over_https_the_ca_is_pinned_and_a_wrong_fingerprint_refused(engine) {
        let app = tls_panel(engine).await;
        assert!(app.base.starts_with("https://"));
        let admin = app.bootstrap_admin().await;
        let ca = app.get("/v1/ca", None).await.expect(200);
        let fingerprint = ca.body["sha256"].as_str().expect("sha256").to_string();
        let pem = app.get("/ca.pem", None).await.expect(200);
        assert_eq!(pem.text, ca.body["pem"].as_str().expect("pem"));

        // A wrong fingerprint: the one-liner stops before fetching the script...
        let wrong = "00:".repeat(31) + "00";
        let minted = mint(&app, &admin.access, "pinned").await;
        let token = minted["token"].as_str().expect("token");
        let forged = cloudinit::install_command(&app.base, token, Some(&wrong));
        let root = root_dir(&app, "wrong");
        let out = run_sh(&format!("{forged} --root {}", root.display()), &root.join("tmp"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("does not match the fingerprint"), "{stderr}");
        // ...and the script itself, fetched without verification, refuses too.
        let out = run_sh(
            &format!(
                "curl -fsSLk {}/install-agent.sh | sh -s -- --token {token} --ca-fingerprint {wrong} --root {}",
                app.base,
                root.display()
            ),
            &root.join("tmp"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("refusing to install"), "{stderr}");
        assert!(!root.join("usr").exists(), "nothing installed after a wrong fingerprint");

        // The command the panel hands out pins its CA and the node joins over https.
        let command = minted["install_command"].as_str().expect("install_command");
        assert!(command.contains(&format!("--ca-fingerprint {fingerprint}")), "{command}");
        let user_data = runcmd(command);
        let root = root_dir(&app, "vm");
        let _machine = Machine::boot(&user_data, &root);
        wait_online(&app, &admin.access, "pinned").await;
        assert_installed(&root);
        let agent_toml = std::fs::read_to_string(root.join("var/lib/shardlyn-agent/agent.toml")).expect("agent.toml");
        assert!(agent_toml.contains("BEGIN CERTIFICATE"), "the agent keeps the pinned CA");
    }
}

/// A minimal cloud-config that runs `command`, for [`cloudboot::boot`].
fn runcmd(command: &str) -> String {
    format!(
        "#cloud-config\nruncmd:\n  - {}\n",
        serde_json::to_string(command).expect("json")
    )
}

/// Every generated document passes `cloud-init schema` (Debian's `cloud-init`; the test
/// fails without it unless `SHARDLYN_TEST_SKIP_CLOUD_INIT=1`).
#[test]
fn generated_user_data_passes_cloud_init_schema() {
    let available = Command::new("cloud-init")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var("SHARDLYN_TEST_SKIP_CLOUD_INIT").is_ok_and(|v| v == "1"),
            "cloud-init is missing: run scripts/dev-services (or set SHARDLYN_TEST_SKIP_CLOUD_INIT=1)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fingerprint = "AB:".repeat(31) + "CD";
    let docs = [
        cloudinit::user_data(
            "http://10.0.0.1:8080",
            "shardlyn_reg_00ff",
            None,
            "eu-node-1",
        ),
        cloudinit::user_data(
            "https://panel.example.com:8443/",
            "shardlyn_reg_00ff",
            Some(&fingerprint),
            "Game Server #2 \"quoted\" 'x'",
        ),
        cloudinit::user_data("https://panel.example.com", "shardlyn_reg_00ff", None, "--"),
    ];
    for (i, doc) in docs.iter().enumerate() {
        let file = dir.path().join(format!("user-data-{i}.yaml"));
        std::fs::write(&file, doc).expect("write");
        let out = Command::new("cloud-init")
            .args(["schema", "--config-file"])
            .arg(&file)
            .output()
            .expect("cloud-init runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.contains("Valid cloud-config"),
            "{doc}\n{said}"
        );
        assert_eq!(
            cloudboot::install_command(doc)
                .matches("install-agent.sh")
                .count(),
            1
        );
    }
    // The checker does refuse a broken document.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "#cloud-config\nruncmd: 5\n").expect("write");
    let out = Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&bad)
        .output()
        .expect("cloud-init runs");
    assert!(
        !out.status.success(),
        "cloud-init schema accepted a broken document"
    );
    // Only the single-use token is secret in it.
    assert!(docs[1].contains("shardlyn_reg_00ff") && !docs[1].contains("agent_token"));
}
