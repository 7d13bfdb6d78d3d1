-- Alerts (issue 16): an organization's rules, the alerts they raise per target (one open
-- alert per rule and target: pending or firing), one row per alert transition and
-- channel notified (so a transition is notified once whichever replica evaluated it), and
-- the time each user last looked at the alerts (the unread count).
CREATE TABLE alert_rules (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    metric TEXT NOT NULL,
    operator TEXT NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    duration_seconds BIGINT NOT NULL,
    resolve_after_seconds BIGINT NOT NULL,
    severity TEXT NOT NULL,
    notify_in_app BIGINT NOT NULL,
    notify_email BIGINT NOT NULL,
    email_recipients TEXT NOT NULL,
    integration_ids TEXT NOT NULL,
    cooldown_seconds BIGINT NOT NULL,
    enabled BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alert_rules_org ON alert_rules (org_id, metric);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    node_id TEXT,
    metric TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    value DOUBLE PRECISION,
    message TEXT NOT NULL,
    pending_since BIGINT NOT NULL,
    fired_at BIGINT,
    resolved_at BIGINT,
    false_since BIGINT,
    no_data BIGINT NOT NULL DEFAULT 0,
    notified BIGINT NOT NULL DEFAULT 0,
    acked_by TEXT,
    acked_at BIGINT,
    silenced_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, target_id) WHERE state <> 'resolved';
CREATE INDEX alerts_org ON alerts (org_id, created_at);
CREATE INDEX alerts_state ON alerts (state);
CREATE TABLE alert_notifications (
    alert_id TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    transition TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (alert_id, transition, channel)
);
CREATE TABLE alert_seen (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    seen_at BIGINT NOT NULL
);
