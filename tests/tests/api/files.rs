//! The file manager end to end: a real panel, a real agent through the tunnel, real
//! Docker for the instance. Every route on a live instance; the traversal/symlink matrix
//! (the denylist matrix is in the agent's unit tests); the disk limit leaving no partial
//! file; a multipart upload larger than the panel's `max_body_bytes`; range and zip
//! downloads; the first page of a 100,000-entry directory.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::{Engine, Resp, TestApp, both_engines, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(60);

struct Server {
    agent: LocalAgent,
    dir: tempfile::TempDir,
    id: String,
}

impl Server {
    async fn start(app: &TestApp, access: &str, disk_mb: i64) -> Self {
        let (config, dir) = register_node(app, access).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(app, access, &config.node_id, "online").await;
        let workload = busybox_workload(app, access).await;
        let instance = app
            .post(
                "/v1/instances",
                Some(access),
                json!({
                    "name": "files",
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
        Self { agent, dir, id }
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join("volumes").join(&self.id).join(rel)
    }

    fn url(&self, rest: &str) -> String {
        format!("/v1/instances/{}/files{rest}", self.id)
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn raw_get(
    app: &TestApp,
    t: &str,
    path: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.client.get(format!("{}{path}", app.base)).bearer_auth(t);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = req.send().await.expect("reaches the panel");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body").to_vec();
    (status, headers, bytes)
}

fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "shardlyn-test-boundary-7d1e";
    let mut body = Vec::new();
    for (name, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn put_content(app: &TestApp, t: &str, s: &Server, path: &str, data: &[u8]) -> Resp {
    app.raw(
        Method::PUT,
        &s.url(&format!("/content?path={}", enc(path))),
        Some(t),
        "text/plain",
        data.to_vec(),
    )
    .await
}

both_engines! {
    async fn every_file_route_works_on_a_live_instance(engine) {
        let app = spawn_app_with(engine, |c| c.max_body_bytes = 64 * 1024).await;
        let admin = app.bootstrap_admin().await;
        let t = admin.access.as_str();
        let s = Server::start(&app, t, 2).await;

        // Write, read, list.
        put_content(&app, t, &s, "/server.properties", b"motd=hello\n").await.expect(200);
        assert_eq!(std::fs::read(s.file("server.properties")).expect("written"), b"motd=hello\n");
        let r = app.get(&s.url("/content?path=/server.properties"), Some(t)).await.expect(200);
        assert_eq!(r.text, "motd=hello\n");
        app.post(&s.url("/mkdir"), Some(t), json!({"path": "/plugins/conf"})).await.expect(201);
        let list = app.get(&s.url("?path=/&per_page=1000"), Some(t)).await.expect(200).body;
        let names: Vec<&str> = list["entries"].as_array().expect("entries").iter().filter_map(|e| e["name"].as_str()).collect();
        assert!(names.contains(&"plugins") && names.contains(&"server.properties"), "{list}");
        let first = &list["entries"][0];
        assert_eq!(first["kind"], "directory", "directories first: {list}");

        // Binary content is refused by the editor, downloadable whole or by range.
        std::fs::write(s.file("blob.bin"), [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9]).expect("blob");
        app.get(&s.url("/content?path=/blob.bin"), Some(t)).await.expect_error(422, "BINARY_FILE");
        let (st, h, body) = raw_get(&app, t, &s.url("/download?path=/blob.bin"), None).await;
        assert_eq!((st, body.len()), (200, 10));
        assert!(h.get("content-disposition").is_some());
        let (st, h, body) = raw_get(&app, t, &s.url("/download?path=/blob.bin"), Some("bytes=2-5")).await;
        assert_eq!(st, 206);
        assert_eq!(body, vec![2, 3, 4, 5]);
        assert_eq!(h.get("content-range").and_then(|v| v.to_str().ok()), Some("bytes 2-5/10"));
        let (st, _, _) = raw_get(&app, t, &s.url("/download?path=/blob.bin"), Some("bytes=50-")).await;
        assert_eq!(st, 416);

        // Move, copy, chmod, stat, search.
        app.post(&s.url("/move"), Some(t), json!({"from": "/blob.bin", "to": "/plugins/blob.bin"})).await.expect(200);
        assert!(s.file("plugins/blob.bin").exists() && !s.file("blob.bin").exists());
        app.post(&s.url("/move"), Some(t), json!({"from": "/plugins/blob.bin", "to": "/server.properties"})).await.expect_error(409, "FILE_EXISTS");
        app.post(&s.url("/copy"), Some(t), json!({"from": "/plugins", "to": "/plugins-copy"})).await.expect(201);
        assert!(s.file("plugins-copy/blob.bin").exists());
        let r = app.post(&s.url("/chmod"), Some(t), json!({"path": "/server.properties", "mode": "600"})).await.expect(200);
        assert_eq!(r.body["mode"], "600");
        let r = app.get(&s.url("/stat?path=/plugins"), Some(t)).await.expect(200);
        assert_eq!(r.body["kind"], "directory");
        let r = app.get(&s.url("/search?q=*.bin"), Some(t)).await.expect(200);
        assert_eq!(r.body["entries"].as_array().map(Vec::len), Some(2), "{}", r.text);

        // Multipart upload larger than max_body_bytes (64 KiB): streamed, not refused.
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (ct, body) = multipart(&[("big.dat", &big), ("small.txt", b"hi")]);
        let r = app.raw(Method::POST, &s.url("/upload?path=/plugins"), Some(t), &ct, body).await.expect(201);
        assert_eq!(r.body["files"][0]["size"], 300_000, "{}", r.text);
        assert_eq!(std::fs::read(s.file("plugins/big.dat")).expect("uploaded"), big);
        assert_eq!(std::fs::read(s.file("plugins/small.txt")).expect("uploaded"), b"hi");
        // The same size through a JSON route still hits the global limit.
        let huge = json!({"path": "x".repeat(100_000)});
        assert_eq!(app.post(&s.url("/mkdir"), Some(t), huge).await.status, 413);

        // Zip download of a directory is a readable zip.
        let (st, h, body) = raw_get(&app, t, &s.url("/download-zip?path=/plugins"), None).await;
        assert_eq!(st, 200);
        assert_eq!(h.get("content-type").and_then(|v| v.to_str().ok()), Some("application/zip"));
        assert_eq!(&body[..2], b"PK");
        let inner = zip_entry(&body, "big.dat");
        assert_eq!(inner, big);

        // Compress, delete the originals, decompress them back.
        let r = app.post(&s.url("/compress"), Some(t), json!({"root": "/plugins", "files": ["big.dat", "conf"], "format": "tar.zst", "name": "pack.tar.zst"})).await.expect(201);
        assert_eq!(r.body["path"], "/plugins/pack.tar.zst");
        let r = app.call(Method::DELETE, &s.url(""), Some(t), Some(&json!({"paths": ["/plugins/big.dat", "/plugins/conf"]}))).await.expect(200);
        assert_eq!(r.body["deleted"], 2);
        assert!(!s.file("plugins/big.dat").exists());
        app.post(&s.url("/decompress"), Some(t), json!({"path": "/plugins/pack.tar.zst"})).await.expect(200);
        assert_eq!(std::fs::read(s.file("plugins/big.dat")).expect("extracted"), big);
        assert!(s.file("plugins/conf").is_dir());
        app.post(&s.url("/compress"), Some(t), json!({"root": "/", "files": ["plugins-copy"], "format": "zip", "name": "c.zip"})).await.expect(201);
        app.post(&s.url("/decompress"), Some(t), json!({"path": "/c.zip", "destination": "/unzipped"})).await.expect(200);
        assert!(s.file("unzipped/plugins-copy/blob.bin").exists());

        // Over the editor cap, then over the disk limit (2 MiB): refused, no partial file left.
        let usage_before = std::fs::read_dir(s.file("")).expect("vol").count();
        let mut req = app.client.put(format!("{}{}", app.base, s.url("/content?path=/nope.txt"))).bearer_auth(t);
        req = req.body(vec![b'a'; 11 * 1024 * 1024]);
        assert_eq!(req.send().await.expect("sent").status().as_u16(), 413, "over the 10 MiB editor cap");
        // 40 MiB sent at full speed: the node refuses at 10 MiB with 30 MiB still coming.
        // The panel reads and discards the rest before answering, so the client reads the
        // 413; hanging up on unread bytes would reset the connection (a broken pipe).
        let req = app.client.put(format!("{}{}", app.base, s.url("/content?path=/nope.txt"))).bearer_auth(t);
        let r = req.body(vec![b'a'; 40 * 1024 * 1024]).send().await.expect("the refusal is read, not a broken pipe");
        assert_eq!(r.status().as_u16(), 413, "over the editor cap, with much more to send");
        assert!(!s.file("nope.txt").exists());
        assert_eq!(std::fs::read_dir(s.file("")).expect("vol").count(), usage_before, "no temp file left");
        // 16 MiB: the node refuses at 2 MiB while the client is still sending, and the
        // client reads the refusal (the panel drains the rest instead of hanging up).
        let over = vec![9u8; 16 * 1024 * 1024];
        let (ct, body) = multipart(&[("huge.dat", &over)]);
        app.raw(Method::POST, &s.url("/upload?path=/"), Some(t), &ct, body).await.expect_error(413, "DISK_LIMIT");
        assert!(!s.file("huge.dat").exists());
        assert_eq!(std::fs::read_dir(s.file("")).expect("vol").count(), usage_before, "no temp file left");

        // Pull goes through the outbound guard: what the agent's allow list does not name
        // is refused (nothing fetched); the loopback panel (allow-listed for the test
        // agents) is reachable.
        for url in ["http://127.0.0.2:9/x", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/x", "http://[fe80::1]/x"] {
            let r = app.post(&s.url("/pull"), Some(t), json!({"url": url, "path": "/"})).await.expect_error(422, "OUTBOUND_DENIED");
            assert!(r.text.contains("refusing to connect"), "{url}: {}", r.text);
        }
        app.post(&s.url("/pull"), Some(t), json!({"url": "ftp://example.com/x", "path": "/"})).await.expect_error(422, "VALIDATION_ERROR");
        app.post(&s.url("/pull"), Some(t), json!({"url": format!("{}/health", app.base), "path": "/", "name": "pulled.json"})).await.expect(201);
        assert!(std::fs::read_to_string(s.file("pulled.json")).expect("pulled").contains("ok"));

        // Reads need instances.files.read: a stranger gets 404.
        let other = app.register("stranger@example.com").await;
        app.get(&s.url("?path=/"), Some(&other.access)).await.expect(404);

        s.agent.stop().await;
        drop(s.dir);
        app.stop().await;
    }
}

/// SQLite only: the database plays no part in listing a directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_page_of_a_100k_entry_directory() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = admin.access.as_str();
    let s = Server::start(&app, t, 1024).await;
    let big = s.file("big");
    std::fs::create_dir_all(&big).expect("dir");
    for i in 0..100_000u32 {
        std::fs::File::create(big.join(format!("f{i:06}"))).expect("file");
    }
    std::fs::create_dir(big.join("zz-dir")).expect("dir");
    let r = app
        .get(&s.url("?path=/big&page=2&per_page=1000"), Some(t))
        .await
        .expect(200);
    assert_eq!(r.body["total"], 100_001);
    let entries = r.body["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1000);
    assert_eq!(entries[0]["name"], "f000999", "dirs first, then by name");
    let r = app
        .get(&s.url("?path=/big&per_page=5000"), Some(t))
        .await
        .expect(200);
    assert_eq!(r.body["entries"][0]["name"], "zz-dir");
    assert_eq!(r.body["per_page"], 1000, "per_page is capped");
    // Traversal through the panel, raw and percent-encoded.
    for bad in ["/../..", "..%2F..%2Fetc", "%2e%2e/%2e%2e"] {
        app.get(&s.url(&format!("?path={bad}")), Some(t))
            .await
            .expect_error(400, "BAD_PATH");
    }
    std::os::unix::fs::symlink("/etc", s.file("etc")).expect("symlink");
    app.get(&s.url("/content?path=/etc/passwd"), Some(t))
        .await
        .expect_error(403, "PATH_ESCAPE");
    app.get(&s.url("?path=/etc"), Some(t))
        .await
        .expect_error(403, "PATH_ESCAPE");
    app.get(&s.url("/download?path=/etc/hostname"), Some(t))
        .await
        .expect_error(403, "PATH_ESCAPE");
    s.agent.stop().await;
    app.stop().await;
}

fn zip_entry(zip: &[u8], name: &str) -> Vec<u8> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).expect("a readable zip");
    let mut entry = archive.by_name(name).expect("entry in the zip");
    let mut out = Vec::new();
    entry.read_to_end(&mut out).expect("entry reads");
    out
}

/// The panel checks a files route's JSON body and query against their types before it
/// relays anything: with the node gone, a well-formed request is a 409 `NODE_OFFLINE`,
/// a malformed one a 400 naming the field (so it never needed the node). SQLite only:
/// the database plays no part in checking a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_or_query_is_refused_by_the_panel() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = admin.access.as_str();
    let Server { agent, dir, id } = Server::start(&app, t, 16).await;
    let url = |rest: &str| format!("/v1/instances/{id}/files{rest}");
    agent.stop().await;
    let well_formed = json!({"from": "/a", "to": "/b"});
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = app.post(&url("/move"), Some(t), well_formed.clone()).await;
        if r.status == 409 {
            r.expect_error(409, "NODE_OFFLINE");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node still online: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = [
        ("/move", json!({"from": "/a"}), "`to`"),
        ("/copy", json!({"from": "/a", "to": 7}), "to"),
        ("/chmod", json!({"path": "/a", "mode": 755}), "mode"),
        ("/compress", json!({"format": "rar"}), "format"),
        ("/pull", json!({"path": "/"}), "`url`"),
    ];
    for (route, body, field) in refused {
        let r = app
            .post(&url(route), Some(t), body)
            .await
            .expect_error(400, "BAD_REQUEST");
        assert!(r.text.contains(field), "{route}: {}", r.text);
    }
    let r = app
        .call(
            Method::DELETE,
            &url(""),
            Some(t),
            Some(&json!({"paths": "/a"})),
        )
        .await
        .expect_error(400, "BAD_REQUEST");
    assert!(r.text.contains("paths"), "{}", r.text);
    for (query, field) in [
        ("?page=two", "page"),
        ("/search?path=/", "q"),
        ("?sort=colour", "sort"),
    ] {
        let r = app
            .get(&url(query), Some(t))
            .await
            .expect_error(400, "BAD_REQUEST");
        assert!(r.text.contains(field), "{query}: {}", r.text);
    }
    // Authorization still comes first: a stranger gets 404 whatever they send.
    let other = app.register("stranger@example.com").await;
    app.post(&url("/move"), Some(&other.access), json!({"from": 1}))
        .await
        .expect_error(404, "NOT_FOUND");
    drop(dir);
    app.stop().await;
}
