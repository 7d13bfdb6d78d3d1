-- Evaluation reads a target's open alerts of every rule at once (one query per sample).
CREATE INDEX alerts_open_target ON alerts (target_id) WHERE state <> 'resolved';
-- and the rules covering a target, whatever their metric.
CREATE INDEX alert_rules_target ON alert_rules (org_id, target_type);
