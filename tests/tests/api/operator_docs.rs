//! The operator guide (`docs/operations/README.md` and the pages its numbered list
//! names) run as written (issue 21). Every fenced `sh`/`bash` block is run, or says on
//! the line before it why not (`<!-- not run: REASON -->`, a reason required): the
//! blocks run page after page in a fresh Debian 12 root booted with systemd in its own
//! network namespace ([`shardlyn_tests::debroot`]), with a checkout's `packaging/` and
//! the built binaries at `/root/shardlyn`. Config blocks are checked for real: `toml`
//! by the panel's loader, `nginx` by `nginx -t` and `caddyfile` by `caddy validate`,
//! and both proxies then run in front of a panel with an agent's tunnel (a WebSocket
//! carrying HTTP/2) and a large upload going through them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shardlyn_panel::config::{CliOverrides, Config};
use shardlyn_tests::agent::{LocalAgent, free_port, register_agent, wait_node};
use shardlyn_tests::debroot::{self, Booted};
use shardlyn_tests::sse::SseStream;
use shardlyn_tests::{Engine, spawn_app_with};

/// A fenced block of a page.
#[derive(Debug)]
struct Block {
    page: String,
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    text: String,
    /// The reason of a `<!-- not run: REASON -->` on the line before the fence.
    not_run: Option<String>,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.page, self.line)
    }

    fn is_shell(&self) -> bool {
        matches!(self.lang.as_str(), "sh" | "bash")
    }
}

fn docs_dir() -> PathBuf {
    shardlyn_tests::crate_path("../docs/operations")
}

/// The pages of the guide's numbered list, in reading order, that exist.
fn guide_pages() -> Vec<String> {
    let index = std::fs::read_to_string(docs_dir().join("README.md")).expect("README.md");
    let pages: Vec<String> = index
        .lines()
        .filter(|l| {
            l.split_once(". [")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .filter_map(|l| {
            let target = l.split_once("](")?.1.split_once(')')?.0;
            Some(target.to_string())
        })
        .collect();
    assert!(
        pages.len() >= 8 && pages.iter().any(|p| p == "install.md"),
        "the guide's numbered list: {pages:?}"
    );
    pages
        .into_iter()
        .filter(|p| docs_dir().join(p).is_file())
        .collect()
}

/// The fenced blocks of `page`, with their not-run markers.
fn blocks(page: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(docs_dir().join(page)).expect("page");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            let marker = lines[i].trim_start().starts_with("<!-- not run");
            assert!(
                !marker || lines.get(i + 1).is_some_and(|l| l.starts_with("```")),
                "{page}:{}: a not-run marker must be on the line just before a fence",
                i + 1
            );
            i += 1;
            continue;
        };
        let not_run = i
            .checked_sub(1)
            .map(|p| lines[p].trim())
            .and_then(|l| l.strip_prefix("<!-- not run:"))
            .map(|rest| {
                let reason = rest.strip_suffix("-->").unwrap_or_else(|| {
                    panic!("{page}:{i}: the marker must end on its line with -->")
                });
                reason.trim().to_string()
            });
        if let Some(reason) = &not_run {
            assert!(
                !reason.is_empty(),
                "{page}:{i}: a not-run marker needs a reason"
            );
        }
        let start = i + 1;
        let mut body = String::new();
        i += 1;
        while i < lines.len() && !lines[i].starts_with("```") {
            body.push_str(lines[i]);
            body.push('\n');
            i += 1;
        }
        assert!(i < lines.len(), "{page}:{start}: unclosed fence");
        out.push(Block {
            page: page.to_string(),
            line: start,
            lang: lang.trim().to_string(),
            text: body,
            not_run,
        });
        i += 1;
    }
    out
}

fn all_blocks() -> Vec<Block> {
    guide_pages().iter().flat_map(|p| blocks(p)).collect()
}

/// A block of `lang` not marked as not run; exactly one expected.
fn the_block(lang: &str) -> Block {
    let mut found: Vec<Block> = all_blocks()
        .into_iter()
        .filter(|b| b.lang == lang && b.not_run.is_none())
        .collect();
    assert_eq!(found.len(), 1, "one {lang} block in the guide: {found:?}");
    found.remove(0)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `text` with `from` replaced by `to`, which must occur (the docs changed otherwise).
fn must_replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "expected {from:?} in:\n{text}");
    text.replace(from, to)
}

#[test]
fn every_block_of_the_guide_is_run_or_says_why_not_and_its_toml_loads() {
    let blocks = all_blocks();
    let shell: Vec<&Block> = blocks.iter().filter(|b| b.is_shell()).collect();
    for block in &blocks {
        assert!(
            !matches!(block.lang.as_str(), "console" | "shell" | "shell-session"),
            "{}: write ```sh for commands and ```text for output",
            block.at()
        );
    }
    let run = shell.iter().filter(|b| b.not_run.is_none()).count();
    assert!(
        run >= 10,
        "the guide runs {run} shell blocks: {:?}",
        shell.iter().map(|b| b.at()).collect::<Vec<_>>()
    );
    for block in shell.iter().filter(|b| b.not_run.is_some()) {
        eprintln!(
            "not run: {} ({})",
            block.at(),
            block.not_run.as_deref().unwrap_or_default()
        );
    }
    eprintln!("shell blocks: {run} run, {} not run", shell.len() - run);

    // Each TOML block, as the operator writes it, through the panel's own loader.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut loaded = 0;
    for block in blocks
        .iter()
        .filter(|b| b.lang == "toml" && b.not_run.is_none())
    {
        let path = tmp.path().join(format!("{loaded}.toml"));
        std::fs::write(&path, &block.text).expect("write toml");
        if let Err(e) = Config::load(Some(&path), &CliOverrides::default()) {
            panic!(
                "{}: the panel refuses this configuration: {e:#}\n{}",
                block.at(),
                block.text
            );
        }
        loaded += 1;
    }
    assert!(loaded >= 3, "{loaded} TOML blocks loaded");
}

/// The Debian root's binds: the checkout's `packaging/` and the built binaries.
fn checkout_binds() -> Vec<(PathBuf, &'static str)> {
    debroot::shardlyn_binds(
        "/root/shardlyn/target/release/shardlyn",
        "/root/shardlyn/target/release/shardlyn-agent",
        "/root/shardlyn/packaging",
    )
}

/// One page's runnable blocks as one `bash` script, each announced on stderr.
fn page_script(blocks: &[&Block]) -> String {
    let mut script = String::from("set -e -o pipefail\ncd /root/shardlyn\n");
    for block in blocks {
        script.push_str(&format!("echo '>>> {}' >&2\n", block.at()));
        script.push_str(&block.text);
    }
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_runs_on_a_fresh_debian_machine() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = debroot::fresh_root(tmp.path());
    // DNS would name the machine; here its hosts file does.
    let hosts = root.join("etc/hosts");
    let mut names = std::fs::read_to_string(&hosts).unwrap_or_default();
    names.push_str("127.0.0.1 panel.example.com\n");
    std::fs::write(&hosts, names).expect("hosts");
    std::fs::create_dir_all(root.join("root/shardlyn")).expect("checkout dir");

    let booted = Booted::boot_isolated(&root, &checkout_binds(), &tmp.path().join("console.log"));
    let mut ran = 0;
    for page in guide_pages() {
        let blocks = blocks(&page);
        let runnable: Vec<&Block> = blocks
            .iter()
            .filter(|b| b.is_shell() && b.not_run.is_none())
            .collect();
        if runnable.is_empty() {
            continue;
        }
        let script = page_script(&runnable);
        let out = booted.exec(
            &[("HOME", "/root"), ("LANG", "C.UTF-8")],
            &["timeout", "600", "bash", "-c", &script],
        );
        let logs = booted.exec(
            &[],
            &[
                "journalctl",
                "-u",
                "shardlyn",
                "-u",
                "shardlyn-agent",
                "-n",
                "60",
                "--no-pager",
            ],
        );
        assert!(
            out.status.success(),
            "{page}: a block failed ({}); the last `>>>` names it.\n--- stdout\n{}\n--- stderr\n{}\n--- journal\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            text(&logs.stdout)
        );
        ran += runnable.len();
        eprintln!(
            "{page}: {} blocks ran ({:.0?} so far)",
            runnable.len(),
            started.elapsed()
        );
    }
    assert!(ran >= 10, "{ran} blocks ran");

    // What the guide left behind: both services running, the node online, a backup.
    let active = booted.exec(
        &[],
        &["systemctl", "is-active", "shardlyn", "shardlyn-agent"],
    );
    assert_eq!(text(&active.stdout), "active\nactive\n");
    let backups = std::fs::read_dir(root.join("var/backups"))
        .expect("/var/backups")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("shardlyn-"))
        .count();
    assert!(backups >= 1, "upgrade.md's SQLite backup is missing");
    let nodes = booted.exec(
        &[],
        &[
            "sqlite3",
            "/var/lib/shardlyn/shardlyn.db",
            "SELECT name FROM nodes",
        ],
    );
    assert!(
        text(&nodes.stdout).lines().any(|l| l == "node-1"),
        "node-1 joined: {}{}",
        text(&nodes.stdout),
        text(&nodes.stderr)
    );
    eprintln!("the guide ran in {:.0?}", started.elapsed());
}

/// A CA and a certificate it signs for 127.0.0.1 and localhost: `(ca_pem, cert, key)`.
fn test_certificate(dir: &Path) -> (String, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &ca, &ca_key).expect("certificate");
    let cert_path = dir.join("fullchain.pem");
    let key_path = dir.join("privkey.pem");
    std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.pem())).expect("cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("key");
    (ca.pem(), cert_path, key_path)
}

/// A proxy process, killed when dropped.
struct Proxy {
    child: tokio::process::Child,
    base: String,
}

impl Drop for Proxy {
    /// SIGTERM, so nginx's master takes its workers along; SIGKILL after 10 s.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.start_kill();
    }
}

/// Runs `program args`, which must succeed.
fn check(program: &str, args: &[&str], env: &[(&str, &Path)]) {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (scripts/dev-services installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// nginx with the guide's server block, its ports, certificate and upstream replaced.
fn start_nginx(dir: &Path, upstream: &str, cert: &Path, key: &Path) -> Proxy {
    let block = the_block("nginx");
    let (http, https) = (free_port(), free_port());
    let mut site = must_replace(
        &block.text,
        "listen 80;",
        &format!("listen 127.0.0.1:{http};"),
    );
    site = must_replace(
        &site,
        "listen 443 ssl http2;",
        &format!("listen 127.0.0.1:{https} ssl http2;"),
    );
    site = site
        .lines()
        .filter(|l| !l.trim_start().starts_with("listen [::]"))
        .map(|l| format!("{l}\n"))
        .collect();
    site = must_replace(
        &site,
        "/etc/letsencrypt/live/panel.example.com/fullchain.pem",
        &cert.display().to_string(),
    );
    site = must_replace(
        &site,
        "/etc/letsencrypt/live/panel.example.com/privkey.pem",
        &key.display().to_string(),
    );
    site = must_replace(&site, "http://127.0.0.1:8080", upstream);
    std::fs::write(dir.join("shardlyn.conf"), site).expect("site");
    let d = dir.display();
    let main = format!(
        "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/shardlyn.conf;\n}}\n"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main).expect("nginx.conf");
    let prefix = format!("{d}/");
    let conf = conf.display().to_string();
    check("nginx", &["-t", "-p", &prefix, "-c", &conf], &[]);
    let child = tokio::process::Command::new("nginx")
        .args(["-p", &prefix, "-c", &conf])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nginx starts");
    Proxy {
        child,
        base: format!("https://127.0.0.1:{https}"),
    }
}

/// Caddy with the guide's Caddyfile, its site address, certificate and upstream replaced.
fn start_caddy(dir: &Path, upstream: &str, cert: &Path, key: &Path) -> Proxy {
    let block = the_block("caddyfile");
    let env: [(&str, &Path); 3] = [
        ("HOME", dir),
        ("XDG_DATA_HOME", dir),
        ("XDG_CONFIG_HOME", dir),
    ];
    // The page's own file first, as written.
    let original = dir.join("Caddyfile.page");
    std::fs::write(&original, &block.text).expect("Caddyfile");
    let original = original.display().to_string();
    check(
        "caddy",
        &["validate", "--config", &original, "--adapter", "caddyfile"],
        &env,
    );
    let (http, https) = (free_port(), free_port());
    let mut site = must_replace(
        &block.text,
        "panel.example.com {",
        &format!(
            "https://127.0.0.1:{https} {{\n    tls {} {}",
            cert.display(),
            key.display()
        ),
    );
    site = must_replace(
        &site,
        "reverse_proxy 127.0.0.1:8080",
        &format!("reverse_proxy {}", upstream.trim_start_matches("http://")),
    );
    let global = format!(
        "{{\n    admin off\n    auto_https off\n    http_port {http}\n    https_port {https}\n}}\n\n"
    );
    let path = dir.join("Caddyfile");
    std::fs::write(&path, format!("{global}{site}")).expect("Caddyfile");
    let path = path.display().to_string();
    check(
        "caddy",
        &["validate", "--config", &path, "--adapter", "caddyfile"],
        &env,
    );
    let mut cmd = tokio::process::Command::new("caddy");
    cmd.args(["run", "--config", &path, "--adapter", "caddyfile"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("caddy.log")).expect("log"))
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proxy {
        child: cmd.spawn().expect("caddy starts"),
        base: format!("https://127.0.0.1:{https}"),
    }
}

/// The address the audit log recorded for the request whose path names `instance`.
async fn audited_ip(app: &shardlyn_tests::TestApp, access: &str, instance: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = app
            .get("/v1/admin/audit-logs?per_page=100", Some(access))
            .await
            .expect(200);
        let entry = logs.body["data"].as_array().and_then(|entries| {
            entries
                .iter()
                .find(|e| e["path"].as_str().is_some_and(|p| p.contains(instance)))
                .cloned()
        });
        if let Some(entry) = entry {
            return entry["ip"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no audit entry for {instance}: {}",
            logs.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Through `proxy`: readiness, a body above nginx's default limit, the client's address
/// (`X-Forwarded-For` and `trusted_proxies`), an event stream, and an agent whose only
/// way to the panel is the proxy coming online (its tunnel is a WebSocket).
async fn through(
    name: &str,
    proxy: &mut Proxy,
    app: &shardlyn_tests::TestApp,
    access: &str,
    ca_pem: &str,
    dir: &Path,
) {
    // The client comes from 127.0.0.5, the proxy from 127.0.0.1 (the panel's
    // `trusted_proxies`): the panel must see 127.0.0.5.
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA"))
        .local_address(std::net::IpAddr::from([127, 0, 0, 5]))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client
            .get(format!("{}/health/ready", proxy.base))
            .send()
            .await
            && r.status() == 200
        {
            break;
        }
        assert!(
            proxy.child.try_wait().expect("proxy status").is_none(),
            "{name} exited: {}",
            std::fs::read_to_string(dir.join("caddy.log"))
                .or_else(|_| std::fs::read_to_string(dir.join("error.log")))
                .unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "{name} never answered /health/ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 2 MiB: nginx's default limit (1 MiB) would answer 413 itself. The forged
    // X-Forwarded-For must not become the client's address.
    let instance = format!("no-such-instance-{name}");
    let r = client
        .post(format!("{}/v1/instances/{instance}/files/tus", proxy.base))
        .bearer_auth(access)
        .header("x-forwarded-for", "203.0.113.9")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "2097152")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 2 * 1024 * 1024])
        .send()
        .await
        .expect("upload through the proxy");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_ne!(status, 413, "{name} limited the body");
    assert!(
        body["code"].is_string(),
        "{name}: the panel's own answer, not the proxy's ({status}): {body}"
    );

    assert_eq!(
        audited_ip(app, access, &instance).await,
        "127.0.0.5",
        "{name}"
    );

    // Events stream through the proxy as they happen: the node coming online.
    let mut events = SseStream::open(
        &client,
        &format!("{}/v1/events", proxy.base),
        &[("authorization", &format!("Bearer {access}"))],
    )
    .await
    .unwrap_or_else(|(status, body)| panic!("{name}: /v1/events {status}: {body}"));

    let agent_dir = dir.join("agent");
    std::fs::create_dir_all(&agent_dir).expect("agent dir");
    let mut config = register_agent(app, access, json!({"name": name}), &agent_dir).await;
    config.panel_url.clone_from(&proxy.base);
    config.ca_pem = Some(ca_pem.to_string());
    let node = config.node_id.clone();
    let agent = LocalAgent::start(config, &agent_dir);
    wait_node(app, access, &node, "online").await;
    let event = events.expect("node_status", Duration::from_secs(10)).await;
    assert!(event.data.to_string().contains(&node), "{name}: {event:?}");
    agent.stop().await;
    wait_node(app, access, &node, "offline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_and_caddy_as_the_guide_configures_them_carry_agents_and_uploads() {
    let app = spawn_app_with(Engine::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let admin = app.bootstrap_admin().await;
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca_pem, cert, key) = test_certificate(certs.path());

    let nginx_dir = tempfile::tempdir().expect("tempdir");
    let mut nginx = start_nginx(nginx_dir.path(), &app.base, &cert, &key);
    through(
        "nginx",
        &mut nginx,
        &app,
        &admin.access,
        &ca_pem,
        nginx_dir.path(),
    )
    .await;
    let log = std::fs::read_to_string(nginx_dir.path().join("access.log")).expect("access log");
    assert!(
        log.lines()
            .any(|l| l.contains("GET /v1/agent/tunnel HTTP/1.1\" 101")),
        "the agent's tunnel went through nginx as a WebSocket:\n{log}"
    );

    let caddy_dir = tempfile::tempdir().expect("tempdir");
    let mut caddy = start_caddy(caddy_dir.path(), &app.base, &cert, &key);
    through(
        "caddy",
        &mut caddy,
        &app,
        &admin.access,
        &ca_pem,
        caddy_dir.path(),
    )
    .await;
}
