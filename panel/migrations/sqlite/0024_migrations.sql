-- Moves of a server from one node to another (see `migrations`): one row a move, its
-- state machine `queued -> copying -> final_sync -> switching -> completed` (or `failed`
-- / `cancelled` with a reason). At most one open move per server.
CREATE TABLE migrations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    source_node_id TEXT NOT NULL,
    target_node_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    was_running INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    bytes_copied BIGINT NOT NULL DEFAULT 0,
    ports_changed TEXT NOT NULL DEFAULT '',
    requested_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX migrations_org ON migrations (org_id, created_at);
CREATE UNIQUE INDEX migrations_one_open ON migrations (instance_id)
    WHERE state IN ('queued', 'copying', 'final_sync', 'switching');
