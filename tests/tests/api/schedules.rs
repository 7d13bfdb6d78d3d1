//! Schedules end to end: CRUD and validation, tenancy and permissions, run now, "only
//! when online", run history, a cron schedule firing a console command and a backup on
//! a live server (real agent, real Docker), and exactly-once runs with two panels
//! polling the same database. Every test runs on SQLite and PostgreSQL.

use std::time::Duration;

use serde_json::{Value, json};
use shardlyn_tests::agent::{
    LocalAgent, busybox_workload, free_port, register_node, wait_instance, wait_node,
};
use shardlyn_tests::{Engine, Session, TestApp, both_engines, spawn_app_with};

const WAIT: Duration = Duration::from_secs(60);
const GIB: i64 = 1024 * 1024 * 1024;

/// A panel whose job runner looks for due schedules every 100 ms.
async fn app(engine: Engine) -> TestApp {
    spawn_app_with(engine, |c| c.jobs.poll_interval_ms = 100).await
}

/// Pins the job clock of every panel half a second before the next minute, so a
/// `* * * * *` schedule made now is due only once a test moves the clock on, never
/// after a wall-clock minute. Returns the pinned time.
fn pin_before_a_minute(apps: &[&TestApp]) -> i64 {
    let now = shardlyn_panel::db::now_ms();
    let pinned = now - now.rem_euclid(60_000) + 60_000 - 500;
    for app in apps {
        app.state.clock.set_ms(pinned);
    }
    pinned
}

/// Moves the job clock of every panel on by `by`.
fn advance(apps: &[&TestApp], by: Duration) {
    for app in apps {
        app.state.clock.advance(by);
    }
}

/// An instance on a node without an agent (registered and marked online, so placement
/// takes it); its server never runs.
async fn idle_instance(app: &TestApp, user: &Session) -> String {
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
        .to_string();
    let node = app.register_node(&user.access, None, "idle-node").await;
    app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
    let r = app
        .post(
            "/v1/instances",
            t,
            json!({"name": "scheduled", "workload_id": workload, "node_id": node}),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("instance id").to_string()
}

fn schedules(id: &str) -> String {
    format!("/v1/instances/{id}/schedules")
}

fn sid_of(r: &shardlyn_tests::Resp) -> String {
    r.body["id"].as_str().expect("schedule id").to_string()
}

#[track_caller]
fn expect_field(r: shardlyn_tests::Resp, field: &str) {
    let r = r.expect_error(422, "VALIDATION_ERROR");
    assert_eq!(r.body["field"], field, "{}", r.text);
}

/// Polls a schedule's runs until `done` holds for the list.
async fn wait_runs(
    app: &TestApp,
    token: &str,
    id: &str,
    sid: &str,
    wait: Duration,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let r = app
            .get(
                &format!("{}/{sid}/runs?limit=100", schedules(id)),
                Some(token),
            )
            .await
            .expect(200);
        let runs = r.body["data"].as_array().cloned().expect("data");
        if done(&runs) {
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "runs never {what}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finished(run: &Value) -> bool {
    matches!(
        run["status"].as_str(),
        Some("completed" | "failed" | "skipped")
    )
}

both_engines! {
    async fn crud_validation_tenancy_and_limits(engine) {
        let app = app(engine).await;
        let owner = app.register("owner@example.com").await;
        let t = Some(owner.access.as_str());
        let id = idle_instance(&app, &owner).await;
        let base = schedules(&id);

        let r = app.post(&base, t, json!({
            "name": " Nightly restart ",
            "cron": "30 4 * * *",
            "timezone": "Europe/Paris",
            "only_when_online": true,
            "tasks": [
                {"action": "command", "payload": "say restarting in 60s"},
                {"action": "power", "payload": "restart", "time_offset": 60, "continue_on_failure": true},
                {"action": "backup", "payload": "*.log\ncache/", "backup_name": "nightly", "time_offset": 900},
            ],
        })).await.expect(201);
        let sid = sid_of(&r);
        let s = &r.body;
        assert_eq!(s["name"], "Nightly restart");
        assert_eq!(s["cron"], "30 4 * * *");
        assert_eq!(s["timezone"], "Europe/Paris");
        assert_eq!(s["enabled"], true);
        assert_eq!(s["only_when_online"], true);
        assert_eq!(s["last_run_at"], Value::Null);
        let next = s["next_run_at"].as_str().expect("next run");
        let next = chrono::DateTime::parse_from_rfc3339(next).expect("rfc3339");
        // 04:30 in Paris is 03:30 UTC in winter (CET) and 02:30 UTC in summer (CEST).
        let utc = next.with_timezone(&chrono::Utc).format("%H:%M").to_string();
        assert!(utc == "03:30" || utc == "02:30", "{s}");
        assert!(next.timestamp_millis() > chrono::Utc::now().timestamp_millis());
        let tasks = s["tasks"].as_array().expect("tasks");
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0]["action"], "command");
        assert_eq!(tasks[0]["position"], 0);
        assert_eq!(tasks[1]["payload"], "restart");
        assert_eq!(tasks[1]["time_offset"], 60);
        assert_eq!(tasks[1]["continue_on_failure"], true);
        assert_eq!(tasks[2]["backup_name"], "nightly");
        assert_eq!(tasks[2]["payload"], "*.log\ncache/");

        // Validation: each bad field is named; malformed bodies are 400.
        let ok = |extra: Value| {
            let mut b = json!({"name": "x", "cron": "* * * * *"});
            for (k, v) in extra.as_object().expect("object") {
                b[k.as_str()] = v.clone();
            }
            b
        };
        expect_field(app.post(&base, t, ok(json!({"cron": "61 * * * *"}))).await, "cron");
        expect_field(app.post(&base, t, ok(json!({"cron": "every minute"}))).await, "cron");
        expect_field(app.post(&base, t, ok(json!({"cron": "0 * * * * *"}))).await, "cron");
        expect_field(app.post(&base, t, ok(json!({"cron": "0 0 30 2 *"}))).await, "cron");
        expect_field(app.post(&base, t, json!({"name": "x"})).await, "cron");
        expect_field(app.post(&base, t, ok(json!({"timezone": "Mars/Olympus"}))).await, "timezone");
        expect_field(app.post(&base, t, ok(json!({"name": "  "}))).await, "name");
        expect_field(app.post(&base, t, ok(json!({"tasks": [{"action": "reboot"}]}))).await, "tasks[0].action");
        expect_field(app.post(&base, t, ok(json!({"tasks": [{"action": "command", "payload": ""}]}))).await, "tasks[0].payload");
        expect_field(app.post(&base, t, ok(json!({"tasks": [{"action": "power", "payload": "explode"}]}))).await, "tasks[0].payload");
        expect_field(app.post(&base, t, ok(json!({"tasks": [{"action": "power", "payload": "stop", "time_offset": 901}]}))).await, "tasks[0].time_offset");
        let many: Vec<Value> = (0..21).map(|i| json!({"action": "command", "payload": format!("say {i}")})).collect();
        expect_field(app.post(&base, t, ok(json!({"tasks": many}))).await, "tasks");
        app.post(&base, t, ok(json!({"colour": "red"}))).await.expect_error(400, "BAD_REQUEST");
        app.post(&base, t, ok(json!({"enabled": "yes"}))).await.expect_error(400, "BAD_REQUEST");

        // Get, list, update, enable/disable.
        let one = format!("{base}/{sid}");
        assert_eq!(app.get(&one, t).await.expect(200).body["name"], "Nightly restart");
        let list = app.get(&base, t).await.expect(200);
        assert_eq!(list.body["data"].as_array().map(Vec::len), Some(1));
        let r = app.put(&one, t, json!({"enabled": false})).await.expect(200);
        assert_eq!(r.body["enabled"], false);
        assert_eq!(r.body["next_run_at"], Value::Null, "a disabled schedule has no next run");
        assert_eq!(r.body["tasks"].as_array().map(Vec::len), Some(3), "tasks are kept");
        let r = app.put(&one, t, json!({"enabled": true, "cron": "0 12 * * 1", "timezone": "UTC",
            "tasks": [{"action": "command", "payload": "say hi"}]})).await.expect(200);
        let next = chrono::DateTime::parse_from_rfc3339(r.body["next_run_at"].as_str().expect("next")).expect("rfc3339");
        assert_eq!(next.format("%u %H:%M").to_string(), "1 12:00", "Monday noon UTC");
        assert_eq!(r.body["tasks"].as_array().map(Vec::len), Some(1));
        expect_field(app.put(&one, t, json!({"cron": "* *"})).await, "cron");
        expect_field(app.put(&one, t, json!({"timezone": "Europe/Nowhere"})).await, "timezone");
        assert_eq!(app.get(&one, t).await.expect(200).body["cron"], "0 12 * * 1", "a refused update changes nothing");

        // Unknown ids and other organizations' instances answer 404; viewers get 403.
        app.get(&schedules("00000000-0000-7000-8000-000000000000"), t).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("{base}/00000000-0000-7000-8000-000000000000"), t).await.expect_error(404, "NOT_FOUND");
        let other = app.register("other@example.com").await;
        let o = Some(other.access.as_str());
        app.get(&base, o).await.expect_error(404, "NOT_FOUND");
        app.get(&one, o).await.expect_error(404, "NOT_FOUND");
        app.post(&base, o, ok(json!({}))).await.expect_error(404, "NOT_FOUND");
        app.put(&one, o, json!({"enabled": false})).await.expect_error(404, "NOT_FOUND");
        app.post(&format!("{one}/run"), o, json!({})).await.expect_error(404, "NOT_FOUND");
        app.delete(&one, o).await.expect_error(404, "NOT_FOUND");
        let other_id = idle_instance(&app, &other).await;
        app.get(&format!("{}/{sid}", schedules(&other_id)), o).await.expect_error(404, "NOT_FOUND");
        let org = app.create_org(&owner.access, "Shared").await;
        let viewer = app.register("viewer@example.com").await;
        app.add_member(&org, &viewer.user_id, "viewer").await;
        let workload = app.post("/v1/workloads/from-template", t,
            json!({"template": "busybox-test", "organization_id": org})).await.expect(201).body["id"].clone();
        let node = app.register_node(&owner.access, Some(&org), "shared-node").await;
        app.mark_node_online(&node, 8 * GIB, 100 * GIB).await;
        let shared = app.post("/v1/instances", t, json!({"name": "shared", "workload_id": workload, "node_id": node}))
            .await.expect(201).body["id"].as_str().expect("id").to_string();
        let v = Some(viewer.access.as_str());
        app.get(&schedules(&shared), v).await.expect_error(403, "FORBIDDEN");
        app.post(&schedules(&shared), v, ok(json!({}))).await.expect_error(403, "FORBIDDEN");
        app.post(&schedules(&shared), t, ok(json!({}))).await.expect(201);

        // At most 50 schedules per instance.
        for i in 1..50 {
            app.post(&base, t, ok(json!({"name": format!("s{i}"), "enabled": false}))).await.expect(201);
        }
        expect_field(app.post(&base, t, ok(json!({}))).await, "schedules");
        assert_eq!(app.get(&base, t).await.expect(200).body["data"].as_array().map(Vec::len), Some(50));

        // History paging is checked; delete removes the schedule.
        app.get(&format!("{one}/runs?limit=0"), t).await.expect_error(400, "VALIDATION_ERROR");
        app.get(&format!("{one}/runs?limit=101"), t).await.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(app.get(&format!("{one}/runs"), t).await.expect(200).body["data"], json!([]));
        app.delete(&one, t).await.expect(204);
        app.get(&one, t).await.expect_error(404, "NOT_FOUND");
        app.delete(&one, t).await.expect_error(404, "NOT_FOUND");

        // Deleting the instance deletes its schedules, tasks and runs.
        let left: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM schedules WHERE instance_id = $1")
            .bind(&id).fetch_one(&app.state.db.pool).await.expect("count");
        assert_eq!(left, 49);
        app.delete(&format!("/v1/instances/{id}?force=true"), t).await.expect(204);
        for table in ["schedules", "schedule_runs"] {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM {table} WHERE instance_id = $1")))
                .bind(&id).fetch_one(&app.state.db.pool).await.expect("count");
            assert_eq!(n, 0, "{table} of a deleted instance");
        }
        let tasks: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM schedule_tasks WHERE schedule_id NOT IN (SELECT id FROM schedules)")
            .fetch_one(&app.state.db.pool).await.expect("count");
        assert_eq!(tasks, 0);
        app.stop().await;
    }

    async fn run_now_history_only_when_online_and_failures(engine) {
        let app = app(engine).await;
        let owner = app.register("runner@example.com").await;
        let t = Some(owner.access.as_str());
        let id = idle_instance(&app, &owner).await;
        let base = schedules(&id);

        // The server is not running: "only when online" records a skipped run.
        let r = app.post(&base, t, json!({"name": "online only", "cron": "0 0 1 1 *", "only_when_online": true,
            "tasks": [{"action": "command", "payload": "say hi"}]})).await.expect(201);
        let online_only = sid_of(&r);
        let r = app.post(&format!("{base}/{online_only}/run"), t, json!({})).await.expect(202);
        assert_eq!(r.body["status"], "pending");
        assert_eq!(r.body["source"], "manual");
        let rid = r.body["id"].as_str().expect("run id").to_string();
        let runs = wait_runs(&app, &owner.access, &id, &online_only, WAIT, "skipped", |l| l.first().is_some_and(finished)).await;
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["status"], "skipped", "{runs:?}");
        assert!(runs[0]["error"].as_str().unwrap_or("").contains("only when it is online"), "{runs:?}");
        assert_eq!(runs[0]["tasks"], json!([]), "no task ran");
        let one = app.get(&format!("{base}/{online_only}/runs/{rid}"), t).await.expect(200);
        assert_eq!(one.body["status"], "skipped");
        let s = app.get(&format!("{base}/{online_only}"), t).await.expect(200);
        assert!(s.body["last_run_at"].is_string(), "{}", s.text);

        // Without the flag the tasks run: the node has no agent, so the command fails
        // and, without continue_on_failure, the rest is skipped; with it, the chain goes on.
        let r = app.post(&base, t, json!({"name": "chain", "cron": "0 0 1 1 *", "enabled": false,
            "tasks": [
                {"action": "command", "payload": "say one", "continue_on_failure": true},
                {"action": "power", "payload": "start", "time_offset": 1},
                {"action": "backup"},
            ]})).await.expect(201);
        let chain = sid_of(&r);
        app.post(&format!("{base}/{chain}/run"), t, json!({})).await.expect(202);
        // Queued or running (the second task waits a second): a second request is refused.
        app.post(&format!("{base}/{chain}/run"), t, json!({})).await.expect_error(409, "SCHEDULE_RUNNING");
        let runs = wait_runs(&app, &owner.access, &id, &chain, WAIT, "finished", |l| l.first().is_some_and(finished)).await;
        let run = &runs[0];
        assert_eq!(run["status"], "failed", "{run}");
        let tasks = run["tasks"].as_array().expect("tasks");
        assert_eq!(tasks.len(), 3, "{run}");
        assert_eq!(tasks[0]["status"], "failed");
        assert!(tasks[0]["error"].as_str().unwrap_or("").contains("offline"), "{run}");
        assert_eq!(tasks[1]["status"], "failed", "continue_on_failure let the second task run");
        assert_eq!(tasks[2]["status"], "skipped", "the second task stops the chain");
        assert!(run["started_at"].is_string() && run["finished_at"].is_string(), "{run}");
        let started = chrono::DateTime::parse_from_rfc3339(tasks[1]["started_at"].as_str().expect("t"))
            .expect("rfc3339");
        let first = chrono::DateTime::parse_from_rfc3339(tasks[0]["started_at"].as_str().expect("t"))
            .expect("rfc3339");
        assert!(started - first >= chrono::Duration::seconds(1), "the offset was waited: {run}");

        // History: newest first, limit honoured.
        app.post(&format!("{base}/{chain}/run"), t, json!({})).await.expect(202);
        let runs = wait_runs(&app, &owner.access, &id, &chain, WAIT, "two finished", |l| l.len() == 2 && l.iter().all(finished)).await;
        assert!(runs[0]["requested_at"].as_str() >= runs[1]["requested_at"].as_str());
        let r = app.get(&format!("{base}/{chain}/runs?limit=1"), t).await.expect(200);
        assert_eq!(r.body["data"].as_array().map(Vec::len), Some(1));
        assert_eq!(r.body["data"][0]["id"], runs[0]["id"]);
        app.stop().await;
    }


    async fn a_live_server_gets_its_command_backup_and_power_tasks(engine) {
        let app = app(engine).await;
        let admin = app.bootstrap_admin().await;
        let a = admin.access.as_str();
        let t = Some(a);
        let (config, dir) = register_node(&app, a).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        wait_node(&app, a, &config.node_id, "online").await;
        let workload = busybox_workload(&app, a).await;
        let r = app.post("/v1/instances", t, json!({
            "name": "scheduled-live", "workload_id": workload, "node_id": config.node_id,
            "ports": [free_port()],
            "limits": {"memory_mb": 128, "swap_mb": 0, "cpu_percent": 50, "disk_mb": 1024, "pids": 64, "io_weight": 500},
        })).await.expect(201);
        let id = r.body["id"].as_str().expect("id").to_string();
        wait_instance(&app, a, &id, "offline", WAIT).await;
        app.post(&format!("/v1/instances/{id}/start"), t, json!({})).await.expect(202);
        wait_instance(&app, a, &id, "running", WAIT).await;
        std::fs::write(dir.path().join("volumes").join(&id).join("world.dat"), "the world").expect("write");

        // A cron schedule fires on its own at the next minute (the pinned clock moves
        // past it): a console command, then a backup. Its start and end reach the event
        // stream.
        let auth = format!("Bearer {a}");
        let mut stream = shardlyn_tests::sse::SseStream::open(
            &app.client, &format!("{}/v1/events", app.base), &[("authorization", auth.as_str())],
        ).await.unwrap_or_else(|(status, body)| panic!("stream refused: {status} {body}"));
        pin_before_a_minute(&[&app]);
        let r = app.post(&schedules(&id), t, json!({"name": "every minute", "cron": "* * * * *",
            "timezone": "America/New_York", "only_when_online": true,
            "tasks": [
                {"action": "command", "payload": "hello from a schedule"},
                {"action": "backup", "backup_name": "scheduled backup", "payload": "*.tmp", "time_offset": 1},
            ]})).await.expect(201);
        let sid = sid_of(&r);
        advance(&[&app], Duration::from_secs(1));
        let runs = wait_runs(&app, a, &id, &sid, WAIT, "a cron run", |l| l.iter().any(finished)).await;
        let run = runs.iter().find(|r| finished(r)).expect("run");
        assert_eq!(run["source"], "cron", "{run}");
        assert_eq!(run["status"], "completed", "{run}");
        assert!(run["scheduled_for"].as_str().expect("scheduled_for").ends_with(":00Z"), "{run}");
        let backup_id = run["tasks"][1]["backup_id"].as_str().expect("backup id").to_string();
        let mut heard = Vec::new();
        while heard.last().is_none_or(|s: &String| s == "running") {
            let e = stream.expect("schedule_run", WAIT).await.data;
            assert_eq!((&e["schedule_id"], &e["run_id"], &e["instance_id"]), (&json!(sid), &run["id"], &json!(id)), "{e}");
            assert_eq!(e["source"], "cron", "{e}");
            heard.push(e["status"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(heard, ["running", "completed"]);
        let r = app.get(&format!("/v1/instances/{id}/logs/history?lines=100"), t).await.expect(200);
        assert!(r.text.contains("echo: hello from a schedule"), "{}", r.text);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = app.get(&format!("/v1/instances/{id}/backups"), t).await.expect(200);
            let b = r.body["data"].as_array().and_then(|l| l.iter().find(|b| b["id"] == backup_id.as_str()).cloned())
                .expect("the scheduled backup is listed");
            assert_eq!(b["name"], "scheduled backup");
            assert_eq!(b["ignored"], "*.tmp");
            if b["status"] == "completed" {
                assert!(b["size_bytes"].as_i64().unwrap_or(0) > 0, "{b}");
                break;
            }
            assert!(b["status"] == "running" || b["status"] == "pending", "{b}");
            assert!(tokio::time::Instant::now() < deadline, "backup never completed: {b}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let s = app.get(&format!("{}/{sid}", schedules(&id)), t).await.expect(200);
        assert!(s.body["last_run_at"].is_string(), "{}", s.text);
        app.put(&format!("{}/{sid}", schedules(&id)), t, json!({"enabled": false})).await.expect(200);

        // Run now: a power task stops the server; run again, it is skipped (offline).
        let r = app.post(&schedules(&id), t, json!({"name": "stop", "cron": "0 0 1 1 *", "only_when_online": true,
            "tasks": [{"action": "command", "payload": "before stopping"}, {"action": "power", "payload": "stop"}]}))
            .await.expect(201);
        let stop = sid_of(&r);
        app.post(&format!("{}/{stop}/run", schedules(&id)), t, json!({})).await.expect(202);
        let runs = wait_runs(&app, a, &id, &stop, WAIT, "finished", |l| l.first().is_some_and(finished)).await;
        assert_eq!(runs[0]["status"], "completed", "{runs:?}");
        assert_eq!(runs[0]["tasks"][1]["status"], "completed");
        let body = wait_instance(&app, a, &id, "offline", WAIT).await;
        assert_eq!(body["desired_state"], "stopped");
        app.post(&format!("{}/{stop}/run", schedules(&id)), t, json!({})).await.expect(202);
        let runs = wait_runs(&app, a, &id, &stop, WAIT, "two", |l| l.len() == 2 && l.iter().all(finished)).await;
        assert_eq!(runs[0]["status"], "skipped", "{runs:?}");
        agent.stop().await;
        app.stop().await;
    }
}

/// Replicas share a PostgreSQL database (a SQLite file serves one process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_panels_on_one_database_run_each_firing_once() {
    // Two replicas share the database, Redis and keys; both poll every 20 ms.
    let apps = shardlyn_tests::replicas(2, |c| c.jobs.poll_interval_ms = 20).await;
    let (a, b) = (&apps[0], &apps[1]);

    let owner = a.register("replicas@example.com").await;
    let t = Some(owner.access.as_str());
    let id = idle_instance(a, &owner).await;
    let pinned = pin_before_a_minute(&[a, b]);
    let r = a
        .post(
            &schedules(&id),
            t,
            json!({"name": "every minute", "cron": "* * * * *",
        "tasks": [{"action": "command", "payload": "say once"}]}),
        )
        .await
        .expect(201);
    let sid = sid_of(&r);
    // The second replica serves the same schedule.
    b.get(&format!("{}/{sid}", schedules(&id)), t)
        .await
        .expect(200);

    // Three minute boundaries crossed by moving the pinned clocks of both replicas;
    // each firing runs once although both keep polling every 20 ms.
    let mut expected = 0;
    for _round in 0..3 {
        advance(&[a, b], Duration::from_secs(60));
        expected += 1;
        wait_runs(a, &owner.access, &id, &sid, WAIT, "one more", |l| {
            l.len() >= expected && l.iter().all(finished)
        })
        .await;
        // Both replicas keep polling: a bounded look for a second run of this firing
        // (some 75 polls of each replica) finds none.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        while tokio::time::Instant::now() < deadline {
            let runs = wait_runs(b, &owner.access, &id, &sid, WAIT, "listed", |_| true).await;
            assert_eq!(runs.len(), expected, "{runs:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let runs = wait_runs(b, &owner.access, &id, &sid, WAIT, "listed", |_| true).await;
    let mut times: Vec<&str> = runs
        .iter()
        .map(|r| r["scheduled_for"].as_str().expect("cron run"))
        .collect();
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), 3, "three distinct firings: {runs:?}");
    assert!(runs.iter().all(|r| r["source"] == "cron"));
    let s = a
        .get(&format!("{}/{sid}", schedules(&id)), t)
        .await
        .expect(200);
    let next = chrono::DateTime::parse_from_rfc3339(s.body["next_run_at"].as_str().expect("next"))
        .expect("rfc3339");
    assert_eq!(
        next.timestamp_millis(),
        pinned + 500 + 3 * 60_000,
        "moved to the next minute"
    );
    for app in apps {
        app.stop().await;
    }
}
