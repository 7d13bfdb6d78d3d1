//! Browser tests of the instance pages against a real panel, a real agent and Docker:
//! the create form (the browser's rule checks, then the server's errors next to their
//! fields), the file browser (tus upload, resume after a reload, the editor), backups
//! and the settings' SFTP details, at desktop and phone width.

use std::time::Duration;

use anyhow::{Context, ensure};
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::{Engine, PASSWORD, TestApp, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};

const WAIT: Duration = Duration::from_secs(90);
const EMAIL: &str = "admin@example.com";

/// Signs in through the login form.
async fn sign_in(c: &Client, base: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", EMAIL).await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    wait_path(c, "/").await?;
    Ok(())
}

/// Waits (20 s at most) until the new-instance form sent the browser to the created
/// instance's page; its id.
async fn created_instance_id(c: &Client) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let url = c.current_url().await?;
        if let Some(id) = url.path().strip_prefix("/instances/")
            && id != "new"
        {
            return Ok(id.to_owned());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "never left the form: {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text next to the control `css` (its field error), waiting for it.
async fn field_error(c: &Client, css: &str, needle: &str) -> anyhow::Result<String> {
    wait_text(
        c,
        &format!("{css} + .field-error"),
        needle,
        Duration::from_secs(20),
    )
    .await
    .with_context(|| format!("the error next to {css}"))
}

/// Controls without a label, and how far the page scrolls sideways.
async fn labels_and_width(c: &Client) -> anyhow::Result<(i64, i64)> {
    let unlabeled = c
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).length;",
            vec![],
        )
        .await?;
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await?;
    Ok((
        unlabeled.as_i64().unwrap_or(-1),
        overflow.as_i64().unwrap_or(0),
    ))
}

/// A file of `len` pseudo-random bytes in `dir`; its path and SHA-256.
fn random_file(dir: &std::path::Path, name: &str, len: usize) -> (std::path::PathBuf, String) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write the test file");
    (path, hex::encode(Sha256::digest(&bytes)))
}

/// The SHA-256 of an instance file, downloaded through the API.
async fn sha_of(app: &TestApp, token: &str, id: &str, path: &str) -> String {
    let r = app
        .client
        .get(format!(
            "{}/v1/instances/{id}/files/download?path={path}",
            app.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200, "downloading {path}");
    hex::encode(Sha256::digest(r.bytes().await.expect("body")))
}

/// Starts a tus upload of the first `sent` bytes of `file` through the API, as a
/// browser would have before being closed; the upload URL.
async fn half_upload(
    app: &TestApp,
    token: &str,
    id: &str,
    file: &std::path::Path,
    sent: usize,
) -> String {
    use base64::Engine as _;
    let bytes = std::fs::read(file).expect("read");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let name = file.file_name().and_then(|n| n.to_str()).expect("name");
    let r = app
        .client
        .post(format!("{}/v1/instances/{id}/files/tus", app.base))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", bytes.len().to_string())
        .header(
            "upload-metadata",
            format!("filename {},path {}", b64(name), b64("/")),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201, "tus creation");
    let url = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned();
    let path = url
        .strip_prefix(&app.base)
        .map_or(url.clone(), str::to_owned);
    let r = app
        .client
        .request(Method::PATCH, format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(bytes[..sent].to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 204, "first half");
    path
}

/// Waits until an API read satisfies `ok`.
async fn wait_api(
    app: &TestApp,
    token: &str,
    path: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body = app.get(path, Some(token)).await.body;
        if ok(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened: {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_upload_edit_and_back_up_in_the_browser() {
    let app = spawn_app(Engine::Sqlite).await;
    let session = app.bootstrap_admin().await;
    let (config, dir) = register_node(&app, &session.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &session.access, &config.node_id, "online").await;
    let workload = busybox_workload(&app, &session.access).await;
    // Another instance holds a port, so the server refuses it for the new one.
    let taken = free_port();
    app.post(
        "/v1/instances",
        Some(&session.access),
        json!({"name": "holder", "workload_id": workload, "node_id": config.node_id,
               "ports": [taken], "limits": {"memory_mb": 128, "disk_mb": 256}}),
    )
    .await
    .expect(201);
    let files = tempfile::tempdir().expect("tempdir");
    let (upload_path, upload_sha) = random_file(files.path(), "world.bin", 5 * 1024 * 1024 + 123);
    let (resume_path, resume_sha) = random_file(files.path(), "resume.bin", 3 * 1024 * 1024 + 7);
    let base = app.base.clone();
    let chrome = Chrome::start(false).await;
    let token = session.access.clone();
    let node_id = config.node_id.clone();
    let app_ref = &app;
    chrome
        .run("instance_pages_create_upload_edit_backup", |c| async move {
            sign_in(&c, &base).await?;

            // The create form: the workload's variables with their rules.
            c.goto(&format!(
                "{base}/instances/new?workload={workload}&node={node_id}"
            ))
            .await?;
            find(&c, "#var-GREETING").await?;
            let (unlabeled, _) = labels_and_width(&c).await?;
            ensure!(
                unlabeled == 0,
                "controls without a label on the create form: {unlabeled}"
            );
            fill(&c, "#ni-name", "from the form").await?;
            fill(&c, "#ni-memory", "128").await?;
            fill(&c, "#ni-disk", "512").await?;
            // The browser checks the egg's rule (max:64) before sending anything.
            fill(&c, "#var-GREETING", &"x".repeat(70)).await?;
            click(&c, "#new-submit").await?;
            field_error(
                &c,
                "#var-GREETING",
                "must not be greater than 64 characters",
            )
            .await?;
            // The server checks again: with the browser's rule removed, its 422 is shown
            // next to the same field.
            c.execute(
                "document.getElementById('var-GREETING').dataset.rules = '';",
                vec![],
            )
            .await?;
            click(&c, "#new-submit").await?;
            let shown = field_error(&c, "#var-GREETING", "VALIDATION_ERROR").await?;
            ensure!(shown.contains("64"), "the server's message: {shown}");
            fill(&c, "#var-GREETING", "hello from the form").await?;
            // A port another instance holds: only the server knows; shown at the port.
            fill(&c, "#ni-port", &taken.to_string()).await?;
            click(&c, "#new-submit").await?;
            field_error(&c, "#ni-port", "PORT_IN_USE").await?;
            ensure!(
                c.find(Locator::Css("#var-GREETING + .field-error"))
                    .await
                    .is_err(),
                "the earlier error is cleared"
            );
            fill(&c, "#ni-port", &free_port().to_string()).await?;
            // Left stopped after the install, so the files and backups below see it idle.
            click(&c, "#ni-start").await?;
            click(&c, "#new-submit").await?;
            let id = created_instance_id(&c).await?;
            let created = app_ref
                .get(&format!("/v1/instances/{id}"), Some(&token))
                .await
                .expect(200)
                .body;
            ensure!(
                created["variables"]["GREETING"] == "hello from the form",
                "{created}"
            );
            ensure!(created["limits"]["memory_mb"] == 128, "{created}");
            ensure!(created["node_id"] == node_id.as_str(), "{created}");
            wait_instance(app_ref, &token, &id, "offline", WAIT).await;
            c.refresh().await?;

            // Files: the listing shows what the install wrote.
            click(&c, "#tab-files").await?;
            wait_text(&c, "#files tbody", "INSTALLED", Duration::from_secs(20)).await?;
            // Upload through tus (5 MiB + a bit: a creation and a PATCH).
            find(&c, "#file-pick")
                .await?
                .send_keys(&upload_path.display().to_string())
                .await?;
            wait_text(&c, "#uploads", "uploaded", WAIT).await?;
            wait_text(&c, "#files tbody", "world.bin", Duration::from_secs(20)).await?;
            ensure!(
                sha_of(app_ref, &token, &id, "/world.bin").await == upload_sha,
                "the uploaded bytes arrive intact"
            );

            // Resume after a reload: half of a file was sent before the page went away
            // (the upload URL is in localStorage under name, size and mtime); choosing the
            // same file again sends only the rest.
            let half = 1024 * 1024;
            let url = half_upload(app_ref, &token, &id, &resume_path, half).await;
            let mtime = std::fs::metadata(&resume_path)?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis();
            let size = std::fs::metadata(&resume_path)?.len();
            let key =
                format!("shardlyn.tus:/v1/instances/{id}/files/tus|/|resume.bin|{size}|{mtime}");
            let saved =
                json!({"url": url, "name": "resume.bin", "dir": "/", "size": size, "offset": half});
            c.execute(
                "localStorage.setItem(arguments[0], arguments[1]);",
                vec![json!(key), json!(saved.to_string())],
            )
            .await?;
            c.refresh().await?;
            wait_text(
                &c,
                "#pending-uploads",
                "resume.bin",
                Duration::from_secs(20),
            )
            .await?;
            find(&c, "#file-pick")
                .await?
                .send_keys(&resume_path.display().to_string())
                .await?;
            wait_text(&c, "#uploads", "(resumed)", WAIT).await?;
            wait_text(&c, "#uploads", "uploaded", WAIT).await?;
            wait_text(&c, "#files tbody", "resume.bin", Duration::from_secs(20)).await?;
            ensure!(
                sha_of(app_ref, &token, &id, "/resume.bin").await == resume_sha,
                "the resumed upload is intact"
            );
            let left = c
                .execute(
                    "return localStorage.getItem(arguments[0]);",
                    vec![json!(key)],
                )
                .await?;
            ensure!(left.is_null(), "a finished upload is forgotten: {left}");

            // The editor: open the installed file, change it, save, read it back.
            c.find(Locator::Css("#files tbody button.entry")).await?;
            let buttons = c
                .find_all(Locator::Css("#files tbody button.entry"))
                .await?;
            let mut opened = false;
            for b in buttons {
                if b.text().await? == "INSTALLED" {
                    b.click().await?;
                    opened = true;
                    break;
                }
            }
            ensure!(opened, "INSTALLED opens in the editor");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let v = find(&c, "#editor-text")
                    .await?
                    .prop("value")
                    .await?
                    .unwrap_or_default();
                if v.contains("installed by the busybox test egg") {
                    break;
                }
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the editor shows {v:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            fill(
                &c,
                "#editor-text",
                "motd=edited <in> the browser\nmax-players=7\n",
            )
            .await?;
            click(&c, "#editor-save").await?;
            wait_text(&c, "#editor-status", "Saved", Duration::from_secs(20)).await?;
            let r = app_ref
                .client
                .get(format!(
                    "{}/v1/instances/{id}/files/content?path=/INSTALLED",
                    app_ref.base
                ))
                .bearer_auth(&token)
                .send()
                .await?;
            let text = r.text().await?;
            ensure!(
                text == "motd=edited <in> the browser\nmax-players=7\n",
                "saved content: {text:?}"
            );

            // Backups: create one, watch it complete.
            click(&c, "#tab-backups").await?;
            fill(&c, "#backup-name", "from the browser").await?;
            click(&c, "#backup-create").await?;
            wait_text(
                &c,
                "#backups tbody",
                "from the browser",
                Duration::from_secs(20),
            )
            .await?;
            // The tab no longer asks the API again: the end arrives on the event stream.
            wait_text(&c, "#backups tbody", "completed", WAIT).await?;
            let list = wait_api(
                app_ref,
                &token,
                &format!("/v1/instances/{id}/backups"),
                "a completed backup",
                |b| b["data"][0]["status"] == "completed",
            )
            .await;
            ensure!(list["data"][0]["name"] == "from the browser", "{list}");
            ensure!(
                list["data"][0]["size_bytes"].as_u64().unwrap_or(0) > 0,
                "{list}"
            );
            // Restore it: the node's reports reach the tab through the event stream
            // (the console is not read for it), ending with the time it took.
            click(&c, r#"button[aria-label="Restore from the browser"]"#).await?;
            click(&c, "#ask-ok").await?;
            wait_text(
                &c,
                "#backups-status",
                "Restore of from the browser completed in",
                WAIT,
            )
            .await?;

            // Schedules: create one with a console command, disable it.
            click(&c, "#tab-schedules").await?;
            fill(&c, "#schedule-name", "nightly <say>").await?;
            fill(&c, "#schedule-cron", "not cron").await?;
            fill(&c, "#schedule-payload", "say hello").await?;
            click(&c, "#schedule-create").await?;
            field_error(&c, "#schedule-cron", "five fields").await?;
            fill(&c, "#schedule-cron", "0 4 * * *").await?;
            click(&c, "#schedule-create").await?;
            wait_text(
                &c,
                "#schedules tbody",
                "nightly <say>",
                Duration::from_secs(20),
            )
            .await?;
            let listed = app_ref
                .get(&format!("/v1/instances/{id}/schedules"), Some(&token))
                .await
                .expect(200)
                .body;
            ensure!(listed["data"][0]["cron"] == "0 4 * * *", "{listed}");
            ensure!(
                listed["data"][0]["tasks"][0]["payload"] == "say hello",
                "{listed}"
            );
            // Run it now: its end reaches the tab from the event stream.
            click(&c, "#schedules tbody button[aria-label^='Run']").await?;
            let deadline = tokio::time::Instant::now() + WAIT;
            let ended = loop {
                let shown = wait_text(&c, "#schedules-status", "nightly <say>", WAIT).await?;
                if ["completed its run", "failed", "was skipped"]
                    .iter()
                    .any(|end| shown.contains(end))
                {
                    break shown;
                }
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the run never ended: {shown:?}"
                );
                tokio::time::sleep(Duration::from_millis(150)).await;
            };
            let runs = app_ref
                .get(
                    &format!(
                        "/v1/instances/{id}/schedules/{}/runs",
                        listed["data"][0]["id"].as_str().unwrap_or_default()
                    ),
                    Some(&token),
                )
                .await
                .expect(200)
                .body;
            let status = runs["data"][0]["status"].as_str().unwrap_or_default();
            ensure!(
                ended.contains(match status {
                    "completed" => "completed its run",
                    "skipped" => "was skipped",
                    _ => "failed",
                }),
                "the tab says {ended:?}, the run history {runs}"
            );
            click(&c, "#schedules tbody button[aria-label^='Disable']").await?;
            wait_text(
                &c,
                "#schedules tbody button[aria-label^='Enable']",
                "Enable",
                Duration::from_secs(20),
            )
            .await?;
            let listed = app_ref
                .get(&format!("/v1/instances/{id}/schedules"), Some(&token))
                .await
                .expect(200)
                .body;
            ensure!(listed["data"][0]["enabled"] == false, "{listed}");

            // Settings: SFTP details.
            click(&c, "#tab-settings").await?;
            let user = wait_text(&c, "#sftp-username", "@", Duration::from_secs(10)).await?;
            // `<email>.<id prefix>`: 8 characters, more when another server of the node
            // shares them (this test's servers were created within the same minute).
            let suffix = user.strip_prefix(&format!("{EMAIL}.")).unwrap_or("");
            ensure!(
                suffix.len() >= 8 && id.starts_with(suffix),
                "SFTP username {user}"
            );
            wait_text(&c, "#sftp-port", "2022", Duration::from_secs(5)).await?;

            // Labels everywhere, and nothing scrolls sideways at phone width.
            for tab in [
                "#tab-console",
                "#tab-files",
                "#tab-backups",
                "#tab-schedules",
                "#tab-settings",
            ] {
                click(&c, tab).await?;
                let (unlabeled, _) = labels_and_width(&c).await?;
                ensure!(
                    unlabeled == 0,
                    "controls without a label under {tab}: {unlabeled}"
                );
            }
            c.set_window_size(390, 844).await?;
            for path in [
                format!("/instances/{id}#files"),
                "/instances/new".to_owned(),
            ] {
                c.goto(&format!("{base}{path}")).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (_, overflow) = labels_and_width(&c).await?;
                ensure!(
                    overflow <= 0,
                    "{path} scrolls sideways at phone width by {overflow}px"
                );
            }
            Ok(())
        })
        .await;
    agent.stop().await;
}

/// A new organization has no workload: the create form offers the bundled templates
/// (name, category, description), and a server made from one runs, with no egg file;
/// the instance list's state badge then follows it live (the event stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_server_from_a_bundled_template_in_the_browser() {
    shardlyn_tests::docker::ensure_test_image();
    let app = spawn_app(Engine::Sqlite).await;
    let session = app.bootstrap_admin().await;
    // busybox-test is in the `testing` category, listed once the setting shows it.
    app.put(
        "/v1/settings",
        Some(&session.access),
        serde_json::json!({"show_testing_templates": true}),
    )
    .await
    .expect(200);
    let (config, dir) = register_node(&app, &session.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &session.access, &config.node_id, "online").await;
    let base = app.base.clone();
    let token = session.access.clone();
    let app_ref = &app;
    Chrome::start(false)
        .await
        .run("a_first_server_from_a_bundled_template", |c| async move {
            sign_in(&c, &base).await?;
            c.goto(&format!("{base}/instances/new")).await?;
            // No workload yet: the first template is chosen, its settings are shown.
            ensure!(
                c.find(Locator::Css("#no-workloads")).await.is_err(),
                "the form is offered without any workload"
            );
            find(&c, "#nw-template-note").await?;
            let option = find(&c, "#nw-workload option[value='template:busybox-test']").await?;
            let label = option.text().await?;
            ensure!(label.contains("(testing)"), "category in {label:?}");
            find(&c, "#nw-workload")
                .await?
                .select_by_value("template:busybox-test")
                .await?;
            wait_text(
                &c,
                "#nw-description",
                "A tiny console",
                Duration::from_secs(20),
            )
            .await?;
            find(&c, "#var-GREETING").await?;
            fill(&c, "#ni-name", "first").await?;
            fill(&c, "#ni-memory", "128").await?;
            fill(&c, "#ni-disk", "256").await?;
            // A port of its own: other tests run servers on the default range meanwhile.
            fill(&c, "#ni-port", &free_port().to_string()).await?;
            click(&c, "#new-submit").await?;
            let id = created_instance_id(&c).await?;
            // The template became one workload of the organization, and the server runs.
            let workloads = app_ref
                .get("/v1/workloads", Some(&token))
                .await
                .expect(200)
                .body;
            ensure!(
                workloads["data"].as_array().map(Vec::len) == Some(1),
                "{workloads}"
            );
            ensure!(
                workloads["data"][0]["name"] == "Busybox Test",
                "{workloads}"
            );
            wait_instance(app_ref, &token, &id, "running", WAIT).await;

            // The list's badge follows the server live, from the event stream, without
            // a reload (a value set on the page survives).
            c.goto(&format!("{base}/instances")).await?;
            let badge = format!("[data-live-instance='{id}']");
            wait_text(&c, &badge, "running", Duration::from_secs(20)).await?;
            find(&c, "html[data-live='on']").await?;
            c.execute("window.__sameDocument = true;", vec![]).await?;
            app_ref
                .post(&format!("/v1/instances/{id}/stop"), Some(&token), json!({}))
                .await
                .expect(202);
            wait_text(&c, &badge, "offline", Duration::from_secs(30)).await?;
            let same = c
                .execute("return window.__sameDocument === true;", vec![])
                .await?;
            ensure!(same == Value::Bool(true), "the page was reloaded");
            let class = find(&c, &badge).await?.attr("class").await?;
            ensure!(
                class.as_deref() == Some("badge state-offline"),
                "badge class {class:?}"
            );
            Ok(())
        })
        .await;
    agent.stop().await;
}

/// Two nodes: from the server's Settings tab it is moved to the other one (chosen in the
/// list); the move's states arrive from the event stream, the page loads again once it
/// completed. Then that node is drained from its page: the server moves back, the move's
/// badge following it live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_moves_to_another_node_from_its_page() {
    shardlyn_tests::docker::ensure_test_image();
    let app = spawn_app(Engine::Sqlite).await;
    let session = app.bootstrap_admin().await;
    let t = session.access.clone();
    let (config_a, dir_a) = register_node(&app, &t).await;
    let (config_b, dir_b) = register_node(&app, &t).await;
    let agent_a = LocalAgent::start(config_a.clone(), dir_a.path());
    let agent_b = LocalAgent::start(config_b.clone(), dir_b.path());
    wait_node(&app, &t, &config_a.node_id, "online").await;
    let b = wait_node(&app, &t, &config_b.node_id, "online").await;
    let b_name = b["name"].as_str().expect("name").to_owned();
    let workload = busybox_workload(&app, &t).await;
    let created = app
        .post(
            "/v1/instances",
            Some(&t),
            json!({"name": "mover", "workload_id": workload, "node_id": config_a.node_id,
                "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500}}),
        )
        .await
        .expect(201)
        .body;
    let id = created["id"].as_str().expect("id").to_owned();
    wait_instance(&app, &t, &id, "offline", WAIT).await;
    std::fs::write(
        dir_a.path().join("volumes").join(&id).join("world.dat"),
        "the world",
    )
    .expect("write");
    let base = app.base.clone();
    let (node_a, node_b, id_ref) = (
        config_a.node_id.clone(),
        config_b.node_id.clone(),
        id.clone(),
    );
    Chrome::start(false)
        .await
        .run("a_server_moves_to_another_node", |c| async move {
            sign_in(&c, &base).await?;
            c.goto(&format!("{base}/instances/{id_ref}#settings"))
                .await?;
            find(&c, "html[data-live='on']").await?;
            find(&c, "#migrate-target")
                .await?
                .select_by_value(&node_b)
                .await?;
            click(&c, "#migrate-start").await?;
            click(&c, "#ask-ok").await?;
            wait_text(&c, "#migrate-status", &format!("Move to {b_name}"), WAIT).await?;
            wait_text(&c, "#migrate-status", "completed", WAIT).await?;
            // The page loads again: the server is on the other node now, so the list
            // offers the first one.
            find(&c, &format!("#migrate-target option[value='{node_a}']")).await?;
            ensure!(
                c.find(Locator::Css(&format!(
                    "#migrate-target option[value='{node_b}']"
                )))
                .await
                .is_err(),
                "the server's own node is not offered"
            );

            // Drain the new node from its page: the server moves back, and the move's
            // badge follows it live to the end.
            c.goto(&format!("{base}/nodes/{node_b}")).await?;
            find(&c, "html[data-live='on']").await?;
            click(&c, "#drain").await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while let Err(e) = c.accept_alert().await {
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "no confirmation: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            wait_text(&c, "#drain-result", "1 of 1 server(s) moving", WAIT).await?;
            wait_text(&c, "#drain-moves [data-live-migration]", "completed", WAIT).await?;
            Ok(())
        })
        .await;
    let now = app
        .get(&format!("/v1/instances/{id}"), Some(&t))
        .await
        .expect(200)
        .body;
    assert_eq!(
        now["node_id"],
        config_a.node_id.as_str(),
        "back after the drain: {now}"
    );
    assert_eq!(
        std::fs::read_to_string(dir_a.path().join("volumes").join(&id).join("world.dat"))
            .expect("moved file"),
        "the world"
    );
    agent_a.stop().await;
    agent_b.stop().await;
}

/// A server whose node went offline, with a backup in S3 (moto, a real S3-compatible
/// server): the move from its Settings tab is refused, and the page offers to rebuild it
/// from the backup, saying how old it is; the rebuild runs on the other node. That node
/// then goes offline too, and its page rebuilds its servers back, each move's badge
/// following it live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_an_offline_node_is_rebuilt_from_its_backup_from_the_pages() {
    shardlyn_tests::docker::ensure_test_image();
    let moto = shardlyn_tests::moto::Moto::start().await;
    let app = spawn_app(Engine::Sqlite).await;
    let session = app.bootstrap_admin().await;
    let t = session.access.clone();
    app.post(
        "/v1/backup-config",
        Some(&t),
        json!({"name": "moto", "kind": "s3", "endpoint": moto.url, "region": "us-east-1",
            "bucket": "rebuilds", "access_key_id": "AKIDTEST", "secret_access_key": "not-a-secret"}),
    )
    .await
    .expect(201);
    app.post(
        "/v1/backup-config/s3-buckets",
        Some(&t),
        json!({"name": "rebuilds"}),
    )
    .await
    .expect(201);
    let (config_a, dir_a) = register_node(&app, &t).await;
    let (config_b, dir_b) = register_node(&app, &t).await;
    let agent_a = LocalAgent::start(config_a.clone(), dir_a.path());
    let agent_b = LocalAgent::start(config_b.clone(), dir_b.path());
    wait_node(&app, &t, &config_a.node_id, "online").await;
    wait_node(&app, &t, &config_b.node_id, "online").await;
    let workload = busybox_workload(&app, &t).await;
    let id = app
        .post(
            "/v1/instances",
            Some(&t),
            json!({"name": "phoenix", "workload_id": workload, "node_id": config_a.node_id,
                "ports": [free_port()],
                "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 256, "pids": 64, "io_weight": 500}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    wait_instance(&app, &t, &id, "offline", WAIT).await;
    std::fs::write(
        dir_a.path().join("volumes").join(&id).join("world.dat"),
        "the backed-up world",
    )
    .expect("write");
    let bid = app
        .post(&format!("/v1/instances/{id}/backups"), Some(&t), json!({}))
        .await
        .expect(202)
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let b = app
            .get(&format!("/v1/instances/{id}/backups"), Some(&t))
            .await
            .expect(200)
            .body;
        if b["data"][0]["id"] == bid.as_str() && b["data"][0]["status"] == "completed" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent_a.stop().await;
    wait_node(&app, &t, &config_a.node_id, "offline").await;
    let base = app.base.clone();
    let (node_b, id_ref) = (config_b.node_id.clone(), id.clone());
    let app_ref = &app;
    let t_ref = t.clone();
    let (config_a_ref, dir_a_ref) = (&config_a, dir_a.path());
    let agent_a = std::sync::Mutex::new(None);
    let agent_a_ref = &agent_a;
    Chrome::start(false)
        .await
        .run("rebuilt_from_its_backup", |c| async move {
            sign_in(&c, &base).await?;
            c.goto(&format!("{base}/instances/{id_ref}#settings"))
                .await?;
            find(&c, "html[data-live='on']").await?;
            click(&c, "#migrate-start").await?;
            click(&c, "#ask-ok").await?;
            // Refused (the node is offline); the page asks about the backup, its age named.
            wait_text(&c, "#ask-text", " ago", WAIT).await?;
            wait_text(&c, "#ask-text", "is lost", WAIT).await?;
            click(&c, "#ask-ok").await?;
            wait_text(&c, "#migrate-status", "rebuilt from the backup of", WAIT).await?;
            wait_text(&c, "#migrate-status", "completed", WAIT).await?;

            // The first node is back (and forgets the server); the rebuilt server's node
            // goes offline: its page rebuilds it back.
            let back = LocalAgent::start(config_a_ref.clone(), dir_a_ref);
            *agent_a_ref.lock().expect("lock") = Some(back);
            wait_node(app_ref, &t_ref, &config_a_ref.node_id, "online").await;
            let old_files = dir_a_ref.join("volumes").join(&id_ref);
            let deadline = tokio::time::Instant::now() + WAIT;
            while old_files.exists() {
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the first node kept the server"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            agent_b.stop().await;
            wait_node(app_ref, &t_ref, &node_b, "offline").await;
            c.goto(&format!("{base}/nodes/{node_b}")).await?;
            find(&c, "html[data-live='on']").await?;
            click(&c, "#rebuild").await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while let Err(e) = c.accept_alert().await {
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "no confirmation: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            wait_text(&c, "#rebuild-result", "1 server(s) being rebuilt", WAIT).await?;
            wait_text(&c, "#rebuild-moves", "from the backup of", WAIT).await?;
            wait_text(
                &c,
                "#rebuild-moves [data-live-migration]",
                "completed",
                WAIT,
            )
            .await?;
            Ok(())
        })
        .await;
    let now = app
        .get(&format!("/v1/instances/{id}"), Some(&t))
        .await
        .expect(200)
        .body;
    assert_eq!(now["node_id"], config_a.node_id.as_str(), "{now}");
    assert_eq!(
        std::fs::read_to_string(dir_a.path().join("volumes").join(&id).join("world.dat"))
            .expect("rebuilt file"),
        "the backed-up world"
    );
    let agent_a = agent_a.into_inner().expect("lock");
    if let Some(agent) = agent_a {
        agent.stop().await;
    }
}
