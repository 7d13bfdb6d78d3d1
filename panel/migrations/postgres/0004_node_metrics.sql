-- One row per node per heartbeat (10 s): the node's resource usage.

CREATE TABLE node_metrics (
    node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    cpu_percent DOUBLE PRECISION NOT NULL,
    memory_used_bytes BIGINT NOT NULL,
    memory_total_bytes BIGINT NOT NULL,
    disk_used_bytes BIGINT NOT NULL,
    disk_total_bytes BIGINT NOT NULL,
    net_rx_bytes BIGINT NOT NULL,
    net_tx_bytes BIGINT NOT NULL,
    PRIMARY KEY (node_id, at)
);
