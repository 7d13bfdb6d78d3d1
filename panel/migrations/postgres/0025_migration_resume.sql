-- Moves that survive their replica and the source node (see `migrations::runner`):
-- `runner` names the process running a move (a replica taking a stale move over writes
-- its own, and the old one stops at its next step); `resumes` counts the copies resumed
-- after a cut; a move rebuilt from a backup, because its source node is offline, names
-- the backup and when it was taken (what changed since is lost).
ALTER TABLE migrations ADD COLUMN runner TEXT NOT NULL DEFAULT '';
ALTER TABLE migrations ADD COLUMN resumes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE migrations ADD COLUMN backup_id TEXT;
ALTER TABLE migrations ADD COLUMN backup_taken_at BIGINT;
