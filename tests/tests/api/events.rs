//! `GET /v1/events`: the event bus as Server-Sent Events, on both engines and, with
//! Redis, across two panel replicas on one database. A real agent's tunnel makes the
//! node events; events published straight onto the bus serve as markers that prove
//! what a stream did not receive (a stream gets events in bus order, so once a marker
//! arrives, whatever was published before it and not shown was filtered out).

use std::time::Duration;

use serde_json::json;
use shardlyn_panel::events::{Event, EventData, EventId};
use shardlyn_proto::instance::InstanceState;
use shardlyn_tests::agent::{LocalAgent, register_node, wait_node};
use shardlyn_tests::sse::{SseEvent, SseStream};
use shardlyn_tests::{TestApp, both_engines, replicas};

const WAIT: Duration = Duration::from_secs(20);

async fn open(app: &TestApp, token: &str, last: Option<&str>) -> SseStream {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(id) = last {
        headers.push(("last-event-id", id));
    }
    SseStream::open(&app.client, &format!("{}/v1/events", app.base), &headers)
        .await
        .unwrap_or_else(|(status, body)| panic!("stream refused: {status} {body}"))
}

async fn first_org(app: &TestApp, token: &str) -> String {
    let orgs = app.get("/v1/organizations", Some(token)).await.expect(200);
    orgs.body[0]["id"]
        .as_str()
        .expect("an organization")
        .to_owned()
}

/// Publishes a marker: a node event of `org` for a node that does not exist.
async fn marker(app: &TestApp, org: &str, name: &str) {
    app.state
        .events
        .publish(Event::now(
            org,
            EventData::NodeStatus {
                node_id: name.into(),
                online: true,
            },
        ))
        .await;
}

fn instance_event(org: &str, id: &str) -> Event {
    Event::now(
        org,
        EventData::InstanceState {
            instance_id: id.into(),
            node_id: "n".into(),
            state: InstanceState::Running,
        },
    )
}

/// Reads events until the marker `name`; the node ids of the `node_status` events before it.
async fn until_marker(stream: &mut SseStream, name: &str) -> Vec<SseEvent> {
    let mut seen = Vec::new();
    loop {
        let e = stream
            .next(WAIT)
            .await
            .expect("an event")
            .expect("the stream stays open");
        if e.data["node_id"] == name {
            return seen;
        }
        seen.push(e);
    }
}

both_engines! {
    async fn a_node_coming_online_reaches_its_organization_only(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let outsider = app.register("out@example.com").await;
        let org = first_org(&app, &admin.access).await;
        let other_org = first_org(&app, &outsider.access).await;
        let mut mine = open(&app, &admin.access, None).await;
        let mut theirs = open(&app, &outsider.access, None).await;

        let (config, dir) = register_node(&app, &admin.access).await;
        let agent = LocalAgent::start(config.clone(), dir.path());
        let online = mine.expect("node_status", WAIT).await;
        assert_eq!(online.data["node_id"], config.node_id.as_str());
        assert_eq!(online.data["online"], true);
        assert_eq!(online.data["organization_id"], org.as_str());
        assert!(online.data["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{:?}", online.data);
        assert!(online.id.is_some(), "events carry an id to resume from");
        wait_node(&app, &admin.access, &config.node_id, "online").await;

        // The outsider's stream skipped it: the first thing it shows is its own marker.
        marker(&app, &other_org, "theirs").await;
        assert!(until_marker(&mut theirs, "theirs").await.is_empty());

        // The agent leaves: offline, to the organization only.
        agent.stop().await;
        let offline = mine.expect("node_status", WAIT).await;
        assert_eq!(offline.data["node_id"], config.node_id.as_str());
        assert_eq!(offline.data["online"], false);
        marker(&app, &other_org, "theirs-2").await;
        assert!(until_marker(&mut theirs, "theirs-2").await.is_empty());
    }

    async fn platform_administrators_hear_changes_as_the_audit_log_records_them(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let user = app.register("user@example.com").await;
        let org = first_org(&app, &user.access).await;
        let mut admins = open(&app, &admin.access, None).await;
        let mut users = open(&app, &user.access, None).await;

        // A refused sign-in is recorded but not published; the change after it is.
        app.post("/v1/auth/login", None, json!({"email": "user@example.com", "password": "wrong"}))
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
        let made = app.post("/v1/organizations", Some(&user.access), json!({"name": "Audited"}))
            .await
            .expect(201);
        let heard = admins.expect("audit", WAIT).await.data;
        assert_eq!(heard["organization_id"], "", "a platform event: {heard}");
        let entry = &heard["entry"];
        assert_eq!(entry["result"], "success", "{heard}");
        assert_eq!((entry["method"].as_str(), entry["path"].as_str()), (Some("POST"), Some("/v1/organizations")), "{heard}");
        assert_eq!(entry["actor_email"], "user@example.com");
        assert!(made.body["id"].is_string());
        let listed = app.get("/v1/admin/audit-logs?per_page=1", Some(&admin.access)).await.expect(200);
        assert_eq!(listed.body["data"][0]["id"], entry["id"], "the event is the stored entry");

        // The user who made it is no administrator: their stream shows only their own
        // organization's marker.
        marker(&app, &org, "mine").await;
        assert!(until_marker(&mut users, "mine").await.is_empty());
    }

    async fn a_member_hears_only_what_their_permissions_let_them_read(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let owner = app.bootstrap_admin().await;
        let org = first_org(&app, &owner.access).await;
        let member = app.register("viewer@example.com").await;
        app.add_member(&org, &member.user_id, "viewer").await;
        app.post(
            &format!("/v1/organizations/{org}/members/{}/permissions", member.user_id),
            Some(&owner.access),
            json!({"key": "instances.read", "allowed": false}),
        )
        .await
        .expect(200);
        let mut stream = open(&app, &member.access, None).await;
        app.state.events.publish(instance_event(&org, "hidden")).await;
        marker(&app, &org, "after").await;
        // The node marker arrives (nodes.read), the instance event before it does not.
        assert!(until_marker(&mut stream, "after").await.is_empty());

        // The owner hears both, in order.
        let mut all = open(&app, &owner.access, None).await;
        app.state.events.publish(instance_event(&org, "shown")).await;
        marker(&app, &org, "end").await;
        let seen = until_marker(&mut all, "end").await;
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].event, "instance_state");
        assert_eq!(seen[0].data["instance_id"], "shown");
        assert_eq!(seen[0].data["state"], "running");
    }

    async fn a_client_resumes_from_its_last_event_or_is_told_to_resync(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let org = first_org(&app, &admin.access).await;
        let mut first = open(&app, &admin.access, None).await;
        marker(&app, &org, "one").await;
        let one = first.expect("node_status", WAIT).await;
        drop(first);
        // Missed while away.
        marker(&app, &org, "two").await;
        marker(&app, &org, "three").await;
        let mut again = open(&app, &admin.access, one.id.as_deref()).await;
        let two = again.expect("node_status", WAIT).await;
        let three = again.expect("node_status", WAIT).await;
        assert_eq!(two.data["node_id"], "two");
        assert_eq!(three.data["node_id"], "three");
        let place = |e: &SseEvent| e.id.as_deref().and_then(|i| i.parse::<EventId>().ok()).expect("an event id");
        assert!(place(&one) < place(&two) && place(&two) < place(&three));
        // Then live ones, not repeated.
        marker(&app, &org, "four").await;
        assert_eq!(again.expect("node_status", WAIT).await.data["node_id"], "four");

        // The query parameter works for clients that cannot set the header.
        let url = format!("{}/v1/events?last_event_id={}", app.base, three.id.as_deref().unwrap_or_default());
        let auth = format!("Bearer {}", admin.access);
        let mut by_query = SseStream::open(&app.client, &url, &[("authorization", auth.as_str())])
            .await
            .unwrap_or_else(|(s, b)| panic!("{s} {b}"));
        assert_eq!(by_query.expect("node_status", WAIT).await.data["node_id"], "four");

        // An id no longer (or never) kept: a resync, then live events.
        let mut lost = open(&app, &admin.access, Some("1-1")).await;
        let resync = lost.next(WAIT).await.expect("an event").expect("open");
        assert_eq!(resync.event, "resync");
        assert!(resync.id.is_none(), "a resync has no place in the log");
        marker(&app, &org, "five").await;
        assert_eq!(lost.expect("node_status", WAIT).await.data["node_id"], "five");
    }

    async fn bad_requests_to_the_stream_are_refused(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let url = format!("{}/v1/events", app.base);
        let (status, body) = SseStream::open(&app.client, &url, &[]).await.err().expect("refused");
        assert_eq!(status, 401);
        assert_eq!(body["code"], "UNAUTHORIZED");
        let (status, _) = SseStream::open(&app.client, &url, &[("authorization", "Bearer nope")])
            .await
            .err()
            .expect("refused");
        assert_eq!(status, 401);
        let auth = format!("Bearer {}", admin.access);
        for bad in ["nope", "1-", "-1", "1-2-3", "99999999999999999999999-0"] {
            let (status, body) = SseStream::open(
                &app.client,
                &url,
                &[("authorization", auth.as_str()), ("last-event-id", bad)],
            )
            .await
            .err()
            .expect("refused");
            assert_eq!(status, 400, "{bad}: {body}");
            assert_eq!(body["code"], "VALIDATION_ERROR");
        }
        let (status, body) = SseStream::open(
            &app.client,
            &format!("{url}?since=1"),
            &[("authorization", auth.as_str())],
        )
        .await
        .err()
        .expect("unknown parameter refused");
        assert_eq!(status, 400, "{body}");
    }

    async fn a_revoked_session_ends_its_streams(engine) {
        let app = shardlyn_tests::spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let org = first_org(&app, &admin.access).await;
        let token = app.api_token(&admin.access, "events", None).await;
        let mut by_session = open(&app, &admin.access, None).await;
        let mut by_token = open(&app, &token, None).await;
        app.post("/v1/auth/logout", Some(&admin.access), json!({})).await.expect(204);
        // The session's stream ends; the API token's stays and still hears events.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match by_session.next(left).await {
                Ok(None) => break,
                Ok(Some(_)) => {}
                Err(e) => panic!("the revoked session's stream stayed open: {e}"),
            }
        }
        marker(&app, &org, "still").await;
        assert_eq!(by_token.expect("node_status", WAIT).await.data["node_id"], "still");
        // And a new stream on the revoked token is refused.
        let url = format!("{}/v1/events", app.base);
        let auth = format!("Bearer {}", admin.access);
        let (status, _) = SseStream::open(&app.client, &url, &[("authorization", auth.as_str())])
            .await
            .err()
            .expect("refused");
        assert_eq!(status, 401);
    }
}

/// Two replicas on one PostgreSQL database and one Redis: an event published on either
/// reaches streams on both, under the same id, and a client that resumes on the other
/// replica misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_event_log_through_redis() {
    let apps = replicas(2, |_| {}).await;
    let (a, b) = (&apps[0], &apps[1]);
    let admin = a.bootstrap_admin().await;
    let org = first_org(a, &admin.access).await;
    b.get("/v1/users/me", Some(&admin.access)).await.expect(200);

    let mut on_a = open(a, &admin.access, None).await;
    let mut on_b = open(b, &admin.access, None).await;
    marker(a, &org, "from-a").await;
    marker(b, &org, "from-b").await;
    let a1 = on_a.expect("node_status", WAIT).await;
    let a2 = on_a.expect("node_status", WAIT).await;
    let b1 = on_b.expect("node_status", WAIT).await;
    let b2 = on_b.expect("node_status", WAIT).await;
    assert_eq!(a1.data["node_id"], "from-a");
    assert_eq!(a2.data["node_id"], "from-b");
    assert_eq!(
        (a1.id.clone(), a2.id.clone()),
        (b1.id.clone(), b2.id.clone())
    );
    assert_eq!(b1.data, a1.data);

    // A client of A that missed events resumes on B.
    drop(on_a);
    marker(a, &org, "missed").await;
    let mut resumed = open(b, &admin.access, a2.id.as_deref()).await;
    assert_eq!(
        resumed.expect("node_status", WAIT).await.data["node_id"],
        "missed"
    );

    // A real agent on A: its node's status reaches a stream on B.
    let (config, agent_dir) = register_node(a, &admin.access).await;
    let agent = LocalAgent::start(config.clone(), agent_dir.path());
    loop {
        let e = on_b.expect("node_status", WAIT).await;
        if e.data["node_id"] == config.node_id.as_str() {
            assert_eq!(e.data["online"], true);
            break;
        }
    }
    agent.stop().await;
}
