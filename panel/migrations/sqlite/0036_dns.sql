-- DNS records and automatic DNS for game servers (issue 18).
--
-- dns_records: the record sets the panel made at a DNS provider, one row per
-- (credential, zone, name, type). name is fully qualified, lower case, without the
-- trailing dot; content is as in a zone file (SRV: "priority weight port target"); a
-- set of several values (round-robin A) keeps them one per line. origin is 'manual'
-- (POST /v1/dns/records) or 'auto' (made for instance_id by auto-DNS). node_id ties an
-- A/AAAA record to a node's public address. status: 'synced' (the provider holds it),
-- 'pending' (to be written: a provider was down), 'deleting' (to be removed), 'drifted'
-- (found changed or gone at the last check; put back), 'failed' (the provider refused).
CREATE TABLE dns_records (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
    zone_id TEXT NOT NULL,
    zone_name TEXT NOT NULL,
    record_type TEXT NOT NULL,
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    ttl BIGINT NOT NULL,
    node_id TEXT REFERENCES nodes(id) ON DELETE SET NULL,
    instance_id TEXT REFERENCES instances(id) ON DELETE SET NULL,
    origin TEXT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    checked_at BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX dns_records_rrset ON dns_records (credential_id, zone_id, name, record_type);
CREATE INDEX dns_records_org ON dns_records (org_id, created_at);
CREATE INDEX dns_records_instance ON dns_records (instance_id);
CREATE INDEX dns_records_node ON dns_records (node_id);
CREATE INDEX dns_records_status ON dns_records (status);

-- An organization's automatic DNS: where each new server's records go.
-- record_types is a JSON array of 'A', 'AAAA' and 'SRV'.
CREATE TABLE dns_auto_configs (
    org_id TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    enabled BIGINT NOT NULL DEFAULT 0,
    credential_id TEXT REFERENCES credentials(id) ON DELETE SET NULL,
    zone_id TEXT,
    zone_name TEXT,
    name_pattern TEXT NOT NULL,
    record_types TEXT NOT NULL,
    ttl BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A node's public addresses (set by hand, or from the Terraform outputs of the
-- provision request that made it): what its servers' A and AAAA records point at.
ALTER TABLE nodes ADD COLUMN public_ipv4 TEXT;
ALTER TABLE nodes ADD COLUMN public_ipv6 TEXT;

-- The subdomain a server's owner chose (null: the auto-DNS name pattern's).
ALTER TABLE instances ADD COLUMN dns_subdomain TEXT;

-- The SRV service a workload's servers answer (`_minecraft._tcp`), null for none.
ALTER TABLE workloads ADD COLUMN dns_srv_service TEXT;
