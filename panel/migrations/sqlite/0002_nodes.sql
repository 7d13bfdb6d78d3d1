-- Nodes (machines running an agent) and their single-use registration tokens.

CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    hostname TEXT NOT NULL DEFAULT '',
    agent_version TEXT NOT NULL DEFAULT '',
    token_prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    cordoned BIGINT NOT NULL DEFAULT 0,
    connected BIGINT NOT NULL DEFAULT 0,
    last_seen_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX nodes_org ON nodes (org_id);
CREATE INDEX nodes_token_prefix ON nodes (token_prefix);

CREATE TABLE node_registration_tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    node_id TEXT
);
