-- Cloud credentials (issue 17): an organization's provider accounts (aws, gcp, hetzner,
-- oci, cloudflare, steam). Public fields as JSON, secret fields sealed with the master
-- key (never answered; `hints` holds their masked last characters). At most one default
-- per organization and provider. `verified_*` keep what the last verify call answered.
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    config TEXT NOT NULL,
    sealed_secrets TEXT NOT NULL,
    hints TEXT NOT NULL,
    is_default BIGINT NOT NULL DEFAULT 0,
    verified_at BIGINT,
    verified_ok BIGINT,
    verified_message TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX credentials_org ON credentials (org_id, provider);
CREATE UNIQUE INDEX credentials_default ON credentials (org_id, provider) WHERE is_default = 1;
