//! What several panel processes may share: a SQLite file serves one process (a second is
//! refused while the first runs, and starts once it stopped), and `redis_url`, which is
//! for replicas, is refused with SQLite.

use std::sync::Arc;

use shardlyn_panel::mailer::MemoryMailer;
use shardlyn_panel::server;
use shardlyn_tests::{Engine, fresh_database, redis_url, spawn_app, test_config};

fn refusal(result: anyhow::Result<server::Running>) -> String {
    match result {
        Ok(_) => panic!("the panel started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_with_redis_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(Engine::Sqlite, dir.path()).await;
    let mut config = test_config(dir.path(), url);
    config.redis_url = redis_url();
    let why = refusal(server::launch(config, Arc::new(MemoryMailer::default())).await);
    assert!(
        why.contains("redis_url is set but the database is SQLite"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_panel_on_one_sqlite_file_waits_for_the_first_to_stop() {
    let first = spawn_app(Engine::Sqlite).await;
    let other_dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(other_dir.path(), first.state.config.database_url.clone());
    let why = refusal(server::launch(config.clone(), Arc::new(MemoryMailer::default())).await);
    assert!(
        why.contains("another panel process already serves"),
        "{why}"
    );
    // The first still serves, untouched.
    first.get("/health/ready", None).await.expect(200);
    first.stop().await;
    let second = server::launch(config, Arc::new(MemoryMailer::default()))
        .await
        .expect("the file is free once the first stopped");
    second.stop().await.expect("stops");
}
