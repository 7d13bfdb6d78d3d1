//! Health probes, Prometheus metrics, TLS with the self-signed CA, graceful shutdown.

use serde_json::json;
use sha2::Digest;
use shardlyn_tests::{both_engines, redis_url, spawn_app, spawn_app_with};

both_engines! {
    async fn probes_answer(engine) {
        let app = spawn_app(engine).await;
        for path in ["/health", "/health/live"] {
            assert_eq!(app.get(path, None).await.expect(200).body, json!({"status": "ok"}));
        }
        for path in ["/health/ready", "/ready"] {
            let r = app.get(path, None).await.expect(200);
            assert_eq!(r.body["checks"]["database"], "up");
            assert!(r.body["checks"].get("redis").is_none(), "redis is not configured");
        }
        let d = app.get("/health/detailed", None).await.expect(200);
        let backend = if engine == shardlyn_tests::Engine::Sqlite { "sqlite" } else { "postgres" };
        assert_eq!(d.body["checks"]["database"]["backend"], backend);
        assert_eq!(d.body["checks"]["redis"]["status"], "disabled");

        // With the database gone, readiness says so with 503 while liveness stays up.
        app.state.db.pool.close().await;
        let r = app.get("/health/ready", None).await.expect(503);
        assert_eq!(r.body["checks"]["database"], "down");
        app.get("/health/detailed", None).await.expect(503);
        app.get("/health", None).await.expect(200);
    }

    async fn metrics_count_requests_by_matched_path(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("metrics@example.com").await;
        for _ in 0..3 {
            app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        }
        app.get("/v1/organizations/abc", Some(&s.access)).await.expect(404);
        let m = app.get("/metrics", None).await.expect(200);
        let line = m
            .text
            .lines()
            .find(|l| l.starts_with("shardlyn_http_requests_total") && l.contains("path=\"/v1/users/me\"") && l.contains("status=\"200\""))
            .unwrap_or_else(|| panic!("no counter for /v1/users/me in\n{}", m.text));
        let count: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value");
        assert!(count >= 4.0, "{line}");
        assert!(m.text.contains("path=\"/v1/organizations/{orgId}\""), "matched path, not raw path");
        assert!(m.text.contains("shardlyn_http_request_duration_seconds_bucket"));
        assert!(m.text.contains("shardlyn_db_pool_connections{state=\"idle\"}"));
    }

    async fn graceful_stop_closes_the_port(engine) {
        let app = spawn_app(engine).await;
        let base = app.base.clone();
        app.get("/health", None).await.expect(200);
        app.stop().await;
        assert!(reqwest::get(format!("{base}/health")).await.is_err(), "port still open");
    }
}

#[tokio::test]
async fn tls_auto_serves_https_with_a_pinnable_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = shardlyn_tests::fresh_database(shardlyn_tests::Engine::Sqlite, dir.path()).await;
    let mut config = shardlyn_tests::test_config(dir.path(), url);
    config.listen = "0.0.0.0:0".parse().expect("addr");
    let app = shardlyn_tests::start_with_config(shardlyn_tests::Engine::Sqlite, dir, config).await;
    assert!(app.base.starts_with("https://"));
    let ca = app.get("/v1/ca", None).await.expect(200);
    let pem = ca.body["pem"].as_str().expect("pem").to_string();
    let fingerprint = ca.body["sha256"].as_str().expect("sha256").to_string();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // The fingerprint is the SHA-256 of the CA's DER, as ab:cd:...
    let der = pem_der(&pem);
    let expected: Vec<String> = sha2::Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(fingerprint, expected.join(":"));
    // A client that trusts only this CA reaches the panel by name and by IP.
    let pinned = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("cert"))
        .build()
        .expect("client");
    let port = app.base.rsplit(':').next().expect("port").to_string();
    for host in ["localhost", "127.0.0.1"] {
        let r = pinned
            .get(format!("https://{host}:{port}/health"))
            .send()
            .await
            .expect("pinned TLS works");
        assert_eq!(r.status(), 200);
    }
    // Without the CA, verification fails.
    let strict = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .expect("client");
    assert!(
        strict
            .get(format!("https://localhost:{port}/health"))
            .send()
            .await
            .is_err()
    );
    let key_mode = std::fs::metadata(app.dir.path().join("tls/ca-key.pem"))
        .expect("key")
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_mode.mode() & 0o777, 0o600, "CA key is private");
    let config = app.state.config.clone();
    let dir = app.stop_keep_dir().await;
    // The CA survives a restart: pinned clients keep working.
    let again =
        shardlyn_tests::start_with_config(shardlyn_tests::Engine::Sqlite, dir, config).await;
    let ca = again.get("/v1/ca", None).await.expect(200);
    assert_eq!(ca.body["sha256"], fingerprint.as_str());
    let port = again.base.rsplit(':').next().expect("port").to_string();
    let r = pinned
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .expect("pinned after restart");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn ca_is_404_without_a_self_signed_ca() {
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let r = app.get("/v1/ca", None).await.expect_error(404, "NOT_FOUND");
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no self-signed CA"))
    );
}

fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64")
}

#[tokio::test]
async fn tls_file_mode_serves_the_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).expect("write key");
    let url = shardlyn_tests::fresh_database(shardlyn_tests::Engine::Sqlite, dir.path()).await;
    let mut config = shardlyn_tests::test_config(dir.path(), url);
    config.tls.mode = shardlyn_panel::config::TlsMode::File;
    config.tls.cert_path = Some(dir.path().join("cert.pem"));
    config.tls.key_path = Some(dir.path().join("key.pem"));
    let app = shardlyn_tests::start_with_config(shardlyn_tests::Engine::Sqlite, dir, config).await;
    assert!(
        app.base.starts_with("https://"),
        "file mode serves TLS even on loopback"
    );
    let port = app.base.rsplit(':').next().expect("port").to_string();
    let pinned = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("cert"))
        .build()
        .expect("client");
    let r = pinned
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .expect("TLS with the given cert");
    assert_eq!(r.status(), 200);
    // A certificate from a file is not a self-signed CA to pin.
    let ca = app.get("/v1/ca", None).await.expect_error(404, "NOT_FOUND");
    assert!(
        ca.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no self-signed CA"))
    );
}

/// Redis goes with PostgreSQL (SQLite with `redis_url` is refused at start-up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_checks_redis() {
    let app = spawn_app_with(shardlyn_tests::Engine::Postgres, |c| {
        c.redis_url = redis_url();
    })
    .await;
    let r = app.get("/health/ready", None).await.expect(200);
    assert_eq!(r.body["checks"]["redis"], "up");
}
