//! Plans and the billing routes without Stripe (issue 19): admin CRUD with its checks,
//! the free plan every organization has, a plan with subscribers that can only be
//! archived, billing off (unlimited, the routes say so, never a 5xx), and the limits
//! view after a downgrade below what is used. No Stripe here: billing is "on" with a
//! key whose API address nothing listens on, so any call to Stripe would fail loudly.

use serde_json::{Value, json};
use shardlyn_tests::{TestApp, both_engines, spawn_app, spawn_app_with};

const GIB: i64 = 1024 * 1024 * 1024;

/// A panel that sells plans; its Stripe address refuses connections.
async fn selling(engine: shardlyn_tests::Engine) -> TestApp {
    spawn_app_with(engine, |c| {
        c.stripe.secret_key = shardlyn_panel::config::Secret("sk_test_plans".to_owned());
        c.stripe.api_base = "http://127.0.0.1:9".into();
        c.stripe.timeout_secs = 2;
    })
    .await
}

fn plan_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Two small servers",
        "currency": "eur",
        "price_month": 0,
        "price_year": 0,
        "limits": {"servers": 2, "memory_mb": 4096, "cpu_percent": 200, "disk_mb": 20480,
                   "nodes": 1, "backups_per_server": 3, "members": 5},
        "pools": ["platform", "own"],
    })
}

both_engines! {
    async fn admins_create_change_archive_and_delete_plans(engine) {
        let app = selling(engine).await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("buyer@example.com").await;

        // The seeded free plan is there and is the default.
        let list = app.get("/v1/admin/plans", Some(&admin.access)).await.expect(200).body;
        let free = list["data"].as_array().unwrap().iter().find(|p| p["id"] == "plan-free").cloned().expect("free plan");
        assert_eq!(free["is_default"], true);
        assert_eq!(free["limits"]["servers"], 1);

        // Only admins manage plans.
        app.post("/v1/admin/plans", Some(&user.access), plan_body("Small")).await.expect(403);

        let made = app.post("/v1/admin/plans", Some(&admin.access), plan_body("Small")).await.expect(201).body;
        let id = made["id"].as_str().unwrap().to_owned();
        assert_eq!(made["currency"], "eur");
        assert_eq!(made["pools"], json!(["own", "platform"]));
        assert_eq!(made["limits"]["members"], 5);
        // A free-of-charge plan needs no Stripe product.
        assert_eq!(made["stripe_product_id"], Value::Null);

        // Checks, each naming its field; nothing is written.
        for (body, field) in [
            (json!({"name": ""}), "name"),
            (json!({"name": "X", "currency": "euro"}), "currency"),
            (json!({"name": "X", "price_month": -1}), "price_month"),
            (json!({"name": "X", "limits": {"servers": -2}}), "limits.servers"),
            (json!({"name": "X", "pools": ["shared"]}), "pools[0]"),
            (json!({"name": "X", "pools": []}), "pools"),
            (json!({"name": "X", "stripe_price_month": "price 1; drop"}), "stripe_price_month"),
            (json!({"name": "X", "is_default": true, "archived": true}), "archived"),
        ] {
            let r = app.post("/v1/admin/plans", Some(&admin.access), body).await.expect(400);
            assert_eq!(r.body["code"], "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{:?}", r.body);
        }
        app.post("/v1/admin/plans", Some(&admin.access), json!({"name": "X", "surprise": 1})).await.expect(400);
        let dup = app.post("/v1/admin/plans", Some(&admin.access), plan_body("small")).await.expect(409);
        assert_eq!(dup.body["code"], "PLAN_NAME_TAKEN");
        let count = app.get("/v1/admin/plans", Some(&admin.access)).await.expect(200).body["data"].as_array().unwrap().len();
        assert_eq!(count, 2);

        // Change it: a limit lifted to unlimited (null).
        let mut changed = plan_body("Small");
        changed["limits"]["servers"] = Value::Null;
        let after = app.put(&format!("/v1/admin/plans/{id}"), Some(&admin.access), changed).await.expect(200).body;
        assert_eq!(after["limits"]["servers"], Value::Null);
        app.put("/v1/admin/plans/nope", Some(&admin.access), plan_body("Other")).await.expect(404);

        // The default plan cannot be deleted nor stop being the default by itself.
        let r = app.delete("/v1/admin/plans/plan-free", Some(&admin.access)).await.expect(409);
        assert_eq!(r.body["code"], "PLAN_IS_DEFAULT");
        let mut not_default = plan_body("Free");
        not_default["is_default"] = json!(false);
        app.put("/v1/admin/plans/plan-free", Some(&admin.access), not_default).await.expect(400);

        // An organization on the plan: it cannot be deleted, only archived.
        let org = app.create_org(&user.access, "Buyer").await;
        app.put(&format!("/v1/admin/subscriptions/{org}"), Some(&admin.access), json!({"plan_id": id})).await.expect(200);
        let r = app.delete(&format!("/v1/admin/plans/{id}"), Some(&admin.access)).await.expect(409);
        assert_eq!(r.body["code"], "PLAN_HAS_SUBSCRIBERS");
        let listed = app.get("/v1/admin/plans", Some(&admin.access)).await.expect(200).body;
        let row = listed["data"].as_array().unwrap().iter().find(|p| p["id"] == id.as_str()).cloned().unwrap();
        assert_eq!(row["subscribers"], 1);
        let mut archived = plan_body("Small");
        archived["archived"] = json!(true);
        app.put(&format!("/v1/admin/plans/{id}"), Some(&admin.access), archived).await.expect(200);
        // Archived plans leave the public list, and cannot be subscribed to.
        let public = app.get("/v1/billing/plans", Some(&user.access)).await.expect(200).body;
        assert_eq!(public["billing_enabled"], true);
        assert!(public["data"].as_array().unwrap().iter().all(|p| p["id"] != id.as_str()));
        let r = app.post(&format!("/v1/billing/org/subscribe?organization_id={org}"), Some(&user.access),
            json!({"plan_id": id})).await.expect(404);
        assert_eq!(r.body["code"], "NOT_FOUND");

        // Ended, the plan can go; the organization falls back to the free plan.
        app.put(&format!("/v1/admin/subscriptions/{org}"), Some(&admin.access), json!({"action": "cancel_now"})).await.expect(200);
        app.delete(&format!("/v1/admin/plans/{id}"), Some(&admin.access)).await.expect(204);
        let sub = app.get(&format!("/v1/billing/org/subscription?organization_id={org}"), Some(&user.access)).await.expect(200).body;
        assert_eq!(sub["status"], "free");
        assert_eq!(sub["plan"]["id"], "plan-free");
        assert_eq!(sub["unlimited"], false);
    }

    async fn billing_off_means_unlimited_and_the_routes_say_so(engine) {
        let app = spawn_app(engine).await;
        let _admin = app.bootstrap_admin().await;
        let user = app.register("homelab@example.com").await;
        let sub = app.get("/v1/billing/org/subscription", Some(&user.access)).await.expect(200).body;
        assert_eq!(sub["billing_enabled"], false);
        assert_eq!(sub["unlimited"], true);
        let limits = app.get("/v1/billing/org/limits", Some(&user.access)).await.expect(200).body;
        assert_eq!(limits["unlimited"], true);
        assert!(limits["limits"].as_array().unwrap().iter().all(|l| l["cap"].is_null() && l["over"] == false));
        let invoices = app.get("/v1/billing/org/invoices", Some(&user.access)).await.expect(200).body;
        assert_eq!(invoices, json!({"billing_enabled": false, "data": []}));
        for path in ["/v1/billing/org/cancel", "/v1/billing/org/portal"] {
            let r = app.post(path, Some(&user.access), json!({})).await.expect(409);
            assert_eq!(r.body["code"], "BILLING_DISABLED", "{path}");
        }
        let r = app.post("/v1/billing/org/subscribe", Some(&user.access), json!({"plan_id": "plan-free"})).await.expect(409);
        assert_eq!(r.body["code"], "BILLING_DISABLED");
        // Creates are not capped: two servers where the free plan would allow one.
        let node = app.register_node(&user.access, None, "home").await;
        app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
        let workload = app.post("/v1/workloads/from-template", Some(&user.access), json!({"template": "busybox-test"})).await.expect(201).body["id"].as_str().unwrap().to_owned();
        for n in 0..2 {
            app.post("/v1/instances", Some(&user.access), json!({"name": format!("s{n}"), "workload_id": workload})).await.expect(201);
        }
    }

    async fn a_downgrade_below_use_deletes_nothing_and_the_limits_say_over(engine) {
        let app = selling(engine).await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("grown@example.com").await;
        let org = app.create_org(&user.access, "Grown").await;
        let node = app.register_node(&user.access, Some(&org), "n1").await;
        app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
        let workload = app.post(&format!("/v1/workloads/from-template?organization_id={org}"), Some(&user.access),
            json!({"template": "busybox-test", "organization_id": org})).await.expect(201).body["id"].as_str().unwrap().to_owned();
        // A bigger plan given by an admin: two servers.
        let big = app.post("/v1/admin/plans", Some(&admin.access), plan_body("Big")).await.expect(201).body["id"].as_str().unwrap().to_owned();
        app.put(&format!("/v1/admin/subscriptions/{org}"), Some(&admin.access), json!({"plan_id": big})).await.expect(200);
        for n in 0..2 {
            app.post(&format!("/v1/instances?organization_id={org}"), Some(&user.access),
                json!({"name": format!("s{n}"), "workload_id": workload, "limits": {"memory_mb": 512}})).await.expect(201);
        }
        // Back to the free plan (one server): both stay, a third is refused.
        app.put(&format!("/v1/admin/subscriptions/{org}"), Some(&admin.access), json!({"action": "cancel_now"})).await.expect(200);
        let limits = app.get(&format!("/v1/billing/org/limits?organization_id={org}"), Some(&user.access)).await.expect(200).body;
        assert_eq!(limits["plan_id"], "plan-free");
        let servers = limits["limits"].as_array().unwrap().iter().find(|l| l["limit"] == "servers").cloned().unwrap();
        assert_eq!(servers, json!({"limit": "servers", "cap": 1, "usage": 2, "over": true}));
        let r = app.post(&format!("/v1/instances?organization_id={org}"), Some(&user.access),
            json!({"name": "s3", "workload_id": workload, "limits": {"memory_mb": 512}})).await.expect(402);
        assert_eq!(r.body["code"], "PLAN_LIMIT");
        assert_eq!((r.body["limit"].clone(), r.body["usage"].clone(), r.body["cap"].clone()), (json!("servers"), json!(2), json!(1)));
        let list = app.get(&format!("/v1/instances?organization_id={org}"), Some(&user.access)).await.expect(200).body;
        assert_eq!(list["data"].as_array().map(Vec::len), Some(2));
        let usage = app.get(&format!("/v1/billing/org/usage?organization_id={org}"), Some(&user.access)).await.expect(200).body;
        assert_eq!(usage["servers"], 2);
        assert_eq!(usage["memory_mb"], 1024);
        // A platform admin's own organization is never capped.
        let admin_limits = app.get("/v1/billing/org/limits", Some(&admin.access)).await.expect(200).body;
        assert_eq!(admin_limits["unlimited"], true);
    }
}
