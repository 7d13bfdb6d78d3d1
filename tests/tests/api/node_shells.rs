//! Shells on nodes through the panel: `GET /v1/nodes/{id}/terminal` (a PTY the agent
//! runs) and `GET /v1/nodes/{id}/ssh` (the agent logs in to a real OpenSSH server,
//! Debian's `openssh-server` started by the test on loopback as the node's sshd, with a
//! one-minute certificate the panel minted). Recordings are asciicast v2, checked with
//! Debian's `asciinema cat`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_tests::agent::{LocalAgent, register_node, wait_node};
use shardlyn_tests::shell::{Ended, Shell, SshNode};
use shardlyn_tests::sshd::exec;
use shardlyn_tests::{TestApp, both_engines, spawn_app};

const WAIT: Duration = Duration::from_secs(20);

/// `url` with `query` appended (`?` or `&`).
fn with(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn ticket(app: &TestApp, token: &str, node: &str, kind: &str) -> String {
    let t = app
        .post(
            &format!("/v1/nodes/{node}/{kind}/tickets"),
            Some(token),
            json!({}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(t["expires_in"], 30, "{t}");
    format!("{}{}", app.base, t["url"].as_str().expect("url"))
}

async fn recordings(app: &TestApp, token: &str, node: &str) -> Value {
    app.get(&format!("/v1/nodes/{node}/recordings"), Some(token))
        .await
        .expect(200)
        .body
}

/// The recording as downloaded, and what `asciinema cat` prints of it.
async fn played(app: &TestApp, token: &str, recording: &Value, dir: &Path) -> (String, String) {
    let r = app
        .client
        .get(format!(
            "{}{}",
            app.base,
            recording["cast_url"].as_str().expect("cast_url")
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("cast");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().expect("type"),
        "application/x-asciicast"
    );
    let cast = r.text().await.expect("text");
    let file = dir.join(format!("{}.cast", recording["id"].as_str().expect("id")));
    std::fs::write(&file, &cast).expect("write cast");
    // `asciinema cat` reads keys from /dev/tty: `script` gives it a terminal.
    let (ok, out) = exec(
        Command::new("script")
            .args(["-q", "-e", "-c"])
            .arg(format!("asciinema cat {}", file.display()))
            .arg("/dev/null")
            .stdin(std::process::Stdio::null()),
    );
    assert!(ok, "asciinema cat: {out}");
    (cast, out)
}

/// Waits until the node's newest recording has ended.
async fn ended_recording(app: &TestApp, token: &str, node: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = recordings(app, token, node).await;
        if list["data"][0]["state"] == "ended" {
            return list["data"][0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ended: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_engines! {
    async fn a_terminal_runs_resizes_ends_with_its_status_and_plays_back(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let (config, node_dir) = register_node(&app, a).await;
        let node = config.node_id.clone();
        let agent = LocalAgent::start(config, node_dir.path());
        wait_node(&app, a, &node, "online").await;
        let dir = tempfile::tempdir().expect("tmp");

        // Refused before any upgrade.
        let bare = format!("{}/v1/nodes/{node}/terminal", app.base);
        assert_eq!(Shell::connect(&bare, None).await.err().expect("refused").status, 401);
        let url = ticket(&app, a, &node, "terminal").await;
        assert_eq!(Shell::connect(&with(&url, "cols=0"), None).await.err().expect("refused").status, 400);
        // The ticket was spent by the refused attempt.
        assert_eq!(Shell::connect(&url, None).await.err().expect("refused").status, 401);
        let url = ticket(&app, a, &node, "terminal").await;
        let other = ticket(&app, a, &node, "ssh").await;
        let ssh_ticket = other.split("ticket=").nth(1).expect("ticket");
        assert_eq!(
            Shell::connect(&with(&bare, &format!("ticket={ssh_ticket}")), None).await.err().expect("refused").status,
            401,
            "an ssh ticket does not open a terminal"
        );
        // Another organization's user sees no such node.
        let eve = app.register("eve@example.com").await;
        assert_eq!(Shell::connect(&bare, Some(&eve.access)).await.err().expect("refused").status, 404);
        app.post(&format!("/v1/nodes/{node}/terminal/tickets"), Some(&eve.access), json!({}))
            .await
            .expect(404);
        app.get(&format!("/v1/nodes/{node}/recordings"), Some(&eve.access)).await.expect(404);

        // A shell: resize, run, exit with a status.
        let mut shell = Shell::connect(&with(&url, "cols=80&rows=24"), None).await.expect("open");
        shell.resize(101, 33).await;
        shell.input(b"stty size; echo marker-$((6*7))\n").await;
        shell.wait_output("33 101", WAIT).await.expect("the resize reached the PTY");
        shell.wait_output("marker-42", WAIT).await.expect("output");
        shell.send_text("not json").await;
        shell.input(b"exit 7\n").await;
        assert_eq!(shell.wait_end(WAIT).await, Ended::Exit(7));
        assert!(shell.control_of("notice").is_some(), "a bad text message is answered");
        assert!(shell.control_of("session").is_some());
        shell.close().await;

        let recording = ended_recording(&app, a, &node).await;
        assert_eq!(recording["kind"], "terminal");
        assert_eq!(recording["exit_status"], 7);
        assert_eq!(recording["end_reason"], "exit");
        assert_eq!(recording["user_email"], admin.email.as_str());
        let one = app
            .get(&format!("/v1/nodes/{node}/recordings/{}", recording["id"].as_str().expect("id")), Some(a))
            .await
            .expect(200)
            .body;
        assert_eq!(one["id"], recording["id"]);
        app.get(&format!("/v1/nodes/{node}/recordings/nope"), Some(a)).await.expect(404);
        let (cast, shown) = played(&app, a, &recording, dir.path()).await;
        let header: Value = serde_json::from_str(cast.lines().next().expect("header")).expect("json");
        assert_eq!(header["version"], 2);
        assert_eq!((header["width"].as_i64(), header["height"].as_i64()), (Some(80), Some(24)));
        assert!(cast.lines().any(|l| l.contains("\"r\"") && l.contains("101x33")), "{cast}");
        assert!(shown.contains("marker-42"), "asciinema cat shows the output: {shown}");

        // The audit log has the session's opening and closing.
        let audit = app.get("/v1/admin/audit-logs?per_page=100", Some(a)).await.expect(200).body;
        let actions: Vec<&str> = audit["data"].as_array().expect("data").iter().filter_map(|e| e["action"].as_str()).collect();
        assert!(actions.contains(&"node.terminal.open") && actions.contains(&"node.terminal.close"), "{actions:?}");

        // A command instead of a shell; a node whose agent is gone answers 409.
        let url = ticket(&app, a, &node, "terminal").await;
        let mut shell = Shell::connect(&with(&url, &format!("command={}", encode("printf done; exit 3"))), None).await.expect("open");
        assert_eq!(shell.wait_end(WAIT).await, Ended::Exit(3));
        assert!(String::from_utf8_lossy(&shell.output).contains("done"));
        agent.stop().await;
        wait_node(&app, a, &node, "offline").await;
        let url = ticket(&app, a, &node, "terminal").await;
        assert_eq!(Shell::connect(&url, None).await.err().expect("refused").status, 409);
    }
}

both_engines! {
    async fn ssh_through_the_bridge_logs_in_with_a_one_minute_certificate(engine) {
        let n = SshNode::start(engine).await;
        let (app, a, node) = (&n.app, n.token.as_str(), n.node.as_str());

        // A command through a real sshd: its output and exit status come back.
        let url = ticket(app, a, node, "ssh").await;
        let mut shell = Shell::connect(&with(&url, &format!("login=root&command={}", encode("echo via-$((40+2)); exit 5"))), None)
            .await
            .expect("open");
        let end = shell.wait_end(WAIT).await;
        let log = std::fs::read_to_string(n.sshd.dir.join("sshd.log")).unwrap_or_default();
        assert_eq!(end, Ended::Exit(5), "{:?} {log}", shell.control);
        assert!(String::from_utf8_lossy(&shell.output).contains("via-42"));
        let ready = shell.control_of("ready").expect("ready").clone();
        assert_eq!(ready["user"], "root");
        let (ok, fingerprint) = exec(Command::new("ssh-keygen").arg("-l").arg("-f").arg(n.dir.path().join("host.pub")));
        assert!(ok);
        assert!(fingerprint.contains(ready["host_key"].as_str().expect("host key")), "{ready} vs {fingerprint}");

        // The certificate it used: one minute, this node only, from loopback only.
        let recording = ended_recording(app, a, node).await;
        assert_eq!(recording["exit_status"], 5);
        let cert_id = recording["certificate_id"].as_str().expect("certificate id");
        let cert = app.get(&format!("/v1/ssh/certificates/{cert_id}"), Some(a)).await.expect(200).body;
        assert_eq!(cert["principals"], json!([format!("node:{node}:root")]));
        assert_eq!(cert["source_address"], "127.0.0.1/32,::1/128");
        let key_id = cert["key_id"].as_str().expect("key id");
        assert!(key_id.contains(&format!("session={}", recording["id"].as_str().expect("id"))), "{key_id}");
        assert!(log.contains(key_id), "sshd logged the key id: {log}");

        // An interactive shell: resize, then the revocation of its certificate ends it.
        let url = ticket(app, a, node, "ssh").await;
        let mut shell = Shell::connect(&with(&url, "login=root&cols=90&rows=20"), None).await.expect("open");
        shell.input(b"stty size\n").await;
        shell.wait_output("20 90", WAIT).await.expect("size");
        shell.resize(132, 43).await;
        shell.input(b"stty size\n").await;
        shell.wait_output("43 132", WAIT).await.expect("resized");
        let live = recordings(app, a, node).await["data"][0].clone();
        assert_eq!(live["state"], "live");
        let cert_id = live["certificate_id"].as_str().expect("certificate");
        app.post(&format!("/v1/ssh/certificates/{cert_id}/revoke"), Some(a), json!({"reason": "test"}))
            .await
            .expect(200);
        let started = std::time::Instant::now();
        match shell.wait_end(WAIT).await {
            Ended::Error(message) => assert!(message.contains("ended"), "{message}"),
            other => panic!("the session went on after its certificate was revoked: {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let recording = ended_recording(app, a, node).await;
        assert_eq!(recording["end_reason"], "revoked");
        let (_, shown) = played(app, a, &recording, n.dir.path()).await;
        assert!(shown.contains("43 132"), "{shown}");

        // A login the node does not list is refused by sshd: the error comes back.
        let url = ticket(app, a, node, "ssh").await;
        let mut shell = Shell::connect(&with(&url, "login=nobody"), None).await.expect("open");
        assert!(matches!(shell.wait_end(WAIT).await, Ended::Error(_)), "{:?}", shell.control);
        let url = ticket(app, a, node, "ssh").await;
        assert_eq!(Shell::connect(&with(&url, "login=Root!"), None).await.err().expect("refused").status, 400);
    }
}

both_engines! {
    async fn suspending_a_user_ends_their_live_terminal(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let (config, node_dir) = register_node(&app, a).await;
        let node = config.node_id.clone();
        let _agent = LocalAgent::start(config, node_dir.path());
        wait_node(&app, a, &node, "online").await;
        let org = app.get(&format!("/v1/nodes/{node}"), Some(a)).await.expect(200).body
            ["organization_id"]
            .as_str()
            .expect("org")
            .to_owned();
        let ops = app.register("ops@example.com").await;
        app.add_member(&org, &ops.user_id, "admin").await;

        let url = ticket(&app, &ops.access, &node, "terminal").await;
        let mut shell = Shell::connect(&url, None).await.expect("open");
        shell.input(b"echo still-$((2*3))\n").await;
        shell.wait_output("still-6", WAIT).await.expect("runs");
        app.post(&format!("/v1/admin/users/{}/suspend", ops.user_id), Some(a), json!({}))
            .await
            .expect(200);
        match shell.wait_end(WAIT).await {
            Ended::Error(message) => assert!(message.contains("ended"), "{message}"),
            other => panic!("the session outlived the suspension: {other:?}"),
        }
        let recording = ended_recording(&app, a, &node).await;
        assert_eq!(recording["end_reason"], "revoked");
        assert_eq!(recording["user_email"], "ops@example.com");
    }
}
