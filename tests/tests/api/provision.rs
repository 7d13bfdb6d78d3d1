//! Cloud provisioning (`/v1/provision*`, issue 17): requests checked field by field,
//! scoped to their organization, and the panel's Terraform `http` state backend spoken
//! the way Terraform speaks it (state with Content-MD5, LockInfo locks answering 423 with
//! the holder, leases that lapse so no lock is ever stuck, one credential per run).
//!
//! The end-to-end runs with a real `terraform` are in `provision_terraform.rs`.

use base64::Engine as _;
use serde_json::{Value, json};
use shardlyn_tests::{Engine, Session, TestApp, both_engines, spawn_app_with};

const TOKEN: &str = "hcloud-token-provision-0123456789";

/// A panel whose Hetzner API is closed: prices come from the bundled table.
async fn spawn_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, |c| {
        c.cloud.hetzner_api_url = "http://127.0.0.1:9/v1".into();
    })
    .await
}

/// A user with a Hetzner credential in their personal organization.
async fn owner(app: &TestApp, email: &str) -> (Session, String) {
    let s = app.register(email).await;
    let c = app
        .post(
            "/v1/credentials",
            Some(&s.access),
            json!({"name": "hetzner", "provider": "hetzner", "config": {"token": TOKEN}}),
        )
        .await
        .expect(201);
    (s, c.body["id"].as_str().expect("id").to_owned())
}

async fn request(app: &TestApp, s: &Session, name: &str) -> Value {
    app.post(
        "/v1/provision",
        Some(&s.access),
        json!({"provider": "hetzner", "region": "fsn1", "instance_type": "cx23", "name": name}),
    )
    .await
    .expect(201)
    .body
}

/// A running run of `request_id` with `password`, as the runner makes one (so the
/// backend can be spoken to without Terraform).
async fn fake_run(app: &TestApp, request_id: &str, password: &str, lease_until: i64) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO provision_runs (id, request_id, kind, status, password_hash, lease_until, started_at) \
         VALUES ($1, $2, 'apply', 'running', $3, $4, $5)",
    )
    .bind(&id)
    .bind(request_id)
    .bind(shardlyn_panel::auth::crypto::sha256_hex(password))
    .bind(lease_until)
    .bind(shardlyn_panel::db::now_ms())
    .execute(&app.state.db.pool)
    .await
    .expect("insert run");
    id
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn lock_info(id: &str, who: &str) -> String {
    json!({"ID": id, "Operation": "OperationTypeApply", "Info": "", "Who": who,
        "Version": "1.11.4", "Created": "2026-12-05T00:00:00Z", "Path": ""})
    .to_string()
}

/// A raw call to the state backend.
async fn backend(
    app: &TestApp,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<String>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = app.client.request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
        format!("{}{path}", app.base),
    );
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.expect("body"))
}

both_engines! {
    async fn requests_are_checked_and_scoped(engine) {
        let app = spawn_app(engine).await;
        let (s, credential) = owner(&app, "prov@example.com").await;
        let other = app.register("prov-other@example.com").await;
        let none = app.register("prov-none@example.com").await;
        let post = |body: Value| {
            let token = s.access.clone();
            let app = &app;
            async move { app.post("/v1/provision", Some(&token), body).await }
        };
        let base = json!({"provider": "hetzner", "region": "fsn1", "instance_type": "cx23", "name": "game-1"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        post(with("name", json!("Not A Hostname!"))).await.expect_error(400, "VALIDATION_ERROR");
        post(with("name", json!("-dash"))).await.expect_error(400, "VALIDATION_ERROR");
        post(with("provider", json!("cloudflare"))).await.expect_error(400, "VALIDATION_ERROR");
        post(with("region", json!("fsn1; rm -rf /"))).await.expect_error(400, "VALIDATION_ERROR");
        post(with("instance_type", json!("cx999"))).await.expect_error(400, "VALIDATION_ERROR");
        let arm = post(with("instance_type", json!("cax11"))).await.expect_error(422, "ARM_UNAVAILABLE");
        assert!(arm.body["error"].as_str().unwrap_or_default().contains("ARM"), "{}", arm.text);
        post(with("credential_id", json!("nope"))).await.expect_error(400, "VALIDATION_ERROR");
        post(with("surprise", json!(1))).await.expect(400);
        // No credential for the provider: say what to do.
        let r = app.post("/v1/provision", Some(&none.access), base.clone()).await;
        r.expect_error(422, "NO_CREDENTIAL");

        let created = post(base.clone()).await.expect(201);
        let id = created.body["id"].as_str().expect("id").to_owned();
        assert_eq!(created.body["status"], "pending");
        assert_eq!(created.body["credential_id"], credential.as_str());
        assert_eq!(created.body["image"], "debian-12");
        assert_eq!(created.body["price_monthly"], "3.99", "{}", created.text);

        let list = app.get("/v1/provision", Some(&s.access)).await.expect(200);
        assert_eq!(list.body["data"].as_array().map(Vec::len), Some(1));
        let providers = app.get("/v1/provision/providers", Some(&s.access)).await.expect(200);
        assert_eq!(providers.body["data"][0]["id"], "hetzner");

        // Another organization's request does not exist for them.
        for path in [format!("/v1/provision/{id}"), format!("/v1/provision/{id}/logs")] {
            app.get(&path, Some(&other.access)).await.expect_error(404, "NOT_FOUND");
        }
        app.post(&format!("/v1/provision/{id}/plan"), Some(&other.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
        app.delete(&format!("/v1/provision/{id}"), Some(&other.access)).await.expect_error(404, "NOT_FOUND");

        // Nothing planned: no apply.
        app.post(&format!("/v1/provision/{id}/apply"), Some(&s.access), json!({}))
            .await
            .expect_error(409, "NOT_PLANNED");
        let logs = app.get(&format!("/v1/provision/{id}/logs"), Some(&s.access)).await.expect(200);
        assert_eq!(logs.body["done"], true);

        // A request that created nothing is discarded at once.
        app.delete(&format!("/v1/provision/{id}"), Some(&s.access)).await.expect(204);
        app.get(&format!("/v1/provision/{id}"), Some(&s.access)).await.expect_error(404, "NOT_FOUND");

        // Resize is for provisioned nodes only.
        let node = app.register_node(&s.access, None, "plain").await;
        app.post(&format!("/v1/nodes/{node}/resize"), Some(&s.access), json!({"instance_type": "cx33"}))
            .await
            .expect_error(409, "NOT_PROVISIONED");
    }

    async fn the_state_backend_speaks_terraforms_protocol(engine) {
        let app = spawn_app(engine).await;
        let (s, _) = owner(&app, "backend@example.com").await;
        let id = request(&app, &s, "state-1").await["id"].as_str().expect("id").to_owned();
        let other_id = request(&app, &s, "state-2").await["id"].as_str().expect("id").to_owned();
        let now = shardlyn_panel::db::now_ms();
        let run = fake_run(&app, &id, "run-password", now + 60_000).await;
        let other_run = fake_run(&app, &other_id, "other-password", now + 60_000).await;
        let auth = basic(&run, "run-password");
        let state_path = format!("/v1/provision/{id}/state");
        let lock_path = format!("{state_path}/lock");

        // Only this request's running run gets in.
        for bad in [None, Some(basic(&run, "wrong")), Some(basic(&other_run, "other-password")), Some("Bearer x".to_owned())] {
            let (status, _, body) = backend(&app, "GET", &state_path, bad.as_deref(), None).await;
            assert_eq!(status, 401, "{bad:?}: {body}");
        }

        // No state yet.
        let (status, _, _) = backend(&app, "GET", &state_path, Some(&auth), None).await;
        assert_eq!(status, 204);

        // Lock, and a second lock answers 423 with the holder's LockInfo.
        let (status, _, body) = backend(&app, "POST", &lock_path, Some(&auth), Some(lock_info("lock-a", "runner@a"))).await;
        assert_eq!(status, 200, "{body}");
        let (status, _, body) = backend(&app, "POST", &lock_path, Some(&auth), Some(lock_info("lock-b", "runner@b"))).await;
        assert_eq!(status, 423, "{body}");
        let holder: Value = serde_json::from_str(&body).expect("LockInfo");
        assert_eq!(holder["ID"], "lock-a");
        assert_eq!(holder["Who"], "runner@a");

        // Writing needs the lock's ID; a wrong Content-MD5 is refused.
        let state = json!({"version": 4, "serial": 1, "lineage": "abc", "resources": []}).to_string();
        let (status, _, _) = backend(&app, "POST", &state_path, Some(&auth), Some(state.clone())).await;
        assert_eq!(status, 423);
        let (status, _, body) = backend(&app, "POST", &format!("{state_path}?ID=lock-a"), Some(&auth), Some("not json".into())).await;
        assert_eq!(status, 400, "{body}");
        let r = app
            .client
            .post(format!("{}{state_path}?ID=lock-a", app.base))
            .header("authorization", &auth)
            .header("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")
            .body(state.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400);
        let (status, _, body) = backend(&app, "POST", &format!("{state_path}?ID=lock-a"), Some(&auth), Some(state.clone())).await;
        assert_eq!(status, 200, "{body}");
        let (status, headers, body) = backend(&app, "GET", &state_path, Some(&auth), None).await;
        assert_eq!((status, body.as_str()), (200, state.as_str()));
        use md5::Digest as _;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(state.as_bytes()));
        assert_eq!(headers.get("content-md5").and_then(|v| v.to_str().ok()), Some(md5.as_str()));
        // Sealed at rest.
        let stored: String = sqlx::query_scalar("SELECT sealed_state FROM provision_states WHERE request_id = $1")
            .bind(&id)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("stored");
        assert!(!stored.contains("lineage"), "the state is sealed");

        // Unlock with another ID: refused with the holder; with the right one: freed.
        let (status, _, _) = backend(&app, "DELETE", &lock_path, Some(&auth), Some(lock_info("lock-b", "x"))).await;
        assert_eq!(status, 423);
        let (status, _, _) = backend(&app, "DELETE", &lock_path, Some(&auth), Some(lock_info("lock-a", "x"))).await;
        assert_eq!(status, 200);
        let (status, _, body) = backend(&app, "POST", &lock_path, Some(&auth), Some(lock_info("lock-c", "runner@c"))).await;
        assert_eq!(status, 200, "{body}");

        // The holder dies: once its lease lapses (the clock moves past it), the lock is
        // no lock, and the state is intact.
        let later = now + 120_000;
        app.state.clock.set_ms(later);
        sqlx::query("UPDATE provision_runs SET status = 'failed' WHERE id = $1")
            .bind(&run)
            .execute(&app.state.db.pool)
            .await
            .expect("end the first run");
        let run2 = fake_run(&app, &id, "second", later + 60_000).await;
        let auth2 = basic(&run2, "second");
        let (status, _, body) = backend(&app, "POST", &lock_path, Some(&auth2), Some(lock_info("lock-d", "runner@d"))).await;
        assert_eq!(status, 200, "a lapsed lock is free: {body}");
        let (status, _, body) = backend(&app, "GET", &state_path, Some(&auth2), None).await;
        assert_eq!((status, body.as_str()), (200, state.as_str()));
        // The dead run's credential no longer works.
        let (status, _, _) = backend(&app, "GET", &state_path, Some(&auth), None).await;
        assert_eq!(status, 401);
    }

    async fn a_run_cut_by_a_panel_stop_is_failed_and_its_lock_freed(engine) {
        let app = spawn_app(engine).await;
        let (s, _) = owner(&app, "reap@example.com").await;
        let id = request(&app, &s, "reap-1").await["id"].as_str().expect("id").to_owned();
        let now = shardlyn_panel::db::now_ms();
        sqlx::query("UPDATE provision_requests SET status = 'applying' WHERE id = $1")
            .bind(&id)
            .execute(&app.state.db.pool)
            .await
            .expect("applying");
        let run = fake_run(&app, &id, "pw", now + 60_000).await;
        let auth = basic(&run, "pw");
        let (status, _, _) = backend(&app, "POST", &format!("/v1/provision/{id}/state/lock"), Some(&auth), Some(lock_info("held", "dead panel"))).await;
        assert_eq!(status, 200);
        // While the lease holds, nothing is reaped.
        shardlyn_panel::provision::runner::reap(&app.state, now).await;
        let r = app.get(&format!("/v1/provision/{id}"), Some(&s.access)).await.expect(200);
        assert_eq!(r.body["status"], "applying");
        // A second apply meanwhile is refused.
        app.post(&format!("/v1/provision/{id}/apply"), Some(&s.access), json!({}))
            .await
            .expect(409);
        // The lease lapses: the run and the request are failed with a message, the lock gone.
        shardlyn_panel::provision::runner::reap(&app.state, now + 61_000).await;
        let r = app.get(&format!("/v1/provision/{id}"), Some(&s.access)).await.expect(200);
        assert_eq!(r.body["status"], "failed", "{}", r.text);
        assert!(r.body["status_message"].as_str().unwrap_or_default().contains("stopped"));
        assert_eq!(r.body["runs"][0]["status"], "failed");
        let locks: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM provision_locks WHERE request_id = $1")
            .bind(&id)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(locks, 0);
        let logs = app.get(&format!("/v1/provision/{id}/logs"), Some(&s.access)).await.expect(200);
        assert!(logs.body["lines"].as_array().is_some_and(|l| l.iter().any(|l| l["line"].as_str().unwrap_or_default().contains("stopped"))), "{}", logs.text);
    }
}
