//! The admin's Panel backup page (`/admin/system-backup`), in a real headless Chromium:
//! reached from the admin navigation, it shows the schedule, the directory, what the
//! archives are encrypted to (never the passphrase) and a run made through the same code
//! `shardlyn backup` uses (`tests/tests/api/system_backup.rs` checks who may read it).

use std::time::Duration;

use anyhow::ensure;
use shardlyn_panel::system_backup::{Trigger, run_once};
use shardlyn_tests::{Engine, PASSWORD, spawn_app_with};

use crate::browser::{Chrome, click, fill, find, wait_path, wait_text};

const PASSPHRASE: &str = "page passphrase never shown";

#[tokio::test]
async fn the_panel_backup_page_shows_settings_and_runs() {
    let app = spawn_app_with(Engine::Sqlite, |c| {
        c.system_backup.passphrase = shardlyn_panel::config::Secret(PASSPHRASE.into());
        c.system_backup.schedule = "30 4 * * *".into();
        c.system_backup.keep = 3;
    })
    .await;
    app.bootstrap_admin().await;
    let run = run_once(
        &app.state.config,
        &app.state.db,
        None,
        Trigger::Cli,
        shardlyn_panel::db::now_ms(),
        None,
    )
    .await
    .expect("a backup into <data_dir>/system-backups");
    let location = run.location.clone().expect("a location");
    ensure_file(&location);

    let base = app.base.clone();
    let run_id = run.id.clone();
    Chrome::start(false)
        .await
        .run("panel_backup_page", |c| async move {
            c.goto(&format!("{base}/login")).await?;
            fill(&c, "#email", "admin@example.com").await?;
            fill(&c, "#password", PASSWORD).await?;
            click(&c, "#login-submit").await?;
            wait_path(&c, "/").await?;
            c.goto(&format!("{base}/admin/replicas")).await?;
            click(&c, "#admin-nav-system-backup").await?;
            wait_path(&c, "/admin/system-backup").await?;
            let wait = Duration::from_secs(10);
            wait_text(&c, "#backup-schedule", "30 4 * * *", wait).await?;
            wait_text(&c, "#backup-encryption", "a passphrase (not shown)", wait).await?;
            wait_text(&c, "#backup-destination", "system-backups", wait).await?;
            let row =
                format!("#system-backup-runs tr[data-run='{run_id}'][data-status='succeeded']");
            find(&c, &row).await?;
            wait_text(&c, &row, "shardlyn-panel-", wait).await?;
            let source = c.source().await?;
            ensure!(
                !source.contains(PASSPHRASE),
                "the passphrase is never shown"
            );
            Ok(())
        })
        .await;
    app.stop().await;
}

fn ensure_file(path: &str) {
    let bytes = std::fs::read(path).expect("the archive exists");
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
}
