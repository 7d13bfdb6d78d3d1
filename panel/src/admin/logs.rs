//! `GET/PUT /v1/admin/settings/logs`: the panel's log filter and how long audit-log
//! entries are kept. A saved level is applied at once through the `tracing` reload handle
//! the binary installs ([`install_reloader`]) and again at every start; retention is
//! enforced when saved and by the `audit_retention` job every hour.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::auth::extract::AdminUser;
use crate::db::now_ms;
use crate::error::{AppError, AppJson, AppResult};
use crate::settings::store;
use crate::state::AppState;

/// The settings group these settings are stored under.
const GROUP: &str = "logs";
/// Longest filter accepted, in bytes.
const LEVEL_MAX: usize = 512;
/// Longest retention accepted, in days (ten years).
const RETENTION_MAX_DAYS: u32 = 3650;
/// How often the retention job prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Replaces the process's log filter; set once by the binary that owns the subscriber.
type Reloader = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The reload hook of the process-wide `tracing` subscriber. The subscriber itself is
/// process-global (installed once by `main`), so its handle is too; panels started
/// inside tests have none, and the level is then only stored.
static RELOADER: OnceLock<Reloader> = OnceLock::new();

/// Registers how to replace the log filter at run time (called once by the binary).
pub fn install_reloader(reload: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    let _ = RELOADER.set(Box::new(reload));
}

/// Applies `level` to the running subscriber; false when there is no reload handle.
fn apply_level(level: &str) -> bool {
    match RELOADER.get().map(|reload| reload(level)) {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            tracing::error!(log.level = level, "log filter not applied: {e}");
            false
        }
        None => false,
    }
}

/// The stored log settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogSettings {
    /// A `tracing` filter: `info`, `warn`, `shardlyn_panel=debug,info`...
    pub level: String,
    /// Days audit-log entries are kept; `None` keeps them forever.
    pub audit_retention_days: Option<u32>,
}

/// The stored settings, or the configuration's level and unlimited retention.
async fn current(state: &AppState) -> AppResult<LogSettings> {
    Ok(store::load(&state.db.pool, GROUP)
        .await?
        .unwrap_or_else(|| LogSettings {
            level: state.config.log_level.clone(),
            audit_retention_days: None,
        }))
}

/// Checks a filter the way the subscriber will parse it.
fn check_level(level: &str) -> AppResult<String> {
    let level = level.trim();
    if level.is_empty() || level.len() > LEVEL_MAX {
        return Err(AppError::invalid_field(
            "level",
            format!("level must be 1 to {LEVEL_MAX} bytes"),
        ));
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map_err(|e| {
            AppError::invalid_field(
                "level",
                format!("level is not a log filter (e.g. \"info\" or \"shardlyn_panel=debug,info\"): {e}"),
            )
        })?;
    Ok(level.to_string())
}

/// Deletes audit-log entries older than `days`; the number deleted.
async fn prune(state: &AppState, days: u32) -> Result<u64, sqlx::Error> {
    let cutoff = now_ms() - i64::from(days) * 24 * 3600 * 1000;
    let done = sqlx::query("DELETE FROM audit_logs WHERE at < $1")
        .bind(cutoff)
        .execute(&state.db.pool)
        .await?;
    Ok(done.rows_affected())
}

/// The log settings as answered.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogSettingsView {
    #[serde(flatten)]
    pub settings: LogSettings,
    /// Whether this process can change its level while it runs.
    pub runtime_reload: bool,
    /// Audit-log entries deleted by the new retention (`PUT` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_logs_pruned: Option<u64>,
}

fn view(settings: &LogSettings, applied: bool) -> LogSettingsView {
    LogSettingsView {
        settings: settings.clone(),
        runtime_reload: applied,
        audit_logs_pruned: None,
    }
}

/// The log settings; `runtime_reload` says whether this process can change its level.
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<LogSettingsView>> {
    let settings = current(&state).await?;
    Ok(AppJson(view(&settings, RELOADER.get().is_some())))
}

/// A `PUT` body: each field optional; `audit_retention_days: null` keeps entries forever.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Update {
    level: Option<String>,
    #[serde(default, deserialize_with = "present")]
    audit_retention_days: Option<Option<i64>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Saves the log settings, applies the level and prunes the audit log.
pub async fn put(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppJson(body): AppJson<Update>,
) -> AppResult<AppJson<LogSettingsView>> {
    let mut settings = current(&state).await?;
    if let Some(level) = body.level {
        settings.level = check_level(&level)?;
    }
    match body.audit_retention_days {
        None => {}
        Some(None) => settings.audit_retention_days = None,
        Some(Some(days)) => {
            let days = u32::try_from(days)
                .ok()
                .filter(|d| (1..=RETENTION_MAX_DAYS).contains(d))
                .ok_or_else(|| {
                    AppError::invalid_field(
                        "audit_retention_days",
                        format!(
                            "audit_retention_days must be 1 to {RETENTION_MAX_DAYS}, or null to keep entries forever"
                        ),
                    )
                })?;
            settings.audit_retention_days = Some(days);
        }
    }
    let mut conn = state.db.pool.acquire().await?;
    store::save(&mut conn, GROUP, &settings, &admin.user.id).await?;
    drop(conn);
    let applied = apply_level(&settings.level);
    let pruned = match settings.audit_retention_days {
        Some(days) => prune(&state, days).await?,
        None => 0,
    };
    let mut doc = view(&settings, applied);
    doc.audit_logs_pruned = Some(pruned);
    Ok(AppJson(doc))
}

/// The `audit_retention` job: applies a stored log level once at start (unless `RUST_LOG`
/// is set), then, while this replica holds the job lease, prunes the audit log to the
/// stored retention every hour until `stop`.
pub async fn run_until_stopped(
    state: AppState,
    mut lease: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    // An operator's RUST_LOG wins at start; a later PUT still applies.
    match store::load::<LogSettings>(&state.db.pool, GROUP).await {
        Ok(Some(settings)) if std::env::var_os("RUST_LOG").is_none() => {
            apply_level(&settings.level);
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "reading log settings"),
    }
    // Pruning is the cluster's, done by the replica that holds the job lease.
    while crate::jobs::lease::until_held(&mut lease, &mut stop).await {
        match store::load::<LogSettings>(&state.db.pool, GROUP).await {
            Ok(Some(LogSettings {
                audit_retention_days: Some(days),
                ..
            })) => match prune(&state, days).await {
                Ok(n) if n > 0 => tracing::info!(audit.pruned = n, "audit log pruned"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "pruning the audit log"),
            },
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reading log settings"),
        }
        tokio::select! {
            () = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked() {
        assert_eq!(check_level(" debug ").expect("valid"), "debug");
        assert!(check_level("shardlyn_panel=debug,info").is_ok());
        assert!(check_level("").is_err());
        assert!(check_level("shardlyn=loud").is_err());
        assert!(check_level(&"a".repeat(513)).is_err());
    }

    #[test]
    fn the_reloader_receives_the_level() {
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        install_reloader(move |level| {
            sink.lock()
                .map_err(|e| e.to_string())?
                .push(level.to_string());
            Ok(())
        });
        assert!(apply_level("warn"));
        assert_eq!(*seen.lock().expect("lock"), vec!["warn".to_string()]);
    }
}
