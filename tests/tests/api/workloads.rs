//! Workloads and templates: egg import (the whole real-egg corpus), export and re-import,
//! CRUD on the workload shape, templates, field-level validation errors and tenancy.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};
use shardlyn_tests::{Resp, TestApp, both_engines, spawn_app};

const CORPUS_EGGS: usize = 278;

fn corpus_dir() -> PathBuf {
    let dir = shardlyn_tests::crate_path("../../shared/egg-corpus");
    assert!(
        dir.is_dir(),
        "egg corpus not found at {} (expected <workspace>/../shared/egg-corpus)",
        dir.display()
    );
    dir
}

/// One corpus file's text; fails clearly when it is missing.
fn corpus_egg(relative: &str) -> String {
    let path = corpus_dir().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("corpus egg {} is missing: {e}", path.display()))
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// Every egg of the corpus (files with a `meta` object), with its path.
fn corpus() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    json_files(&corpus_dir(), &mut files);
    files.sort();
    let eggs: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            (p, text)
        })
        .filter(|(_, text)| {
            serde_json::from_str::<Value>(text).is_ok_and(|v| v.get("meta").is_some())
        })
        .collect();
    assert_eq!(eggs.len(), CORPUS_EGGS, "eggs in the corpus");
    eggs
}

const PAPER: &str = "pterodactyl-panel/ptero-panel_egg-paper.json";
const VALHEIM: &str = "game_eggs/steamcmd_servers/valheim/valheim_vanilla/egg-valheim.json";
const TERRARIA: &str = "game_eggs/terraria/vanilla/egg-terraria-vanilla.json";

async fn import(app: &TestApp, token: &str, egg: &str, query: &str) -> Resp {
    app.raw(
        Method::POST,
        &format!("/v1/workloads/import-egg{query}"),
        Some(token),
        "application/json",
        egg.as_bytes().to_vec(),
    )
    .await
}

/// The workload shape without what differs between two copies of one definition.
fn definition(body: &Value) -> Value {
    let mut v = body.clone();
    let obj = v.as_object_mut().expect("workload object");
    for key in [
        "id",
        "source",
        "template",
        "created_by",
        "created_at",
        "updated_at",
        "exported_at",
    ] {
        obj.remove(key);
    }
    v
}

#[track_caller]
fn expect_field(r: Resp, field: Option<&str>) -> Resp {
    let r = r.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(r.body["field"].as_str(), field, "field of {}", r.text);
    assert!(
        r.body.as_object().is_some_and(|o| o.contains_key("field")),
        "{}",
        r.text
    );
    r
}

both_engines! {
    async fn real_eggs_import_with_their_shape(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("eggs@example.com").await;
        let paper = import(&app, &s.access, &corpus_egg(PAPER), "").await.expect(201);
        assert_eq!(paper.body["name"], "Paper");
        assert_eq!(paper.body["source"], "egg");
        assert_eq!(paper.body["images"][0]["label"], "Java 21", "default image stays first");
        assert_eq!(paper.body["config"]["files"][0]["parser"], "properties");
        assert_eq!(paper.body["config"]["stop"], "stop");
        insta::assert_json_snapshot!("imported_paper", paper.body, {
            ".id" => "[id]", ".organization_id" => "[org]", ".created_by" => "[user]",
            ".created_at" => "[time]", ".updated_at" => "[time]",
        });

        // The wrapper form, with the egg as an object and as a JSON string.
        let org = app.create_org(&s.access, "Games").await;
        let valheim: Value = serde_json::from_str(&corpus_egg(VALHEIM)).expect("json");
        let r = app.post("/v1/workloads/import-egg", Some(&s.access), json!({"egg": valheim, "organization_id": org}))
            .await
            .expect(201);
        assert_eq!(r.body["organization_id"], org.as_str());
        assert_eq!(r.body["config"]["stop"], "^C");
        assert_eq!(r.body["variables"].as_array().map(Vec::len), Some(16));
        let r = app.post("/v1/workloads/import-egg", Some(&s.access), json!({"egg": corpus_egg(TERRARIA)}))
            .await
            .expect(201);
        assert_eq!(r.body["name"], "Terraria Vanilla");
        assert_ne!(r.body["organization_id"], org.as_str(), "personal organization by default");
        // `?organization_id=` also places a bare egg.
        let r = import(&app, &s.access, &corpus_egg(TERRARIA), &format!("?organization_id={org}")).await.expect(201);
        assert_eq!(r.body["organization_id"], org.as_str());

        let list = app.get(&format!("/v1/workloads?organization_id={org}"), Some(&s.access)).await.expect(200);
        assert_eq!(list.body["pagination"]["total"], 2);
        assert_eq!(list.body["data"][0]["name"], "Terraria Vanilla", "newest first");
        assert!(list.body["data"][0].get("variables").is_none(), "lists carry summaries");
        let personal = app.get("/v1/workloads", Some(&s.access)).await.expect(200);
        assert_eq!(personal.body["pagination"]["total"], 2);
    }

    async fn every_corpus_egg_imports_and_round_trips_over_http(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("corpus@example.com").await;
        let t = s.access.as_str();
        let org = app.create_org(t, "Corpus").await;
        let q = format!("?organization_id={org}");
        for (path, text) in corpus() {
            let first = import(&app, t, &text, &q).await;
            assert_eq!(first.status, 201, "{}: {}", path.display(), first.text);
            let id = first.body["id"].as_str().expect("id");
            let exported = app.get(&format!("/v1/workloads/{id}/export"), Some(t)).await.expect(200);
            let again = import(&app, t, &exported.text, &q).await;
            assert_eq!(again.status, 201, "{} re-import: {}", path.display(), again.text);
            assert_eq!(definition(&again.body), definition(&first.body), "{}", path.display());
        }
        let page = app.get(&format!("/v1/workloads{q}&per_page=100&page=6"), Some(t)).await.expect(200);
        assert_eq!(page.body["pagination"]["total"], 2 * CORPUS_EGGS);
        assert_eq!(page.body["data"].as_array().map(Vec::len), Some(2 * CORPUS_EGGS - 500));
    }

    async fn export_is_a_ptdl_v2_download(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("export@example.com").await;
        let t = Some(s.access.as_str());
        let w = import(&app, &s.access, &corpus_egg(PAPER), "").await.expect(201);
        let id = w.body["id"].as_str().expect("id");
        let r = app.get(&format!("/v1/workloads/{id}/export"), t).await.expect(200);
        assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
        assert_eq!(r.header("content-disposition").as_deref(), Some("attachment; filename=\"egg-paper.json\""));
        assert_eq!(r.body["meta"]["version"], "PTDL_v2");
        assert!(r.body["config"]["files"].is_string(), "config parts are JSON strings, as in Pterodactyl");
        assert!(r.body["exported_at"].as_str().is_some_and(|s| s.starts_with("20")));
        assert!(r.text.find("Java 21") < r.text.find("Java 8"), "image order kept");
        let again = import(&app, &s.access, &r.text, "").await.expect(201);
        assert_eq!(definition(&again.body), definition(&w.body));
    }

    async fn workload_crud_on_the_json_shape(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("crud@example.com").await;
        let t = Some(s.access.as_str());
        let body = json!({
            "name": "Echo Server",
            "description": "Answers what it reads.",
            "images": [{"label": "Busybox", "image": "busybox:1.36"}, {"image": "alpine:3.20"}],
            "startup": "echo {{GREETING}}; cat",
            "config": {
                "files": [{"path": "echo.properties", "parser": "properties", "find": {"port": "{{server.build.default.port}}"}}],
                "startup": {"done": ["ready"]},
                "stop": "^C"
            },
            "install": {"script": "#!/bin/sh\necho ok", "container": "busybox:1.36", "entrypoint": "sh"},
            "variables": [{
                "name": "Greeting", "description": "First line", "env_variable": "GREETING",
                "default_value": "hi", "user_viewable": true, "user_editable": true,
                "rules": "required|string|max:20"
            }]
        });
        let created = app.post("/v1/workloads", t, body).await.expect(201);
        assert_eq!(created.body["source"], "api");
        assert_eq!(created.body["images"][1]["label"], "alpine:3.20", "label defaults to the image");
        assert_eq!(created.body["variables"][0]["field_type"], "text");
        insta::assert_json_snapshot!("created_workload", created.body, {
            ".id" => "[id]", ".organization_id" => "[org]", ".created_by" => "[user]",
            ".created_at" => "[time]", ".updated_at" => "[time]",
        });
        let id = created.body["id"].as_str().expect("id").to_string();
        let got = app.get(&format!("/v1/workloads/{id}"), t).await.expect(200);
        assert_eq!(got.body, created.body);

        // What GET answers, PUT accepts back unchanged.
        let same = app.put(&format!("/v1/workloads/{id}"), t, got.body.clone()).await.expect(200);
        assert_eq!(definition(&same.body), definition(&got.body));

        let mut edited = got.body.clone();
        edited["name"] = json!("Echo 2");
        edited["variables"][0]["rules"] = json!("required|int|between:1,10");
        edited["variables"][0]["default_value"] = json!(5);
        let updated = app.put(&format!("/v1/workloads/{id}"), t, edited).await.expect(200);
        assert_eq!(updated.body["name"], "Echo 2");
        assert_eq!(updated.body["variables"][0]["rules"], "required|integer|between:1,10", "canonical rules");
        assert_eq!(updated.body["variables"][0]["default_value"], "5");
        assert_eq!(updated.body["source"], "api");

        let list = app.get("/v1/workloads", t).await.expect(200);
        assert_eq!(list.body["data"][0]["name"], "Echo 2");
        assert_eq!(list.body["data"][0]["variable_count"], 1);

        app.delete(&format!("/v1/workloads/{id}"), t).await.expect(204);
        app.get(&format!("/v1/workloads/{id}"), t).await.expect_error(404, "NOT_FOUND");
        app.delete(&format!("/v1/workloads/{id}"), t).await.expect_error(404, "NOT_FOUND");
        app.put(&format!("/v1/workloads/{id}"), t, got.body).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/workloads/{id}/export"), t).await.expect_error(404, "NOT_FOUND");
    }

    async fn every_template_makes_a_workload(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("tpl@example.com").await;
        let t = Some(s.access.as_str());
        let templates = app.get("/v1/templates", t).await.expect(200);
        let templates = templates.body.as_array().expect("a list").clone();
        assert!((4..=6).contains(&templates.len()), "{templates:?}");
        for tpl in &templates {
            let id = tpl["id"].as_str().expect("id");
            let r = app.post("/v1/workloads/from-template", t, json!({"template": id})).await.expect(201);
            assert_eq!(r.body["source"], "template");
            assert_eq!(r.body["template"], id);
            assert_eq!(r.body["name"], tpl["name"]);
            assert_eq!(r.body["images"], tpl["images"]);
            let wid = r.body["id"].as_str().expect("id");
            let exported = app.get(&format!("/v1/workloads/{wid}/export"), t).await.expect(200);
            assert_eq!(exported.body["meta"]["version"], "PTDL_v2");
        }
        let org = app.create_org(&s.access, "Named").await;
        let r = app.post("/v1/workloads/from-template", t,
            json!({"template": "busybox-test", "organization_id": org, "name": "My console"}))
            .await
            .expect(201);
        assert_eq!((r.body["name"].as_str(), r.body["organization_id"].as_str()), (Some("My console"), Some(org.as_str())));
        assert_eq!(r.body["images"][0]["image"], "shardlyn-test/busybox:latest");
        app.post("/v1/workloads/from-template", t, json!({"template": "no-such-egg"})).await.expect_error(404, "NOT_FOUND");
        app.post("/v1/workloads/from-template", t, json!({"template": "busybox-test", "name": "x".repeat(300)}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post("/v1/workloads/from-template", t, json!({"template": 5})).await.expect_error(400, "BAD_REQUEST");
        app.post("/v1/workloads/from-template", t, json!({"template": "busybox-test", "extra": 1})).await.expect_error(400, "BAD_REQUEST");
    }

    async fn templates_list_and_filter_by_category(engine) {
        let app = spawn_app(engine).await;
        // The `testing` category is listed once the platform setting shows it.
        let admin = app.bootstrap_admin().await;
        app.put("/v1/settings", Some(&admin.access), json!({"show_testing_templates": true})).await.expect(200);
        let s = app.register("cat@example.com").await;
        let t = Some(s.access.as_str());
        let all = app.get("/v1/templates", t).await.expect(200);
        let all = all.body.as_array().expect("list").clone();
        let mut categories: Vec<&str> = all.iter().map(|t| t["category"].as_str().expect("category")).collect();
        categories.sort_unstable();
        categories.dedup();
        assert!(categories.contains(&"minecraft") && categories.contains(&"testing"), "{categories:?}");
        let mut seen = 0;
        for category in &categories {
            let r = app.get(&format!("/v1/templates/{category}"), t).await.expect(200);
            let items = r.body.as_array().expect("list");
            assert!(!items.is_empty());
            assert!(items.iter().all(|i| i["category"] == *category));
            seen += items.len();
        }
        assert_eq!(seen, all.len(), "categories partition the templates");
        let testing = app.get("/v1/templates/testing", t).await.expect(200);
        insta::assert_json_snapshot!("templates_testing", testing.body);
        app.get("/v1/templates/no-such-category", t).await.expect_error(404, "NOT_FOUND");
    }

    async fn broken_eggs_name_the_field(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("broken@example.com").await;
        let t = s.access.as_str();
        let paper: Value = serde_json::from_str(&corpus_egg(PAPER)).expect("json");

        let r = expect_field(import(&app, t, "{\"meta\": {", "").await, None);
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains("line")), "{}", r.text);
        expect_field(import(&app, t, "[1, 2]", "").await, None);
        expect_field(import(&app, t, r#"{"name": "x"}"#, "").await, Some("meta"));
        expect_field(import(&app, t, r#"{"meta": {"version": "PTDL_v9"}, "name": "x"}"#, "").await, Some("meta.version"));

        let mut egg = paper.clone();
        egg["variables"][1]["rules"] = json!("required|frobnicate");
        let r = expect_field(import(&app, t, &egg.to_string(), "").await, Some("variables[1].rules"));
        let msg = r.body["error"].as_str().expect("message");
        assert!(msg.contains("SERVER_JARFILE") && msg.contains("frobnicate"), "{msg}");

        let mut egg = paper.clone();
        egg["variables"][2].as_object_mut().expect("var").remove("env_variable");
        expect_field(import(&app, t, &egg.to_string(), "").await, Some("variables[2].env_variable"));
        let mut egg = paper.clone();
        egg["variables"][3]["env_variable"] = json!("NOT VALID");
        expect_field(import(&app, t, &egg.to_string(), "").await, Some("variables[3].env_variable"));
        // The same errors in the wrapper form.
        let r = app.post("/v1/workloads/import-egg", Some(t), json!({"egg": egg})).await;
        expect_field(r, Some("variables[3].env_variable"));
        let r = app.post("/v1/workloads/import-egg", Some(t), json!({"egg": 5})).await;
        expect_field(r, Some("egg"));
        let r = app.post("/v1/workloads/import-egg", Some(t), json!({"egg": paper, "owner": "me"})).await;
        expect_field(r, Some("owner"));
        let mut egg = paper.clone();
        egg["name"] = json!("n".repeat(500));
        expect_field(import(&app, t, &egg.to_string(), "").await, Some("name"));

        // The workload shape reports at its own paths.
        let post = |body: Value| app.post("/v1/workloads", Some(t), body);
        expect_field(post(json!({"name": "x"})).await, Some("images"));
        expect_field(post(json!({"name": "x".repeat(192), "images": ["a"]})).await, Some("name"));
        expect_field(post(json!({"name": 5, "images": ["a"]})).await, Some("name"));
        expect_field(post(json!({"name": "x", "images": "a"})).await, Some("images"));
        expect_field(post(json!({"name": "x", "images": [{"label": "a"}]})).await, Some("images[0].image"));
        expect_field(post(json!({"name": "x", "images": ["a", "a"]})).await, Some("images[1].label"));
        expect_field(post(json!({"name": "x", "images": ["a"], "startup": ["no"]})).await, Some("startup"));
        expect_field(post(json!({"name": "x", "images": ["a"], "variables": [{"name": "V", "env_variable": "V", "rules": "required|frobnicate"}]})).await,
            Some("variables[0].rules"));
        expect_field(post(json!({"name": "x", "images": ["a"], "variables": [{"name": "V"}]})).await,
            Some("variables[0].env_variable"));
        expect_field(post(json!({"name": "x", "images": ["a"], "config": {"files": [{"path": "a.yml", "parser": "yaml", "find": []}]}})).await,
            Some("config.files[0].find"));
        expect_field(post(json!({"name": "x", "images": ["a"], "config": {"files": [{"path": "a"}, {"path": "a"}]}})).await,
            Some("config.files[1].path"));
        expect_field(post(json!({"name": "x", "images": ["a"], "config": {"startup": {"done": 5}}})).await,
            Some("config.startup.done"));
        expect_field(post(json!({"name": "x", "images": ["a"], "install": {"script": 5}})).await, Some("install.script"));
        expect_field(post(json!({"name": "x", "images": ["a"], "stopp": "^C"})).await, Some("stopp"));
        expect_field(post(json!({"name": "x", "images": ["a"], "organization_id": 5})).await, Some("organization_id"));
        expect_field(post(json!(["x"])).await, None);
        assert_eq!(app.get("/v1/workloads", Some(t)).await.body["pagination"]["total"], 0, "nothing was stored");
    }

    async fn bad_input_never_reaches_a_500(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("fuzz@example.com").await;
        let t = Some(s.access.as_str());
        let egg = corpus_egg(PAPER);
        let r = app.raw(Method::POST, "/v1/workloads/import-egg", t, "text/plain", egg.into_bytes()).await;
        r.expect_error(400, "BAD_REQUEST");
        let r = app.raw(Method::POST, "/v1/workloads/import-egg", t, "application/json", vec![0xff, 0xfe]).await;
        r.expect_error(400, "VALIDATION_ERROR");
        for body in ["", "null", "\"egg\"", "{}", "{\"egg\": null}"] {
            let r = app.raw(Method::POST, "/v1/workloads/import-egg", t, "application/json", body.as_bytes().to_vec()).await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
        }
        for body in ["{not json", "[]", "{\"name\": null}"] {
            let r = app.raw(Method::POST, "/v1/workloads", t, "application/json", body.as_bytes().to_vec()).await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
        }
        let big = reqwest::Client::new()
            .post(format!("{}/v1/workloads/import-egg", app.base))
            .bearer_auth(&s.access)
            .header("content-type", "application/json")
            .header("connection", "close")
            .body(vec![b' '; 3 * 1024 * 1024])
            .send()
            .await
            .expect("response to an oversized body");
        assert_eq!(big.status(), 413);
        let long = "x".repeat(5000);
        for path in [format!("/v1/workloads/{long}"), "/v1/workloads/%27%20OR%201%3D1".into(), format!("/v1/workloads/{long}/export")] {
            app.get(&path, t).await.expect_error(404, "NOT_FOUND");
        }
        app.get("/v1/workloads?per_page=0", t).await.expect_error(400, "VALIDATION_ERROR");
        app.get("/v1/workloads?organization_id=nope", t).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/templates/{long}"), t).await.expect_error(404, "NOT_FOUND");
        // Import-egg and import-egg-looking ids are not confused.
        app.get("/v1/workloads/import-egg", t).await.expect_error(405, "METHOD_NOT_ALLOWED");
    }

    async fn viewers_read_and_outsiders_see_nothing(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("owner@example.com").await;
        let viewer = app.register("viewer@example.com").await;
        let outsider = app.register("outsider@example.com").await;
        let org = app.create_org(&owner.access, "Team").await;
        app.add_member(&org, &viewer.user_id, "viewer").await;
        let w = import(&app, &owner.access, &corpus_egg(PAPER), &format!("?organization_id={org}")).await.expect(201);
        let id = w.body["id"].as_str().expect("id").to_string();
        let one = format!("/v1/workloads/{id}");
        let export = format!("{one}/export");
        let in_org = format!("?organization_id={org}");

        // A viewer reads (also with an API token) but cannot write.
        let v = Some(viewer.access.as_str());
        app.get(&one, v).await.expect(200);
        app.get(&export, v).await.expect(200);
        let list = app.get(&format!("/v1/workloads{in_org}"), v).await.expect(200);
        assert_eq!(list.body["pagination"]["total"], 1);
        let token = app.api_token(&viewer.access, "ci", None).await;
        app.get(&one, Some(&token)).await.expect(200);
        app.put(&one, v, w.body.clone()).await.expect_error(403, "FORBIDDEN");
        app.delete(&one, v).await.expect_error(403, "FORBIDDEN");
        app.post(&format!("/v1/workloads{in_org}"), v, json!({"name": "x", "images": ["a"]})).await.expect_error(403, "FORBIDDEN");
        import(&app, &viewer.access, &corpus_egg(PAPER), &in_org).await.expect_error(403, "FORBIDDEN");
        app.post("/v1/workloads/from-template", v, json!({"template": "busybox-test", "organization_id": org}))
            .await
            .expect_error(403, "FORBIDDEN");
        // In their own personal organization, the viewer may create.
        app.post("/v1/workloads/from-template", v, json!({"template": "busybox-test"})).await.expect(201);

        // An outsider gets 404 on every workload route, as for a missing id.
        let o = Some(outsider.access.as_str());
        for (method, path) in [
            (Method::GET, one.clone()),
            (Method::PUT, one.clone()),
            (Method::DELETE, one.clone()),
            (Method::GET, export.clone()),
            (Method::GET, format!("/v1/workloads{in_org}")),
            (Method::POST, format!("/v1/workloads{in_org}")),
            (Method::POST, format!("/v1/workloads/import-egg{in_org}")),
        ] {
            let body = (method == Method::PUT || method == Method::POST).then(|| w.body.clone());
            let r = app.call(method.clone(), &path, o, body.as_ref()).await;
            assert_eq!((r.status, r.body["code"].as_str()), (404, Some("NOT_FOUND")), "{method} {path}: {}", r.text);
        }
        let r = app.post("/v1/workloads/from-template", o, json!({"template": "busybox-test", "organization_id": org})).await;
        r.expect_error(404, "NOT_FOUND");
        let missing = app.get("/v1/workloads/0190a0c4-0000-7000-8000-000000000000", o).await.expect_error(404, "NOT_FOUND");
        let hidden = app.get(&one, o).await.expect_error(404, "NOT_FOUND");
        assert_eq!(missing.body, hidden.body, "another organization's workload looks missing");
        // Nothing changed.
        app.get(&one, Some(&owner.access)).await.expect(200);
    }
}
