-- Selling servers (issue 19): plans, subscriptions, platform nodes, billing suspension
-- and Stripe events acted on exactly once.
--
-- plans: what an organization may use. Prices are minor units (cents) in currency;
-- stripe_price_month/_year are Stripe Price ids (made by the panel or given). A limit
-- column NULL is unlimited. pools is a JSON list of the node pools the plan places on:
-- "own" (the organization's nodes) and "platform" (nodes marked the platform's).
-- is_default marks the plan every organization has without a subscription (one at most);
-- archived plans take no new subscribers.
CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    currency TEXT NOT NULL,
    price_month BIGINT NOT NULL DEFAULT 0,
    price_year BIGINT NOT NULL DEFAULT 0,
    stripe_product_id TEXT,
    stripe_price_month TEXT,
    stripe_price_year TEXT,
    max_servers BIGINT,
    max_memory_mb BIGINT,
    max_cpu_percent BIGINT,
    max_disk_mb BIGINT,
    max_nodes BIGINT,
    max_backups_per_server BIGINT,
    max_members BIGINT,
    pools TEXT NOT NULL DEFAULT '["own"]',
    is_default BIGINT NOT NULL DEFAULT 0,
    archived BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per organization that has (or had) a Stripe customer or a plan given by an
-- admin. status mirrors Stripe's subscription status ('active', 'trialing', 'past_due',
-- 'unpaid', 'canceled', 'incomplete', 'incomplete_expired', 'paused') or 'none' (a
-- customer without a subscription yet) or 'manual' (a plan given by an admin, no Stripe).
-- past_due_since starts the grace period; suspended_at is set while the organization's
-- servers are suspended for non-payment; terminated_at once they were deleted.
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL UNIQUE REFERENCES organizations(id) ON DELETE CASCADE,
    plan_id TEXT REFERENCES plans(id),
    status TEXT NOT NULL,
    billing_interval TEXT NOT NULL DEFAULT 'month',
    stripe_customer_id TEXT UNIQUE,
    stripe_subscription_id TEXT UNIQUE,
    current_period_end BIGINT,
    cancel_at_period_end BIGINT NOT NULL DEFAULT 0,
    past_due_since BIGINT,
    last_dunning_mail_at BIGINT,
    suspended_at BIGINT,
    terminated_at BIGINT,
    synced_at BIGINT,
    drift TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_status ON subscriptions (status);

-- Stripe events are acted on once: processed_at is set in the same transaction as the
-- change they cause; a worker retries what is still unprocessed.
ALTER TABLE webhook_deliveries ADD COLUMN processed_at BIGINT;
ALTER TABLE webhook_deliveries ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhook_deliveries ADD COLUMN last_error TEXT;

-- Platform nodes: shared by every organization whose plan allows the "platform" pool.
-- Tenants see public_name (or the name), location and the public addresses only.
ALTER TABLE nodes ADD COLUMN platform BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN public_name TEXT;
ALTER TABLE nodes ADD COLUMN location TEXT;

-- A server suspended for non-payment: when, and the desired state it had before
-- ('running' or 'stopped'), to which paying restores it.
ALTER TABLE instances ADD COLUMN billing_suspended_at BIGINT;
ALTER TABLE instances ADD COLUMN state_before_suspension TEXT;

-- The free plan every organization has until it subscribes (an admin edits it).
INSERT INTO plans (id, name, description, currency, price_month, price_year,
    max_servers, max_memory_mb, max_cpu_percent, max_disk_mb, max_nodes,
    max_backups_per_server, max_members, pools, is_default, archived, created_at, updated_at)
VALUES ('plan-free', 'Free', 'Every organization starts here.', 'usd', 0, 0,
    1, 2048, 100, 10240, 1, 3, 3, '["own"]', 1, 0, 0, 0);
