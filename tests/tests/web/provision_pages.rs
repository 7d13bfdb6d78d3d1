//! The cloud node pages (`/provision`, `/provision/new`, `/provision/{id}`): over plain
//! HTTP on both engines (the wizard without a credential links to `/credentials`; with
//! one it offers the region's types with their prices, ARM ones disabled; a refused name
//! is shown beside its field; a good form creates the request and plans it with a real
//! `terraform`, the request page shows the log and then the plan to review with its
//! counts and the Apply button naming the price; the list and the nodes page link to
//! it; Discard removes it; another user's request is a 404) and in a real headless
//! Chromium (pick fsn1 and cx23, submit, watch the log come in and the plan review
//! appear).
//!
//! Hetzner Cloud cannot be reached from the test machines: its API is
//! `shardlyn_tests::hetzner::FakeHetzner`, a local FAKE speaking Hetzner's documented
//! wire format, and the `hetznercloud/hcloud` Terraform provider is the test double of
//! `tests/hcloud-provider` (`shardlyn_tests::terraform::test_cli_config`). Terraform
//! itself is real.

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};
use shardlyn_tests::hetzner::FakeHetzner;
use shardlyn_tests::{Engine, PASSWORD, TestApp, both_engines, spawn_app_with};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};
use crate::typed_pages::{page, sign_in};

const TOKEN: &str = "hcloud-web-provision-0123456789abcdef";

/// How long a `terraform plan` may take here before the test gives up.
const PLAN_DEADLINE: Duration = Duration::from_secs(180);

/// A panel whose Hetzner API is the fake and whose Terraform installs the test
/// provider; the admin's access token. `None` when Terraform tests are skipped.
struct Cloud {
    app: TestApp,
    access: String,
    _fake: FakeHetzner,
    _tf: tempfile::TempDir,
}

async fn cloud(engine: Engine) -> Option<Cloud> {
    if !shardlyn_tests::terraform::terraform_available() {
        eprintln!("SHARDLYN_TEST_SKIP_TERRAFORM=1: skipped");
        return None;
    }
    let fake = FakeHetzner::start(TOKEN).await;
    let tf = tempfile::tempdir().expect("tempdir");
    let cli = shardlyn_tests::terraform::test_cli_config(tf.path());
    let url = fake.url.clone();
    let app = spawn_app_with(engine, move |c| {
        c.cloud.hetzner_api_url = url;
        c.provision.terraform_cli_config = Some(cli);
    })
    .await;
    let access = app.bootstrap_admin().await.access;
    Some(Cloud {
        app,
        access,
        _fake: fake,
        _tf: tf,
    })
}

impl Cloud {
    async fn add_credential(&self) {
        self.app
            .post(
                "/v1/credentials",
                Some(&self.access),
                json!({"name": "Hetzner main", "provider": "hetzner", "config": {"token": TOKEN}}),
            )
            .await
            .expect(201);
    }

    /// The hourly and monthly price of `cx23` in fsn1, as the planner answers it.
    async fn cx23_price(&self) -> (String, String) {
        let r = self
            .app
            .get(
                "/v1/planner/pricing?provider=hetzner&region=fsn1",
                Some(&self.access),
            )
            .await
            .expect(200);
        let types = r.body["data"][0]["types"]
            .as_array()
            .expect("types")
            .clone();
        let cx23 = types
            .iter()
            .find(|t| t["name"] == "cx23")
            .unwrap_or_else(|| panic!("cx23 in {types:?}"));
        let p = &cx23["prices"]["fsn1"];
        (
            p["hourly"].as_str().expect("hourly").to_owned(),
            p["monthly"].as_str().expect("monthly").to_owned(),
        )
    }

    /// Waits until request `id` is no longer planning; answers it.
    async fn planned(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let r = self
                .app
                .get(&format!("/v1/provision/{id}"), Some(&self.access))
                .await
                .expect(200)
                .body;
            if r["status"] != "planning" {
                return r;
            }
            assert!(
                started.elapsed() < PLAN_DEADLINE,
                "still planning after {PLAN_DEADLINE:?}: {r}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `POST path` with the session's cookies and `fields` (the CSRF token added): the
/// status, the `Location` and the HTML.
async fn post_form(
    app: &TestApp,
    (jar, csrf): (&str, &str),
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
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
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let html = r.text().await.expect("html");
    assert!(!html.contains(TOKEN), "the token is never shown: {html}");
    (status, location, html)
}

/// `GET path`, checked to answer 200.
async fn shown(app: &TestApp, jar: &str, path: &str) -> String {
    let (status, html) = page(app, jar, path).await;
    assert_eq!(status, 200, "{path}: {html}");
    assert!(!html.contains(TOKEN), "the token is never shown: {html}");
    html
}

fn has(html: &str, parts: &[&str]) {
    for part in parts {
        assert!(html.contains(part), "{part} in {html}");
    }
}

both_engines! {
    async fn the_provision_pages_create_plan_review_and_discard(engine) {
        let Some(cloud) = cloud(engine).await else { return };
        let app = &cloud.app;
        let (jar, csrf) = sign_in(app).await;
        let session = (jar.as_str(), csrf.as_str());

        // The nodes page links to the wizard and the list.
        let nodes = shown(app, &jar, "/nodes").await;
        has(&nodes, &[r#"href="/provision/new""#, "New cloud node", r#"href="/provision""#]);
        let list = shown(app, &jar, "/provision").await;
        has(&list, &[r#"id="provision-empty""#, r#"id="provision-new""#]);

        // No Hetzner credential yet: the wizard says so and links to /credentials.
        let html = shown(app, &jar, "/provision/new").await;
        has(&html, &[r#"id="no-credential""#, r#"href="/credentials""#, r#"id="provision-create" disabled"#]);

        cloud.add_credential().await;
        let (hourly, monthly) = cloud.cx23_price().await;
        let html = shown(app, &jar, "/provision/new?provider=hetzner&region=fsn1").await;
        has(&html, &[
            r#"<option value="fsn1" selected>"#,
            r#"name="credential_id""#,
            "Hetzner main (default)",
            r#"id="type-cx23""#,
            &format!(r#"<td class="price-hourly">{hourly}</td>"#),
            &format!(r#"<td class="price-monthly">{monthly}</td>"#),
            "prices in EUR",
            r#"value="debian-12""#,
        ]);
        // ARM types are listed, disabled, with the reason.
        let arm = html.find(r#"id="type-cax11""#).expect("cax11 listed");
        let tag_end = arm + html[arm..].find('>').expect("tag end");
        assert!(html[arm..tag_end].contains("disabled"), "{}", &html[arm..tag_end]);
        assert!(html.contains("no ARM agent build yet"), "{html}");

        // A bad name: the API's refusal beside the name, what was chosen kept.
        let good = [
            ("organization_id", ""),
            ("provider", "hetzner"),
            ("region", "fsn1"),
            ("credential_id", ""),
            ("instance_type", "cx23"),
            ("image", "debian-12"),
        ];
        let mut bad = good.to_vec();
        bad.push(("name", "Not a hostname!"));
        let (status, _, html) = post_form(app, session, "/provision/new", &bad).await;
        assert_eq!(status, 400, "{html}");
        has(&html, &[
            r#"id="f-name-error""#,
            "<code>name</code>",
            r#"value="Not a hostname!""#,
            r#"id="type-cx23" checked"#,
        ]);
        let none = app.get("/v1/provision", Some(&cloud.access)).await.expect(200);
        assert_eq!(none.body["data"].as_array().map(Vec::len), Some(0));
        // An ARM type is refused by the API too (the form cannot send it; a crafted post can).
        let mut arm = good.to_vec();
        arm.retain(|(k, _)| *k != "instance_type");
        arm.extend([("instance_type", "cax11"), ("name", "arm-node")]);
        let (status, _, html) = post_form(app, session, "/provision/new", &arm).await;
        assert_eq!(status, 422, "{html}");
        has(&html, &["ARM_UNAVAILABLE"]);

        // A good one: created, planned at once, and shown.
        let mut form = good.to_vec();
        form.push(("name", "web-node-1"));
        let (status, location, html) = post_form(app, session, "/provision/new", &form).await;
        assert_eq!(status, 303, "{html}");
        let id = location
            .strip_prefix("/provision/")
            .and_then(|rest| rest.strip_suffix("?done=provision-planning"))
            .unwrap_or_else(|| panic!("{location}"))
            .to_owned();
        let html = shown(app, &jar, &location).await;
        has(&html, &[
            "Terraform is planning",
            r#"id="provision-log""#,
            &format!(r#"data-request="{id}""#),
            "/static/provision.js",
        ]);

        let r = cloud.planned(&id).await;
        assert_eq!(r["status"], "planned", "{r}");
        // The request keeps the price it was planned at.
        let (planned_hourly, planned_monthly) = (
            r["price_hourly"].as_str().expect("price_hourly").to_owned(),
            r["price_monthly"].as_str().expect("price_monthly").to_owned(),
        );
        let html = shown(app, &jar, &format!("/provision/{id}")).await;
        has(&html, &[
            r#"id="request-status" role="status">planned<"#,
            r#"id="plan-review""#,
            r#"<li class="plan-count" data-action="create"><strong>"#,
            "hcloud_server",
            r#"id="apply""#,
            &format!("It costs {planned_hourly} EUR per hour ({planned_monthly} EUR per month)"),
            r#"id="plan-again""#,
            r#"id="discard""#,
            r#"data-follow="false""#,
        ]);
        // The log of the plan, Terraform's JSON lines shown by their message.
        assert!(html.contains(r#"class="log-line log-info""#), "{html}");
        assert!(!html.contains("&quot;@message&quot;"), "messages, not raw JSON: {html}");
        let creates = r["plan"]["counts"]["create"].as_i64().expect("create count");
        assert!(html.contains(&format!("<strong>{creates}</strong> to create")), "{html}");

        let list = shown(app, &jar, "/provision").await;
        has(&list, &[
            &format!(r#"href="/provision/{id}""#),
            "web-node-1",
            "planned",
            &format!("{planned_hourly}/h"),
        ]);

        // Another user's request is a 404, on the page and on its forms.
        let other = app.register("other@example.com").await;
        let theirs = app
            .post(
                "/v1/credentials",
                Some(&other.access),
                json!({"name": "Theirs", "provider": "hetzner", "config": {"token": TOKEN}}),
            )
            .await
            .expect(201);
        assert!(theirs.body["id"].is_string());
        let theirs = app
            .post(
                "/v1/provision",
                Some(&other.access),
                json!({"provider": "hetzner", "region": "fsn1", "instance_type": "cx23",
                       "name": "theirs"}),
            )
            .await
            .expect(201);
        let theirs = theirs.body["id"].as_str().expect("id").to_owned();
        let (status, _) = page(app, &jar, &format!("/provision/{theirs}")).await;
        assert_eq!(status, 404);
        for action in ["plan", "apply", "delete"] {
            let (status, _, html) =
                post_form(app, session, &format!("/provision/{theirs}/{action}"), &[]).await;
            assert_eq!(status, 404, "{action}: {html}");
        }

        // Applying what is not planned is refused on the page (pending: nothing planned).
        let pending = app
            .post(
                "/v1/provision",
                Some(&cloud.access),
                json!({"provider": "hetzner", "region": "fsn1", "instance_type": "cx23",
                       "name": "pending-node"}),
            )
            .await
            .expect(201);
        let pending = pending.body["id"].as_str().expect("id").to_owned();
        let (status, _, html) =
            post_form(app, session, &format!("/provision/{pending}/apply"), &[]).await;
        assert_eq!(status, 409, "{html}");
        has(&html, &["NOT_PLANNED", r#"id="form-error""#]);

        // Discard: nothing was created, so the request goes.
        let (status, location, html) =
            post_form(app, session, &format!("/provision/{id}/delete"), &[]).await;
        assert_eq!((status, location.as_str()), (303, "/provision?done=provision-discarded"), "{html}");
        let list = shown(app, &jar, &location).await;
        has(&list, &["The request was discarded."]);
        assert!(!list.contains("web-node-1"), "{list}");
        app.get(&format!("/v1/provision/{id}"), Some(&cloud.access)).await.expect(404);

        // Without the CSRF token, nothing is created.
        let r = app
            .client
            .post(format!("{}/provision/new", app.base))
            .header(COOKIE, &jar)
            .form(&form)
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_in_the_browser_shows_the_log_and_the_plan() {
    let Some(cloud) = cloud(Engine::Sqlite).await else {
        return;
    };
    cloud.add_credential().await;
    let (hourly, _) = cloud.cx23_price().await;
    let base = cloud.app.base.clone();
    Chrome::start(false)
        .await
        .run(
            "provisioning_in_the_browser_shows_the_log_and_the_plan",
            |c| async move {
                c.goto(&format!("{base}/login")).await?;
                fill(&c, "#email", "admin@example.com").await?;
                fill(&c, "#password", PASSWORD).await?;
                click(&c, "#login-submit").await?;
                wait_path(&c, "/").await?;
                c.goto(&format!("{base}/nodes")).await?;
                click(&c, "#new-cloud-node").await?;
                wait_path(&c, "/provision/new").await?;
                find(&c, "#f-region").await?.select_by_value("fsn1").await?;
                click(&c, "#provision-choose").await?;
                let row = wait_text(
                    &c,
                    "#instance-types tr[data-type='cx23']",
                    &hourly,
                    Duration::from_secs(10),
                )
                .await?;
                anyhow::ensure!(row.contains("cx23"), "{row}");
                anyhow::ensure!(
                    !find(&c, "#type-cax11").await?.is_enabled().await?,
                    "ARM types cannot be chosen"
                );
                // A refused name: the message beside the field.
                click(&c, "#type-cx23").await?;
                fill(&c, "#f-name", "bad name!").await?;
                click(&c, "#provision-create").await?;
                wait_text(&c, "#f-name-error", "hostname", Duration::from_secs(10)).await?;
                // The choice is kept; a good name goes through.
                anyhow::ensure!(
                    find(&c, "#type-cx23").await?.is_selected().await?,
                    "cx23 is still chosen"
                );
                fill(&c, "#f-name", "browser-node").await?;
                click(&c, "#provision-create").await?;
                wait_text(&c, "#request-name", "browser-node", Duration::from_secs(10)).await?;
                // The page's script runs (it follows the log while the plan runs).
                let followed = find(&c, "#provision-log[data-script='on']")
                    .await?
                    .attr("data-follow")
                    .await?
                    .as_deref()
                    == Some("true");
                // The log comes in while Terraform plans (the script reads it every
                // second), then the page shows the plan to review.
                wait_text(&c, "#log-lines", "Plan:", PLAN_DEADLINE).await?;
                let review =
                    wait_text(&c, "#plan-counts", "to create", Duration::from_secs(20)).await?;
                anyhow::ensure!(review.contains("create"), "{review}");
                let status = find(&c, "#request-status").await?.text().await?;
                if followed {
                    anyhow::ensure!(
                        c.current_url().await?.query().is_none(),
                        "the script loaded the page again, without the stale notice"
                    );
                }
                anyhow::ensure!(status == "planned", "{status}");
                let apply = find(&c, "#apply").await?.text().await?;
                anyhow::ensure!(apply.contains("EUR/h"), "the price on Apply: {apply}");
                Ok(())
            },
        )
        .await;
}
