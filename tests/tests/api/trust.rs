//! Trust boundaries between nodes: an agent speaks only for its own node. A fake agent
//! (the real tunnel: WebSocket, then HTTP/2 with the fake as server, as the agent does)
//! reports state and metrics about another node's instance and a state version from the
//! far future, and the end of a backup of another node's instance; the panel records
//! none of it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use shardlyn_agent::config::AgentConfig;
use shardlyn_agent::tunnel::{PROTOCOL_HEADER, TOKEN_HEADER, VERSION_HEADER, io};
use shardlyn_panel::backups::store::{self as backups, Backup};
use shardlyn_proto::backup::{
    BACKUP_PROGRESS, BackupInfo, BackupOperation, BackupProgress, BackupStatus,
};
use shardlyn_proto::instance::{DesiredState, Event, InstanceState, InstanceStatus, StateEvent};
use shardlyn_tests::agent::{register_agent, wait_instance, wait_node};
use shardlyn_tests::{TestApp, both_engines, spawn_app};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(15);

fn now_us() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    u64::try_from(since.as_micros()).expect("µs")
}

/// What the fake agent answers, and the event stream the test writes into.
#[derive(Clone)]
struct Fake {
    /// The heartbeat sample (`GET /v1/metrics`).
    sample: Value,
    /// The `/v1/events` body, taken by the first request.
    events: Arc<Mutex<Option<mpsc::UnboundedReceiver<Bytes>>>>,
    /// Told when the panel opened `/v1/events`.
    opened: Arc<tokio::sync::Notify>,
}

fn json_response(status: u16, value: &Value) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(value.to_string()))
        .expect("response")
}

async fn answer(fake: Fake, req: http::Request<hyper::body::Incoming>) -> http::Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if method == http::Method::GET && path == "/v1/metrics" {
        return json_response(200, &fake.sample);
    }
    if method == http::Method::GET && path == "/v1/events" {
        let Some(mut rx) = fake.events.lock().expect("lock").take() else {
            return json_response(409, &json!({"error": "already open", "code": "CONFLICT"}));
        };
        fake.opened.notify_one();
        let stream = futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>))
        });
        return http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from_stream(stream))
            .expect("response");
    }
    if method == http::Method::PUT
        && let Some(id) = path.strip_prefix("/v1/instances/")
    {
        drop(req);
        let status = InstanceStatus {
            id: id.to_string(),
            state: InstanceState::Offline,
            container_id: None,
            installed: true,
            started_at: None,
            crashed_at: None,
            exit_code: None,
            desired: DesiredState::Stopped,
            state_version: now_us(),
        };
        return json_response(200, &serde_json::to_value(status).expect("status"));
    }
    json_response(404, &json!({"error": "no such route", "code": "NOT_FOUND"}))
}

/// Dials the panel's tunnel with `config`'s token and serves the fake agent API over it
/// until the test ends. Returns the sender of the `/v1/events` stream.
async fn connect(
    app: &TestApp,
    config: &AgentConfig,
    sample: Value,
) -> (mpsc::UnboundedSender<Bytes>, Arc<tokio::sync::Notify>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let fake = Fake {
        sample,
        events: Arc::new(Mutex::new(Some(rx))),
        opened: Arc::new(tokio::sync::Notify::new()),
    };
    let url = format!("{}/v1/agent/tunnel", app.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert(TOKEN_HEADER, config.agent_token.parse().expect("token"));
    headers.insert(
        PROTOCOL_HEADER,
        shardlyn_proto::PROTOCOL_VERSION
            .to_string()
            .parse()
            .expect("protocol"),
    );
    headers.insert(VERSION_HEADER, "fake-agent".parse().expect("version"));
    let addr = app.base.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(io::config()))
        .await
        .expect("tunnel handshake");
    let served = fake.clone();
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let fake = served.clone();
            async move { Ok::<_, Infallible>(answer(fake, req).await) }
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io::WsIo::new(ws)), service)
            .await;
    });
    (tx, fake.opened)
}

fn line(event: &StateEvent) -> Bytes {
    let mut v = serde_json::to_vec(event).expect("event");
    v.push(b'\n');
    v.into()
}

fn event(instance: &str, state: InstanceState, version: u64) -> StateEvent {
    StateEvent {
        instance: instance.to_string(),
        state,
        desired: Some(DesiredState::Running),
        at: shardlyn_panel::db::now_ms(),
        version,
    }
}

/// A `running` backup row of an instance, as the panel writes one when it asks a node.
async fn running_backup(app: &TestApp, instance: &Value) -> String {
    let id = shardlyn_panel::db::new_id();
    let row = Backup {
        id: id.clone(),
        instance_id: instance["id"].as_str().expect("id").to_owned(),
        org_id: instance["organization_id"]
            .as_str()
            .expect("org")
            .to_owned(),
        name: "nightly".into(),
        status: "running".into(),
        target: "local".into(),
        config_id: None,
        object_key: format!("{id}.tar.zst"),
        size_bytes: 0,
        sha256: String::new(),
        locked: false,
        ignored: String::new(),
        error: None,
        created_at: shardlyn_panel::db::now_ms(),
        completed_at: None,
        s3_endpoint: String::new(),
        s3_region: String::new(),
        s3_bucket: String::new(),
    };
    backups::insert(&app.state.db.pool, &row)
        .await
        .expect("insert");
    id
}

/// A fake agent's report that backup `bid` of `instance` completed.
fn backup_done(instance: &str, bid: &str) -> Bytes {
    let record = BackupInfo {
        id: bid.to_owned(),
        instance: instance.to_owned(),
        status: BackupStatus::Completed,
        size_bytes: 4096,
        sha256: "ab".repeat(32),
        error: None,
        started_at: shardlyn_panel::db::now_ms() - 1000,
        completed_at: Some(shardlyn_panel::db::now_ms()),
    };
    let report = BackupProgress {
        instance: instance.to_owned(),
        backup: bid.to_owned(),
        operation: BackupOperation::Backup,
        status: BackupStatus::Completed,
        bytes_done: 10_240,
        bytes_total: 10_240,
        record: Some(record),
        error: None,
    };
    let event = Event {
        event: BACKUP_PROGRESS.into(),
        args: vec![serde_json::to_value(report).expect("report")],
    };
    let mut v = serde_json::to_vec(&event).expect("event");
    v.push(b'\n');
    v.into()
}

async fn backup_status(app: &TestApp, token: &str, instance: &str, bid: &str) -> Value {
    let list = app
        .get(&format!("/v1/instances/{instance}/backups"), Some(token))
        .await
        .expect(200)
        .body;
    list["data"]
        .as_array()
        .and_then(|l| l.iter().find(|b| b["id"] == bid).cloned())
        .unwrap_or(Value::Null)
}

async fn create_on(app: &TestApp, token: &str, workload: &str, node: &str, name: &str) -> Value {
    app.post(
        "/v1/instances",
        Some(token),
        json!({"name": name, "workload_id": workload, "node_id": node}),
    )
    .await
    .expect(201)
    .body
}

async fn metric_points(app: &TestApp, token: &str, id: &str) -> usize {
    let r = app
        .get(
            &format!("/v1/instances/{id}/metrics/history?range=1h"),
            Some(token),
        )
        .await
        .expect(200);
    r.body["points"].as_array().map_or(0, Vec::len)
}

both_engines! {
    async fn an_agent_reports_only_for_its_own_node(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let t = admin.access.as_str();
        let workload = app
            .post("/v1/workloads/from-template", Some(t), json!({"template": "busybox-test"}))
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .expect("workload")
            .to_string();
        // Node A never connects; node B is the fake agent.
        let node_a = app.register_node(t, None, "node-a").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = register_agent(&app, t, json!({"name": "node-b"}), dir.path()).await;
        let x = create_on(&app, t, &workload, &node_a, "on-a").await;
        let x_id = x["id"].as_str().expect("id").to_string();
        let y = create_on(&app, t, &workload, &config.node_id, "on-b").await;
        let y_id = y["id"].as_str().expect("id").to_string();

        // The first heartbeat carries figures for both; B's own instance comes last, so
        // once its figures are recorded the other's were handled.
        let figures = |id: &str| json!({"id": id, "cpu_absolute": 50.0, "memory_bytes": 1_000_000,
            "disk_bytes": 1000, "network": {"rx_bytes": 1, "tx_bytes": 1}});
        let sample = json!({"cpu_percent": 1.0, "memory_total_bytes": 1_u64 << 33,
            "instances": [figures(&x_id), figures(&y_id)]});
        let (events, opened) = connect(&app, &config, sample).await;
        wait_node(&app, t, &config.node_id, "online").await;
        tokio::time::timeout(WAIT, opened.notified()).await.expect("the panel opens /v1/events");
        let deadline = tokio::time::Instant::now() + WAIT;
        while metric_points(&app, t, &y_id).await == 0 {
            assert!(tokio::time::Instant::now() < deadline, "B's own figures were never recorded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(metric_points(&app, t, &x_id).await, 0, "figures about A's instance were recorded");

        // A state report about A's instance, then one about B's own as a barrier: events
        // are applied in order, so when B's shows, A's was handled.
        let before = app.get(&format!("/v1/instances/{x_id}"), Some(t)).await.expect(200).body;
        let v = now_us();
        events.send(line(&event(&x_id, InstanceState::Running, v))).expect("send");
        events.send(line(&event(&y_id, InstanceState::Starting, v + 1))).expect("send");
        wait_instance(&app, t, &y_id, "starting", WAIT).await;
        let after = app.get(&format!("/v1/instances/{x_id}"), Some(t)).await.expect(200).body;
        assert_eq!(after["state"], before["state"], "B changed the state of A's instance");
        assert_eq!(after["desired_state"], before["desired_state"]);

        // A version an hour ahead of the panel's clock is refused: the next plausible
        // report is still recorded (it would look older than the refused one otherwise).
        let hour_us = 3_600 * 1_000_000;
        events.send(line(&event(&y_id, InstanceState::Running, now_us() + hour_us))).expect("send");
        events.send(line(&event(&y_id, InstanceState::Stopping, now_us()))).expect("send");
        wait_instance(&app, t, &y_id, "stopping", WAIT).await;

        // B says a backup of A's instance completed, then one of its own (the barrier):
        // only B's is recorded, and only B's reaches the event stream.
        let x_backup = running_backup(&app, &x).await;
        let y_backup = running_backup(&app, &y).await;
        let auth = format!("Bearer {t}");
        let mut stream = shardlyn_tests::sse::SseStream::open(
            &app.client,
            &format!("{}/v1/events", app.base),
            &[("authorization", auth.as_str())],
        )
        .await
        .unwrap_or_else(|(status, body)| panic!("stream refused: {status} {body}"));
        events.send(backup_done(&x_id, &x_backup)).expect("send");
        events.send(backup_done(&y_id, &y_backup)).expect("send");
        let heard = stream.expect("backup_progress", WAIT).await.data;
        assert_eq!(heard["backup_id"], y_backup.as_str(), "{heard}");
        assert_eq!(heard["status"], "completed", "{heard}");
        let y_row = backup_status(&app, t, &y_id, &y_backup).await;
        assert_eq!(y_row["status"], "completed", "{y_row}");
        assert_eq!(y_row["sha256"], "ab".repeat(32));
        let x_row = backup_status(&app, t, &x_id, &x_backup).await;
        assert_eq!(x_row["status"], "running", "B ended a backup of A's instance: {x_row}");
        app.stop().await;
    }
}
