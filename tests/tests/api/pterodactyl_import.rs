//! Importing a Pterodactyl panel, end to end through the routes: API mode against our
//! fake of the Application API (`shardlyn_tests::fake_pterodactyl`, a FAKE checked with
//! PyPI `py-dactyl` in `fake_pterodactyl.rs`), database mode against a real MariaDB
//! loaded with Pterodactyl's tables and values encrypted by Laravel's own encrypter
//! (`shardlyn_tests::mariadb`). Servers land on a platform node marked online in the
//! database (no agent runs: their specs wait for it).
//!
//! The bootstrap admin is `admin@example.com`, as is the old panel's root admin: that
//! account clashes (reported, never merged) and the root admin's server is skipped.

use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_tests::fake_pterodactyl::{Dataset, FakePterodactyl};
use shardlyn_tests::mariadb::PteroDb;
use shardlyn_tests::{Session, TestApp, both_engines, spawn_app};

const GIB: i64 = 1024 * 1024 * 1024;

async fn platform_node(app: &TestApp, admin: &Session) -> String {
    let node = app.register_node(&admin.access, None, "platform-1").await;
    app.mark_node_online(&node, 64 * GIB, 1000 * GIB).await;
    app.put(
        &format!("/v1/admin/nodes/{node}/platform"),
        Some(&admin.access),
        json!({"platform": true, "public_name": "EU 1", "location": "Falkenstein"}),
    )
    .await
    .expect(200);
    node
}

async fn wait_import(app: &TestApp, admin: &Session, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = app
            .get(
                &format!("/v1/pterodactyl/imports/{id}"),
                Some(&admin.access),
            )
            .await
            .expect(200);
        if matches!(r.body["status"].as_str(), Some("succeeded" | "failed")) {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "import never ended: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn items<'a>(import: &'a Value, kind: &str) -> Vec<&'a Value> {
    import["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == kind)
        .collect()
}

fn item<'a>(import: &'a Value, kind: &str, name: &str) -> &'a Value {
    items(import, kind)
        .into_iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} line named {name}: {import:#}"))
}

async fn import_and_wait(app: &TestApp, admin: &Session, body: Value) -> Value {
    let r = app
        .post("/v1/pterodactyl/import", Some(&admin.access), body)
        .await
        .expect(202);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let done = wait_import(app, admin, &id).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    done
}

fn with(mut body: Value, extra: &Value) -> Value {
    for (k, v) in extra.as_object().expect("object") {
        body[k.as_str()] = v.clone();
    }
    body
}

async fn instance_count(app: &TestApp) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM instances")
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count")
}

both_engines! {
    async fn api_mode_dry_run_then_import_then_rerun(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let node = platform_node(&app, &admin).await;
        let fake = FakePterodactyl::start(Dataset::sample()).await;
        let body = json!({"mode": "api", "url": fake.url, "api_key": fake.api_key()});

        // Platform admins only.
        let customer = app.register("customer@example.com").await;
        app.post("/v1/pterodactyl/validate", Some(&customer.access), body.clone()).await.expect(403);

        let v = app.post("/v1/pterodactyl/validate", t, body.clone()).await.expect(200);
        assert_eq!(v.body["counts"]["servers"], 4, "{}", v.text);
        assert_eq!(v.body["counts"]["users"], 3);
        assert!(v.text.contains("API mode cannot bring passwords"), "{}", v.text);

        let list = app.post("/v1/pterodactyl/servers", t, body.clone()).await.expect(200);
        let rows = list.body["data"].as_array().expect("servers");
        assert_eq!(rows.len(), 4);
        let survival = rows.iter().find(|r| r["name"] == "Survival").expect("survival");
        assert_eq!(survival["importable"], true, "{survival}");
        assert_eq!(survival["owner_email"], "alice@example.com");
        assert_eq!(survival["ports"], json!([25566, 25575]));
        assert_eq!(survival["already_imported"], false);

        // Dry run (the default): a report, nothing made.
        let dry = import_and_wait(&app, &admin, body.clone()).await;
        assert_eq!(dry["dry_run"], true);
        assert_eq!(item(&dry, "server", "Survival")["status"], "planned", "{dry:#}");
        assert_eq!(item(&dry, "user", "alice@example.com")["status"], "planned");
        assert_eq!(instance_count(&app).await, 0);
        app.post("/v1/auth/login", None, json!({"email": "alice@example.com", "password": "x"}))
            .await
            .expect(401);

        // The import.
        let done = import_and_wait(&app, &admin, with(body.clone(), &json!({"dry_run": false}))).await;
        assert_eq!(item(&done, "user", "alice@example.com")["status"], "imported", "{done:#}");
        let clash = item(&done, "user", "admin@example.com");
        assert_eq!(clash["status"], "clash", "{clash}");
        let lobby = item(&done, "server", "Lobby");
        assert_eq!(lobby["status"], "skipped");
        assert!(lobby["message"].as_str().expect("message").contains("did not come over"), "{lobby}");
        let surv = item(&done, "server", "Survival");
        assert_eq!(surv["status"], "imported", "{surv}");
        let instance_id = surv["target_id"].as_str().expect("instance").to_owned();
        // API mode: a set-your-password mail.
        assert!(app.mailer.sent().iter().any(|m| m.to == "alice@example.com"));
        // The instance: in alice's organization, on the platform node, her ports, limits,
        // variables.
        let row: (String, String, i64, i64) = sqlx::query_as(
            "SELECT i.node_id, o.name, i.memory_mb, i.cpu_percent FROM instances i \
             JOIN organizations o ON o.id = i.org_id WHERE i.id = $1",
        )
        .bind(&instance_id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("instance row");
        assert_eq!(row.0, node);
        assert_eq!((row.2, row.3), (2048, 200));
        let ports: Vec<i64> = sqlx::query_scalar(
            "SELECT port FROM allocations WHERE instance_id = $1 ORDER BY port",
        )
        .bind(&instance_id)
        .fetch_all(&app.state.db.pool)
        .await
        .expect("ports");
        assert_eq!(ports, vec![25566, 25575]);
        // The subuser (bob on Survival) holds a grant on that server alone.
        let sub = items(&done, "subuser");
        assert_eq!(sub.len(), 1, "{done:#}");
        assert_eq!(sub[0]["status"], "imported", "{}", sub[0]);
        let grants: Vec<String> = sqlx::query_scalar(
            "SELECT permissions FROM server_grants WHERE instance_id = $1",
        )
        .bind(&instance_id)
        .fetch_all(&app.state.db.pool)
        .await
        .expect("grants");
        assert_eq!(grants.len(), 1);
        assert!(grants[0].contains("instances.console") && grants[0].contains("instances.power"), "{grants:?}");
        let made = instance_count(&app).await;
        assert_eq!(made, 3, "Survival, Creative, Modded");
        assert!(done["finished_at"].is_string());

        // A re-run makes nothing twice.
        let again = import_and_wait(&app, &admin, with(body.clone(), &json!({"dry_run": false}))).await;
        assert_eq!(item(&again, "server", "Survival")["status"], "exists", "{again:#}");
        assert_eq!(item(&again, "user", "alice@example.com")["status"], "exists");
        assert_eq!(instance_count(&app).await, made);
        let list = app.post("/v1/pterodactyl/servers", t, body.clone()).await.expect(200);
        let survival = list.body["data"].as_array().expect("servers").iter()
            .find(|r| r["name"] == "Survival").cloned().expect("survival");
        assert_eq!(survival["already_imported"], true);
        assert_eq!(survival["instance_id"], instance_id.as_str());

        // The imports list, and the secrets purged.
        let all = app.get("/v1/pterodactyl/imports", t).await.expect(200);
        assert_eq!(all.body["data"].as_array().expect("data").len(), 3);
        let sealed: Vec<Option<String>> = sqlx::query_scalar("SELECT sealed_secrets FROM pterodactyl_imports")
            .fetch_all(&app.state.db.pool)
            .await
            .expect("sealed");
        assert!(sealed.iter().all(Option::is_none), "secrets outlived their imports");
    }

    async fn an_egg_we_refuse_skips_its_servers_and_says_so(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        platform_node(&app, &admin).await;
        let fake = FakePterodactyl::start(Dataset::sample()).await;
        // Creative's egg loses its name: our egg importer refuses a nameless egg.
        fake.edit(|d| d.eggs[2].name = String::new());
        let body = json!({"mode": "api", "url": fake.url, "api_key": fake.api_key(), "dry_run": false});
        let done = import_and_wait(&app, &admin, body).await;
        let creative = item(&done, "server", "Creative");
        assert_eq!(creative["status"], "skipped", "{done:#}");
        assert!(creative["message"].as_str().expect("message").contains("egg"), "{creative}");
        assert!(creative["target_id"].is_null());
        assert_eq!(item(&done, "server", "Survival")["status"], "imported", "{done:#}");
        assert!(
            items(&done, "egg").iter().any(|e| e["status"] == "skipped"),
            "the refused egg has its line: {done:#}"
        );
        assert_eq!(instance_count(&app).await, 2, "Survival and Modded");
    }

    async fn bad_sources_answer_clearly_and_import_nothing(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let fake = FakePterodactyl::start(Dataset::sample()).await;
        let good = json!({"mode": "api", "url": fake.url, "api_key": fake.api_key()});
        app.post("/v1/pterodactyl/validate", t, with(good.clone(), &json!({"api_key": "ptla_wrong"})))
            .await.expect_error(422, "SOURCE_CREDENTIALS");
        app.post("/v1/pterodactyl/validate", t, with(good.clone(), &json!({"url": "http://127.0.0.1:9"})))
            .await.expect_error(502, "SOURCE_UNREACHABLE");
        app.post("/v1/pterodactyl/validate", t, with(good.clone(), &json!({"url": "not a url"})))
            .await.expect_error(400, "VALIDATION_ERROR");
        app.post("/v1/pterodactyl/validate", t, json!({"mode": "ftp"})).await.expect(400);
        app.post("/v1/pterodactyl/import", t, with(good.clone(), &json!({"switch_over": true})))
            .await.expect_error(400, "VALIDATION_ERROR");
        app.post("/v1/pterodactyl/import", t, with(good.clone(), &json!({"api_key": "ptla_wrong", "dry_run": false})))
            .await.expect_error(422, "SOURCE_CREDENTIALS");
        app.get("/v1/pterodactyl/imports/nope", t).await.expect_error(404, "NOT_FOUND");
        let all = app.get("/v1/pterodactyl/imports", t).await.expect(200);
        assert_eq!(all.body["data"], json!([]));
        assert_eq!(instance_count(&app).await, 0);
    }
}

/// Database mode: bcrypt passwords keep working, TOTP and schedules come over, a wrong
/// `APP_KEY` imports nothing. SQLite only: the source is the MariaDB, the panel's own
/// engine plays no part the API-mode test does not cover on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_mode_keeps_passwords_2fa_subusers_and_schedules() {
    let app = spawn_app(shardlyn_tests::Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let t = Some(admin.access.as_str());
    platform_node(&app, &admin).await;
    let db = PteroDb::start().await;
    let sample = db.load_sample().await;

    let mut wrong = db.body();
    wrong["app_key"] = json!(shardlyn_tests::mariadb::random_app_key());
    app.post("/v1/pterodactyl/validate", t, wrong.clone())
        .await
        .expect_error(422, "APP_KEY_INVALID");
    app.post(
        "/v1/pterodactyl/import",
        t,
        with(wrong, &json!({"dry_run": false})),
    )
    .await
    .expect_error(422, "APP_KEY_INVALID");
    assert_eq!(instance_count(&app).await, 0);

    let v = app
        .post("/v1/pterodactyl/validate", t, db.body())
        .await
        .expect(200);
    assert!(
        v.body["counts"]["schedules"].as_u64().expect("schedules") >= 1,
        "{}",
        v.text
    );

    let done = import_and_wait(&app, &admin, with(db.body(), &json!({"dry_run": false}))).await;
    let imported: Vec<&Value> = items(&done, "server")
        .into_iter()
        .filter(|i| i["status"] == "imported")
        .collect();
    assert!(!imported.is_empty(), "{done:#}");
    assert!(
        items(&done, "schedule")
            .iter()
            .any(|i| i["status"] == "imported"),
        "{done:#}"
    );
    // A customer logs in with the old panel's password.
    let (_, email, password, _) = sample
        .passwords
        .iter()
        .find(|p| p.1 != "admin@example.com" && !p.1.is_empty())
        .cloned()
        .expect("a customer");
    if item(&done, "user", &email)["status"] == "imported" {
        let login = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert!(login.status == 200, "{}", login.text);
    }
    // Re-run: nothing twice.
    let before = instance_count(&app).await;
    import_and_wait(&app, &admin, with(db.body(), &json!({"dry_run": false}))).await;
    assert_eq!(instance_count(&app).await, before);
}
