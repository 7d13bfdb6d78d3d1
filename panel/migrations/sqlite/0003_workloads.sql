-- Workloads: egg-based definitions of what an instance runs, owned by an organization.
-- `egg` holds the normalized egg as PTDL_v2 JSON text; name and description are copies of
-- the egg's, kept for listing. source: 'egg' (imported), 'template' (copied from a bundled
-- template, named in `template`) or 'api' (created from the workload JSON shape).

CREATE TABLE workloads (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    template TEXT,
    egg TEXT NOT NULL,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX workloads_org_created ON workloads (org_id, created_at);
