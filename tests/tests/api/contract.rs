//! The API contract: the route table matches the reference, every protected route
//! answers 401 without credentials, unknown routes and methods answer JSON, and bad
//! input never reaches a 500.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;
use shardlyn_panel::routes::Access;
use shardlyn_tests::{both_engines, spawn_app};

/// Routes we serve that the reference does not list, and why.
const EXTRAS: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/v1/pterodactyl/imports",
        "the Pterodactyl imports, newest first (issue 20)",
    ),
    (
        "GET",
        "/v1/pterodactyl/imports/{id}",
        "one import's progress and its report per thing read (issue 20)",
    ),
    (
        "GET",
        "/v1/instances/{id}/access",
        "per-server access: who holds which keys on this server alone (issue 20)",
    ),
    (
        "POST",
        "/v1/instances/{id}/access",
        "grant an account keys on this server alone (issue 20)",
    ),
    (
        "PUT",
        "/v1/instances/{id}/access/{userId}",
        "change a per-server grant's keys (issue 20)",
    ),
    (
        "DELETE",
        "/v1/instances/{id}/access/{userId}",
        "remove a per-server grant (issue 20)",
    ),
    (
        "GET",
        "/v1/dns/records/{id}",
        "one managed DNS record (issue 18)",
    ),
    (
        "POST",
        "/v1/alerts/{id}/silence",
        "silence an alert's notifications for a while (issue 16)",
    ),
    (
        "GET",
        "/v1/alerts/maintenance",
        "maintenance windows: planned downtime fires no alert (issue 16)",
    ),
    (
        "POST",
        "/v1/alerts/maintenance",
        "open or schedule a maintenance window (issue 16)",
    ),
    (
        "GET",
        "/v1/alerts/maintenance/{id}",
        "one maintenance window (issue 16)",
    ),
    (
        "DELETE",
        "/v1/alerts/maintenance/{id}",
        "end a maintenance window early (issue 16)",
    ),
    (
        "GET",
        "/v1/credentials/providers",
        "the cloud providers and their credential fields, for forms (issue 17)",
    ),
    (
        "GET",
        "/v1/provision/{id}/logs",
        "a provisioning run's Terraform log from a position, polled by the page (issue 17)",
    ),
    (
        "GET",
        "/v1/provision/{id}/state",
        "Terraform's http state backend for the panel's own runs (issue 17)",
    ),
    (
        "POST",
        "/v1/provision/{id}/state",
        "Terraform's http state backend: write the state (issue 17)",
    ),
    (
        "DELETE",
        "/v1/provision/{id}/state",
        "Terraform's http state backend: delete the state (issue 17)",
    ),
    (
        "POST",
        "/v1/provision/{id}/state/lock",
        "Terraform's http state backend: lock, a lease (issue 17)",
    ),
    (
        "DELETE",
        "/v1/provision/{id}/state/lock",
        "Terraform's http state backend: unlock (issue 17)",
    ),
    (
        "POST",
        "/v1/alerts/read",
        "mark the alerts seen: the unread count counts from then (issue 16)",
    ),
    (
        "POST",
        "/v1/integrations/{id}/rotate-secret",
        "a new Standard Webhooks signing secret for a generic webhook, shown once (issue 16)",
    ),
    (
        "POST",
        "/v1/nodes/{id}/ssh/tickets",
        "single-use ticket a browser opens the SSH WebSocket with, as consoles (issue 15)",
    ),
    (
        "POST",
        "/v1/nodes/{id}/terminal/tickets",
        "single-use ticket a browser opens the terminal WebSocket with (issue 15)",
    ),
    (
        "GET",
        "/v1/nodes/{id}/recordings",
        "recordings of SSH and terminal sessions (issue 15)",
    ),
    (
        "GET",
        "/v1/nodes/{id}/recordings/{rid}",
        "one session recording (issue 15)",
    ),
    (
        "GET",
        "/v1/nodes/{id}/recordings/{rid}/cast",
        "a session recording as asciicast v2 (issue 15)",
    ),
    (
        "GET",
        "/v1/ssh/krl",
        "the OpenSSH KRL of revoked certificates, for sshd's RevokedKeys (issue 15)",
    ),
    (
        "GET",
        "/v1/events",
        "live events as Server-Sent Events (issue 13; the reference has no event stream)",
    ),
    (
        "POST",
        "/v1/instances/{id}/migrate",
        "move one server (issue 14; the reference moves a node's servers only)",
    ),
    (
        "GET",
        "/v1/admin/replicas",
        "panel replicas and the agents each holds (issue 13; the reference has one panel process)",
    ),
    (
        "GET",
        "/v1/instances/{id}/schedules",
        "schedules: list (issue 4; Pterodactyl parity, the reference has no schedules)",
    ),
    ("POST", "/v1/instances/{id}/schedules", "schedules: create"),
    (
        "GET",
        "/v1/instances/{id}/schedules/{sid}",
        "schedules: one schedule with its tasks",
    ),
    (
        "PUT",
        "/v1/instances/{id}/schedules/{sid}",
        "schedules: update, enable or disable",
    ),
    (
        "DELETE",
        "/v1/instances/{id}/schedules/{sid}",
        "schedules: delete",
    ),
    (
        "POST",
        "/v1/instances/{id}/schedules/{sid}/run",
        "schedules: run now",
    ),
    (
        "GET",
        "/v1/instances/{id}/schedules/{sid}/runs",
        "schedules: run history",
    ),
    (
        "GET",
        "/v1/instances/{id}/schedules/{sid}/runs/{rid}",
        "schedules: one run with per-task results",
    ),
    (
        "GET",
        "/v1/users/me/ssh-keys",
        "SFTP: the caller's public keys (Pterodactyl's account SSH keys)",
    ),
    ("POST", "/v1/users/me/ssh-keys", "SFTP: add a public key"),
    (
        "DELETE",
        "/v1/users/me/ssh-keys/{id}",
        "SFTP: remove a public key",
    ),
    (
        "POST",
        "/v1/instances/{id}/backups/{bid}/lock",
        "backups: lock or unlock a backup (Pterodactyl parity; delete is refused while locked)",
    ),
    (
        "GET",
        "/v1/instances/{id}/files/stat",
        "file manager: one entry's details (Wings-style)",
    ),
    (
        "GET",
        "/v1/instances/{id}/files/search",
        "file manager: search by name (glob or substring), bounded",
    ),
    (
        "POST",
        "/v1/instances/{id}/files/copy",
        "file manager: copy a file or directory (Wings/Pterodactyl parity)",
    ),
    (
        "POST",
        "/v1/instances/{id}/files/chmod",
        "file manager: change permissions (Wings/Pterodactyl parity)",
    ),
    (
        "POST",
        "/v1/instances/{id}/files/compress",
        "file manager: create zip/tar.gz/tar.zst (Wings/Pterodactyl parity)",
    ),
    (
        "POST",
        "/v1/instances/{id}/files/decompress",
        "file manager: extract an archive, zip-slip safe (Wings/Pterodactyl parity)",
    ),
    (
        "POST",
        "/v1/instances/{id}/files/pull",
        "file manager: download a URL into the files (Wings pull), private addresses refused",
    ),
    (
        "POST",
        "/v1/auth/logout",
        "issue: logout revokes the refresh token family",
    ),
    (
        "GET",
        "/v1/users/me/sessions",
        "active sessions for the account page",
    ),
    ("DELETE", "/v1/users/me/sessions/{id}", "ending one session"),
    (
        "GET",
        "/metrics",
        "Prometheus metrics (reference: Metrics Reference)",
    ),
    ("GET", "/v1/ca", "CA pinning, as in the helyos reference"),
    (
        "POST",
        "/v1/instances/{id}/reinstall",
        "issue: reinstall runs the egg's install script again",
    ),
    (
        "POST",
        "/v1/instances/{id}/console/tickets",
        "issue: single-use 30-second ticket for browser WebSockets",
    ),
    ("GET", "/v1/openapi.json", "the generated OpenAPI document"),
    (
        "POST",
        "/v1/auth/github/exchange",
        "GitHub login: the web UI trades the callback's single-use code for tokens",
    ),
    (
        "POST",
        "/v1/auth/verify-email",
        "issue 12: open registration verifies the address by a mailed single-use token",
    ),
    (
        "POST",
        "/v1/auth/verify-email/resend",
        "issue 12: mail a new verification link (answers alike for unknown addresses)",
    ),
    (
        "POST",
        "/v1/agent/register",
        "agent trades a registration token (internal)",
    ),
    (
        "GET",
        "/v1/agent/tunnel",
        "agent tunnel WebSocket (internal, X-Agent-Token)",
    ),
    (
        "OPTIONS",
        "/v1/instances/{id}/files/tus",
        "tus 1.0.0 discovery (Tus-Version, Tus-Extension, Tus-Max-Size)",
    ),
    (
        "HEAD",
        "/v1/instances/{id}/files/tus/{upload}",
        "tus 1.0.0 upload URL: offset",
    ),
    (
        "PATCH",
        "/v1/instances/{id}/files/tus/{upload}",
        "tus 1.0.0 upload URL: append",
    ),
    (
        "DELETE",
        "/v1/instances/{id}/files/tus/{upload}",
        "tus 1.0.0 upload URL: termination",
    ),
    (
        "OPTIONS",
        "/v1/instances/{id}/files/tus/{upload}",
        "tus 1.0.0 discovery on an upload URL",
    ),
    (
        "GET",
        "/downloads/shardlyn-agent/{platform}",
        "the agent binary new nodes download (issue 17), public",
    ),
    (
        "GET",
        "/install-agent.sh",
        "the agent install script of `curl ... | sh` (issue 17), public",
    ),
    (
        "GET",
        "/v1/billing/org/invoices",
        "an organization's invoices read from Stripe (issue 19)",
    ),
    (
        "GET",
        "/v1/platform-nodes",
        "the platform nodes an organization's plan places on, public face only (issue 19)",
    ),
    (
        "GET",
        "/v1/admin/platform-nodes",
        "platform nodes (or every node) with owner and capacity, for admins (issue 19)",
    ),
    (
        "PUT",
        "/v1/admin/nodes/{id}/platform",
        "mark a node as the platform's, with its public name and location (issue 19)",
    ),
    (
        "GET",
        "/ca.pem",
        "the self-signed CA as PEM for the install script to pin (issue 17), public",
    ),
];

#[derive(Debug)]
struct RefRoute {
    method: String,
    path: String,
    badge: String,
}

fn reference() -> Vec<RefRoute> {
    let text = std::fs::read_to_string(shardlyn_tests::crate_path(
        "../docs/reference/shardlyn-api.md",
    ))
    .expect("docs/reference/shardlyn-api.md");
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (method, path) = (cells.get(1)?, cells.get(2)?);
            let known = ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(method);
            (known && path.starts_with('/')).then(|| RefRoute {
                method: (*method).to_string(),
                path: (*path).to_string(),
                badge: cells.get(4).map_or(String::new(), |s| (*s).to_string()),
            })
        })
        .collect()
}

#[test]
fn route_table_matches_the_reference() {
    let reference = reference();
    assert!(
        reference.len() > 200,
        "parsed only {} reference routes",
        reference.len()
    );
    let routes = shardlyn_panel::app::routes();
    let implemented: BTreeSet<(String, String)> = routes
        .endpoints()
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_string()))
        .collect();
    for e in routes.endpoints() {
        let key = (e.method.to_string(), e.path.to_string());
        if let Some(r) = reference
            .iter()
            .find(|r| r.method == key.0 && r.path == key.1)
        {
            // 🌐 alone marks the signature-verified webhook receivers as public too.
            let expected = if r.badge.contains("Public") || r.badge.contains('🌐') {
                vec![Access::Public]
            } else if r.badge.contains("Admin") {
                vec![Access::Admin]
            } else if SESSION_ADMIN.contains(&(key.0.as_str(), key.1.as_str())) {
                // 🔒 cannot say "platform admin only": these four say what they do.
                vec![Access::SessionAdmin]
            } else if PLATFORM_ADMIN.contains(&(key.0.as_str(), key.1.as_str())) {
                vec![Access::Admin]
            } else {
                vec![Access::User, Access::Session, Access::Socket]
            };
            assert!(
                expected.contains(&e.access),
                "{} {}: badge {} but access {:?}",
                e.method,
                e.path,
                r.badge,
                e.access
            );
        } else {
            assert!(
                EXTRAS.iter().any(|(m, p, _)| *m == key.0 && *p == key.1),
                "{} {} is not in the reference (misspelled?) nor in EXTRAS",
                key.0,
                key.1
            );
        }
    }
    let missing: Vec<String> = reference
        .iter()
        .filter(|r| !implemented.contains(&(r.method.clone(), r.path.clone())))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        missing.is_empty(),
        "reference routes not implemented: {missing:#?}"
    );
}

both_engines! {
    async fn every_protected_route_answers_401_without_credentials(engine) {
        let app = spawn_app(engine).await;
        let routes = shardlyn_panel::app::routes();
        let mut checked = 0;
        for e in routes.endpoints().iter().filter(|e| e.access != Access::Public) {
            let path = fill(e.path);
            for token in [None, Some("garbage"), Some("shardlyn_api_0123456789abcdef")] {
                let body = (e.method == Method::POST || e.method == Method::PUT).then(|| json!({}));
                let r = app.call(e.method.clone(), &path, token, body.as_ref()).await;
                assert_eq!(r.status, 401, "{} {} with {token:?}: {} {}", e.method, e.path, r.status, r.text);
                // A HEAD answer has no body to carry the envelope.
                if e.method != Method::HEAD {
                    assert_eq!(r.body["code"], "UNAUTHORIZED", "{} {}", e.method, e.path);
                    assert!(r.body["error"].as_str().is_some_and(|s| !s.is_empty()));
                }
            }
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} protected routes");
    }

    async fn admin_routes_refuse_members(engine) {
        let app = spawn_app(engine).await;
        app.bootstrap_admin().await;
        let user = app.register("member@example.com").await;
        for e in shardlyn_panel::app::routes().endpoints().iter().filter(|e| e.access == Access::Admin) {
            let body = (e.method == Method::POST || e.method == Method::PUT).then(|| json!({}));
            let r = app.call(e.method.clone(), &fill(e.path), Some(&user.access), body.as_ref()).await;
            assert_eq!(r.status, 403, "{} {}: {}", e.method, e.path, r.text);
        }
    }

    async fn unknown_routes_and_methods_answer_json(engine) {
        let app = spawn_app(engine).await;
        app.get("/v1/definitely-not-here", None).await.expect_error(404, "NOT_FOUND");
        app.get("/nope", None).await.expect_error(404, "NOT_FOUND");
        app.call(Method::PATCH, "/v1/users/me", None, None).await.expect_error(405, "METHOD_NOT_ALLOWED");
        app.call(Method::DELETE, "/health", None, None).await.expect_error(405, "METHOD_NOT_ALLOWED");
    }

    async fn bad_input_never_reaches_a_500(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let json_ct = "application/json";
        let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
            ("/v1/auth/login", json_ct, b"{not json".to_vec(), 400, "BAD_REQUEST"),
            ("/v1/auth/login", json_ct, b"".to_vec(), 400, "BAD_REQUEST"),
            ("/v1/auth/login", json_ct, b"[]".to_vec(), 400, "BAD_REQUEST"),
            ("/v1/auth/login", json_ct, br#"{"email": 5, "password": "x"}"#.to_vec(), 400, "BAD_REQUEST"),
            ("/v1/auth/login", json_ct, br#"{"email": "a@b.co"}"#.to_vec(), 400, "BAD_REQUEST"),
            ("/v1/auth/login", "text/plain", br#"{"email":"a@b.co","password":"x"}"#.to_vec(), 400, "BAD_REQUEST"),
            ("/v1/organizations", json_ct, br#"{"name": ""}"#.to_vec(), 400, "VALIDATION_ERROR"),
            ("/v1/organizations", json_ct, br#"{"name": "\u0000evil"}"#.to_vec(), 400, "VALIDATION_ERROR"),
            ("/v1/organizations", json_ct, br#"{"name": null}"#.to_vec(), 400, "BAD_REQUEST"),
            ("/v1/organizations", json_ct, br#"{"name": ["a"]}"#.to_vec(), 400, "BAD_REQUEST"),
            ("/v1/users", json_ct, br#"{"email": "x@y.zz", "password": 12345678901}"#.to_vec(), 400, "BAD_REQUEST"),
        ];
        for (path, ct, body, status, code) in cases {
            let r = app.raw(Method::POST, path, t, ct, body).await;
            assert_eq!((r.status, r.body["code"].as_str()), (status, Some(code)), "{path}: {}", r.text);
        }
        // A body over the limit: 413 in the envelope (on its own connection, which the
        // server closes without reading the rest).
        let big = reqwest::Client::new()
            .post(format!("{}/v1/auth/login", app.base))
            .header("content-type", json_ct)
            .header("connection", "close")
            .body(vec![b' '; 3 * 1024 * 1024])
            .send()
            .await
            .expect("response to an oversized body");
        assert_eq!(big.status(), 413);
        let body: serde_json::Value = big.json().await.expect("json envelope");
        assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
        // SQL metacharacters and unicode are data, not code.
        for name in ["'; DROP TABLE users; --", "Robert'); DELETE FROM organizations;--", "名前 🚀 Ωmega", "%_\\"] {
            let r = app.post("/v1/organizations", t, json!({"name": name})).await.expect(201);
            assert_eq!(r.body["name"], name);
        }
        for q in ["%27%20OR%201%3D1--", "%25", "_", "%5C", "%F0%9F%9A%80", ""] {
            app.get(&format!("/v1/users?q={q}"), t).await.expect(200);
            app.get(&format!("/v1/admin/audit-logs?action={q}&actor={q}"), t).await.expect(200);
        }
        let r = app.get("/v1/users?q='%20OR%20'1'%3D'1", t).await.expect(200);
        assert_eq!(r.body["data"].as_array().map(Vec::len), Some(0));
        for bad in ["page=0", "per_page=0", "per_page=101", "page=-1", "page=abc", "per_page=1e9"] {
            app.get(&format!("/v1/users?{bad}"), t).await.expect(400);
        }
        app.get("/v1/admin/audit-logs?since=yesterday", t).await.expect_error(400, "VALIDATION_ERROR");
        app.get("/v1/organizations/%27%20OR%201%3D1", t).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/organizations/{}", "x".repeat(5000)), t).await.expect_error(404, "NOT_FOUND");
        assert_eq!(app.get("/v1/users/me", t).await.status, 200, "users table intact");
    }

    async fn openapi_document_lists_every_route(engine) {
        let app = spawn_app(engine).await;
        let doc = app.get("/v1/openapi.json", None).await.expect(200);
        assert_eq!(doc.body["openapi"], "3.1.0");
        for e in shardlyn_panel::app::routes().endpoints() {
            let op = &doc.body["paths"][e.path][e.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{} {} missing from openapi.json", e.method, e.path);
            assert_eq!(op["summary"], e.summary);
            let open = op["security"].as_array().is_none_or(Vec::is_empty);
            assert_eq!(open, e.access == Access::Public, "{} {}", e.method, e.path);
        }
    }
}

/// The routes the reference marks 🔒 that answer only platform admins (`Access::Admin`):
/// a Pterodactyl import creates accounts on the platform (issue 20).
const PLATFORM_ADMIN: &[(&str, &str)] = &[
    ("POST", "/v1/pterodactyl/validate"),
    ("POST", "/v1/pterodactyl/servers"),
    ("POST", "/v1/pterodactyl/import"),
];

/// The routes the reference marks 🔒 that answer only platform admins with a login
/// session (`Access::SessionAdmin`): the badge cannot express "admin only".
const SESSION_ADMIN: &[(&str, &str)] = &[
    ("PUT", "/v1/settings"),
    ("POST", "/v1/settings/ssh-keys"),
    ("DELETE", "/v1/settings/ssh-keys/{name}"),
    ("POST", "/v1/settings/ssh-keys/{name}/default"),
];

#[test]
fn the_session_admin_routes_are_exactly_the_four_settings_routes() {
    let declared: BTreeSet<(String, String)> = shardlyn_panel::app::routes()
        .endpoints()
        .iter()
        .filter(|e| e.access == Access::SessionAdmin)
        .map(|e| (e.method.to_string(), e.path.to_string()))
        .collect();
    let named: BTreeSet<(String, String)> = SESSION_ADMIN
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(declared, named);
}

#[test]
fn every_handler_verifies_the_credential_of_its_access_class() {
    let wrong = shardlyn_panel::app::routes().mismatches();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The document clients generate from is committed as `docs/openapi.json`; it must be
/// the one the panel serves. `SHARDLYN_UPDATE_OPENAPI=1` rewrites the file (then review
/// the diff), as does `shardlyn api openapi > docs/openapi.json`.
#[test]
fn the_committed_openapi_document_is_the_served_one() {
    let path = shardlyn_tests::crate_path("../docs/openapi.json");
    let served = shardlyn_panel::app::openapi_json();
    if std::env::var_os("SHARDLYN_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &served).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let served_json: serde_json::Value = serde_json::from_str(&served).expect("served json");
    let committed_json: serde_json::Value =
        serde_json::from_str(&committed).unwrap_or(serde_json::Value::Null);
    assert!(
        served_json == committed_json,
        "docs/openapi.json differs from the served document: run \
         `SHARDLYN_UPDATE_OPENAPI=1 cargo test -p shardlyn-tests --test api the_committed_openapi` \
         and review the diff"
    );
}

/// Every JSON answer and body has a schema of its own type, not "any value": the
/// document is something a client can be generated from.
#[test]
fn every_json_body_in_the_document_has_a_schema() {
    let doc: serde_json::Value =
        serde_json::from_str(&shardlyn_panel::app::openapi_json()).expect("json");
    let mut untyped = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let mut schemas: Vec<(String, &serde_json::Value)> = Vec::new();
            if let Some(s) = op.pointer("/requestBody/content/application~1json/schema") {
                schemas.push(("request".into(), s));
            }
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                if let Some(s) = response.pointer("/content/application~1json/schema") {
                    schemas.push((status.clone(), s));
                }
            }
            for (what, schema) in schemas {
                if schema == &serde_json::Value::Bool(true) || schema == &json!({}) {
                    untyped.push(format!("{} {path} {what}", method.to_uppercase()));
                }
            }
        }
    }
    untyped.sort();
    assert!(
        untyped.is_empty(),
        "bodies without a schema (give them a type): {untyped:#?}"
    );
}

fn fill(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "0190a0c4-0000-7000-8000-000000000000"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The query parameters each files operation documents (besides the path's `id`).
const FILES_QUERIES: &[(&str, &str, &[&str])] = &[
    ("get", "", &["path", "page", "per_page", "sort", "desc"]),
    ("delete", "", &[]),
    ("get", "/stat", &["path"]),
    ("get", "/search", &["path", "q", "limit"]),
    ("get", "/content", &["path"]),
    ("put", "/content", &["path"]),
    ("get", "/download", &["path"]),
    ("get", "/download-zip", &["path"]),
    ("post", "/upload", &["path"]),
    ("post", "/mkdir", &[]),
    ("post", "/move", &[]),
    ("post", "/copy", &[]),
    ("post", "/chmod", &[]),
    ("post", "/compress", &[]),
    ("post", "/decompress", &[]),
    ("post", "/pull", &[]),
];

/// The files routes relay bytes to the node, yet a client generated from the document
/// knows each one's query parameters, request body and success answer, with schemas.
#[test]
fn every_files_operation_documents_its_query_body_and_answer() {
    let doc: serde_json::Value =
        serde_json::from_str(&shardlyn_panel::app::openapi_json()).expect("json");
    let files: BTreeSet<(String, String)> = shardlyn_panel::app::routes()
        .endpoints()
        .iter()
        .filter(|e| e.tag == "files")
        .map(|e| (e.method.as_str().to_lowercase(), e.path.to_owned()))
        .collect();
    let listed: BTreeSet<(String, String)> = FILES_QUERIES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), format!("/v1/instances/{{id}}/files{p}")))
        .collect();
    assert_eq!(
        files, listed,
        "the files routes changed: update FILES_QUERIES"
    );
    let mut missing = Vec::new();
    for (method, rest, params) in FILES_QUERIES {
        let path = format!("/v1/instances/{{id}}/files{rest}");
        let op = &doc["paths"][&path][method];
        let name = format!("{} {path}", method.to_uppercase());
        let query: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query" && p["schema"].is_object())
            .filter_map(|p| p["name"].as_str())
            .collect();
        if query != params.iter().copied().collect() {
            missing.push(format!(
                "{name}: query parameters {query:?}, want {params:?}"
            ));
        }
        let needs_body = matches!(*method, "post" | "put" | "delete");
        let bodies = op
            .pointer("/requestBody/content")
            .and_then(|c| c.as_object());
        match bodies {
            Some(c) if c.values().all(|m| m["schema"].is_object()) => {}
            Some(_) => missing.push(format!("{name}: a request body without a schema")),
            None if needs_body => missing.push(format!("{name}: no request body")),
            None => {}
        }
        let typed_success = op["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(status, _)| status.len() == 3 && status.starts_with('2'))
            .any(|(_, r)| {
                r["content"]
                    .as_object()
                    .is_some_and(|c| !c.is_empty() && c.values().all(|m| m["schema"].is_object()))
            });
        if !typed_success {
            missing.push(format!("{name}: no success answer with a schema"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
