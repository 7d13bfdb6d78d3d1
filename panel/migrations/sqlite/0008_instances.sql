-- Instances (game servers), their port allocations, one-time console tickets and
-- per-instance metrics samples.
--
-- instances.variables is a JSON object (TEXT) env name → value holding the resolved
-- value of every egg variable at the last create/update; variables the egg gained since
-- fall back to their default when the spec is built. state is an InstanceState name
-- (`installing`, `install_failed`, `offline`, `starting`, `running`, `stopping`);
-- desired_state is `running` or `stopped`. node_id and workload_id are not cascaded:
-- the API refuses to delete a node or workload that still has instances.

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    node_id TEXT NOT NULL REFERENCES nodes(id),
    workload_id TEXT NOT NULL REFERENCES workloads(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    image TEXT NOT NULL,
    variables TEXT NOT NULL DEFAULT '{}',
    memory_mb BIGINT NOT NULL,
    swap_mb BIGINT NOT NULL,
    cpu_percent BIGINT NOT NULL,
    disk_mb BIGINT NOT NULL,
    pids BIGINT NOT NULL,
    io_weight BIGINT NOT NULL,
    state TEXT NOT NULL,
    desired_state TEXT NOT NULL,
    installed_at BIGINT,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX instances_org_created ON instances (org_id, created_at);
CREATE INDEX instances_node ON instances (node_id);
CREATE INDEX instances_workload ON instances (workload_id);

-- One port on a node; the unique pair keeps two instances off one port even when they
-- are created at the same moment.
CREATE TABLE allocations (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    ip TEXT NOT NULL,
    port BIGINT NOT NULL,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    is_primary BIGINT NOT NULL DEFAULT 0,
    UNIQUE (node_id, port)
);
CREATE INDEX allocations_instance ON allocations (instance_id);

-- Single-use tickets opening an instance console WebSocket; stored as SHA-256.
CREATE TABLE console_tickets (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX console_tickets_instance ON console_tickets (instance_id);

-- Resource use samples of an instance.
CREATE TABLE instance_metrics (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    cpu_percent DOUBLE PRECISION NOT NULL,
    memory_bytes BIGINT NOT NULL,
    disk_bytes BIGINT NOT NULL,
    net_rx_bytes BIGINT NOT NULL,
    net_tx_bytes BIGINT NOT NULL,
    PRIMARY KEY (instance_id, at)
);
