-- Notification integrations (issue 16): an organization's channels (Discord, Slack,
-- Telegram, email, Teams, ntfy, a signed generic webhook). `config` holds the public
-- fields as JSON; `sealed_secrets` the secret ones (webhook URLs, tokens, the webhook's
-- signing secret) sealed with the master key. Deliveries are a durable queue: one row per
-- integration and idempotency key (an alert transition is queued once whichever replica
-- enqueues it), claimed by one replica at a time, retried with backoff until delivered or
-- given up.
CREATE TABLE integrations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    sealed_secrets TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    healthy BIGINT NOT NULL DEFAULT 1,
    last_error TEXT,
    last_delivery_at BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX integrations_org ON integrations (org_id, created_at);
CREATE TABLE integration_deliveries (
    id TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    dedup_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    claimed_by TEXT,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (integration_id, dedup_key)
);
CREATE INDEX integration_deliveries_due ON integration_deliveries (state, next_attempt_at);
