//! Cloud costs (`/v1/billing/org/cloud-costs*`, issue 19 §7): a ledger of each
//! provisioned node's life, priced from the planner's table, that survives the node's
//! deletion; a month's cost per node life is its started hours × its hourly price,
//! capped at its monthly price; by node and provider; a forecast to the month's end with
//! a pinned clock; a refresh that re-reads Hetzner's prices (the Hetzner fake,
//! `shardlyn_tests::hetzner`, whose wire format `fake_hetzner.rs` checks with the
//! official client); scoped to the organization and its `billing.read` /
//! `billing.manage` permissions. Billing (Stripe) is off in these tests: cloud costs do
//! not need it. No Stripe fake is used.
//!
//! Ledger entries are made by the provisioning runner's own hooks
//! (`billing::costs::on_applied`, `on_resized`, `on_destroyed`) and the node delete
//! route, called on provision requests stored the way the runner leaves them; the runs
//! with a real `terraform` are `provision_terraform.rs`'s.

use serde_json::{Value, json};
use shardlyn_panel::billing::costs;
use shardlyn_tests::hetzner::FakeHetzner;
use shardlyn_tests::{Engine, Session, TestApp, both_engines, spawn_app_with};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2030-01-01T00:00:00Z.
const JAN: i64 = 1_893_456_000_000;
/// 2030-02-01T00:00:00Z.
const FEB: i64 = 1_896_134_400_000;
const TOKEN: &str = "hcloud-token-costs-0123456789";

/// A panel whose Hetzner API is closed: prices come from the bundled table.
async fn spawn_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, |c| {
        c.cloud.hetzner_api_url = "http://127.0.0.1:9/v1".into();
    })
    .await
}

async fn personal_org(app: &TestApp, token: &str) -> String {
    let r = app.get("/v1/organizations", Some(token)).await.expect(200);
    r.body[0]["id"].as_str().expect("personal org").to_string()
}

/// A provision request of `org_id` stored as the runner leaves an applied one: its
/// plan's prices, `status`, and the node that joined (if any).
async fn stored_request(
    app: &TestApp,
    org_id: &str,
    name: &str,
    (provider, region, instance_type): (&str, &str, &str),
    (hourly, monthly): (&str, &str),
    status: &str,
    node_id: Option<&str>,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = shardlyn_panel::db::now_ms();
    sqlx::query(
        "INSERT INTO provision_requests (id, org_id, name, provider, region, instance_type, \
         image, status, price_hourly, price_monthly, node_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'debian-12', $7, $8, $9, $10, $11, $11)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(name)
    .bind(provider)
    .bind(region)
    .bind(instance_type)
    .bind(status)
    .bind(hourly)
    .bind(monthly)
    .bind(node_id)
    .bind(now)
    .execute(&app.state.db.pool)
    .await
    .expect("insert provision request");
    id
}

async fn set_status(app: &TestApp, request_id: &str, status: &str) {
    sqlx::query("UPDATE provision_requests SET status = $1 WHERE id = $2")
        .bind(status)
        .bind(request_id)
        .execute(&app.state.db.pool)
        .await
        .expect("set status");
}

async fn ledger_rows(app: &TestApp, request_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM cloud_cost_entries WHERE provision_request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("count")
}

fn node_row<'a>(costs: &'a Value, node_name: &str) -> &'a Value {
    costs["by_node"]
        .as_array()
        .expect("by_node")
        .iter()
        .find(|n| n["node_name"] == node_name)
        .unwrap_or_else(|| panic!("no row for {node_name}: {costs}"))
}

async fn costs_of(app: &TestApp, s: &Session, query: &str) -> Value {
    app.get(
        &format!("/v1/billing/org/cloud-costs{query}"),
        Some(&s.access),
    )
    .await
    .expect(200)
    .body
}

both_engines! {
    async fn a_months_costs_are_started_hours_times_price_capped_and_outlive_the_node(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("costs-owner@example.com").await;
        let org = personal_org(&app, &s.access).await;
        let cx23 = ("hetzner", "fsn1", "cx23");

        // Ten hours and running, at 0.01/h: 0.10.
        let node_a = app.register_node(&s.access, None, "cost-a").await;
        let a = stored_request(&app, &org, "cost-a", cx23, ("0.01", "5"), "provisioned", Some(&node_a)).await;
        let now = JAN + 30 * DAY + 12 * HOUR;
        costs::on_applied(&app.state, &a, now - 10 * HOUR).await;
        costs::on_applied(&app.state, &a, now - 9 * HOUR).await;
        assert_eq!(ledger_rows(&app, &a).await, 1, "one open entry per request");

        // Five hours, then its node was deleted (its destroy had failed): 0.05, kept.
        let node_b = app.register_node(&s.access, None, "cost-b").await;
        let b = stored_request(&app, &org, "cost-b", cx23, ("0.01", "5"), "provisioned", Some(&node_b)).await;
        costs::on_applied(&app.state, &b, JAN + HOUR).await;
        app.delete(&format!("/v1/nodes/{node_b}"), Some(&s.access))
            .await
            .expect_error(409, "PROVISIONED_NODE");
        set_status(&app, &b, "failed").await;
        app.state.clock.set_ms(JAN + 6 * HOUR);
        app.delete(&format!("/v1/nodes/{node_b}"), Some(&s.access)).await.expect(204);

        // On AWS since December: the whole month so far is 732 h × 0.02 = 14.64, capped
        // at its monthly 10.
        let c = stored_request(&app, &org, "cost-c", ("aws", "us-east-1", "t3.medium"), ("0.02", "10"), "applied", None).await;
        costs::on_applied(&app.state, &c, JAN - 5 * DAY).await;

        app.state.clock.set_ms(now);
        let body = costs_of(&app, &s, "").await;
        assert_eq!(body["month"], "2030-01", "{body}");
        assert_eq!(body["organization_id"], org.as_str());
        let names: Vec<&str> = body["by_node"].as_array().expect("rows").iter()
            .map(|n| n["node_name"].as_str().expect("name")).collect();
        assert_eq!(names, ["cost-c", "cost-b", "cost-a"], "oldest first: {body}");

        let row = node_row(&body, "cost-a");
        assert_eq!((row["hours"].as_i64(), row["hourly"].as_str(), row["monthly_cap"].as_str()), (Some(10), Some("0.0100"), Some("5.0000")));
        assert_eq!(row["cost"], "0.1000");
        assert_eq!((row["running"].as_bool(), row["deleted"].as_bool()), (Some(true), Some(false)));
        assert_eq!(row["node_id"], node_a.as_str());
        assert_eq!(row["currency"], "EUR", "the planner's Hetzner table is in euros");
        assert_eq!((row["provider"].as_str(), row["instance_type"].as_str(), row["location"].as_str()), (Some("hetzner"), Some("cx23"), Some("fsn1")));

        let row = node_row(&body, "cost-b");
        assert_eq!((row["hours"].as_i64(), row["cost"].as_str()), (Some(5), Some("0.0500")));
        assert_eq!((row["running"].as_bool(), row["deleted"].as_bool()), (Some(false), Some(true)), "{row}");
        assert_eq!(row["node_id"], node_b.as_str(), "the deleted node is still named");
        assert!(row["ended_at"].as_str().is_some_and(|t| t.starts_with("2030-01-01T06:00:00")), "{row}");

        let row = node_row(&body, "cost-c");
        assert_eq!((row["hours"].as_i64(), row["cost"].as_str()), (Some(732), Some("10.0000")));
        assert_eq!((row["currency"].as_str(), row["running"].as_bool()), (Some("USD"), Some(true)));
        assert_eq!(row["node_id"], Value::Null, "its agent never joined");

        assert_eq!(body["by_provider"], json!([
            {"provider": "aws", "currency": "USD", "cost": "10.0000"},
            {"provider": "hetzner", "currency": "EUR", "cost": "0.1500"},
        ]));
        assert_eq!(body["totals"], json!([
            {"currency": "EUR", "total": "0.1500"},
            {"currency": "USD", "total": "10.0000"},
        ]));
        assert_eq!((&body["currency"], &body["total"]), (&Value::Null, &Value::Null), "two currencies have no one total");

        // December: only the AWS node, 120 h at 0.02.
        let dec = costs_of(&app, &s, "?month=2029-12").await;
        assert_eq!((dec["currency"].as_str(), dec["total"].as_str()), (Some("USD"), Some("2.4000")), "{dec}");
        assert_eq!(dec["by_node"].as_array().map(Vec::len), Some(1));
        let nov = costs_of(&app, &s, "?month=2029-11").await;
        assert_eq!((nov["total"].as_str(), &nov["currency"]), (Some("0.0000"), &Value::Null));
        assert_eq!(nov["by_node"], json!([]));
        for bad in ["2030-13", "2030-1", "january"] {
            let r = app.get(&format!("/v1/billing/org/cloud-costs?month={bad}"), Some(&s.access))
                .await
                .expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], "month", "{}", r.text);
        }
    }

    async fn the_forecast_runs_running_nodes_to_the_months_end(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("costs-forecast@example.com").await;
        let org = personal_org(&app, &s.access).await;
        let cx23 = ("hetzner", "fsn1", "cx23");
        let now = JAN + 10 * DAY;
        app.state.clock.set_ms(now);

        // A day so far (0.24); 528 h to the end would be 5.28, capped at 5.
        let a = stored_request(&app, &org, "fc-a", cx23, ("0.01", "5"), "applied", None).await;
        costs::on_applied(&app.state, &a, JAN + 9 * DAY).await;
        // Since December: 240 h so far (0.24), 744 h by the end (0.744).
        let b = stored_request(&app, &org, "fc-b", cx23, ("0.001", "5"), "applied", None).await;
        costs::on_applied(&app.state, &b, JAN - 3 * DAY).await;
        // Destroyed after two hours: 0.02, and no more.
        let c = stored_request(&app, &org, "fc-c", cx23, ("0.01", "5"), "applied", None).await;
        costs::on_applied(&app.state, &c, JAN).await;
        costs::on_destroyed(&app.state, &c, JAN + 2 * HOUR).await;

        let f = app.get("/v1/billing/org/cloud-costs/forecast", Some(&s.access)).await.expect(200).body;
        assert_eq!(f["month"], "2030-01", "{f}");
        assert!(f["month_end"].as_str().is_some_and(|t| t.starts_with("2030-02-01T00:00:00")), "{f}");
        assert!(f["as_of"].as_str().is_some_and(|t| t.starts_with("2030-01-11T00:00:00")), "{f}");
        let row = |name: &str| -> (i64, String, i64, String) {
            let r = node_row(&f, name);
            (
                r["hours_to_date"].as_i64().expect("hours"),
                r["cost_to_date"].as_str().expect("cost").to_owned(),
                r["hours_forecast"].as_i64().expect("hours"),
                r["forecast"].as_str().expect("forecast").to_owned(),
            )
        };
        assert_eq!(row("fc-a"), (24, "0.2400".into(), 528, "5.0000".into()));
        assert_eq!(row("fc-b"), (240, "0.2400".into(), 744, "0.7440".into()));
        assert_eq!(row("fc-c"), (2, "0.0200".into(), 2, "0.0200".into()));
        assert_eq!((f["currency"].as_str(), f["cost_to_date"].as_str(), f["forecast"].as_str()), (Some("EUR"), Some("0.5000"), Some("5.7640")));
        assert_eq!(f["by_provider"], json!([
            {"provider": "hetzner", "currency": "EUR", "cost_to_date": "0.5000", "forecast": "5.7640"},
        ]));

        // A day later the costs so far moved on; the capped forecast did not.
        app.state.clock.set_ms(now + DAY);
        let f = app.get("/v1/billing/org/cloud-costs/forecast", Some(&s.access)).await.expect(200).body;
        assert_eq!(row_of(&f, "fc-a"), ("0.4800".to_owned(), "5.0000".to_owned()));
        assert_eq!(row_of(&f, "fc-b"), ("0.2640".to_owned(), "0.7440".to_owned()));
        // In February, January's nodes that still run start again from zero.
        app.state.clock.set_ms(FEB + HOUR);
        let f = app.get("/v1/billing/org/cloud-costs/forecast", Some(&s.access)).await.expect(200).body;
        assert_eq!(f["month"], "2030-02");
        assert_eq!(row_of(&f, "fc-b"), ("0.0010".to_owned(), "0.6720".to_owned()), "672 h in February");
        assert!(f["by_node"].as_array().expect("rows").iter().all(|n| n["node_name"] != "fc-c"), "{f}");
    }

    async fn resizes_and_destroys_split_and_end_entries(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("costs-hooks@example.com").await;
        let org = personal_org(&app, &s.access).await;
        let node = app.register_node(&s.access, None, "hook-node").await;
        // Priced by its plan at the bundled cx23 price.
        let r = stored_request(&app, &org, "hook-node", ("hetzner", "fsn1", "cx23"), ("0.0064", "3.99"), "provisioned", Some(&node)).await;
        let t0 = JAN + DAY;
        costs::on_applied(&app.state, &r, t0).await;
        // The runner stores the new type, then calls the hook.
        sqlx::query("UPDATE provision_requests SET instance_type = 'cx33' WHERE id = $1")
            .bind(&r)
            .execute(&app.state.db.pool)
            .await
            .expect("resize");
        costs::on_resized(&app.state, &r, t0 + 3 * HOUR).await;
        // The destroy ends the entry, then the node goes (as `forget_node` does it).
        costs::on_destroyed(&app.state, &r, t0 + 5 * HOUR).await;
        shardlyn_panel::nodes::store::delete(&app.state.db.pool, &node).await.expect("delete node");
        set_status(&app, &r, "destroyed").await;
        assert_eq!(ledger_rows(&app, &r).await, 2);

        app.state.clock.set_ms(t0 + DAY);
        let body = costs_of(&app, &s, "?month=2030-01").await;
        let rows = body["by_node"].as_array().expect("rows");
        assert_eq!(rows.len(), 2, "{body}");
        let summary: Vec<(String, i64, String, String, bool, bool)> = rows.iter().map(|n| (
            n["instance_type"].as_str().expect("type").to_owned(),
            n["hours"].as_i64().expect("hours"),
            n["hourly"].as_str().expect("hourly").to_owned(),
            n["cost"].as_str().expect("cost").to_owned(),
            n["running"].as_bool().expect("running"),
            n["deleted"].as_bool().expect("deleted"),
        )).collect();
        assert_eq!(summary, [
            ("cx23".to_owned(), 3, "0.0064".to_owned(), "0.0192".to_owned(), false, true),
            // The new type priced by the planner's table (cx33: 0.0104/h, 6.49/month).
            ("cx33".to_owned(), 2, "0.0104".to_owned(), "0.0208".to_owned(), false, true),
        ]);
        assert!(rows.iter().all(|n| n["node_id"] == node.as_str()), "{body}");
        assert_eq!(rows[1]["monthly_cap"], "6.4900");
        assert_eq!((body["currency"].as_str(), body["total"].as_str()), (Some("EUR"), Some("0.0400")));
        // Once ended, a node's entry is not reopened by a late destroy or node delete.
        costs::on_destroyed(&app.state, &r, t0 + 9 * HOUR).await;
        costs::on_node_deleted(&app.state, &node, t0 + 9 * HOUR).await;
        let again = costs_of(&app, &s, "?month=2030-01").await;
        assert_eq!(again["total"], "0.0400");
    }

    async fn refresh_rereads_hetzners_prices_and_skips_providers_without_an_api(engine) {
        let fake = FakeHetzner::start(TOKEN).await;
        let url = fake.url.clone();
        let app = spawn_app_with(engine, move |c| c.cloud.hetzner_api_url = url).await;
        let s = app.register("costs-refresh@example.com").await;
        let org = personal_org(&app, &s.access).await;
        let now = JAN + 10 * DAY;
        app.state.clock.set_ms(now);

        // Without a credential there is nothing to read Hetzner's prices with.
        let h = stored_request(&app, &org, "rf-h", ("hetzner", "fsn1", "cx23"), ("0.01", "5"), "applied", None).await;
        costs::on_applied(&app.state, &h, now - 2 * HOUR).await;
        let w = stored_request(&app, &org, "rf-w", ("aws", "us-east-1", "t3.medium"), ("0.0416", "30.37"), "applied", None).await;
        costs::on_applied(&app.state, &w, now - 2 * HOUR).await;
        let r = app.post("/v1/billing/org/cloud-costs/refresh", Some(&s.access), json!({})).await.expect(200).body;
        assert_eq!(r["refreshed"], json!([]), "{r}");
        let skipped = r["skipped"].as_array().expect("skipped");
        assert_eq!(skipped.len(), 2, "{r}");
        assert_eq!(skipped[0]["provider"], "aws");
        assert!(skipped[0]["reason"].as_str().is_some_and(|m| m.contains("no price API")), "{r}");
        assert_eq!(skipped[1]["provider"], "hetzner");
        assert!(skipped[1]["reason"].as_str().is_some_and(|m| m.contains("no Hetzner credential")), "{r}");
        assert_eq!(node_row(&r["costs"], "rf-h")["hourly"], "0.0100");

        app.post(
            "/v1/credentials",
            Some(&s.access),
            json!({"name": "hetzner", "provider": "hetzner", "config": {"token": TOKEN}}),
        )
        .await
        .expect(201);
        let pricing_reads = || fake.requests().iter().filter(|(m, p)| m == "GET" && p.ends_with("/pricing")).count();
        let before = pricing_reads();
        let r = app.post("/v1/billing/org/cloud-costs/refresh", Some(&s.access), json!({})).await.expect(200).body;
        assert_eq!(r["refreshed"], json!([{"provider": "hetzner", "source": "hetzner_api", "updated": 1}]), "{r}");
        assert_eq!(r["skipped"].as_array().map(Vec::len), Some(1), "aws is still skipped: {r}");
        assert_eq!(pricing_reads(), before + 1, "Hetzner's pricing was read");
        // The fake's cx23 in fsn1: 3.99 a month, 0.0060 an hour (net).
        let row = node_row(&r["costs"], "rf-h");
        assert_eq!((row["hourly"].as_str(), row["monthly_cap"].as_str(), row["cost"].as_str()), (Some("0.0060"), Some("3.9900"), Some("0.0120")), "{r}");
        assert_eq!(node_row(&r["costs"], "rf-w")["hourly"], "0.0416", "AWS keeps its table's price");
        let read = costs_of(&app, &s, "").await;
        assert_eq!(node_row(&read, "rf-h")["hourly"], "0.0060", "the new price is kept");

        // A second refresh reads again (the planner's hour-long cache is not served) and
        // changes nothing; a failing API leaves the prices as they were.
        let r = app.post("/v1/billing/org/cloud-costs/refresh", Some(&s.access), json!({})).await.expect(200).body;
        assert_eq!(r["refreshed"][0]["updated"], 0, "{r}");
        assert_eq!(pricing_reads(), before + 2);
        fake.fail_next("GET", "/pricing", 503, "unavailable", "maintenance");
        let r = app.post("/v1/billing/org/cloud-costs/refresh", Some(&s.access), json!({})).await.expect(200).body;
        let hetzner = r["skipped"].as_array().expect("skipped").iter().find(|s| s["provider"] == "hetzner").cloned();
        assert!(hetzner.as_ref().and_then(|h| h["reason"].as_str()).is_some_and(|m| m.contains("could not be read")), "{r}");
        assert_eq!(node_row(&r["costs"], "rf-h")["hourly"], "0.0060");
    }

    async fn costs_are_the_organizations_and_need_billing_permissions(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("costs-team-owner@example.com").await;
        let admin = app.register("costs-team-admin@example.com").await;
        let operator = app.register("costs-team-operator@example.com").await;
        let stranger = app.register("costs-stranger@example.com").await;
        let team = app.create_org(&owner.access, "Costs team").await;
        app.add_member(&team, &admin.user_id, "admin").await;
        app.add_member(&team, &operator.user_id, "operator").await;
        app.state.clock.set_ms(JAN + DAY);
        let r = stored_request(&app, &team, "team-node", ("hetzner", "fsn1", "cx23"), ("0.01", "5"), "applied", None).await;
        costs::on_applied(&app.state, &r, JAN).await;

        let q = format!("?organization_id={team}");
        let paths = [
            format!("/v1/billing/org/cloud-costs{q}"),
            format!("/v1/billing/org/cloud-costs/forecast{q}"),
        ];
        let refresh = format!("/v1/billing/org/cloud-costs/refresh{q}");
        for path in &paths {
            let body = app.get(path, Some(&owner.access)).await.expect(200).body;
            assert_eq!(body["by_node"].as_array().map(Vec::len), Some(1), "{body}");
            app.get(path, Some(&admin.access)).await.expect(200);
            app.get(path, Some(&operator.access)).await.expect_error(403, "FORBIDDEN");
            app.get(path, Some(&stranger.access)).await.expect_error(404, "NOT_FOUND");
            app.get(path, None).await.expect(401);
        }
        assert_eq!(costs_of(&app, &owner, &q).await["total"], "0.2400");
        app.post(&refresh, Some(&owner.access), json!({})).await.expect(200);
        app.post(&refresh, Some(&admin.access), json!({})).await.expect_error(403, "FORBIDDEN");
        app.post(&refresh, Some(&stranger.access), json!({})).await.expect_error(404, "NOT_FOUND");
        // Each caller's own organization by default: the stranger's is empty.
        let own = costs_of(&app, &stranger, "").await;
        assert_eq!(own["by_node"], json!([]));
        let owner_personal = costs_of(&app, &owner, "").await;
        assert_eq!(owner_personal["by_node"], json!([]), "the team's node is not the personal organization's");
    }
}

/// `(cost_to_date, forecast)` of a forecast's row for `name`.
fn row_of(f: &Value, name: &str) -> (String, String) {
    let r = node_row(f, name);
    (
        r["cost_to_date"].as_str().expect("cost").to_owned(),
        r["forecast"].as_str().expect("forecast").to_owned(),
    )
}
