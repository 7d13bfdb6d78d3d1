//! Upgrades (issue 21): a database of the baseline release (`db::contract::BASELINE`)
//! holding the fixture `tests/fixtures/baseline/data.sql` migrates to the latest schema
//! and is served; `migrate --check`'s report on a database one migration behind; and the
//! tunnel's version handshake (panel and agent one minor version apart work together).

use serde_json::json;
use shardlyn_agent::api::AgentState;
use shardlyn_agent::config::Settings;
use shardlyn_agent::instances::Manager;
use shardlyn_agent::tunnel::{VersionRefused, connect_and_serve_reporting};
use shardlyn_panel::db::contract::{BASELINE, Kind};
use shardlyn_panel::db::upgrade::EXIT_UP_TO_DATE;
use shardlyn_panel::db::{Db, migrator};
use shardlyn_proto::version::{PANEL_VERSION_HEADER, REFUSED_CODE, Release};
use shardlyn_tests::agent::{register_node, wait_node};
use shardlyn_tests::{
    Engine, both_engines, fresh_database, spawn_app, start_with_config, test_config,
};

/// The baseline release's data, as its panel stored it.
const FIXTURE: &str = include_str!("../../fixtures/baseline/data.sql");
/// The fixture admin's API token.
const TOKEN: &str = "shardlyn_api_f1c5e00000000000000000000000000000000000000000000000000000000b45";
const INSTANCE: &str = "0190b000-0000-7000-8000-000000000051";
const NODE: &str = "0190b000-0000-7000-8000-000000000031";

/// The versions of this binary's migrations above `version`.
fn versions_after(db: &Db, version: i64) -> Vec<i64> {
    migrator(db.backend)
        .iter()
        .map(|m| m.version)
        .filter(|v| *v > version)
        .collect()
}

both_engines! {
    async fn the_baseline_with_data_migrates_forward_and_is_served(engine) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = fresh_database(engine, dir.path()).await;
        let db = Db::connect(&url, 1).await.expect("connect");

        // One migration behind the baseline: the report lists the last baseline
        // migration (as contract: it predates the rules) and everything after it.
        db.migrate_to(BASELINE - 1).await.expect("migrate to the baseline minus one");
        let report = db.upgrade_report().await.expect("report");
        let pending: Vec<i64> = report.pending.iter().map(|s| s.version).collect();
        assert_eq!(pending, versions_after(&db, BASELINE - 1));
        assert_eq!(report.pending[0].version, BASELINE);
        assert_eq!(report.pending[0].kind, Kind::Baseline);
        assert!(report.compatible());
        assert_ne!(report.exit_code(), EXIT_UP_TO_DATE);
        assert!(report.render().contains("0040 deployments"), "{}", report.render());

        // At the baseline: exactly the migrations after it are pending, each classified.
        db.migrate_to(BASELINE).await.expect("migrate to the baseline");
        let report = db.upgrade_report().await.expect("report");
        let pending: Vec<i64> = report.pending.iter().map(|s| s.version).collect();
        assert_eq!(pending, versions_after(&db, BASELINE));
        assert!(report.pending.iter().all(|s| s.kind != Kind::Baseline));
        assert_eq!(report.applied.last().map(|s| s.version), Some(BASELINE));

        sqlx::raw_sql(FIXTURE).execute(&db.pool).await.expect("load the fixture");
        db.pool.close().await;

        // The new release starts on it: migrates to the latest and serves the old rows.
        let config = test_config(dir.path(), url.clone());
        let app = start_with_config(engine, dir, config).await;
        let report = app.state.db.upgrade_report().await.expect("report");
        assert_eq!(report.exit_code(), EXIT_UP_TO_DATE, "{}", report.render());

        let me = app.get("/v1/users/me", Some(TOKEN)).await.expect(200);
        assert_eq!(me.body["email"], "admin@fixture.example", "{}", me.text);
        let instance = app.get(&format!("/v1/instances/{INSTANCE}"), Some(TOKEN)).await.expect(200);
        assert_eq!(instance.body["name"], "fixture-server", "{}", instance.text);
        assert_eq!(instance.body["node_id"], NODE, "{}", instance.text);
        assert!(instance.text.contains("hello from the baseline"), "{}", instance.text);
        let node = app.get(&format!("/v1/nodes/{NODE}"), Some(TOKEN)).await.expect(200);
        assert_eq!(node.body["name"], "fixture-node-1", "{}", node.text);
        let backups = app
            .get(&format!("/v1/instances/{INSTANCE}/backups"), Some(TOKEN))
            .await
            .expect(200);
        assert!(backups.text.contains("\"nightly\""), "{}", backups.text);
        let schedules = app
            .get(&format!("/v1/instances/{INSTANCE}/schedules"), Some(TOKEN))
            .await
            .expect(200);
        assert!(schedules.text.contains("nightly restart"), "{}", schedules.text);
        assert!(schedules.text.contains("say restarting"), "{}", schedules.text);
        let settings = app.get("/v1/settings", Some(TOKEN)).await.expect(200);
        assert_eq!(settings.body["panel_name"], "Fixture Panel", "{}", settings.text);
        let orgs = app.get("/v1/organizations", Some(TOKEN)).await.expect(200);
        assert!(orgs.text.contains("Fixture Games"), "{}", orgs.text);
        // And it keeps working: the old server is renamed through the API.
        app.put(
            &format!("/v1/instances/{INSTANCE}"),
            Some(TOKEN),
            json!({"name": "renamed-after-upgrade"}),
        )
        .await
        .expect(200);
        app.stop().await;
    }
}

/// An agent whose version is more than one minor release away from the panel's is
/// refused with a message naming both; one minor away connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_more_than_one_minor_version_apart_are_refused() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let (config, dir) = register_node(&app, &admin.access).await;
    let state = || {
        let manager = Manager::new(&dir.path().join("data"), Settings::default()).expect("manager");
        AgentState::new(config.node_id.clone(), manager)
    };
    let panel = shardlyn_agent::VERSION;
    let p = Release::parse(panel).expect("the workspace version parses");

    // Too new: two minors ahead.
    let too_new = format!("{}.{}.0", p.major, p.minor + 2);
    let err = connect_and_serve_reporting(&config, state(), &too_new)
        .await
        .expect_err("refused");
    let refused = err
        .downcast_ref::<VersionRefused>()
        .unwrap_or_else(|| panic!("not a version refusal: {err:#}"));
    assert_eq!(
        refused.0,
        format!(
            "agent {too_new} is too new for panel {panel}: upgrade the panel to {}.{} or later",
            p.major,
            p.minor + 1
        )
    );

    // Too old, when the panel's version leaves room for one (0.1 does not: 0.0 is one
    // minor older and accepted).
    let too_old = if p.minor >= 2 {
        Some(format!("{}.{}.9", p.major, p.minor - 2))
    } else if p.major >= 1 {
        Some(format!("{}.0.0", p.major - 1))
    } else {
        None
    };
    if let Some(old) = too_old {
        let err = connect_and_serve_reporting(&config, state(), &old)
            .await
            .expect_err("refused");
        let refused = err
            .downcast_ref::<VersionRefused>()
            .expect("a version refusal");
        assert!(
            refused.0.starts_with(&format!(
                "agent {old} is too old for panel {panel}: upgrade the agent to "
            )),
            "{}",
            refused.0
        );
    }

    // The refusal as the wire carries it: 426, the envelope, the panel's version.
    let r = app
        .client
        .get(format!("{}/v1/agent/tunnel", app.base))
        .header(shardlyn_agent::tunnel::TOKEN_HEADER, &config.agent_token)
        .header(
            shardlyn_agent::tunnel::PROTOCOL_HEADER,
            shardlyn_proto::PROTOCOL_VERSION.to_string(),
        )
        .header(shardlyn_agent::tunnel::VERSION_HEADER, &too_new)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 426);
    assert_eq!(
        r.headers()
            .get(PANEL_VERSION_HEADER)
            .and_then(|v| v.to_str().ok()),
        Some(panel)
    );
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["code"], REFUSED_CODE);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains(&too_new)),
        "{body}"
    );

    // One minor ahead works together.
    let neighbour = format!("{}.{}.0", p.major, p.minor + 1);
    let agent_config = config.clone();
    let agent_state = state();
    let agent = tokio::spawn(async move {
        connect_and_serve_reporting(&agent_config, agent_state, &neighbour).await
    });
    let node = wait_node(&app, &admin.access, &config.node_id, "online").await;
    assert_eq!(
        node["agent_version"],
        format!("{}.{}.0", p.major, p.minor + 1)
    );
    agent.abort();
    app.stop().await;
}
