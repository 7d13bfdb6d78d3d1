//! The data auto-DNS reads from nodes and workloads (issue 18): a node's public IPv4 and
//! IPv6 addresses (set, cleared and validated on `PUT /v1/nodes/{id}` and the node page,
//! filled from the provision request's Terraform outputs when a provisioned node's agent
//! comes online) and a workload's SRV service (`_minecraft._tcp`: on create, update, the
//! bundled templates and the workloads page). Both engines.

use std::time::Duration;

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use shardlyn_tests::agent::{LocalAgent, register_node, wait_node};
use shardlyn_tests::{PASSWORD, TestApp, both_engines, spawn_app};

/// A small workload in the JSON shape, with `extra` fields merged in.
fn workload_body(name: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": name,
        "images": [{"label": "Busybox", "image": "busybox:1.36"}],
        "startup": "cat",
        "config": {"stop": "^C"},
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

/// The value of cookie `name` set by `r`.
fn cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// Signs the bootstrap admin in through the login form: the cookie jar and the CSRF
/// token of the browser session.
async fn sign_in(app: &TestApp) -> (String, String) {
    let r = app
        .client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .expect("GET /login");
    let csrf = cookie(&r, "shardlyn_csrf");
    let r = app
        .client
        .post(format!("{}/login", app.base))
        .header(COOKIE, format!("shardlyn_csrf={csrf}"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "admin@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(r.status(), 303);
    let csrf = cookie(&r, "shardlyn_csrf");
    let session = cookie(&r, "shardlyn_session");
    (
        format!("shardlyn_csrf={csrf}; shardlyn_session={session}"),
        csrf,
    )
}

/// Posts a page form with the session's CSRF token: the status and the HTML answered.
async fn post_form(
    app: &TestApp,
    jar: &str,
    csrf: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let mut form = vec![("csrf_token", csrf)];
    form.extend_from_slice(fields);
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header(COOKIE, jar)
        .form(&form)
        .send()
        .await
        .expect("POST");
    (r.status().as_u16(), r.text().await.expect("html"))
}

/// Polls node `id` until `check` holds for it.
async fn wait_for_node(
    app: &TestApp,
    access: &str,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = app
            .get(&format!("/v1/nodes/{id}"), Some(access))
            .await
            .expect(200);
        if check(&r.body) {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never got {what}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_engines! {
    async fn node_public_addresses_are_set_cleared_and_validated(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let node = app.register_node(&admin.access, None, "edge-1").await;
        let path = format!("/v1/nodes/{node}");
        let n = app.get(&path, t).await.expect(200);
        assert!(n.body["public_ipv4"].is_null() && n.body["public_ipv6"].is_null(), "{}", n.text);

        // Documentation addresses are accepted, and stored in canonical form.
        let n = app
            .put(&path, t, json!({"public_ipv4": "203.0.113.10", "public_ipv6": "2001:DB8:0:0::10"}))
            .await
            .expect(200);
        assert_eq!((n.body["public_ipv4"].as_str(), n.body["public_ipv6"].as_str()), (Some("203.0.113.10"), Some("2001:db8::10")));
        let listed = app.get("/v1/nodes", t).await.expect(200);
        assert_eq!(listed.body[0]["public_ipv4"], "203.0.113.10", "{}", listed.text);

        // Other fields leave them as they are; one address changes alone.
        let n = app.put(&path, t, json!({"name": "edge-one"})).await.expect(200);
        assert_eq!(n.body["public_ipv6"], "2001:db8::10");
        let n = app.put(&path, t, json!({"public_ipv4": "198.51.100.7"})).await.expect(200);
        assert_eq!((n.body["public_ipv4"].as_str(), n.body["public_ipv6"].as_str()), (Some("198.51.100.7"), Some("2001:db8::10")));

        // Anything but a public unicast address is refused, naming the field, and
        // nothing is written.
        for (body, field) in [
            (json!({"public_ipv4": "0.0.0.0"}), "public_ipv4"),
            (json!({"public_ipv4": "10.0.0.1"}), "public_ipv4"),
            (json!({"public_ipv4": "192.168.1.20"}), "public_ipv4"),
            (json!({"public_ipv4": "127.0.0.1"}), "public_ipv4"),
            (json!({"public_ipv4": "169.254.169.254"}), "public_ipv4"),
            (json!({"public_ipv4": "100.64.0.1"}), "public_ipv4"),
            (json!({"public_ipv4": "224.0.0.1"}), "public_ipv4"),
            (json!({"public_ipv4": "2001:db8::10"}), "public_ipv4"),
            (json!({"public_ipv4": "not-an-ip"}), "public_ipv4"),
            (json!({"public_ipv6": "::1"}), "public_ipv6"),
            (json!({"public_ipv6": "::"}), "public_ipv6"),
            (json!({"public_ipv6": "fe80::1"}), "public_ipv6"),
            (json!({"public_ipv6": "fd12:3456::1"}), "public_ipv6"),
            (json!({"public_ipv6": "ff02::1"}), "public_ipv6"),
            (json!({"public_ipv6": "::ffff:203.0.113.10"}), "public_ipv6"),
            (json!({"public_ipv6": "203.0.113.10"}), "public_ipv6"),
            (json!({"name": "renamed", "public_ipv6": "::1"}), "public_ipv6"),
        ] {
            let r = app.put(&path, t, body.clone()).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{body}: {}", r.text);
            assert!(r.body["error"].as_str().is_some_and(|e| e.contains(field)), "{}", r.text);
        }
        let n = app.get(&path, t).await.expect(200);
        assert_eq!(n.body["name"], "edge-one", "a refused update wrote nothing");
        assert_eq!((n.body["public_ipv4"].as_str(), n.body["public_ipv6"].as_str()), (Some("198.51.100.7"), Some("2001:db8::10")));
        // A wrong type is a 400 too, never a 500.
        let r = app.put(&path, t, json!({"public_ipv4": 5})).await;
        assert_eq!(r.status, 400, "{}", r.text);

        // `null` clears.
        let n = app.put(&path, t, json!({"public_ipv4": null, "public_ipv6": null})).await.expect(200);
        assert!(n.body["public_ipv4"].is_null() && n.body["public_ipv6"].is_null(), "{}", n.text);

        // Another organization's node is not found, for reading and for writing.
        let other = app.register("other@example.com").await;
        let o = Some(other.access.as_str());
        app.get(&path, o).await.expect_error(404, "NOT_FOUND");
        app.put(&path, o, json!({"public_ipv4": "203.0.113.99"})).await.expect_error(404, "NOT_FOUND");
        let n = app.get(&path, t).await.expect(200);
        assert!(n.body["public_ipv4"].is_null(), "{}", n.text);
    }

    async fn the_node_page_edits_public_addresses(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let node = app.register_node(&admin.access, None, "paged").await;
        let (jar, csrf) = sign_in(&app).await;
        let form = format!("/nodes/{node}/addresses");

        let (status, html) = post_form(&app, &jar, &csrf, &form, &[("public_ipv4", " 203.0.113.20 "), ("public_ipv6", "")]).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(r#"value="203.0.113.20""#), "the page shows the saved address");
        let n = app.get(&format!("/v1/nodes/{node}"), Some(&admin.access)).await.expect(200);
        assert_eq!(n.body["public_ipv4"], "203.0.113.20");
        assert!(n.body["public_ipv6"].is_null());

        // A refusal is shown on the page, on the field it concerns; nothing changes.
        let (status, html) = post_form(&app, &jar, &csrf, &form, &[("public_ipv4", "10.0.0.1"), ("public_ipv6", "")]).await;
        assert_eq!(status, 400, "{html}");
        assert!(html.contains(r#"id="form-error""#) && html.contains("VALIDATION_ERROR"), "{html}");
        assert!(html.contains("not a public unicast IPv4 address"), "{html}");
        assert!(html.contains(r#"data-field="public_ipv4" aria-invalid="true""#), "{html}");
        let n = app.get(&format!("/v1/nodes/{node}"), Some(&admin.access)).await.expect(200);
        assert_eq!(n.body["public_ipv4"], "203.0.113.20");

        // Empty fields clear both.
        let (status, _) = post_form(&app, &jar, &csrf, &form, &[("public_ipv4", ""), ("public_ipv6", "")]).await;
        assert_eq!(status, 200);
        let n = app.get(&format!("/v1/nodes/{node}"), Some(&admin.access)).await.expect(200);
        assert!(n.body["public_ipv4"].is_null(), "{}", n.text);
    }

    async fn a_provisioned_node_gets_its_terraform_addresses_when_it_comes_online(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("prov@example.com").await;
        let t = Some(s.access.as_str());
        let (first, first_dir) = register_node(&app, &s.access).await;
        let (second, second_dir) = register_node(&app, &s.access).await;
        let org = app.get(&format!("/v1/nodes/{}", first.node_id), t).await.expect(200).body["organization_id"]
            .as_str()
            .expect("org")
            .to_owned();
        // The second node's IPv4 was set by hand: it stays.
        app.put(&format!("/v1/nodes/{}", second.node_id), t, json!({"public_ipv4": "198.51.100.1"})).await.expect(200);
        // What a Terraform apply records (tests/api/provision_terraform.rs runs the real
        // one): the request, its outputs and the node that registered with its token.
        let now = shardlyn_panel::db::now_ms();
        for (id, node, ipv4, ipv6) in [
            ("req-first", &first.node_id, "203.0.113.31", "2001:db8:31::1"),
            ("req-second", &second.node_id, "203.0.113.32", "2001:db8:32::1"),
        ] {
            sqlx::query(
                "INSERT INTO provision_requests (id, org_id, name, provider, region, instance_type, image, \
                 status, ipv4, ipv6, node_id, created_at, updated_at) \
                 VALUES ($1, $2, $1, 'hetzner', 'fsn1', 'cx23', 'debian-12', 'applied', $3, $4, $5, $6, $6)",
            )
            .bind(id)
            .bind(&org)
            .bind(ipv4)
            .bind(ipv6)
            .bind(node)
            .bind(now)
            .execute(&app.state.db.pool)
            .await
            .expect("a provision request");
        }
        let a = LocalAgent::start(first.clone(), first_dir.path());
        let b = LocalAgent::start(second.clone(), second_dir.path());
        wait_node(&app, &s.access, &first.node_id, "online").await;
        wait_node(&app, &s.access, &second.node_id, "online").await;
        let n = wait_for_node(&app, &s.access, &first.node_id, "its Terraform addresses", |n| !n["public_ipv6"].is_null()).await;
        assert_eq!((n["public_ipv4"].as_str(), n["public_ipv6"].as_str()), (Some("203.0.113.31"), Some("2001:db8:31::1")));
        let n = wait_for_node(&app, &s.access, &second.node_id, "its IPv6 output", |n| !n["public_ipv6"].is_null()).await;
        assert_eq!(n["public_ipv4"], "198.51.100.1", "an address set by hand is kept");
        assert_eq!(n["public_ipv6"], "2001:db8:32::1");
        let status: String = sqlx::query_scalar("SELECT status FROM provision_requests WHERE id = 'req-first'")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("status");
        assert_eq!(status, "provisioned");
        a.stop().await;
        b.stop().await;
    }

    async fn workload_srv_service_is_set_cleared_and_validated(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("srv@example.com").await;
        let t = Some(s.access.as_str());

        let created = app
            .post("/v1/workloads", t, workload_body("Voice", json!({"dns_srv_service": "_Mumble._TCP"})))
            .await
            .expect(201);
        assert_eq!(created.body["dns_srv_service"], "_mumble._tcp", "stored in lower case");
        let id = created.body["id"].as_str().expect("id").to_owned();
        let path = format!("/v1/workloads/{id}");
        let list = app.get("/v1/workloads", t).await.expect(200);
        assert_eq!(list.body["data"][0]["dns_srv_service"], "_mumble._tcp", "{}", list.text);
        let plain = app.post("/v1/workloads", t, workload_body("Plain", json!({}))).await.expect(201);
        assert!(plain.body["dns_srv_service"].is_null(), "{}", plain.text);

        // What GET answers, PUT takes back; left out, it stays; a new value replaces it.
        let got = app.get(&path, t).await.expect(200);
        let same = app.put(&path, t, got.body.clone()).await.expect(200);
        assert_eq!(same.body["dns_srv_service"], "_mumble._tcp");
        let kept = app.put(&path, t, workload_body("Voice 2", json!({}))).await.expect(200);
        assert_eq!((kept.body["name"].as_str(), kept.body["dns_srv_service"].as_str()), (Some("Voice 2"), Some("_mumble._tcp")));
        let changed = app.put(&path, t, workload_body("Voice 2", json!({"dns_srv_service": "_ts3._udp"}))).await.expect(200);
        assert_eq!(changed.body["dns_srv_service"], "_ts3._udp");

        // Refused, naming the field, on create and on update (nothing written).
        for bad in [
            json!("minecraft._tcp"),
            json!("_minecraft"),
            json!("_minecraft._sctp"),
            json!("_mine craft._tcp"),
            json!("_-minecraft._tcp"),
            json!("_minecraft._tcp.example.com"),
            json!(format!("_{}._tcp", "a".repeat(64))),
            json!(""),
            json!(27015),
        ] {
            let r = app.post("/v1/workloads", t, workload_body("Bad", json!({"dns_srv_service": bad.clone()})))
                .await
                .expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], "dns_srv_service", "{bad}: {}", r.text);
            let r = app.put(&path, t, workload_body("Renamed", json!({"dns_srv_service": bad.clone()})))
                .await
                .expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], "dns_srv_service", "{bad}: {}", r.text);
        }
        let got = app.get(&path, t).await.expect(200);
        assert_eq!((got.body["name"].as_str(), got.body["dns_srv_service"].as_str()), (Some("Voice 2"), Some("_ts3._udp")));

        // `null` clears.
        let cleared = app.put(&path, t, workload_body("Voice 2", json!({"dns_srv_service": null}))).await.expect(200);
        assert!(cleared.body["dns_srv_service"].is_null(), "{}", cleared.text);
        assert!(app.get(&path, t).await.expect(200).body["dns_srv_service"].is_null());

        // Another organization's workload is not found.
        let other = app.register("srv-other@example.com").await;
        app.put(&path, Some(&other.access), workload_body("Mine", json!({"dns_srv_service": "_rust._udp"})))
            .await
            .expect_error(404, "NOT_FOUND");
    }

    async fn bundled_templates_carry_their_srv_service(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("tpl-srv@example.com").await;
        let t = Some(s.access.as_str());
        let templates = app.get("/v1/templates", t).await.expect(200);
        let srv_of = |id: &str| {
            templates.body.as_array().expect("list").iter().find(|t| t["id"] == id).map(|t| t["dns_srv_service"].clone())
        };
        assert_eq!(srv_of("minecraft-paper"), Some(json!("_minecraft._tcp")), "{}", templates.text);
        assert_eq!(srv_of("valheim"), Some(Value::Null), "Valheim clients do not look SRV up");
        let paper = app.post("/v1/workloads/from-template", t, json!({"template": "minecraft-paper"})).await.expect(201);
        assert_eq!(paper.body["dns_srv_service"], "_minecraft._tcp", "{}", paper.text);
        let terraria = app.post("/v1/workloads/from-template", t, json!({"template": "terraria"})).await.expect(201);
        assert!(terraria.body["dns_srv_service"].is_null());

        // An imported egg has none, whatever it is; it is set on the workload afterwards.
        let exported = app.get(&format!("/v1/workloads/{}/export", paper.body["id"].as_str().expect("id")), t).await.expect(200);
        let imported = app.post("/v1/workloads/import-egg", t, json!({"egg": exported.text})).await.expect(201);
        assert!(imported.body["dns_srv_service"].is_null(), "{}", imported.text);
        assert!(!exported.text.contains("_minecraft._tcp"), "the egg file says nothing of SRV");
    }

    async fn the_workloads_page_edits_the_srv_service(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let w = app.post("/v1/workloads", t, workload_body("Factory", json!({}))).await.expect(201);
        let id = w.body["id"].as_str().expect("id").to_owned();
        let (jar, csrf) = sign_in(&app).await;
        let form = format!("/workloads/{id}/srv");

        let (status, html) = post_form(&app, &jar, &csrf, &form, &[("organization_id", ""), ("dns_srv_service", "_factorio._udp")]).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(r#"value="_factorio._udp""#), "{html}");
        let got = app.get(&format!("/v1/workloads/{id}"), t).await.expect(200);
        assert_eq!(got.body["dns_srv_service"], "_factorio._udp");
        assert_eq!(got.body["images"], w.body["images"], "the rest of the workload is as it was");

        let (status, html) = post_form(&app, &jar, &csrf, &form, &[("organization_id", ""), ("dns_srv_service", "factorio")]).await;
        assert_eq!(status, 400, "{html}");
        assert!(html.contains(&format!(r#"id="srv-error-{id}""#)), "the error sits in the workload's row: {html}");
        assert!(html.contains(r#"value="factorio""#), "what was typed is kept: {html}");
        assert_eq!(app.get(&format!("/v1/workloads/{id}"), t).await.expect(200).body["dns_srv_service"], "_factorio._udp");

        let (status, _) = post_form(&app, &jar, &csrf, &form, &[("organization_id", ""), ("dns_srv_service", " ")]).await;
        assert_eq!(status, 200);
        assert!(app.get(&format!("/v1/workloads/{id}"), t).await.expect(200).body["dns_srv_service"].is_null());
        let (status, _) = post_form(&app, &jar, &csrf, "/workloads/no-such-id/srv", &[("dns_srv_service", "_rust._udp")]).await;
        assert_eq!(status, 404);
    }
}
