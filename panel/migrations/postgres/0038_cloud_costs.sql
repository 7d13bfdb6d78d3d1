-- Cloud costs (issue 19): a ledger of what each provisioned node costs its organization.
-- One row per node life (a resize ends one row and starts the next): opened when the
-- apply made the cloud server, ended when the request destroyed it or the node was
-- deleted. node_id has no foreign key on purpose: the row outlives the node, so a month's
-- costs still count the nodes deleted in it. Prices are integer nano-units (10^-9) of
-- currency, per hour and per month (the month's cap); NULL when the planner's table had
-- no price for the type. provision_request_id has no foreign key either: the request
-- may be deleted once destroyed.
CREATE TABLE cloud_cost_entries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    node_id TEXT,
    provision_request_id TEXT,
    node_name TEXT NOT NULL,
    provider TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    location TEXT NOT NULL,
    currency TEXT NOT NULL,
    hourly_nanos BIGINT,
    monthly_nanos BIGINT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    price_updated_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX cloud_cost_entries_org ON cloud_cost_entries (org_id, started_at);
CREATE INDEX cloud_cost_entries_request ON cloud_cost_entries (provision_request_id);
CREATE INDEX cloud_cost_entries_node ON cloud_cost_entries (node_id);
