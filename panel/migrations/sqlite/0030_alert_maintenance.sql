-- Maintenance windows (issue 16): planned downtime of a node or server (or of every node
-- or server of an organization, `target_id` NULL). While a window is open no alert of the
-- target opens and nothing of it is notified; a window on a node covers its servers.
CREATE TABLE alert_maintenance (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    target_type TEXT NOT NULL,
    target_id TEXT,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX alert_maintenance_org ON alert_maintenance (org_id, ends_at);
