-- Whether a provisioned node's panel-owned firewall matches `node_firewall_rules`. A
-- change made for a server (its game ports opened or closed) is kept even when the
-- provider's API fails; the failure is recorded here, shown on the node, and the next
-- change of the node's rules sends the whole set again.
ALTER TABLE provision_requests ADD COLUMN firewall_error TEXT;
ALTER TABLE provision_requests ADD COLUMN firewall_synced_at BIGINT;
