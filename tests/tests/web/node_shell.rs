//! Browser test of the node page's shell against a real panel and a real agent: a
//! terminal opened in the page (xterm.js, served by the panel) runs a command and exits
//! with a status; its recording then appears in the list, downloads as asciicast v2 and
//! plays back in the page's player. Over plain HTTP: the shell controls follow the
//! user's `nodes.ssh` and `nodes.terminal` permissions.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use fantoccini::Client;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::json;
use shardlyn_tests::agent::{LocalAgent, register_node, wait_node};
use shardlyn_tests::{Engine, PASSWORD, spawn_app};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in as sign_in_http};

const WAIT: Duration = Duration::from_secs(30);
const EMAIL: &str = "admin@example.com";

async fn sign_in(c: &Client, base: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/login")).await?;
    fill(c, "#email", EMAIL).await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    wait_path(c, "/").await?;
    Ok(())
}

/// Types `text` on the keyboard into the focused terminal (`\n` is Enter).
async fn type_keys(c: &Client, text: &str) -> anyhow::Result<()> {
    let mut keys = KeyActions::new("keyboard".into());
    for ch in text.chars() {
        let value = if ch == '\n' {
            char::from(Key::Enter)
        } else {
            ch
        };
        keys = keys
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
    }
    c.perform_actions(keys).await.context("typing")
}

/// What the xterm.js terminal in `box_id` shows, read from its buffer.
async fn screen(c: &Client, box_id: &str) -> anyhow::Result<String> {
    let text = c
        .execute(
            "const t = document.getElementById(arguments[0]).terminal; \
             if (!t) return ''; \
             const b = t.buffer.active; const out = []; \
             for (let y = 0; y < b.length; y++) { const l = b.getLine(y); if (l) out.push(l.translateToString(true)); } \
             return out.join('\\n');",
            vec![json!(box_id)],
        )
        .await?;
    Ok(text.as_str().unwrap_or_default().to_owned())
}

/// Waits until the terminal in `box_id` shows `needle`.
async fn wait_screen(c: &Client, box_id: &str, needle: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = screen(c, box_id).await?;
        if text.contains(needle) {
            return Ok(text);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("#{box_id} never showed {needle:?}; it shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_in_the_node_page_runs_exits_and_plays_back() {
    let app = spawn_app(Engine::Sqlite).await;
    let session = app.bootstrap_admin().await;
    let (config, dir) = register_node(&app, &session.access).await;
    let agent = LocalAgent::start(config.clone(), dir.path());
    wait_node(&app, &session.access, &config.node_id, "online").await;
    let base = app.base.clone();
    let node = config.node_id.clone();
    Chrome::start(false)
        .await
        .run("node_shell_terminal_and_player", |c| async move {
            sign_in(&c, &base).await?;
            c.goto(&format!("{base}/nodes/{node}")).await?;
            find(&c, "#recordings-none").await?;
            click(&c, "#shell-terminal").await?;
            find(&c, "#shell[data-state='open']").await?;
            find(&c, "#shell-term .xterm-helper-textarea").await?;
            // The terminal fills its box: wider than the 80 columns it starts with.
            let cols = c
                .execute(
                    "return document.getElementById('shell-term').terminal.cols;",
                    vec![],
                )
                .await?;
            ensure!(
                cols.as_u64().unwrap_or(0) > 80,
                "the fit addon sized the terminal: {cols}"
            );
            type_keys(&c, "echo hi-$((6*7))\n").await?;
            wait_screen(&c, "shell-term", "hi-42").await?;
            // The page's stylesheet rules (copied from xterm.js's own <style>) apply
            // under the CSP: rows are as tall as xterm.js measured them.
            let styled = c
                .execute(
                    "const row = document.querySelector('#shell-term .xterm-rows > div'); \
                     return !!row && row.getBoundingClientRect().height > 8 \
                       && document.adoptedStyleSheets.some(s => s.cssRules.length > 0);",
                    vec![],
                )
                .await?;
            ensure!(styled == json!(true), "xterm.js styles apply: {styled}");
            type_keys(&c, "exit 4\n").await?;
            wait_text(&c, "#shell-status", "exit status 4", WAIT).await?;
            find(&c, "#shell[data-exit='4']").await?;

            // The recording is listed once the socket closed.
            wait_text(&c, "#recordings-table tbody tr", "ended", WAIT).await?;
            let row = wait_text(&c, "#recordings-table tbody tr", EMAIL, WAIT).await?;
            ensure!(
                row.contains("terminal") && row.contains('4'),
                "the row: {row}"
            );
            // The download link serves the asciicast file.
            let download = c
                .execute(
                    "const a = document.querySelector('#recordings-table a[download]'); \
                     return fetch(a.href).then(async r => [r.status, \
                       r.headers.get('content-type'), r.headers.get('content-disposition'), \
                       await r.text()]);",
                    vec![],
                )
                .await?;
            ensure!(
                download[0] == 200 && download[1] == "application/x-asciicast",
                "download: {download}"
            );
            ensure!(
                download[2]
                    .as_str()
                    .is_some_and(|d| d.starts_with("attachment")),
                "download: {download}"
            );
            let cast = download[3].as_str().unwrap_or_default();
            ensure!(
                cast.starts_with("{\"") && cast.contains("hi-42"),
                "cast: {cast}"
            );

            // The player plays it back.
            click(&c, "#recordings-table [data-play]").await?;
            find(&c, "#player:not([hidden])").await?;
            click(&c, "#player-end").await?;
            find(&c, "#player[data-state='ended']").await?;
            let shown = wait_screen(&c, "player-term", "hi-42").await?;
            ensure!(shown.contains("exit 4"), "played back: {shown}");
            Ok(())
        })
        .await;
    agent.stop().await;
}

/// SSH from the node page, through a real OpenSSH server as the node's sshd (the agent
/// logs in to it with the one-minute certificate the panel minted): a command runs as
/// the login typed, a resize reaches the PTY, and Close hangs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_in_the_node_page_logs_in_to_a_real_sshd() {
    let node = shardlyn_tests::shell::SshNode::start(Engine::Sqlite).await;
    let base = node.app.base.clone();
    let id = node.node.clone();
    Chrome::start(false)
        .await
        .run("node_shell_ssh", |c| async move {
            sign_in(&c, &base).await?;
            c.goto(&format!("{base}/nodes/{id}")).await?;
            let login = find(&c, "#shell-login").await?;
            login.clear().await?;
            login.send_keys("root").await?;
            click(&c, "#shell-ssh").await?;
            find(&c, "#shell[data-state='open']").await?;
            find(&c, "#shell-term .xterm-helper-textarea").await?;
            wait_text(&c, "#shell-status", "root", WAIT).await?;
            type_keys(&c, "echo $(whoami)-$((6*7)); stty size\n").await?;
            wait_screen(&c, "shell-term", "root-42").await?;
            let cols = c
                .execute(
                    "return document.getElementById('shell-term').terminal.cols;",
                    vec![],
                )
                .await?;
            let size = format!(" {}", cols.as_u64().unwrap_or(0));
            // stty prints after the echo: wait for its line too.
            let shown = wait_screen(&c, "shell-term", &size).await?;
            ensure!(
                shown.lines().any(|l| l.ends_with(&size)),
                "stty size shows the page's {cols} columns: {shown}"
            );
            click(&c, "#shell-close").await?;
            find(&c, "#shell:not([data-state='open'])").await?;
            wait_text(&c, "#recordings-table tbody tr", "ssh", WAIT).await?;
            Ok(())
        })
        .await;
}

/// The page offers what the user's permissions allow: both shells, then SSH alone
/// without `nodes.terminal` (and no recordings), then nothing without `nodes.ssh`. The
/// user is an admin of another user's organization (owners hold every permission).
#[tokio::test]
async fn the_shell_controls_follow_the_permissions() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let eve = app.register("eve@example.com").await;
    let org = app.create_org(&eve.access, "Eve's").await;
    app.add_member(&org, &admin.user_id, "admin").await;
    let node = app.register_node(&eve.access, Some(&org), "shells").await;
    let (jar, _) = sign_in_http(&app).await;
    let path = format!("/nodes/{node}");

    let (status, html) = page(&app, &jar, &path).await;
    assert_eq!(status, 200, "{html}");
    for part in [
        r#"id="shell-ssh""#,
        r#"id="shell-terminal""#,
        r#"id="recordings-none""#,
        "/static/xterm.js?v=",
        "/static/player.js?v=",
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    let missing = app
        .client
        .get(format!("{}/nodes/{node}/recordings/nope/cast", app.base))
        .header(reqwest::header::COOKIE, &jar)
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);

    let permissions = format!(
        "/v1/organizations/{org}/members/{}/permissions",
        admin.user_id
    );
    let deny = |key: &'static str| {
        let (app, eve, permissions) = (&app, &eve, permissions.clone());
        async move {
            app.post(
                &permissions,
                Some(&eve.access),
                json!({"key": key, "allowed": false}),
            )
            .await
            .expect(200);
        }
    };
    deny("nodes.terminal").await;
    let (_, html) = page(&app, &jar, &path).await;
    assert!(html.contains(r#"id="shell-ssh""#), "{html}");
    for part in [r#"id="shell-terminal""#, r#"id="recordings""#, "player.js"] {
        assert!(!html.contains(part), "{part} is gone: {html}");
    }
    deny("nodes.ssh").await;
    let (_, html) = page(&app, &jar, &path).await;
    for part in [r#"id="shell""#, "xterm.js", "shell.js"] {
        assert!(!html.contains(part), "{part} is gone: {html}");
    }
}
