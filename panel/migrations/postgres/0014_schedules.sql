-- Schedules: cron-driven task lists per instance, run by the panel's job runner.
--
-- schedules.cron is a 5-field expression (minute hour day-of-month month day-of-week)
-- read in `timezone` (IANA name). next_run_at is the next due time (unix ms) while the
-- schedule is enabled, NULL while it is disabled; a replica claims a due run by moving
-- next_run_at forward with `UPDATE ... WHERE id = $1 AND next_run_at = $old`, so each
-- run happens once however many replicas poll. Booleans are BIGINT 0/1.
-- schedule_tasks.action is `command`, `power` or `backup`; payload is the command line,
-- the power action, or the backup's ignore patterns; time_offset is the wait in seconds
-- after the previous task.
-- schedule_runs.source is `cron` or `manual`; status is `pending` (a requested run not
-- yet picked up), `running`, `completed`, `failed` or `skipped`; results is a JSON array
-- with one entry per task. A cron run is unique per (schedule, scheduled_for).

CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    only_when_online BIGINT NOT NULL DEFAULT 0,
    next_run_at BIGINT,
    last_run_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX schedules_instance ON schedules (instance_id, created_at);
CREATE INDEX schedules_due ON schedules (next_run_at);

CREATE TABLE schedule_tasks (
    id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '',
    backup_name TEXT NOT NULL DEFAULT '',
    time_offset BIGINT NOT NULL DEFAULT 0,
    continue_on_failure BIGINT NOT NULL DEFAULT 0,
    UNIQUE (schedule_id, position)
);

CREATE TABLE schedule_runs (
    id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    scheduled_for BIGINT,
    requested_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    results TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    UNIQUE (schedule_id, scheduled_for)
);
CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, requested_at);
CREATE INDEX schedule_runs_status ON schedule_runs (status);
