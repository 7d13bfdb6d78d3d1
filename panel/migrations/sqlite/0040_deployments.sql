-- One-click deployments (issue 20 §5): a persisted job that makes (or reuses) the
-- template's workload, checks the plan, places, creates, names (DNS), installs and
-- starts one server. steps: JSON list of {name, status, message, started_at,
-- finished_at}. variables: the JSON object asked for. What the deployment made is
-- recorded as it is made (workload_made says whether the workload was made by it), so
-- a failure undoes it and a replica taking over a lapsed lease resumes it.
CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    template TEXT NOT NULL,
    name TEXT NOT NULL,
    variables TEXT NOT NULL DEFAULT '{}',
    node_id TEXT,
    subdomain TEXT,
    status TEXT NOT NULL,
    steps TEXT NOT NULL DEFAULT '[]',
    workload_id TEXT,
    workload_made BIGINT NOT NULL DEFAULT 0,
    instance_id TEXT,
    dns_record_id TEXT,
    error TEXT,
    created_by TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX deployments_org ON deployments (org_id, created_at);
CREATE INDEX deployments_open ON deployments (status, lease_until);
