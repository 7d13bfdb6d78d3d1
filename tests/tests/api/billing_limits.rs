//! Plan limits enforced where resources are made (issue 19 §3): server create and limit
//! changes, node registration and provisioning, backup create, member invite and invite
//! accept. A refused change answers 402 `PLAN_LIMIT` with `limit`, `usage` and `cap`, and
//! leaves nothing behind; concurrent creates queue on the organization's lock; billing
//! off and platform admins' organizations are unlimited; a downgrade deletes nothing.
//!
//! Billing is turned on with a Stripe secret key that nothing calls (limits never reach
//! Stripe, so no Stripe fake is used); the free plan's caps are set in SQL. Nodes are
//! registered through the API and marked online in the database: no agent runs.

use serde_json::{Value, json};
use shardlyn_panel::config::Secret;
use shardlyn_tests::{Engine, Resp, Session, TestApp, both_engines, spawn_app, spawn_app_with};

const GIB: i64 = 1024 * 1024 * 1024;

/// Every cap column of `plans`.
const CAPS: [&str; 7] = [
    "max_servers",
    "max_memory_mb",
    "max_cpu_percent",
    "max_disk_mb",
    "max_nodes",
    "max_backups_per_server",
    "max_members",
];

/// A panel with billing on (a Stripe key nothing calls).
async fn billed(engine: Engine) -> TestApp {
    spawn_app_with(engine, |c| {
        c.stripe.secret_key = Secret("sk_test_limits_only".into());
    })
    .await
}

/// The free plan (every organization's here) unlimited but for `set`.
async fn caps(app: &TestApp, set: &[(&str, i64)]) {
    let pool = &app.state.db.pool;
    for column in CAPS {
        let value = set.iter().find(|(c, _)| *c == column).map(|(_, v)| *v);
        // The column is one of the constant names above.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE plans SET {column} = $1 WHERE id = 'plan-free'"
        )))
        .bind(value)
        .execute(pool)
        .await
        .expect("set a cap");
    }
}

/// Asserts a 402 `PLAN_LIMIT` naming `limit`, `usage` and `cap`.
#[track_caller]
fn refused(r: Resp, limit: &str, usage: i64, cap: i64) -> Resp {
    let r = r.expect_error(402, "PLAN_LIMIT");
    assert_eq!(r.body["limit"], limit, "{}", r.text);
    assert_eq!(r.body["usage"], usage, "{}", r.text);
    assert_eq!(r.body["cap"], cap, "{}", r.text);
    r
}

async fn count(app: &TestApp, sql: &'static str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count")
}

async fn servers_of(app: &TestApp, org: &str) -> i64 {
    count(
        app,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM instances WHERE org_id = $1",
        org,
    )
    .await
}

async fn allocations_on(app: &TestApp, node: &str) -> i64 {
    count(
        app,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM allocations WHERE node_id = $1",
        node,
    )
    .await
}

/// A user's organization with the busybox test workload and one online node.
struct Fixture {
    owner: Session,
    org: String,
    workload: String,
    node: String,
}

impl Fixture {
    async fn new(app: &TestApp, email: &str) -> Self {
        let owner = app.register(email).await;
        let org = app.create_org(&owner.access, "Hosting").await;
        let workload = app
            .post(
                "/v1/workloads/from-template",
                Some(&owner.access),
                json!({"template": "busybox-test", "organization_id": org}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .expect("workload id")
            .to_owned();
        let node = app.register_node(&owner.access, Some(&org), "node-a").await;
        app.mark_node_online(&node, 64 * GIB, 1000 * GIB).await;
        Self {
            owner,
            org,
            workload,
            node,
        }
    }

    fn t(&self) -> Option<&str> {
        Some(self.owner.access.as_str())
    }

    /// `POST /v1/instances` on the fixture's node with port `port` and `limits`.
    async fn create(&self, app: &TestApp, port: u16, limits: Value) -> Resp {
        app.post(
            "/v1/instances",
            self.t(),
            json!({"name": format!("s{port}"), "workload_id": self.workload,
                   "node_id": self.node, "ports": [port], "limits": limits}),
        )
        .await
    }
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().expect("id").to_owned()
}

both_engines! {
    async fn a_server_over_the_servers_cap_is_refused_and_nothing_is_made(engine) {
        let app = billed(engine).await;
        let f = Fixture::new(&app, "servers@example.com").await;
        caps(&app, &[("max_servers", 1)]).await;
        f.create(&app, 30000, json!({})).await.expect(201);
        let r = refused(f.create(&app, 30001, json!({})).await, "servers", 1, 1);
        assert!(r.body["error"].as_str().is_some_and(|e| e.contains('1')), "{}", r.text);
        assert_eq!(servers_of(&app, &f.org).await, 1, "no instance row");
        assert_eq!(allocations_on(&app, &f.node).await, 1, "no allocation");
        // The refused port was not reserved: a bigger cap takes it.
        caps(&app, &[("max_servers", 2)]).await;
        f.create(&app, 30001, json!({})).await.expect(201);
    }

    async fn memory_cpu_and_disk_caps_on_create_and_on_a_limits_change(engine) {
        let app = billed(engine).await;
        let f = Fixture::new(&app, "memory@example.com").await;
        caps(&app, &[("max_memory_mb", 1024), ("max_cpu_percent", 200), ("max_disk_mb", 20_480)]).await;
        let a = id_of(&f.create(&app, 30000, json!({"memory_mb": 512})).await.expect(201));
        refused(f.create(&app, 30001, json!({"memory_mb": 768})).await, "memory_mb", 512, 1024);
        // Unlimited (0) does not fit under a cap.
        refused(f.create(&app, 30001, json!({"memory_mb": 0})).await, "memory_mb", 512, 1024);
        refused(f.create(&app, 30001, json!({"memory_mb": 256, "cpu_percent": 0})).await, "cpu_percent", 100, 200);
        refused(f.create(&app, 30001, json!({"memory_mb": 256, "disk_mb": 10_241})).await, "disk_mb", 10_240, 20_480);
        assert_eq!(servers_of(&app, &f.org).await, 1);
        assert_eq!(allocations_on(&app, &f.node).await, 1);
        let b = id_of(&f.create(&app, 30001, json!({"memory_mb": 512})).await.expect(201));

        // A change that grows past the cap is refused and stores nothing.
        let put = |id: &str, body: Value| {
            let path = format!("/v1/instances/{id}");
            let app = &app;
            let t = f.t().map(str::to_owned);
            async move { app.put(&path, t.as_deref(), body).await }
        };
        refused(put(&a, json!({"name": "renamed", "limits": {"memory_mb": 600}})).await, "memory_mb", 1024, 1024);
        refused(put(&a, json!({"limits": {"memory_mb": 0}})).await, "memory_mb", 1024, 1024);
        refused(put(&b, json!({"limits": {"cpu_percent": 150}})).await, "cpu_percent", 200, 200);
        let got = app.get(&format!("/v1/instances/{a}"), f.t()).await.expect(200);
        assert_eq!(got.body["name"], "s30000", "a refused update changes nothing");
        assert_eq!(got.body["limits"]["memory_mb"], 512);
        // Shrinking, and changes that do not grow, always pass.
        put(&a, json!({"limits": {"memory_mb": 256}})).await.expect(200);
        put(&b, json!({"limits": {"memory_mb": 768}, "name": "bigger"})).await.expect(200);
        let got = app.get(&format!("/v1/instances/{b}"), f.t()).await.expect(200);
        assert_eq!(got.body["limits"]["memory_mb"], 768);
    }

    async fn backups_per_server_cap_counts_the_servers_backups(engine) {
        let app = billed(engine).await;
        let f = Fixture::new(&app, "backups@example.com").await;
        caps(&app, &[("max_backups_per_server", 2)]).await;
        let id = id_of(&f.create(&app, 30000, json!({})).await.expect(201));
        for n in 0..2 {
            sqlx::query(
                "INSERT INTO backups (id, instance_id, org_id, name, status, target, object_key, \
                 size_bytes, sha256, locked, ignored, created_at, s3_endpoint, s3_region, s3_bucket) \
                 VALUES ($1, $2, $3, $4, 'completed', 'local', $4, 0, '', 0, '', $5, '', '', '')",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&id)
            .bind(&f.org)
            .bind(format!("b{n}"))
            .bind(shardlyn_panel::db::now_ms() + n)
            .execute(&app.state.db.pool)
            .await
            .expect("insert backup");
        }
        let path = format!("/v1/instances/{id}/backups");
        refused(app.post(&path, f.t(), json!({})).await, "backups_per_server", 2, 2);
        let listed = app.get(&path, f.t()).await.expect(200);
        assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(2), "no backup row");
        // Under the cap the create goes on to the node (offline here: 409, still no row).
        caps(&app, &[("max_backups_per_server", 3)]).await;
        app.post(&path, f.t(), json!({})).await.expect_error(409, "NODE_OFFLINE");
        let listed = app.get(&path, f.t()).await.expect(200);
        assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(2));
    }

    async fn nodes_cap_counts_registered_nodes_and_provisioning_in_flight(engine) {
        let app = spawn_app_with(engine, |c| {
            c.stripe.secret_key = Secret("sk_test_limits_only".into());
            // Prices come from the bundled table.
            c.cloud.hetzner_api_url = "http://127.0.0.1:9/v1".into();
        })
        .await;
        let f = Fixture::new(&app, "nodes@example.com").await;
        caps(&app, &[("max_nodes", 2)]).await;
        app.post(
            "/v1/credentials",
            f.t(),
            json!({"organization_id": f.org, "name": "hetzner", "provider": "hetzner",
                   "config": {"token": "hcloud-token-limits-0123456789"}}),
        )
        .await
        .expect(201);
        let provision = |name: &str| {
            app.post(
                "/v1/provision",
                f.t(),
                json!({"organization_id": f.org, "provider": "hetzner", "region": "fsn1",
                       "instance_type": "cx23", "name": name}),
            )
        };
        // One node + one request in flight fill a cap of two.
        let request = id_of(&provision("cloud-1").await.expect(201));
        refused(provision("cloud-2").await, "nodes", 2, 2);
        let requests = count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM provision_requests WHERE org_id = $1", &f.org).await;
        assert_eq!(requests, 1, "no request row");

        // A plain registration token is refused at registration, and stays usable.
        let token = app
            .post("/v1/nodes/register-token", f.t(), json!({"organization_id": f.org, "name": "extra"}))
            .await
            .expect(201)
            .body["token"]
            .as_str()
            .expect("token")
            .to_owned();
        refused(app.post("/v1/agent/register", None, json!({"token": token})).await, "nodes", 2, 2);
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM nodes WHERE org_id = $1", &f.org).await, 1);

        // The request's own token makes the node it was counted for: not refused.
        let request_token = "shardlyn_reg_limits_request_token_0123456789abcdef";
        sqlx::query(
            "INSERT INTO node_registration_tokens (id, org_id, name, token_hash, created_by, \
             created_at, expires_at, provision_request_id) VALUES ($1, $2, 'cloud-1', $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&f.org)
        .bind(shardlyn_panel::auth::crypto::sha256_hex(request_token))
        .bind(&f.owner.user_id)
        .bind(shardlyn_panel::db::now_ms())
        .bind(shardlyn_panel::db::now_ms() + 3_600_000)
        .bind(&request)
        .execute(&app.state.db.pool)
        .await
        .expect("request token");
        // Its agent may register while Terraform still applies.
        sqlx::query("UPDATE provision_requests SET status = 'applying' WHERE id = $1")
            .bind(&request)
            .execute(&app.state.db.pool)
            .await
            .expect("applying");
        app.post("/v1/agent/register", None, json!({"token": request_token}))
            .await
            .expect(201);
        // Two nodes now: the plain token is still refused.
        refused(app.post("/v1/agent/register", None, json!({"token": token})).await, "nodes", 2, 2);
        // A bigger cap lets the kept token through.
        caps(&app, &[("max_nodes", 3)]).await;
        app.post("/v1/agent/register", None, json!({"token": token})).await.expect(201);
        refused(provision("cloud-3").await, "nodes", 3, 3);
    }

    async fn invites_and_accepts_fit_the_members_cap(engine) {
        let app = billed(engine).await;
        let owner = app.register("owner@example.com").await;
        let org = app.create_org(&owner.access, "Guild").await;
        caps(&app, &[("max_members", 3)]).await;
        let invite_path = format!("/v1/organizations/{org}/members/invite");
        let invite = |email: &str| {
            app.post(&invite_path, Some(&owner.access), json!({"email": email, "role": "viewer"}))
        };
        // The owner and two pending invites fill three seats.
        invite("a@example.com").await.expect(201);
        invite("b@example.com").await.expect(201);
        // Usage counts the seats taken: members and pending invites.
        refused(invite("c@example.com").await, "members", 3, 3);
        // Inviting the same address again replaces its invite: still fits.
        invite("b@example.com").await.expect(201);
        let pending = app.get(&format!("/v1/organizations/{org}/invites"), Some(&owner.access)).await.expect(200);
        assert_eq!(pending.body.as_array().map(Vec::len), Some(2), "no invite for c");
        assert!(!app.mailer.sent().iter().any(|m| m.to == "c@example.com"), "no mail for c");

        // A downgrade to two seats: the first accept takes the last seat, the second is refused.
        caps(&app, &[("max_members", 2)]).await;
        let token_of = |email: &str| {
            let mail = app.mailer.sent().into_iter().rev()
                .find(|m| m.to == email && m.text.contains("/invites/"))
                .expect("invite mail");
            let (_, rest) = mail.text.split_once("/invites/").expect("link");
            rest.chars().take_while(char::is_ascii_hexdigit).collect::<String>()
        };
        let a = app.register("a@example.com").await;
        let b = app.register("b@example.com").await;
        app.post(&format!("/v1/invites/{}/accept", token_of("a@example.com")), Some(&a.access), json!({}))
            .await
            .expect(200);
        refused(
            app.post(&format!("/v1/invites/{}/accept", token_of("b@example.com")), Some(&b.access), json!({})).await,
            "members",
            2,
            2,
        );
        let members = app.get(&format!("/v1/organizations/{org}/members"), Some(&owner.access)).await.expect(200);
        assert_eq!(members.body.as_array().map(Vec::len), Some(2), "{}", members.text);
        let pending = app.get(&format!("/v1/organizations/{org}/invites"), Some(&owner.access)).await.expect(200);
        assert_eq!(pending.body.as_array().map(Vec::len), Some(1), "b's invite is still pending");
        // Registering with the invite is an accept too: refused, and no account is made.
        refused(invite("d@example.com").await, "members", 3, 2);
        caps(&app, &[("max_members", 4)]).await;
        invite("d@example.com").await.expect(201);
        caps(&app, &[("max_members", 2)]).await;
        refused(
            app.post("/v1/auth/register", None, json!({"email": "d@example.com",
                "password": shardlyn_tests::PASSWORD, "invite_token": token_of("d@example.com")})).await,
            "members",
            2,
            2,
        );
        let users = count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE email = $1", "d@example.com").await;
        assert_eq!(users, 0, "no account");
    }

    async fn billing_off_is_unlimited(engine) {
        let app = spawn_app(engine).await;
        let f = Fixture::new(&app, "off@example.com").await;
        // The free plan's caps (one server, 2 GiB) do not apply without billing.
        caps(&app, &[("max_servers", 1), ("max_memory_mb", 1024), ("max_nodes", 1), ("max_members", 1)]).await;
        for port in 30000..30003 {
            f.create(&app, port, json!({"memory_mb": 1024})).await.expect(201);
        }
        app.register_node(&f.owner.access, Some(&f.org), "node-b").await;
        app.post(
            &format!("/v1/organizations/{}/members/invite", f.org),
            f.t(),
            json!({"email": "x@example.com"}),
        )
        .await
        .expect(201);
        assert_eq!(servers_of(&app, &f.org).await, 3);
    }

    async fn a_platform_admins_organization_is_never_capped(engine) {
        let app = billed(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let org = app.get("/v1/organizations", t).await.expect(200).body[0]["id"]
            .as_str()
            .expect("org")
            .to_owned();
        caps(&app, &[("max_servers", 1), ("max_memory_mb", 512), ("max_nodes", 1)]).await;
        let workload = app
            .post("/v1/workloads/from-template", t, json!({"template": "busybox-test", "organization_id": org}))
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .expect("workload")
            .to_owned();
        let node = app.register_node(&admin.access, Some(&org), "admin-a").await;
        app.register_node(&admin.access, Some(&org), "admin-b").await;
        app.mark_node_online(&node, 64 * GIB, 1000 * GIB).await;
        for port in [30000, 30001] {
            app.post(
                "/v1/instances",
                t,
                json!({"name": format!("a{port}"), "workload_id": workload, "node_id": node,
                       "ports": [port], "limits": {"memory_mb": 1024}}),
            )
            .await
            .expect(201);
        }
    }

    async fn a_downgrade_below_usage_deletes_nothing_and_refuses_creates(engine) {
        let app = billed(engine).await;
        let f = Fixture::new(&app, "downgrade@example.com").await;
        caps(&app, &[("max_servers", 3)]).await;
        let mut ids = Vec::new();
        for port in 30000..30003 {
            ids.push(id_of(&f.create(&app, port, json!({"memory_mb": 512})).await.expect(201)));
        }
        caps(&app, &[("max_servers", 1), ("max_memory_mb", 1024)]).await;
        assert_eq!(servers_of(&app, &f.org).await, 3, "nothing is deleted");
        refused(f.create(&app, 30003, json!({"memory_mb": 64})).await, "servers", 3, 1);
        // Existing servers keep working: renames and shrinking pass, growing does not.
        app.put(&format!("/v1/instances/{}", ids[0]), f.t(), json!({"name": "kept"})).await.expect(200);
        app.put(&format!("/v1/instances/{}", ids[0]), f.t(), json!({"limits": {"memory_mb": 256}})).await.expect(200);
        refused(
            app.put(&format!("/v1/instances/{}", ids[1]), f.t(), json!({"limits": {"memory_mb": 768}})).await,
            "memory_mb",
            1280,
            1024,
        );
        // The limits say why.
        let limits = app.get(&format!("/v1/billing/org/limits?organization_id={}", f.org), f.t()).await.expect(200);
        let servers = limits.body["limits"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["limit"] == "servers"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(servers["usage"], 3, "{}", limits.text);
        assert_eq!(servers["cap"], 1, "{}", limits.text);
        assert_eq!(servers["over"], true, "{}", limits.text);
        // Under the cap again, creates pass.
        for id in &ids {
            app.delete(&format!("/v1/instances/{id}?force=true"), f.t()).await.expect(204);
        }
        f.create(&app, 30003, json!({"memory_mb": 64})).await.expect(201);
    }

    async fn six_concurrent_creates_against_a_cap_of_two_make_exactly_two(engine) {
        let app = billed(engine).await;
        let f = Fixture::new(&app, "race@example.com").await;
        caps(&app, &[("max_servers", 2)]).await;
        let answers = futures::future::join_all(
            (0..6u16).map(|i| f.create(&app, 30000 + i, json!({"memory_mb": 64}))),
        )
        .await;
        let made = answers.iter().filter(|r| r.status == 201).count();
        let limited: Vec<&Resp> = answers.iter().filter(|r| r.status == 402).collect();
        assert_eq!(made, 2, "{:?}", answers.iter().map(|r| &r.text).collect::<Vec<_>>());
        assert_eq!(limited.len(), 4);
        for r in limited {
            assert_eq!(r.body["code"], "PLAN_LIMIT");
            assert_eq!(r.body["usage"], 2, "{}", r.text);
            assert_eq!(r.body["cap"], 2, "{}", r.text);
        }
        assert_eq!(servers_of(&app, &f.org).await, 2);
        assert_eq!(allocations_on(&app, &f.node).await, 2);
    }
}
