-- Instance backups and per-organization backup storage targets.
--
-- backups.status is `pending`, `running`, `completed` or `failed`; target is `local`
-- (the node's disk) or `s3`; config_id names the backup_configs row an S3 backup went
-- to (its credentials are needed to read it back); object_key is the S3 key or the
-- local file name. locked and the booleans are BIGINT 0/1.
-- backup_configs.sealed_credentials holds the S3 keys sealed under the master key;
-- at most one row per organization is active; max_backups (0: no limit) rotates out the
-- oldest unlocked backup of an instance when a new one would exceed it.

CREATE TABLE backup_configs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    endpoint TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    bucket TEXT NOT NULL DEFAULT '',
    prefix TEXT NOT NULL DEFAULT '',
    sealed_credentials TEXT NOT NULL DEFAULT '',
    part_size BIGINT NOT NULL DEFAULT 8388608,
    max_backups BIGINT NOT NULL DEFAULT 0,
    active BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX backup_configs_org ON backup_configs (org_id);

CREATE TABLE backups (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    target TEXT NOT NULL,
    config_id TEXT,
    object_key TEXT NOT NULL DEFAULT '',
    size_bytes BIGINT NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL DEFAULT '',
    locked BIGINT NOT NULL DEFAULT 0,
    ignored TEXT NOT NULL DEFAULT '',
    error TEXT,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX backups_instance ON backups (instance_id, created_at);
