//! `packaging/install.sh` on a Debian machine (issue 21): a root built by `mmdebstrap`
//! ([`shardlyn_tests::debroot`]), the installer run in it by `systemd-nspawn`, then the
//! root booted with systemd (`-b`) so the panel and the agent run as their units say.
//! Checked: the printed admin logs in, the configuration's secrets are generated (and
//! differ between two installs) with mode 0640 root:shardlyn, a re-run keeps secrets and
//! admin, the unit files pass `systemd-analyze verify`, and the services run with the
//! units' user, capability bounding set and no_new_privs. The test machine is not
//! changed: all of it happens in temporary roots.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shardlyn_tests::agent::claim_ports;
use shardlyn_tests::debroot::{self, Booted};

/// Where the tests' binaries and the packaging directory appear inside the root.
const BIN: &str = "/opt/shardlyn-bin";
const PACKAGING: &str = "/opt/shardlyn-packaging";

/// The binds of every container: the built binaries and `packaging/`, read-only.
fn binds() -> Vec<(PathBuf, &'static str)> {
    debroot::shardlyn_binds(
        "/opt/shardlyn-bin/shardlyn",
        "/opt/shardlyn-bin/shardlyn-agent",
        PACKAGING,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `install.sh panel` in the (not booted) `root`; returns its standard output.
fn install_panel(root: &Path, listen: &str) -> String {
    let script = format!("{PACKAGING}/install.sh");
    let out = debroot::run(
        root,
        &binds(),
        &[&script, "panel", "--bin-dir", BIN, "--listen", listen],
    );
    assert!(
        out.status.success(),
        "install.sh panel failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The `(email, password)` of the installer's "First admin: EMAIL / PASSWORD" line.
fn printed_admin(stdout: &str) -> (String, String) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("First admin: "))
        .unwrap_or_else(|| panic!("no first admin printed:\n{stdout}"));
    let (email, rest) = line.split_once(" / ").expect("EMAIL / PASSWORD");
    let password = rest.split_whitespace().next().expect("password");
    (email.to_string(), password.to_string())
}

/// The value of `key = "..."` before the first table of a TOML file.
fn toml_string(text: &str, key: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
            (k.trim() == key).then(|| v.to_string())
        })
        .unwrap_or_else(|| panic!("{key} missing from:\n{text}"))
}

/// The secrets of the root's configuration, checked for shape, mode and owner.
fn checked_secrets(root: &Path) -> (String, String) {
    let path = root.join("etc/shardlyn/config.toml");
    let config = std::fs::read_to_string(&path).expect("config.toml");
    let meta = std::fs::metadata(&path).expect("config.toml");
    assert_eq!(meta.mode() & 0o777, 0o640, "config.toml's mode");
    assert_eq!(meta.uid(), 0, "config.toml belongs to root");
    assert_eq!(
        meta.gid(),
        group_id(root, "shardlyn"),
        "config.toml's group is shardlyn"
    );
    let jwt = toml_string(&config, "jwt_secret");
    let master = toml_string(&config, "master_key");
    for secret in [&jwt, &master] {
        assert_eq!(secret.len(), 64, "{config}");
        assert!(secret.chars().all(|c| c.is_ascii_hexdigit()), "{config}");
    }
    assert_ne!(jwt, master);
    (jwt, master)
}

/// The gid of `name` in the root's `/etc/group`.
fn group_id(root: &Path, name: &str) -> u32 {
    let groups = std::fs::read_to_string(root.join("etc/group")).expect("/etc/group");
    groups
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| f[2].parse().expect("gid"))
        })
        .unwrap_or_else(|| panic!("no group {name} in the root"))
}

/// The value of a `/proc/<pid>/status` field.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in:\n{status}"))
        .trim()
}

/// Polls `GET /health` until it answers 200.
async fn wait_healthy(base: &str, booted: &mut Booted) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/health")).await
            && r.status() == 200
        {
            return;
        }
        assert!(
            booted.running(),
            "the container stopped:\n{}",
            booted.console_text()
        );
        assert!(
            Instant::now() < deadline,
            "the panel never answered {base}/health:\n{}\n{}",
            booted.console_text(),
            text(
                &booted
                    .exec(&[], &["journalctl", "-u", "shardlyn", "--no-pager"])
                    .stdout
            )
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn post(base: &str, path: &str, access: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = access {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Logs in; returns the access token.
async fn login(base: &str, email: &str, password: &str) -> String {
    let (status, body) = post(
        base,
        "/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(status, 200, "login as {email}: {body}");
    body["access_token"].as_str().expect("access token").into()
}

/// Polls `GET /v1/nodes` until the node named `name` is online.
async fn wait_online(base: &str, access: &str, name: &str, booted: &Booted) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list: Value = reqwest::Client::new()
            .get(format!("{base}/v1/nodes"))
            .bearer_auth(access)
            .send()
            .await
            .expect("nodes")
            .json()
            .await
            .expect("nodes JSON");
        let online = list.as_array().is_some_and(|nodes| {
            nodes
                .iter()
                .any(|n| n["name"] == name && n["status"] == "online")
        });
        if online {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {name} never came online: {list}\n{}",
            text(
                &booted
                    .exec(&[], &["journalctl", "-u", "shardlyn-agent", "--no-pager"])
                    .stdout
            )
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installer_sets_up_panel_and_agent_on_debian() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = claim_ports(2);
    let listen = format!("127.0.0.1:{first}");
    let base = format!("http://{listen}");
    let root = debroot::fresh_root(tmp.path());

    let started = Instant::now();
    let stdout = install_panel(&root, &listen);
    eprintln!("install.sh panel took {:.0?}", started.elapsed());
    let (email, password) = printed_admin(&stdout);
    let (jwt, master) = checked_secrets(&root);
    let credentials = root.join("var/lib/shardlyn/initial-admin.txt");
    let meta = std::fs::metadata(&credentials).expect("initial-admin.txt");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&credentials)
            .expect("initial-admin.txt")
            .contains(&password)
    );
    // An absolute link, to be read inside the root: not followed here.
    let wanted = std::fs::read_link(
        root.join("etc/systemd/system/multi-user.target.wants/shardlyn.service"),
    )
    .expect("the panel's unit is enabled");
    assert_eq!(wanted, Path::new("/etc/systemd/system/shardlyn.service"));

    // Both unit files as shipped, with the binaries they name in place.
    for unit in ["shardlyn.service", "shardlyn-agent.service"] {
        // Its findings on stdout: stderr also carries systemd-nspawn's own messages.
        let verify = format!("systemd-analyze verify {PACKAGING}/systemd/{unit} 2>&1");
        let out = debroot::run(&root, &binds(), &["sh", "-c", &verify]);
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "systemd-analyze verify {unit}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    let mut booted = Booted::boot(&root, &binds(), &tmp.path().join("console.log"));
    wait_healthy(&base, &mut booted).await;
    let access = login(&base, &email, &password).await;

    // The panel runs as its unit says: its own user, no capability, no new privileges.
    let status = booted.main_status("shardlyn.service");
    let uid = std::fs::read_to_string(root.join("etc/passwd"))
        .expect("passwd")
        .lines()
        .find_map(|l| l.strip_prefix("shardlyn:"))
        .map(|rest| rest.split(':').nth(1).expect("uid").to_string())
        .expect("the shardlyn user exists");
    assert!(
        status_field(&status, "Uid").starts_with(&format!("{uid}\t")),
        "{status}"
    );
    assert_eq!(
        status_field(&status, "CapBnd"),
        "0000000000000000",
        "{status}"
    );
    assert_eq!(status_field(&status, "NoNewPrivs"), "1", "{status}");

    // A re-run on the running system keeps the secrets and the admin, restarts the panel.
    let script = format!("{PACKAGING}/install.sh");
    let before = std::fs::read(root.join("etc/shardlyn/config.toml")).expect("config");
    let rerun = booted.exec(
        &[],
        &[&script, "panel", "--bin-dir", BIN, "--listen", &listen],
    );
    assert!(
        rerun.status.success(),
        "re-running install.sh panel:\n{}{}",
        text(&rerun.stdout),
        text(&rerun.stderr)
    );
    assert!(
        text(&rerun.stdout).contains("First admin: created earlier"),
        "{}",
        text(&rerun.stdout)
    );
    assert_eq!(
        std::fs::read(root.join("etc/shardlyn/config.toml")).expect("config"),
        before
    );
    assert_eq!(checked_secrets(&root), (jwt.clone(), master.clone()));
    wait_healthy(&base, &mut booted).await;
    let access_again = login(&base, &email, &password).await;
    let users: Value = reqwest::Client::new()
        .get(format!("{base}/v1/admin/users"))
        .bearer_auth(&access_again)
        .send()
        .await
        .expect("admin users")
        .json()
        .await
        .expect("users JSON");
    let listed = users["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a user list: {users}"));
    assert_eq!(listed.len(), 1, "one admin after two installs: {users}");

    // The agent, installed on the running machine, joins the panel and runs as its unit
    // says. Its SFTP server takes a claimed port instead of 2022 on the shared network.
    let (status, minted) = post(
        &base,
        "/v1/nodes/register-token",
        Some(&access),
        json!({"name": "debian"}),
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    let token = minted["token"].as_str().expect("registration token");
    let agent_dir = root.join("var/lib/shardlyn-agent");
    std::fs::create_dir_all(&agent_dir).expect("agent data dir");
    std::fs::write(
        agent_dir.join("settings.toml"),
        format!("sftp_bind = \"127.0.0.1\"\nsftp_port = {}\n", first + 1),
    )
    .expect("agent settings");
    let out = booted.exec(
        &[("SHARDLYN_AGENT_REGISTRATION_TOKEN", token)],
        &[&script, "agent", "--bin-dir", BIN, "--panel", &base],
    );
    assert!(
        out.status.success(),
        "install.sh agent:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/systemd/system/shardlyn-agent.service"))
            .expect("agent unit"),
        shardlyn_panel::bootstrap::AGENT_UNIT,
        "the agent's unit is the one the panel's install-agent.sh writes"
    );
    wait_online(&base, &access, "debian", &booted).await;
    let status = booted.main_status("shardlyn-agent.service");
    assert!(status_field(&status, "Uid").starts_with("0\t"), "{status}");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1", "{status}");
    // CAP_CHOWN 0, DAC_OVERRIDE 1, DAC_READ_SEARCH 2, FOWNER 3, FSETID 4, KILL 5,
    // SETGID 6, SETUID 7, NET_BIND_SERVICE 10.
    assert_eq!(
        status_field(&status, "CapBnd"),
        "00000000000004ff",
        "{status}"
    );
    booted.halt();

    // A second machine gets secrets and a password of its own.
    let other = tempfile::tempdir().expect("tempdir");
    let other_root = debroot::fresh_root(other.path());
    let other_stdout = install_panel(&other_root, &listen);
    let (_, other_password) = printed_admin(&other_stdout);
    let (other_jwt, other_master) = checked_secrets(&other_root);
    assert_ne!(other_password, password);
    assert_ne!(other_jwt, jwt);
    assert_ne!(other_master, master);
}
