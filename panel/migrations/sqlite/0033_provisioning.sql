-- Cloud provisioning (issue 17). A provision request is one cloud node an organization
-- asks for: its provider, region, type and image; the credential that pays for it; the
-- plan awaiting approval (the plan file sealed, its summary and price); what the apply
-- created (server id, addresses, the panel-owned firewall); and the node that joined.
-- status: pending, planning, planned, applying, applied (the server exists, its agent
-- has not connected yet), provisioned, failed, destroying, destroyed.
CREATE TABLE provision_requests (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    region TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    image TEXT NOT NULL,
    credential_id TEXT REFERENCES credentials(id) ON DELETE SET NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    sealed_vars TEXT,
    sealed_plan TEXT,
    plan_summary TEXT,
    planned_at BIGINT,
    price_hourly TEXT,
    price_monthly TEXT,
    server_id TEXT,
    ipv4 TEXT,
    ipv6 TEXT,
    firewall_id TEXT,
    node_id TEXT REFERENCES nodes(id) ON DELETE SET NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX provision_requests_org ON provision_requests (org_id, created_at);
CREATE INDEX provision_requests_node ON provision_requests (node_id);

-- One Terraform command run for a request (plan, apply, destroy, resize). A run holds a
-- lease it renews while Terraform works; a run whose lease lapsed (its panel died) is
-- failed by whichever replica notices. Terraform reaches the state backend with the
-- run's own Basic credential (`password_hash`), valid while the run is.
CREATE TABLE provision_runs (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES provision_requests(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    message TEXT
);
CREATE INDEX provision_runs_request ON provision_runs (request_id, started_at);
-- At most one run at a time per request.
CREATE UNIQUE INDEX provision_runs_active ON provision_runs (request_id) WHERE status = 'running';

-- Every line a run printed (Terraform's -json output and the panel's own notes).
CREATE TABLE provision_logs (
    run_id TEXT NOT NULL REFERENCES provision_runs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Terraform's state of a request, served by the panel's http backend, sealed.
CREATE TABLE provision_states (
    request_id TEXT PRIMARY KEY REFERENCES provision_requests(id) ON DELETE CASCADE,
    sealed_state TEXT NOT NULL,
    md5 TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The state's lock: Terraform's LockInfo and a lease; a lapsed lease is no lock.
CREATE TABLE provision_locks (
    request_id TEXT PRIMARY KEY REFERENCES provision_requests(id) ON DELETE CASCADE,
    lock_id TEXT NOT NULL,
    info TEXT NOT NULL,
    run_id TEXT,
    expires_at BIGINT NOT NULL
);

-- A registration token minted for a provision request's cloud-init.
ALTER TABLE node_registration_tokens ADD COLUMN provision_request_id TEXT;

-- Game ports the panel opens on a provisioned node's own firewall (the second firewall,
-- owned by the panel through the provider's API; Terraform owns the base one). A rule
-- opened for a server names it, and goes when the server goes or moves away.
CREATE TABLE node_firewall_rules (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    protocol TEXT NOT NULL,
    port_start BIGINT NOT NULL,
    port_end BIGINT NOT NULL,
    source TEXT NOT NULL,
    description TEXT NOT NULL,
    instance_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX node_firewall_rules_node ON node_firewall_rules (node_id);
CREATE INDEX node_firewall_rules_instance ON node_firewall_rules (instance_id);
