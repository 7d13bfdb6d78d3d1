//! What the API answers about schedules: a schedule with its tasks, a run, and the
//! per-task results a run records (stored as JSON in `schedule_runs.results`, read back
//! through the same [`TaskResult`] type).

use serde::{Deserialize, Serialize};
use shardlyn_proto::instance::InstanceState;

use super::store::{self, Action};
use crate::types::Timestamp;

/// One step of a schedule.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskView {
    /// Zero-based order in the schedule.
    pub position: usize,
    pub action: Action,
    /// The console command, the power action, or a backup's ignore patterns.
    pub payload: String,
    /// The backup's name (backup tasks only).
    pub backup_name: Option<String>,
    /// Seconds to wait after the previous task.
    pub time_offset: i64,
    pub continue_on_failure: bool,
}

/// A schedule and its tasks.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduleView {
    pub id: String,
    pub instance_id: String,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    pub only_when_online: bool,
    pub next_run_at: Option<Timestamp>,
    pub last_run_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub tasks: Vec<TaskView>,
}

impl From<&store::Schedule> for ScheduleView {
    fn from(s: &store::Schedule) -> Self {
        let tasks = s
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| TaskView {
                position: i,
                action: t.action,
                payload: t.payload.clone(),
                backup_name: (t.action == Action::Backup).then(|| t.backup_name.clone()),
                time_offset: t.time_offset,
                continue_on_failure: t.continue_on_failure,
            })
            .collect();
        Self {
            id: s.id.clone(),
            instance_id: s.instance_id.clone(),
            name: s.name.clone(),
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            enabled: s.enabled,
            only_when_online: s.only_when_online,
            next_run_at: s.next_run_at.map(Timestamp),
            last_run_at: s.last_run_at.map(Timestamp),
            created_at: Timestamp(s.created_at),
            updated_at: Timestamp(s.updated_at),
            tasks,
        }
    }
}

/// The schedules of an instance.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduleList {
    pub data: Vec<ScheduleView>,
}

/// What one task of a run did.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskResult {
    pub position: usize,
    pub action: Action,
    /// `completed`, `failed` or `skipped`.
    pub status: String,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    /// The state a power task left the server in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InstanceState>,
    /// The backup a backup task started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

/// One run of a schedule; `tasks` holds one result per task run so far.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunView {
    pub id: String,
    pub schedule_id: String,
    pub instance_id: String,
    /// `cron` or `manual`.
    pub source: String,
    /// `pending`, `running`, `completed`, `failed` or `skipped`.
    pub status: String,
    pub scheduled_for: Option<Timestamp>,
    pub requested_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    pub tasks: Vec<TaskResult>,
}

impl From<&store::Run> for RunView {
    fn from(r: &store::Run) -> Self {
        Self {
            id: r.id.clone(),
            schedule_id: r.schedule_id.clone(),
            instance_id: r.instance_id.clone(),
            source: r.source.clone(),
            status: r.status.clone(),
            scheduled_for: r.scheduled_for.map(Timestamp),
            requested_at: Timestamp(r.requested_at),
            started_at: r.started_at.map(Timestamp),
            finished_at: r.finished_at.map(Timestamp),
            error: r.error.clone(),
            tasks: serde_json::from_str(&r.results).unwrap_or_default(),
        }
    }
}

/// Runs of a schedule, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunList {
    pub data: Vec<RunView>,
}
