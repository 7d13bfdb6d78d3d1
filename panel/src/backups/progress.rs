//! What agents report about backups and restores on their event stream
//! ([`BACKUP_PROGRESS`]): recorded when a backup ends and published on the event bus,
//! so every replica's clients see the progress and the end without asking the agent.
//!
//! Trust boundary: an agent speaks only for its own node. A report about a backup of an
//! instance on another node, or about a backup the panel never started, is dropped.
//!
//! A report can be lost (the tunnel drops as a backup ends, the replica holding it
//! dies): when an agent connects, [`reconcile`] asks it once about each backup of its
//! node the panel still thinks unfinished.

use std::sync::Arc;

use shardlyn_proto::backup::{BACKUP_PROGRESS, BackupOperation, BackupProgress, BackupStatus};
use shardlyn_proto::instance::Event as AgentEvent;

use super::handlers::check;
use super::store;
use crate::db::now_ms;
use crate::error::AppResult;
use crate::events::{Event, EventData};
use crate::instances::store as instances;
use crate::state::AppState;
use crate::tunnel::AgentConn;

/// A `pending` backup younger than this may still be on its way to the agent: the
/// reconcile leaves it alone.
const PENDING_GRACE_MS: i64 = 60_000;

/// Handles one line of an agent's event stream when it is a backup progress report.
/// Whether it was one.
pub async fn dispatch(state: &AppState, conn: &Arc<AgentConn>, line: &[u8]) -> bool {
    let Ok(event) = serde_json::from_slice::<AgentEvent>(line) else {
        return false;
    };
    if event.event != BACKUP_PROGRESS {
        return false;
    }
    let Some(Ok(report)) = event
        .args
        .into_iter()
        .next()
        .map(serde_json::from_value::<BackupProgress>)
    else {
        tracing::debug!(node.id = %conn.node_id, "unreadable backup progress report");
        return true;
    };
    if let Err(e) = apply(state, &conn.node_id, &report).await {
        tracing::warn!(
            node.id = %conn.node_id,
            backup.id = %report.backup,
            error = %e,
            "recording a backup progress report"
        );
    }
    true
}

async fn apply(state: &AppState, node_id: &str, report: &BackupProgress) -> AppResult<()> {
    let pool = &state.db.pool;
    let Some(instance) = instances::find(pool, &report.instance).await? else {
        return Ok(());
    };
    if instance.node_id != node_id {
        tracing::warn!(
            node.id = %node_id,
            instance.id = %instance.id,
            instance.node_id = %instance.node_id,
            "dropping a backup report about another node's instance"
        );
        return Ok(());
    }
    let Some(backup) = store::find(pool, &instance.id, &report.backup).await? else {
        return Ok(());
    };
    let mut error = report.error.clone();
    if report.operation == BackupOperation::Backup && report.status != BackupStatus::Running {
        let record = report.record.as_ref();
        let size = record.map_or(0, |r| r.size_bytes);
        let sha256 = record.map_or("", |r| r.sha256.as_str());
        if report.status == BackupStatus::Completed && sha256.is_empty() {
            error = Some("the node reported a completed backup without its checksum".into());
        }
        let status = if error.is_none() && report.status == BackupStatus::Completed {
            BackupStatus::Completed
        } else {
            BackupStatus::Failed
        };
        let finished = store::finish(
            pool,
            &backup.id,
            status.as_str(),
            i64::try_from(size).unwrap_or(i64::MAX),
            sha256,
            error.as_deref(),
            record.and_then(|r| r.completed_at).unwrap_or_else(now_ms),
        )
        .await?;
        if !finished {
            // Already recorded (by a reconcile); its end was published then.
            return Ok(());
        }
        crate::alerts::evaluate::on_backup_end(state, &instance.id, status == BackupStatus::Failed)
            .await;
    } else if report.operation == BackupOperation::Backup
        && !matches!(backup.status.as_str(), "pending" | "running")
    {
        // A late report of a backup already recorded as ended.
        return Ok(());
    }
    // A restore's archive size is known to the panel when the node did not say.
    let bytes_total = if report.bytes_total == 0 && report.operation == BackupOperation::Restore {
        u64::try_from(backup.size_bytes).unwrap_or(0)
    } else {
        report.bytes_total
    };
    let status = if error.is_some() {
        BackupStatus::Failed
    } else {
        report.status
    };
    state
        .events
        .publish(Event::now(
            instance.org_id,
            EventData::BackupProgress {
                instance_id: instance.id,
                backup_id: backup.id,
                operation: report.operation,
                status,
                bytes_done: report.bytes_done,
                bytes_total,
                error,
            },
        ))
        .await;
    Ok(())
}

/// Asks a node that just connected about every backup of its servers the panel thinks
/// unfinished, and records and publishes those that ended while nobody listened.
pub async fn reconcile(state: &AppState, conn: &AgentConn) {
    let rows =
        match store::unfinished_on_node(&state.db.pool, &conn.node_id, now_ms() - PENDING_GRACE_MS)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(node.id = %conn.node_id, error = %e, "listing unfinished backups");
                return;
            }
        };
    for backup in rows {
        let Some(ended) = check(state, conn, &backup.instance_id, &backup.id).await else {
            continue;
        };
        state
            .events
            .publish(Event::now(
                backup.org_id,
                EventData::BackupProgress {
                    instance_id: backup.instance_id,
                    backup_id: backup.id,
                    operation: BackupOperation::Backup,
                    status: ended.status,
                    bytes_done: ended.size_bytes,
                    bytes_total: ended.size_bytes,
                    error: ended.error,
                },
            ))
            .await;
    }
}
