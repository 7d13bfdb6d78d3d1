//! tus 1.0.0 resumable uploads into an instance's files, end to end: a real panel, a
//! real agent through the tunnel, real Docker for the instance. The spec's examples
//! (discovery, creation, offsets, appends, checksums, termination, expiration) with our
//! own client; resumption after a cut client, a panel restart and an agent restart; and
//! one upload by a real tus client (tuspy).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::{Engine, TestApp, both_engines, spawn_app, spawn_app_with};
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(60);
const OCTETS: &str = "application/offset+octet-stream";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A node with a running agent and one installed instance.
struct Server {
    agent: Option<LocalAgent>,
    config: shardlyn_agent::config::AgentConfig,
    dir: tempfile::TempDir,
    id: String,
}

impl Server {
    async fn start(app: &TestApp, access: &str, disk_mb: i64) -> Self {
        Self::start_with(app, access, disk_mb, "").await
    }

    /// With the agent's `settings.toml` set to `settings`.
    async fn start_with(app: &TestApp, access: &str, disk_mb: i64, settings: &str) -> Self {
        let (config, dir) = register_node(app, access).await;
        std::fs::write(dir.path().join("settings.toml"), settings).expect("agent settings");
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(app, access, &config.node_id, "online").await;
        let workload = busybox_workload(app, access).await;
        let instance = app
            .post(
                "/v1/instances",
                Some(access),
                json!({
                    "name": "uploads",
                    "workload_id": workload,
                    "node_id": config.node_id,
                    "ports": [free_port()],
                    "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": disk_mb, "pids": 64, "io_weight": 500},
                }),
            )
            .await
            .expect(201)
            .body;
        let id = instance["id"].as_str().expect("id").to_string();
        wait_instance(app, access, &id, "offline", WAIT).await;
        Self {
            agent: Some(agent),
            config,
            dir,
            id,
        }
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join("volumes").join(&self.id).join(rel)
    }

    fn part(&self, upload_url: &str) -> PathBuf {
        let upload = upload_url.rsplit('/').next().expect("upload id");
        self.dir
            .path()
            .join("uploads")
            .join(format!("{upload}.part"))
    }

    async fn restart_agent(&mut self, app: &TestApp, access: &str) {
        if let Some(a) = self.agent.take() {
            a.stop().await;
        }
        wait_node(app, access, &self.config.node_id, "offline").await;
        self.agent = Some(LocalAgent::start(self.config.clone(), self.dir.path()));
        wait_node(app, access, &self.config.node_id, "online").await;
    }

    async fn stop(mut self) {
        if let Some(a) = self.agent.take() {
            a.stop().await;
        }
    }
}

/// Our tus client: raw requests with the protocol headers.
struct Tus {
    client: reqwest::Client,
    base: String,
    token: String,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn offset(&self) -> u64 {
        self.header("upload-offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Upload-Offset: {} {:?}", self.status, self.headers))
    }
}

impl Tus {
    fn new(app: &TestApp, token: &str) -> Self {
        Self {
            client: app.client.clone(),
            base: app.base.clone(),
            token: token.to_string(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.expect("request reaches the panel");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// Creation: the upload's URL path.
    async fn create(&self, instance: &str, length: u64, dir: &str, name: &str) -> String {
        let r = self
            .send(
                Method::POST,
                &format!("/v1/instances/{instance}/files/tus"),
                &[
                    ("tus-resumable", "1.0.0".into()),
                    ("upload-length", length.to_string()),
                    (
                        "upload-metadata",
                        format!(
                            "path {},filename {}",
                            b64(dir.as_bytes()),
                            b64(name.as_bytes())
                        ),
                    ),
                ],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
        r.header("location").expect("Location").to_string()
    }

    async fn head(&self, url: &str) -> Answer {
        self.send(
            Method::HEAD,
            url,
            &[("tus-resumable", "1.0.0".into())],
            Vec::new(),
        )
        .await
    }

    async fn patch(&self, url: &str, offset: u64, data: &[u8], checksum: Option<String>) -> Answer {
        let mut headers = vec![
            ("tus-resumable", "1.0.0".to_string()),
            ("content-type", OCTETS.to_string()),
            ("upload-offset", offset.to_string()),
        ];
        if let Some(c) = checksum {
            headers.push(("upload-checksum", c));
        }
        self.send(Method::PATCH, url, &headers, data.to_vec()).await
    }
}

both_engines! {
    async fn tus_speaks_the_spec_examples(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let server = Server::start(&app, &admin.access, 256).await;
        let id = server.id.clone();
        let tus = Tus::new(&app, &admin.access);
        let endpoint = format!("/v1/instances/{id}/files/tus");

        // Discovery: OPTIONS needs no credentials and carries no Tus-Resumable check.
        let r = app.client.request(Method::OPTIONS, format!("{}{endpoint}", app.base)).send().await.expect("options");
        assert_eq!(r.status(), 204);
        let h = r.headers();
        assert_eq!(h["tus-version"], "1.0.0");
        assert_eq!(h["tus-resumable"], "1.0.0");
        let ext = h["tus-extension"].to_str().expect("text");
        for e in ["creation", "creation-with-upload", "termination", "checksum", "expiration"] {
            assert!(ext.split(',').any(|x| x == e), "{ext} lacks {e}");
        }
        assert_eq!(h["tus-checksum-algorithm"], "sha1,sha256");
        assert!(h["tus-max-size"].to_str().expect("text").parse::<u64>().expect("number") > 0);

        // Creation: version, length and metadata are checked.
        let r = tus.send(Method::POST, &endpoint, &[("upload-length", "5".into()), ("upload-metadata", format!("filename {}", b64(b"a")))], Vec::new()).await;
        assert_eq!(r.status, 412);
        assert_eq!(r.header("tus-version"), Some("1.0.0"));
        let r = tus.send(Method::POST, &endpoint, &[("tus-resumable", "0.2.2".into()), ("upload-length", "5".into())], Vec::new()).await;
        assert_eq!(r.status, 412);
        let r = tus.send(Method::POST, &endpoint, &[("tus-resumable", "1.0.0".into()), ("upload-metadata", format!("filename {}", b64(b"a")))], Vec::new()).await;
        assert_eq!((r.status, r.body["code"].as_str()), (400, Some("BAD_REQUEST")));
        let r = tus.send(Method::POST, &endpoint, &[("tus-resumable", "1.0.0".into()), ("upload-length", (17u64 << 30).to_string()), ("upload-metadata", format!("filename {}", b64(b"a")))], Vec::new()).await;
        assert_eq!(r.status, 413);
        let r = tus.send(Method::POST, &endpoint, &[("tus-resumable", "1.0.0".into()), ("upload-length", "5".into()), ("upload-metadata", "filename !!!".into())], Vec::new()).await;
        assert_eq!(r.status, 400);
        let r = tus.send(Method::POST, &endpoint, &[("tus-resumable", "1.0.0".into()), ("upload-length", "5".into()), ("upload-metadata", format!("path {}", b64(b"../../../etc/passwd")))], Vec::new()).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        // Over the disk limit (256 MiB): refused before any byte is sent.
        let r = tus.send(Method::POST, &endpoint, &[("tus-resumable", "1.0.0".into()), ("upload-length", (300u64 << 20).to_string()), ("upload-metadata", format!("filename {}", b64(b"big")))], Vec::new()).await;
        assert_eq!(r.status, 413, "{:?}", r.body);

        let url = tus.create(&id, 11, "/docs/", "hello.txt").await;
        assert!(url.starts_with(&format!("{endpoint}/")), "{url}");
        let r = tus.head(&url).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.offset(), 0);
        assert_eq!(r.header("upload-length"), Some("11"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r.header("upload-metadata").is_some_and(|m| m.contains(&b64(b"hello.txt"))));
        assert!(r.header("upload-expires").is_some_and(|e| e.ends_with(" GMT")));
        let r = tus.send(Method::HEAD, &url, &[], Vec::new()).await;
        assert_eq!(r.status, 412);

        // Appends: content type, offsets and checksums are checked.
        let r = tus.send(Method::PATCH, &url, &[("tus-resumable", "1.0.0".into()), ("content-type", "application/json".into()), ("upload-offset", "0".into())], b"hello".to_vec()).await;
        assert_eq!(r.status, 415);
        let r = tus.patch(&url, 3, b"hello", None).await;
        assert_eq!((r.status, r.body["code"].as_str()), (409, Some("OFFSET_MISMATCH")));
        let wrong = format!("sha256 {}", b64(&sha2::Sha256::digest(b"not this")));
        let r = tus.patch(&url, 0, b"hello", Some(wrong)).await;
        assert_eq!((r.status, r.body["code"].as_str()), (460, Some("CHECKSUM_MISMATCH")));
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
        let r = tus.patch(&url, 0, b"hello", Some("md5 AAAA".into())).await;
        assert_eq!(r.status, 400);
        assert_eq!(tus.head(&url).await.offset(), 0, "the bad chunk was discarded");
        let r = tus.patch(&url, 0, b"hello", None).await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        assert_eq!(r.offset(), 5);
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
        assert!(!server.file("docs/hello.txt").exists(), "no file before the last byte");
        let right = format!("sha256 {}", b64(&sha2::Sha256::digest(b" world")));
        let r = tus.patch(&url, 5, b" world", Some(right)).await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        assert_eq!(r.offset(), 11);
        assert_eq!(std::fs::read(server.file("docs/hello.txt")).expect("placed"), b"hello world");
        assert!(!server.part(&url).exists());
        assert_eq!(tus.head(&url).await.offset(), 11);
        assert_eq!(tus.patch(&url, 11, b"more", None).await.status, 409);

        // creation-with-upload, with the spec's checksum example (sha1 of "hello world").
        let r = tus.send(Method::POST, &endpoint, &[
            ("tus-resumable", "1.0.0".into()),
            ("upload-length", "11".into()),
            ("content-type", OCTETS.into()),
            ("upload-checksum", "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=".into()),
            ("upload-metadata", format!("filename {}", b64(b"spec.txt"))),
        ], b"hello world".to_vec()).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.offset(), 11);
        assert!(r.header("upload-expires").is_none(), "complete uploads do not expire");
        assert_eq!(std::fs::read(server.file("spec.txt")).expect("placed"), b"hello world");
        // The first chunk rides on the POST.
        let r = tus.send(Method::POST, &endpoint, &[
            ("tus-resumable", "1.0.0".into()),
            ("upload-length", "6".into()),
            ("content-type", OCTETS.into()),
            ("upload-metadata", format!("path {}", b64(b"/cwu.txt"))),
        ], b"abc".to_vec()).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.offset(), 3);
        let cwu = r.header("location").expect("location").to_string();
        assert_eq!(tus.patch(&cwu, 3, b"defg", None).await.status, 413, "past Upload-Length");
        assert_eq!(tus.patch(&cwu, 3, b"def", None).await.offset(), 6);
        assert_eq!(std::fs::read(server.file("cwu.txt")).expect("placed"), b"abcdef");
        // An empty file is complete on creation.
        let empty = tus.create(&id, 0, "/", "empty.txt").await;
        assert_eq!(tus.head(&empty).await.offset(), 0);
        assert_eq!(std::fs::read(server.file("empty.txt")).expect("placed"), b"");

        // Termination: 204, then the upload is gone, with its partial data.
        let url = tus.create(&id, 10, "/", "gone.bin").await;
        assert_eq!(tus.patch(&url, 0, b"12345", None).await.offset(), 5);
        assert!(server.part(&url).exists());
        let r = tus.send(Method::DELETE, &url, &[("tus-resumable", "1.0.0".into())], Vec::new()).await;
        assert_eq!(r.status, 204);
        assert_eq!(tus.head(&url).await.status, 404);
        assert_eq!(tus.patch(&url, 5, b"67890", None).await.status, 404);
        assert!(!server.part(&url).exists());
        assert!(!server.file("gone.bin").exists());

        // Credentials and permissions as every protected route.
        let anon = Tus::new(&app, "garbage");
        assert_eq!(anon.head(&empty).await.status, 401);
        let stranger = app.register("stranger@example.com").await;
        let other = Tus::new(&app, &stranger.access);
        assert_eq!(other.patch(&url, 0, b"x", None).await.status, 404);
        let r = other.send(Method::POST, &endpoint, &[("tus-resumable", "1.0.0".into()), ("upload-length", "1".into()), ("upload-metadata", format!("filename {}", b64(b"x")))], Vec::new()).await;
        assert_eq!(r.status, 404);
        server.stop().await;
    }
}

/// Sends a PATCH over a raw socket and hangs up after `sent` of the `declared` bytes.
async fn cut_patch(base: &str, token: &str, url: &str, offset: u64, data: &[u8], declared: usize) {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "PATCH {url} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: {OCTETS}\r\nUpload-Offset: {offset}\r\n\
         Content-Length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(data).await.expect("body");
    s.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(s);
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + i / 7) % 251).unwrap_or(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_resume_after_a_cut_client_a_panel_restart_and_an_agent_restart() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let mut server = Server::start(&app, &admin.access, 0).await;
    let id = server.id.clone();
    let data = pattern(3 << 20);
    let mib = 1usize << 20;
    let tus = Tus::new(&app, &admin.access);
    let url = tus.create(&id, data.len() as u64, "/big", "blob.bin").await;
    assert_eq!(
        tus.patch(&url, 0, &data[..mib], None).await.offset(),
        mib as u64
    );

    // The client goes away mid-body: what arrived is kept.
    cut_patch(
        &app.base,
        &admin.access,
        &url,
        mib as u64,
        &data[mib..mib + mib / 4],
        mib,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut offset;
    loop {
        let r = tus.head(&url).await;
        assert_eq!(r.status, 200);
        offset = r.offset();
        if offset > mib as u64 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        offset > mib as u64 && offset <= (mib + mib / 4) as u64,
        "offset {offset}"
    );

    // The panel restarts on the same address: the record and the offset are still there.
    let mut panel_config = app.state.config.clone();
    panel_config.listen = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let data_dir = app.stop_keep_dir().await;
    let app = shardlyn_tests::start_with_config(Engine::Sqlite, data_dir, panel_config).await;
    let login = app
        .login("admin@example.com", shardlyn_tests::PASSWORD)
        .await;
    wait_node(&app, &login.access, &server.config.node_id, "online").await;
    let tus = Tus::new(&app, &login.access);
    assert_eq!(tus.head(&url).await.offset(), offset);
    let next = 2 * mib as u64;
    let r = tus
        .patch(
            &url,
            offset,
            &data[usize::try_from(offset).expect("usize")..2 * mib],
            None,
        )
        .await;
    assert_eq!(r.offset(), next, "{:?}", r.body);

    // The agent restarts: the partial file and its sidecar are read back.
    server.restart_agent(&app, &login.access).await;
    assert_eq!(tus.head(&url).await.offset(), next);
    assert!(!server.file("big/blob.bin").exists());
    let r = tus.patch(&url, next, &data[2 * mib..], None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(r.offset(), data.len() as u64);
    let placed = std::fs::read(server.file("big/blob.bin")).expect("placed");
    assert!(placed == data, "the placed file differs");
    server.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_uploads_answer_410() {
    // Sweeps at their default (every 60 s, the panel's first at start): the expired
    // record stays for the length of this test.
    let app = spawn_app_with(Engine::Sqlite, |c| c.instances.upload_expiry_secs = 60).await;
    let admin = app.bootstrap_admin().await;
    let server = Server::start(&app, &admin.access, 0).await;
    let tus = Tus::new(&app, &admin.access);
    let url = tus.create(&server.id, 10, "/", "late.bin").await;
    let r = tus.patch(&url, 0, b"12345", None).await;
    assert_eq!(r.offset(), 5);
    assert!(r.header("upload-expires").is_some());
    assert!(server.part(&url).exists());
    // The panel's clock moves past the expiry (a minute) instead of the test waiting.
    app.state.clock.advance(Duration::from_secs(61));
    assert_eq!(tus.head(&url).await.status, 410);
    assert_eq!(tus.patch(&url, 5, b"67890", None).await.status, 410);
    assert!(
        !server.file("late.bin").exists(),
        "an expired upload never lands"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_uploads_lose_their_data_and_record_with_no_other_upload() {
    let app = spawn_app_with(Engine::Sqlite, |c| {
        c.instances.upload_expiry_secs = 1;
        c.jobs.upload_sweep_secs = 1;
    })
    .await;
    let admin = app.bootstrap_admin().await;
    let server = Server::start_with(&app, &admin.access, 0, "upload_sweep_secs = 1\n").await;
    let tus = Tus::new(&app, &admin.access);
    let url = tus.create(&server.id, 10, "/", "late.bin").await;
    assert_eq!(tus.patch(&url, 0, b"12345", None).await.offset(), 5);
    assert!(server.part(&url).exists());
    // The agent's sweep removes the partial data and the panel's job the record.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while server.part(&url).exists() || tus.head(&url).await.status != 404 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expired upload still there: data {}, HEAD {}",
            server.part(&url).exists(),
            tus.head(&url).await.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SHARDLYN_TEST_SMTP_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Path::new(&home).join(".cache/shardlyn/venv/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_tus_client_uploads_a_file() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let server = Server::start(&app, &admin.access, 0).await;
    let data = pattern(5 << 20);
    let src = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(src.path(), &data).expect("write source");
    let script = shardlyn_tests::crate_path("support/tus_client.py");
    let endpoint = format!("{}/v1/instances/{}/files/tus", app.base, server.id);
    let token = admin.access.clone();
    let path = src.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .args([endpoint.as_str(), token.as_str()])
            .arg(&path)
            .args(["/mods", "tuspy.bin", &(1 << 20).to_string()])
            .output()
    })
    .await
    .expect("join")
    .expect("tuspy runs (scripts/dev-services installs it)");
    assert!(
        out.status.success(),
        "tuspy failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let placed = std::fs::read(server.file("mods/tuspy.bin")).expect("placed");
    assert!(placed == data, "tuspy's upload differs");
    server.stop().await;
}
