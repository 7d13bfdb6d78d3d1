-- Webhooks: the tokens organizations give GitHub/GitLab (secret sealed under the master
-- key, since GitHub's HMAC must be recomputed with it), and every verified delivery,
-- unique per provider and tenant (`scope`: the token's organization, or `platform` for
-- Stripe) so a redelivered event is recognised and not acted on twice.
CREATE TABLE webhook_tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webhook_tokens_org ON webhook_tokens (org_id, created_at);
CREATE INDEX webhook_tokens_prefix ON webhook_tokens (prefix);
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    scope TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    token_id TEXT REFERENCES webhook_tokens(id) ON DELETE SET NULL,
    org_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    repository TEXT,
    branch TEXT,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (provider, scope, delivery_id)
);
CREATE INDEX webhook_deliveries_org ON webhook_deliveries (org_id, received_at);
CREATE INDEX webhook_deliveries_provider ON webhook_deliveries (provider, received_at);
