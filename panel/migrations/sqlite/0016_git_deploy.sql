-- Git deploy per instance: the repository, branch and target directory an instance's files
-- are synced from (deploy key and token sealed under the master key, never returned), and
-- the history of syncs. At most one sync per instance is `running` (partial unique index),
-- so two triggers at once cannot both start one.
CREATE TABLE instance_git (
    instance_id TEXT PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    repo_url TEXT NOT NULL,
    repo_key TEXT NOT NULL,
    branch TEXT NOT NULL,
    target_dir TEXT NOT NULL,
    sealed_deploy_key TEXT,
    deploy_key_fingerprint TEXT,
    sealed_token TEXT,
    token_username TEXT,
    restart_after_sync BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX instance_git_match ON instance_git (org_id, repo_key, branch);
CREATE TABLE git_syncs (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    trigger_kind TEXT NOT NULL,
    triggered_by TEXT,
    status TEXT NOT NULL,
    repo_url TEXT NOT NULL,
    branch TEXT NOT NULL,
    commit_sha TEXT,
    commit_message TEXT,
    files BIGINT NOT NULL DEFAULT 0,
    removed BIGINT NOT NULL DEFAULT 0,
    restarted BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX git_syncs_instance ON git_syncs (instance_id, started_at);
CREATE UNIQUE INDEX git_syncs_one_running ON git_syncs (instance_id) WHERE status = 'running';
