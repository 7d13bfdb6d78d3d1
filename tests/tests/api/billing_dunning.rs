//! Dunning and suspension for non-payment (issue 19 §6): reminder mails during the grace
//! period, suspension after it (every start path refused with 409 `SERVER_SUSPENDED`, a
//! schedule's start task failing with the reason, the console saying why), restore to
//! the state each server had, and optional termination. Both engines.
//!
//! No Stripe fake: billing is on with a dummy key (`stripe.secret_key`) and nothing here
//! calls Stripe; an organization is put past due directly in SQL, as the Stripe event
//! code would. Passes are called with an explicit `now` set 30 days after the wall clock
//! (`past_due_since` is then in the wall clock's future), so the background job, which
//! runs with the wall clock, never finds anything due and cannot race the test.

use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_panel::billing::dunning::{self, PassReport};
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::console::Console;
use shardlyn_tests::{Engine, Session, TestApp, both_engines, spawn_app_with};

const WAIT: Duration = Duration::from_secs(60);
const GIB: i64 = 1024 * 1024 * 1024;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const GRACE_DAYS: i64 = 3;

/// A panel with billing on (a dummy key), a grace of three days, a reminder a day,
/// termination after `terminate_after_days` (0: never) and schedules polled every 100 ms.
async fn app(engine: Engine, terminate_after_days: u64) -> TestApp {
    spawn_app_with(engine, |c| {
        c.stripe.secret_key = shardlyn_panel::config::Secret("sk_test_x".into());
        c.billing.grace_days = 3;
        c.billing.dunning_mail_interval_hours = 24;
        c.billing.terminate_after_days = terminate_after_days;
        c.jobs.poll_interval_ms = 100;
    })
    .await
}

/// 30 days after the wall clock: when the test's organization falls past due.
fn t0() -> i64 {
    shardlyn_panel::db::now_ms() + 30 * DAY
}

async fn personal_org(app: &TestApp, user: &Session) -> String {
    sqlx::query_scalar(
        "SELECT o.id FROM organizations o JOIN org_members m ON m.org_id = o.id \
         WHERE m.user_id = $1 AND o.personal = 1",
    )
    .bind(&user.user_id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("personal organization")
}

/// Puts `org_id` past due since `since`, as Stripe's `invoice.payment_failed` would.
async fn past_due(app: &TestApp, org_id: &str, since: i64) {
    let pool = &app.state.db.pool;
    let now = shardlyn_panel::db::now_ms();
    let updated = sqlx::query(
        "UPDATE subscriptions SET status = 'past_due', past_due_since = $1, updated_at = $2 \
         WHERE org_id = $3",
    )
    .bind(since)
    .bind(now)
    .bind(org_id)
    .execute(pool)
    .await
    .expect("update subscription")
    .rows_affected();
    if updated == 0 {
        sqlx::query(
            "INSERT INTO subscriptions (id, org_id, plan_id, status, billing_interval, \
             stripe_customer_id, stripe_subscription_id, past_due_since, created_at, updated_at) \
             VALUES ($1, $2, NULL, 'past_due', 'month', $3, $4, $5, $6, $6)",
        )
        .bind(format!("sub-{org_id}"))
        .bind(org_id)
        .bind(format!("cus_{org_id}"))
        .bind(format!("sub_{org_id}"))
        .bind(since)
        .bind(now)
        .execute(pool)
        .await
        .expect("insert subscription");
    }
}

/// The organization paid: status active, `past_due_since` cleared (the Stripe event
/// code's part), then [`dunning::restore`].
async fn paid(app: &TestApp, org_id: &str) -> usize {
    sqlx::query(
        "UPDATE subscriptions SET status = 'active', past_due_since = NULL WHERE org_id = $1",
    )
    .bind(org_id)
    .execute(&app.state.db.pool)
    .await
    .expect("mark paid");
    dunning::restore(&app.state, org_id).await.expect("restore")
}

async fn pass(app: &TestApp, now: i64) -> PassReport {
    dunning::pass(&app.state, now).await.expect("pass")
}

/// `(desired_state, billing_suspended_at, state_before_suspension)` of an instance.
async fn suspension_of(app: &TestApp, id: &str) -> (String, Option<i64>, Option<String>) {
    sqlx::query_as(
        "SELECT desired_state, billing_suspended_at, state_before_suspension FROM instances \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("instance row")
}

/// `(suspended_at, terminated_at, last_dunning_mail_at)` of the organization.
async fn subscription_of(app: &TestApp, org_id: &str) -> (Option<i64>, Option<i64>, Option<i64>) {
    sqlx::query_as(
        "SELECT suspended_at, terminated_at, last_dunning_mail_at FROM subscriptions \
         WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("subscription row")
}

/// The dunning mails sent so far: `(to, subject)`.
fn dunning_mails(app: &TestApp) -> Vec<(String, String)> {
    let mut mails: Vec<(String, String)> = app
        .mailer
        .sent()
        .into_iter()
        .filter(|m| m.subject.contains("payment overdue") || m.subject.contains("Payment overdue"))
        .map(|m| (m.to, m.subject))
        .collect();
    mails.sort();
    mails
}

/// Two servers on a node without an agent (registered and marked online, so placement
/// takes it): the first meant to run, the second stopped.
async fn idle_servers(app: &TestApp, user: &Session) -> (String, String) {
    let t = Some(user.access.as_str());
    let workload = app
        .post(
            "/v1/workloads/from-template",
            t,
            json!({"template": "busybox-test"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("workload id")
        .to_owned();
    let node = app.register_node(&user.access, None, "idle-node").await;
    app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
    let mut ids = Vec::new();
    for (name, desired) in [("runs", "running"), ("rests", "stopped")] {
        let r = app
            .post(
                "/v1/instances",
                t,
                json!({"name": name, "workload_id": workload, "node_id": node}),
            )
            .await
            .expect(201);
        let id = r.body["id"].as_str().expect("instance id").to_owned();
        // No agent to start it: the desired state is what suspension keeps.
        sqlx::query("UPDATE instances SET desired_state = $1 WHERE id = $2")
            .bind(desired)
            .bind(&id)
            .execute(&app.state.db.pool)
            .await
            .expect("desired state");
        ids.push(id);
    }
    (ids.remove(0), ids.remove(0))
}

/// Polls a schedule's runs until the newest has finished.
async fn finished_run(app: &TestApp, token: &str, id: &str, sid: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = app
            .get(
                &format!("/v1/instances/{id}/schedules/{sid}/runs"),
                Some(token),
            )
            .await
            .expect(200);
        if let Some(run) = r.body["data"].as_array().and_then(|d| d.first())
            && matches!(
                run["status"].as_str(),
                Some("completed" | "failed" | "skipped")
            )
        {
            return run.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never finished: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_engines! {
    /// Grace: a reminder to the owners and admins (not operators), none again within
    /// the interval, one after it; then suspension: desired states kept and stopped,
    /// every start path refused (API, restart, reinstall, a new server, a schedule's
    /// start task), no termination while `terminate_after_days` is 0; paying restores
    /// each server to the desired state it had.
    async fn grace_suspension_refusals_and_restore(engine) {
        let app = app(engine, 0).await;
        let admin = app.bootstrap_admin().await;
        let t = Some(admin.access.as_str());
        let org = personal_org(&app, &admin).await;
        let billing_admin = app.register("billing@example.com").await;
        let operator = app.register("operator@example.com").await;
        app.add_member(&org, &billing_admin.user_id, "admin").await;
        app.add_member(&org, &operator.user_id, "operator").await;
        let (runs, rests) = idle_servers(&app, &admin).await;
        let t0 = t0();
        past_due(&app, &org, t0).await;

        // Before it fell due, nothing.
        assert_eq!(pass(&app, t0 - HOUR).await, PassReport::default());
        assert!(dunning_mails(&app).is_empty());

        // In the grace period: one reminder each to the owner and the admin.
        let r = pass(&app, t0 + HOUR).await;
        assert_eq!((r.mailed, r.suspended), (1, 0), "{r:?}");
        let mails = dunning_mails(&app);
        let to: Vec<&str> = mails.iter().map(|(to, _)| to.as_str()).collect();
        assert_eq!(to, ["admin@example.com", "billing@example.com"], "{mails:?}");
        assert!(mails[0].1.starts_with("Payment overdue for"), "{mails:?}");
        let body = app.mailer.sent().into_iter().rev()
            .find(|m| m.to == "admin@example.com").expect("mail").text;
        assert!(body.contains("/billing?organization_id="), "{body}");
        assert_eq!(subscription_of(&app, &org).await.2, Some(t0 + HOUR));
        assert_eq!(suspension_of(&app, &runs).await, ("running".to_owned(), None, None));

        // Within the interval: no second reminder; after it, one more.
        assert_eq!(pass(&app, t0 + 2 * HOUR).await, PassReport::default());
        assert_eq!(dunning_mails(&app).len(), 2);
        let r = pass(&app, t0 + 25 * HOUR + 1).await;
        assert_eq!((r.mailed, r.suspended), (1, 0), "{r:?}");
        assert_eq!(dunning_mails(&app).len(), 4);

        // The grace is over: suspended, with the mail that says so.
        let at = t0 + GRACE_DAYS * DAY;
        let r = pass(&app, at).await;
        assert_eq!((r.mailed, r.suspended, r.terminated), (1, 1, 0), "{r:?}");
        assert_eq!(suspension_of(&app, &runs).await, ("stopped".to_owned(), Some(at), Some("running".to_owned())));
        assert_eq!(suspension_of(&app, &rests).await, ("stopped".to_owned(), Some(at), Some("stopped".to_owned())));
        assert_eq!(subscription_of(&app, &org).await.0, Some(at));
        let mails = dunning_mails(&app);
        assert_eq!(mails.iter().filter(|(_, s)| s.contains("suspended")).count(), 2, "{mails:?}");
        let view = app.get(&format!("/v1/instances/{runs}"), t).await.expect(200);
        assert_eq!(view.body["desired_state"], "stopped");

        // Nothing starts it, and a refusal changes nothing.
        for action in ["start", "restart", "reinstall"] {
            let r = app.post(&format!("/v1/instances/{runs}/{action}"), t, json!({})).await
                .expect_error(409, "SERVER_SUSPENDED");
            assert!(r.body["error"].as_str().unwrap_or("").contains("payment is overdue"), "{}", r.text);
        }
        assert_eq!(suspension_of(&app, &runs).await.0, "stopped");
        let workload = view.body["workload_id"].as_str().expect("workload").to_owned();
        app.post("/v1/instances", t, json!({"name": "new", "workload_id": workload}))
            .await
            .expect_error(409, "SERVER_SUSPENDED");
        // A schedule's start task fails with the reason.
        let r = app.post(&format!("/v1/instances/{runs}/schedules"), t, json!({
            "name": "morning start", "cron": "0 0 1 1 *", "enabled": false,
            "tasks": [{"action": "power", "payload": "start"}]})).await.expect(201);
        let sid = r.body["id"].as_str().expect("schedule id").to_owned();
        app.post(&format!("/v1/instances/{runs}/schedules/{sid}/run"), t, json!({})).await.expect(202);
        let run = finished_run(&app, &admin.access, &runs, &sid).await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["tasks"][0]["status"], "failed", "{run}");
        assert!(run["tasks"][0]["error"].as_str().unwrap_or("").contains("suspended"), "{run}");
        assert_eq!(suspension_of(&app, &runs).await.0, "stopped");

        // Passes go on: no second suspension, reminders at the interval, and never a
        // termination while terminate_after_days is 0.
        assert_eq!(pass(&app, at + HOUR).await, PassReport::default());
        let r = pass(&app, at + 400 * DAY).await;
        assert_eq!((r.mailed, r.suspended, r.terminated), (1, 0, 0), "{r:?}");
        app.get(&format!("/v1/instances/{runs}"), t).await.expect(200);
        assert_eq!(subscription_of(&app, &org).await.1, None);

        // Paid: each server gets back the desired state it had.
        assert_eq!(paid(&app, &org).await, 2);
        assert_eq!(suspension_of(&app, &runs).await, ("running".to_owned(), None, None));
        assert_eq!(suspension_of(&app, &rests).await, ("stopped".to_owned(), None, None));
        assert_eq!(subscription_of(&app, &org).await.0, None);
        // The start path is open again (the node has no agent, so it is the node that
        // answers now).
        app.post(&format!("/v1/instances/{runs}/start"), t, json!({})).await.expect_error(409, "NODE_OFFLINE");
        assert_eq!(dunning::restore(&app.state, &org).await.expect("restore"), 0, "idempotent");
        let before = dunning_mails(&app).len();
        assert_eq!(pass(&app, at + 401 * DAY).await, PassReport::default());
        assert_eq!(dunning_mails(&app).len(), before, "no reminder once paid");
        app.stop().await;
    }

    /// A pass restores an organization that is good again but still marked suspended (a
    /// restore lost to a crash, or a suspension that raced the payment), and a
    /// termination whose node is offline waits (files cannot be removed) instead of
    /// losing track of them.
    async fn passes_repair_restores_and_terminations_wait_for_the_node(engine) {
        let app = app(engine, 2).await;
        let admin = app.bootstrap_admin().await;
        let org = personal_org(&app, &admin).await;
        let (runs, rests) = idle_servers(&app, &admin).await;
        let t0 = t0();
        past_due(&app, &org, t0).await;
        assert_eq!(dunning::suspend(&app.state, &org, t0).await.expect("suspend"), 2);
        assert_eq!(dunning::suspend(&app.state, &org, t0 + 1).await.expect("suspend"), 0, "idempotent");
        assert_eq!(suspension_of(&app, &runs).await.1, Some(t0));
        sqlx::query("UPDATE subscriptions SET status = 'active', past_due_since = NULL WHERE org_id = $1")
            .bind(&org)
            .execute(&app.state.db.pool)
            .await
            .expect("mark paid");
        let r = pass(&app, t0 + HOUR).await;
        assert_eq!(r.restored, 1, "{r:?}");
        assert_eq!(suspension_of(&app, &runs).await, ("running".to_owned(), None, None));
        assert_eq!(suspension_of(&app, &rests).await, ("stopped".to_owned(), None, None));

        // Past due again, suspended after the grace, due for termination two days later;
        // the node is offline, so the servers wait (and so does terminated_at).
        let t1 = t0 + 10 * DAY;
        past_due(&app, &org, t1).await;
        assert_eq!(pass(&app, t1 + GRACE_DAYS * DAY).await.suspended, 1);
        let r = pass(&app, t1 + (GRACE_DAYS + 2) * DAY).await;
        assert_eq!(r.terminated, 0, "{r:?}");
        app.get(&format!("/v1/instances/{runs}"), Some(&admin.access)).await.expect(200);
        assert_eq!(subscription_of(&app, &org).await.1, None);
        app.stop().await;
    }

    /// A live server (real agent, real Docker): suspension stops it and its console says
    /// why (and refuses a start); paying starts it again; suspended once more with
    /// termination on, it is deleted with its files after `terminate_after_days`.
    async fn a_live_server_is_stopped_restored_and_terminated(engine) {
        let app = app(engine, 1).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let org = personal_org(&app, &admin).await;
        let (config, dir) = register_node(&app, a).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(&app, a, &config.node_id, "online").await;
        let workload = busybox_workload(&app, a).await;
        let r = app.post("/v1/instances", t, json!({
            "name": "dunned", "workload_id": workload, "node_id": config.node_id,
            "ports": [free_port()],
        })).await.expect(201);
        let id = r.body["id"].as_str().expect("id").to_owned();
        wait_instance(&app, a, &id, "offline", WAIT).await;
        app.post(&format!("/v1/instances/{id}/start"), t, json!({})).await.expect(202);
        wait_instance(&app, a, &id, "running", WAIT).await;
        let volume = dir.path().join("volumes").join(&id);
        assert!(volume.exists());

        let t0 = t0();
        past_due(&app, &org, t0).await;
        let at = t0 + GRACE_DAYS * DAY;
        assert_eq!(pass(&app, at).await.suspended, 1);
        let body = wait_instance(&app, a, &id, "offline", WAIT).await;
        assert_eq!(body["desired_state"], "stopped");
        assert!(volume.exists(), "files are kept");

        // The console says why, and refuses to start it.
        let ticket = app.post(&format!("/v1/instances/{id}/console/tickets"), t, json!({}))
            .await.expect(201).body["ticket"].as_str().expect("ticket").to_owned();
        let mut c = Console::connect(&format!("{}/v1/instances/{id}/console?ticket={ticket}", app.base), None)
            .await.expect("console opens");
        c.wait_for(WAIT, "the reason", |e| e.event == "daemon message" && e.arg().contains("suspended")).await;
        c.send("set state", &["start"]).await;
        c.wait_for(WAIT, "the refusal", |e| e.event == "daemon error" && e.arg().contains("payment is overdue")).await;
        c.close().await;
        assert_eq!(suspension_of(&app, &id).await.0, "stopped");

        // Paid: running again.
        assert_eq!(paid(&app, &org).await, 1);
        wait_instance(&app, a, &id, "running", WAIT).await;

        // Unpaid again, with termination one day after the suspension.
        let t1 = t0 + 10 * DAY;
        past_due(&app, &org, t1).await;
        let at = t1 + GRACE_DAYS * DAY;
        assert_eq!(pass(&app, at).await.suspended, 1);
        wait_instance(&app, a, &id, "offline", WAIT).await;
        let r = pass(&app, at + DAY - 1).await;
        assert_eq!(r.terminated, 0, "not yet: {r:?}");
        let r = pass(&app, at + DAY).await;
        assert_eq!(r.terminated, 1, "{r:?}");
        app.get(&format!("/v1/instances/{id}"), t).await.expect_error(404, "NOT_FOUND");
        assert!(!volume.exists(), "its files are gone");
        assert_eq!(subscription_of(&app, &org).await.1, Some(at + DAY));
        assert_eq!(pass(&app, at + 2 * DAY).await, PassReport::default(), "nothing after termination");
        // Paying afterwards clears the marks, so a later episode is dunned again.
        assert_eq!(paid(&app, &org).await, 0);
        assert_eq!(subscription_of(&app, &org).await, (None, None, Some(at)));
        agent.stop().await;
        app.stop().await;
    }
}
