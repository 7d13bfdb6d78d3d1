-- The panel's own backups (issue 21 §3): one row per finished run, written when the
-- archive is in place (or the run failed), so a backup never holds its own run.
-- trigger: schedule or cli. status: succeeded or failed. location: the file path or
-- the s3:// URL of the archive.
CREATE TABLE system_backup_runs (
    id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    bytes BIGINT,
    location TEXT,
    error TEXT,
    replica_id TEXT
);
CREATE INDEX system_backup_runs_started ON system_backup_runs (started_at);
